"""A model the provider does not have is ModelNotFoundError on every protocol, in answers and in
streams, and the default triggers fail over past it (issue 14).

The bodies are the recorded ones of docs/protocols-documents-errors.md B.4 (ids shortened).
"""

import json

import pytest

from failover_client import (
    FailoverClient,
    FailoverConfig,
    FailoverTrigger,
    FallbackProvider,
    InvalidRequestError,
    ModelNotFoundError,
    collect,
)
from failover_client.failover import DEFAULT_TRIGGERS
from failover_client.testing import Fault, Reply
from failover_client.testing._bedrock import exception

from raw_server import RawServer
from support import PROTOCOLS, ask, make_provider

OPENAI = {"error": {"message": "The model `gpt-9` does not exist or you do not have access to it.",
                    "type": "invalid_request_error", "param": None, "code": "model_not_found"}}
GOOGLE = {"error": {"code": 404, "status": "NOT_FOUND", "message": "models/gpt-9 is not found for API version "
                    "v1beta, or is not supported for generateContent. Call ListModels to see the list."}}
BEDROCK_HEADER = {"x-amzn-errortype": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"}
# protocol -> (status, body, headers) of the recorded "no such model" answer
RECORDED = {
    "openai": (404, OPENAI, {}),
    "responses": (404, OPENAI, {}),  # the same error object as chat completions
    "azure": (404, {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource "
                              "does not exist. If you created the deployment within the last 5 minutes, please "
                              "wait a moment and try again."}}, {}),
    "anthropic": (404, {"type": "error", "error": {"type": "not_found_error", "message": "model: gpt-9"},
                        "request_id": "req_011C"}, {"x-should-retry": "false"}),
    "gemini": (404, GOOGLE, {}),
    "vertex": (404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Publisher Model `projects/p/"
                               "locations/l/publishers/google/models/gpt-9` was not found or your project does "
                               "not have access to it."}}, {}),
    "bedrock": (400, {"message": "The provided model identifier is invalid."}, BEDROCK_HEADER),
    "cohere": (404, {"id": "c0ffee", "message": "model 'gpt-9' not found, make sure the correct model ID was "
                                                "used and that you have access to the model."}, {}),
    "ollama": (404, {"error": "model 'gpt-9:latest' not found"}, {}),
}
# Other wordings of the same answer (B.0): each must be ModelNotFoundError too
OTHER_WORDINGS = [
    ("bedrock", 404, {"message": "This model version has reached the end of its life. Please refer to the AWS "
                                 "documentation for more details."},
     {"x-amzn-errortype": "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.bedrock/"}),
    ("openai", 400, {"error": {"message": "The requested model 'gpt-9' does not exist.", "type":
                               "invalid_request_error", "param": "model", "code": "model_not_found"}}, {}),
    ("openai", 400, {"object": "error", "message": "Invalid model: gpt-9", "type": "invalid_model",
                     "code": "1500"}, {}),  # Mistral
    ("openai", 400, {"error": {"message": "The model `gpt-9` has been decommissioned and is no longer "
                               "supported.", "type": "invalid_request_error", "code": "model_decommissioned"}}, {}),
    ("openai", 400, {"error": {"message": "Model Not Exist", "type": "invalid_request_error",
                               "code": "invalid_request_error"}}, {}),  # DeepSeek
    ("azure", 404, {"error": {"code": "404", "message": "Resource not found"}}, {}),
    ("cohere", 404, {"message": "model 'command' was removed on September 15, 2025. See "
                                "https://docs.cohere.com/docs/models#command for a list of models."}, {}),
    ("ollama", 404, {"error": 'model "gpt-9" not found, try pulling it first'}, {}),
]
# protocol -> (content type, the stream's body carrying the model-not-found error after a 200)
IN_STREAM = {
    "openai": ("text/event-stream", f"data: {json.dumps(OPENAI)}\n\n".encode()),
    # the Responses API's stream error event (docs/protocols-responses.md: its flat shape)
    "responses": ("text/event-stream", b'event: error\ndata: {"type": "error", "code": "model_not_found", '
                                       b'"message": "The model gpt-9 does not exist.", "param": null, '
                                       b'"sequence_number": 0}\n\n'),
    "azure": ("text/event-stream", f"data: {json.dumps(OPENAI)}\n\n".encode()),
    "anthropic": ("text/event-stream", b'event: error\ndata: {"type": "error", "error": '
                                       b'{"type": "not_found_error", "message": "model: gpt-9"}}\n\n'),
    "gemini": ("text/event-stream", f"data: {json.dumps(GOOGLE)}\n\n".encode()),
    "vertex": ("text/event-stream", f"data: {json.dumps(GOOGLE)}\n\n".encode()),
    "bedrock": ("application/vnd.amazon.eventstream",
                exception("validationException", "The provided model identifier is invalid.")),
    "cohere": ("text/event-stream", f"data: {json.dumps(OPENAI)}\n\n".encode()),  # a proxy in front
    "ollama": ("application/x-ndjson", b'{"error": "model \'gpt-9:latest\' not found"}\n'),
}


def run(provider, stream):
    if stream:
        return collect(provider.complete_stream(ask(model="gpt-9", stream=True)))
    return provider.complete(ask(model="gpt-9"))


def test_model_not_found_is_an_invalid_request_and_a_default_trigger():
    assert issubclass(ModelNotFoundError, InvalidRequestError)
    assert FailoverTrigger.MODEL_NOT_FOUND in DEFAULT_TRIGGERS
    assert FailoverTrigger.MODEL_NOT_FOUND.matches(ModelNotFoundError("x"))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_the_recorded_answer_of_every_protocol(fake_provider, protocol, stream):
    status, body, headers = RECORDED[protocol]
    fake_provider.script("p", Fault.status(status, body=body, headers=headers))
    with pytest.raises(ModelNotFoundError) as info:
        run(make_provider(fake_provider, "p", protocol), stream)
    assert info.value.status == status and info.value.model == "gpt-9"
    assert not info.value.retryable


@pytest.mark.parametrize("protocol, status, body, headers", OTHER_WORDINGS)
def test_other_wordings(fake_provider, protocol, status, body, headers):
    fake_provider.script("p", Fault.status(status, body=body, headers=headers))
    with pytest.raises(ModelNotFoundError):
        run(make_provider(fake_provider, "p", protocol), stream=False)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_inside_a_stream(protocol):
    content_type, body = IN_STREAM[protocol]
    with RawServer() as server:
        server.answer(200, body, content_type)
        with pytest.raises(ModelNotFoundError) as info:
            run(make_provider(server, "p", protocol), stream=True)
    assert info.value.status is None


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_chain_fails_over_past_a_model_missing_on_the_primary(fake_provider, protocol, stream):
    status, body, headers = RECORDED[protocol]
    fake_provider.script("primary", Fault.status(status, body=body, headers=headers))
    fake_provider.set_default("backup", Reply(text="the backup has it"))
    config = FailoverConfig("primary", make_provider(fake_provider, "primary", protocol))
    config.add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", "anthropic"))
                        .with_model_mapping("gpt-9", "claude-opus-4-5"))
    answer = run(FailoverClient(config), stream)
    assert answer.text == "the backup has it"
    assert [(a.provider, a.outcome, a.error_type) for a in answer.attempts] == [
        ("primary", "error", "ModelNotFoundError"), ("backup", "ok", None)]
    assert fake_provider.requests_for("backup")[0].body["model"] == "claude-opus-4-5"
