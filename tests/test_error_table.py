"""One classification for an error, whichever way it arrives (issue 13, part 3).

Every entry of the table in failover_client.errors — each type/code word and each numeric code
given as a string — goes through every protocol twice: as an HTTP error answer and inside a 200
stream, in that protocol's own error shape, against a real local server.  Both must give the
class the table names.
"""

import json

import pytest

from failover_client import (
    FailoverClient,
    FailoverConfig,
    FailoverTrigger,
    FallbackProvider,
    RateLimitError,
    collect,
)
from failover_client.errors import _STATUS_CLASSES, _WORD_CLASSES, ProviderError, ServerError
from failover_client.testing import FakeProviderServer, Reply
from failover_client.testing._bedrock import exception

from raw_server import RawServer
from support import PROTOCOLS, ask, make_provider

MESSAGE = "something went wrong"
# (word or numeric code, class); a numeric code is also the status its HTTP answer comes with
ENTRIES = [*_WORD_CLASSES.items(), *((str(status), cls) for status, cls in _STATUS_CLASSES.items())]
WORD_STATUS = 400  # words arrive with a status that says something else: the word must decide
STREAM_TYPES = {"bedrock": "application/vnd.amazon.eventstream", "ollama": "application/x-ndjson"}


def error_object(protocol, entry):
    """The error object ``protocol`` puts the entry in (proxies in front of Cohere and Ollama,
    whose own errors carry no code, send OpenAI's shape; LiteLLM sends numeric codes as strings)."""
    if entry.isdigit():
        if protocol in ("gemini", "vertex"):
            return {"code": int(entry), "message": MESSAGE}
        return {"message": MESSAGE, "type": "None", "param": "None", "code": entry}
    if protocol == "anthropic":
        return {"type": entry, "message": MESSAGE}
    if protocol in ("gemini", "vertex"):
        return {"code": WORD_STATUS, "message": MESSAGE, "status": entry}
    return {"message": MESSAGE, "type": entry, "param": None, "code": None}


def http_answer(server, protocol, entry):
    status = int(entry) if entry.isdigit() else WORD_STATUS
    if protocol == "bedrock":
        server.answer(status, json.dumps({"message": MESSAGE}),
                      **{"x-amzn-errortype": f"{entry}:http://internal.amazon.com/coral/com.amazon.bedrock/"})
        return
    wrapper = {"type": "error"} if protocol == "anthropic" else {}
    server.answer(status, json.dumps({**wrapper, "error": error_object(protocol, entry)}))


def stream_answer(server, protocol, entry):
    error = error_object(protocol, entry)
    if protocol == "bedrock":
        body = exception(entry, MESSAGE)
    elif protocol == "ollama":
        body = json.dumps({"error": error}).encode() + b"\n"
    elif protocol == "anthropic":
        body = f"event: error\ndata: {json.dumps({'type': 'error', 'error': error})}\n\n".encode()
    else:
        body = f"data: {json.dumps({'error': error})}\n\n".encode()
    server.answer(200, body, STREAM_TYPES.get(protocol, "text/event-stream"))


def raised(provider, stream):
    try:
        if stream:
            collect(provider.complete_stream(ask(stream=True)))
        else:
            provider.complete(ask())
    except ProviderError as exc:
        return exc
    raise AssertionError("no error was raised")


@pytest.fixture(scope="module")
def raw_server():
    with RawServer() as server:
        yield server


def test_the_table_has_every_vocabulary():
    for word in ("throttling_error", "rate_limit", "overloaded", "insufficient_quota", "context_length_exceeded",
                 "content_filter", "resource_exhausted", "throttlingexception", "not_found_error", "model_not_found"):
        assert word in _WORD_CLASSES


@pytest.mark.parametrize("path", ["http", "stream"])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_every_entry_is_classified_the_same_on_every_path(raw_server, protocol, path):
    provider = make_provider(raw_server, "p", protocol)
    wrong = []
    for entry, cls in ENTRIES:
        (http_answer if path == "http" else stream_answer)(raw_server, protocol, entry)
        exc = raised(provider, stream=path == "stream")
        if type(exc) is not cls:
            wrong.append(f"{entry}: {type(exc).__name__}, not {cls.__name__}")
        elif path == "stream":
            assert exc.status is None  # the stream itself was a 200
    assert not wrong, wrong
    provider.close()


def test_litellm_throttle_inside_an_openai_stream_fails_over_on_the_rate_limit_trigger(raw_server):
    """The issue's reproduction: LiteLLM's in-stream rate limit, with only RATE_LIMIT configured."""
    throttle = {"message": "litellm.RateLimitError: Rate limit reached for gpt-4o", "type": "throttling_error",
                "param": None, "code": "429"}
    raw_server.answer(200, f"data: {json.dumps({'error': throttle})}\n\n", "text/event-stream")
    with FakeProviderServer() as fake:
        fake.set_default("backup", Reply(text="from the backup"))
        config = FailoverConfig("proxy", make_provider(raw_server, "proxy", "openai"))
        config.add_fallback(FallbackProvider("backup", make_provider(fake, "backup", "anthropic")))
        config.with_triggers(FailoverTrigger.RATE_LIMIT)
        answer = collect(FailoverClient(config).complete_stream(ask(stream=True)))
    assert answer.text == "from the backup"
    assert [(a.provider, a.error_type) for a in answer.attempts] == [("proxy", "RateLimitError"), ("backup", None)]


@pytest.mark.parametrize("message, cls", [
    ("Rate limit reached, retry in 20s", RateLimitError),
    ("the model is overloaded", ServerError),
    ("upstream crashed", ServerError),
])
def test_a_bare_message_in_a_stream_is_read_for_what_it_says(raw_server, message, cls):
    raw_server.answer(200, json.dumps({"error": message}) + "\n", "application/x-ndjson")
    exc = raised(make_provider(raw_server, "p", "ollama"), stream=True)
    assert isinstance(exc, cls) and exc.message == message
