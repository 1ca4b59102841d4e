"""A Flask app answering from OpenAI and failing over to Anthropic.

POST /ask {"question": "..."} answers with JSON; POST /stream streams the answer as
Server-Sent Events.  When every provider fails before the answer begins, both say so with a
JSON 502 (503 when none could even be tried), never with a 200 and an error inside.

    export OPENAI_API_KEY=... ANTHROPIC_API_KEY=...
    gunicorn --worker-class gthread --workers 2 --threads 8 --chdir examples flask_app:app

Optional environment: OPENAI_BASE_URL / ANTHROPIC_BASE_URL (a proxy, or the fake provider in
tests), REDIS_URL (one circuit breaker for all workers), FAILOVER_LOG (JSON log lines there).
"""

import os

from flask import Flask, jsonify, request

from failover_client import AllProvidersFailedError, CompletionRequest, Message, ProviderError
from failover_client.contrib.flask import FailoverClientExtension, current_client, stream_response
from failover_client.log import configure_logging
from failover_client.web import error_body


def provider(model, base_url_variable):
    """A FAILOVER_CLIENT provider entry, sent to another URL if the variable says so."""
    base_url = os.environ.get(base_url_variable)
    return {"model": model, "options": {"base_url": base_url}} if base_url else {"model": model}


app = Flask(__name__)
app.config["FAILOVER_CLIENT"] = {
    "providers": [provider("openai/gpt-5.5", "OPENAI_BASE_URL"),
                  provider("anthropic/claude-opus-5", "ANTHROPIC_BASE_URL")],
    "deadline": 30,  # and the web profile (the default): at most 2 s of sleeping per call
    "health_store": os.environ.get("REDIS_URL"),
}
FailoverClientExtension(app)
if os.environ.get("FAILOVER_LOG"):
    configure_logging(os.environ["FAILOVER_LOG"])


def question():
    return CompletionRequest("gpt-5.5", [Message.user(request.get_json()["question"])], max_tokens=500)


@app.post("/ask")
def ask():
    try:
        answer = current_client.complete(question())
    except (AllProvidersFailedError, ProviderError) as exc:
        status, body = error_body(exc)
        return jsonify(body), status
    return jsonify(text=answer.text, provider=answer.provider)


@app.post("/stream")
def stream():
    return stream_response(question())
