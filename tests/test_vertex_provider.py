"""The Provider contract for Vertex AI (VertexProvider) against the fake server: Gemini models on
the google publisher (the Gemini wire format; every fault kind also runs in tests/test_faults.py,
where "vertex" is in support.PROTOCOLS), Claude models on the anthropic publisher (the Messages
wire format through rawPredict/streamRawPredict; the fault table runs here), and the bearer
token: from the constructor, or refreshed by a callable before each request."""

import json

import pytest
import requests
from test_faults import DEADLINE, FAULTS, MODES, READ_TIMEOUT, expected_error

from failover_client import (
    AuthenticationError,
    CompletionRequest,
    Message,
    ModelNotFoundError,
    OverloadedError,
    RateLimitError,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    TokenCountRequest,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    collect,
)
from failover_client.errors import InvalidArgumentError, MissingCredentialsError
from failover_client.providers import VertexProvider
from failover_client.providers.vertex import default_base_url
from failover_client.testing import Fault, Reply, ToolCall

from support import OPTIONS, WEATHER, make_provider, sent

TOKEN = OPTIONS["vertex"]["access_token"]
GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
ROOT = "/v/v1/projects/test-project/locations/us-central1/publishers"


def vertex(server, name="v", **options):
    return make_provider(server, name, "vertex", **options)


def ask(model, text="Hello", **fields):
    return CompletionRequest(model=model, messages=[Message.user(text)], **fields)


# --- configuration and the token -------------------------------------------------------------


@pytest.mark.parametrize("location, url", [
    ("us-central1", "https://us-central1-aiplatform.googleapis.com/v1"),
    ("europe-west4", "https://europe-west4-aiplatform.googleapis.com/v1"),
    ("global", "https://aiplatform.googleapis.com/v1"),
])
def test_the_host_follows_the_location(location, url):
    assert default_base_url(location) == url
    assert VertexProvider("p", location, access_token="t").base_url == url


def test_project_and_location_from_the_environment(fake_provider, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "asia-northeast1")
    assert VertexProvider(access_token="t").base_url == "https://asia-northeast1-aiplatform.googleapis.com/v1"
    vertex(fake_provider, project=None, location=None).complete(ask(GEMINI))
    assert sent(fake_provider).path == (f"/v/v1/projects/env-project/locations/asia-northeast1/publishers/google/"
                                        f"models/{GEMINI}:generateContent")
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION")
    assert VertexProvider(access_token="t").location == "global"


def test_a_missing_project_is_named_before_sending(fake_provider, monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(MissingCredentialsError, match="GOOGLE_CLOUD_PROJECT"):
        vertex(fake_provider, project=None).complete(ask(GEMINI))
    assert fake_provider.requests == []


@pytest.mark.parametrize("options, problem", [
    ({"access_token": "t", "token_provider": lambda: "t"}, "not both"),
    ({"token_provider": "not callable"}, "callable"),
    ({"api_key": "AIza-some-key"}, "access token"),
])
def test_bad_credentials_arguments(options, problem):
    with pytest.raises(InvalidArgumentError, match=problem):
        VertexProvider("p", "global", **options)


def test_the_token_is_sent_as_bearer_and_never_shown(fake_provider):
    provider = vertex(fake_provider)
    provider.complete(ask(GEMINI))
    assert sent(fake_provider).headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(provider)
    fake_provider.require_key("v", "ya29.the-right-token-000000")
    with pytest.raises(AuthenticationError) as info:
        provider.complete(ask(GEMINI))
    assert info.value.status == 401 and info.value.code == "UNAUTHENTICATED"
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value) and TOKEN not in (info.value.body or "")


def test_token_provider_is_called_before_every_request(fake_provider):
    tokens = iter(["ya29.first-token-00000", "ya29.second-token-0000", "ya29.third-token-00000"])
    provider = vertex(fake_provider, access_token=None, token_provider=lambda: next(tokens))
    provider.complete(ask(GEMINI))
    collect(provider.complete_stream(ask(CLAUDE)))
    provider.count_tokens(ask(GEMINI))
    assert [r.headers["authorization"] for r in fake_provider.requests] == [
        "Bearer ya29.first-token-00000", "Bearer ya29.second-token-0000", "Bearer ya29.third-token-00000"]


@pytest.mark.parametrize("token_provider, error, message", [
    (lambda: "", MissingCredentialsError, "token_provider returned none"),
    (lambda: 1 / 0, AuthenticationError, r"token_provider failed \(ZeroDivisionError\)"),
])
def test_a_failing_token_provider_is_a_typed_error_before_sending(fake_provider, token_provider, error, message):
    with pytest.raises(error, match=message):
        vertex(fake_provider, access_token=None, token_provider=token_provider).complete(ask(GEMINI))
    assert fake_provider.requests == []


def test_no_token_on_the_wire_is_googles_401(fake_provider):
    url = fake_provider.base_url("v", "vertex") + f"/projects/p/locations/l/publishers/google/models/{GEMINI}" \
                                                  ":generateContent"
    response = requests.post(url, json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]}, timeout=5)
    error = response.json()["error"]
    assert (response.status_code, error["status"]) == (401, "UNAUTHENTICATED")
    assert error["details"][0]["reason"] == "CREDENTIALS_MISSING"
    claude = url.replace("/google/", "/anthropic/").replace(GEMINI, CLAUDE).replace("generateContent", "rawPredict")
    assert requests.post(claude, json={}, timeout=5).json()["error"]["status"] == "UNAUTHENTICATED"


# --- Gemini on Vertex ---------------------------------------------------------------------------


def test_gemini_text_answer(fake_provider, call):
    fake_provider.script("v", Reply(text="Hello from Vertex", usage={"input": 9, "output": 12, "reasoning": 4},
                                    thinking="hm"))
    response = call(vertex(fake_provider), ask(GEMINI, system="Be brief."))
    assert response.text == "Hello from Vertex" and response.model == GEMINI
    assert response.usage == Usage(input_tokens=9, output_tokens=12, reasoning_tokens=4)
    assert response.stop_reason is StopReason.END_TURN
    request = sent(fake_provider)
    method = "streamGenerateContent" if request.stream else "generateContent"
    assert request.path == f"{ROOT}/google/models/{GEMINI}:{method}"
    assert request.query == ({"alt": "sse"} if request.stream else {})
    assert request.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


def test_gemini_3_tool_round_trip_with_signature(fake_provider, call):
    model = "gemini-3-pro-preview"
    fake_provider.script("v", Reply(thinking="Need the weather.", signature="c2lnLXZlcnRleA==",
                                    tool_calls=[ToolCall("get_weather", {"city": "Lyon"})]))
    provider = vertex(fake_provider)
    first = call(provider, ask(model, "Weather in Lyon?", tools=[WEATHER]))
    (tool_use,) = first.tool_calls
    assert first.stop_reason is StopReason.TOOL_USE and tool_use.input == {"city": "Lyon"}
    history = [Message.user("Weather in Lyon?"), first.to_message(),
               Message.tool_results([ToolResultBlock(tool_use.id, "21C")])]
    assert call(provider, CompletionRequest(model, history, tools=[WEATHER])).text == "Hello!"
    assert sent(fake_provider).body["contents"][1]["parts"][1] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Lyon"}, "id": tool_use.id},
        "thoughtSignature": "c2lnLXZlcnRleA=="}


def test_gemini_count_tokens_sends_the_prompt_fields_directly(fake_provider):
    fake_provider.script("v", Reply(usage={"input": 17}))
    result = vertex(fake_provider).count_tokens(TokenCountRequest(GEMINI, [Message.user("Count me")],
                                                                  system="sys", tools=[WEATHER]))
    assert (result.input_tokens, result.exact, result.provider) == (17, True, "v")
    request = sent(fake_provider)
    assert request.path == f"{ROOT}/google/models/{GEMINI}:countTokens"
    assert request.body == {"contents": [{"role": "user", "parts": [{"text": "Count me"}]}],
                            "systemInstruction": {"parts": [{"text": "sys"}]},
                            "tools": [{"functionDeclarations": [{"name": "get_weather",
                                                                 "description": "Current weather",
                                                                 "parametersJsonSchema": WEATHER.input_schema}]}]}


@pytest.mark.parametrize("fault, error, code, message", [
    (Fault.rate_limit(), RateLimitError, "RESOURCE_EXHAUSTED", "Resource exhausted"),
    (Fault.status(404), ModelNotFoundError, "NOT_FOUND",
     f"Publisher Model `projects/test-project/locations/us-central1/publishers/google/models/{GEMINI}`"),
    (Fault.overloaded(), OverloadedError, "UNAVAILABLE", "overloaded"),
])
def test_gemini_errors(fake_provider, fault, error, code, message):
    fake_provider.script("v", fault)
    with pytest.raises(error, match=message) as info:
        vertex(fake_provider).complete(ask(GEMINI))
    assert type(info.value) is error and info.value.code == code


# --- Claude on Vertex --------------------------------------------------------------------------


def test_claude_goes_to_raw_predict_with_the_vertex_messages_body(fake_provider, call):
    fake_provider.script("v", Reply(text="Bonjour", usage={"input": 30, "output": 5, "cache_read": 10}))
    response = call(vertex(fake_provider), ask(CLAUDE, max_tokens=100, temperature=0.5))
    assert response.text == "Bonjour" and response.model == CLAUDE
    assert response.stop_reason is StopReason.END_TURN and response.raw_stop_reason == "end_turn"
    assert response.usage == Usage(input_tokens=30, output_tokens=5, cache_read_tokens=10)
    request = sent(fake_provider)
    method = "streamRawPredict" if request.stream else "rawPredict"
    assert request.path == f"{ROOT}/anthropic/models/{CLAUDE}:{method}"
    assert request.query == {}
    assert request.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in request.body
    assert request.body["max_tokens"] == 100 and request.body["temperature"] == 0.5
    assert request.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert request.body.get("stream", False) is request.stream


def test_claude_tools_and_thinking_use_the_anthropic_mapping(fake_provider, call):
    fake_provider.script("v", Reply(thinking="Let me look.", signature="YW50aHJvcGljLXNpZw==",
                                    tool_calls=[ToolCall("get_weather", {"city": "Nice"})]))
    response = call(vertex(fake_provider), ask(CLAUDE, tools=[WEATHER], max_tokens=4096,
                                               thinking=ThinkingConfig(budget_tokens=2048)))
    assert response.content[0] == ThinkingBlock("Let me look.", "YW50aHJvcGljLXNpZw==")
    assert [(c.name, c.input) for c in response.tool_calls] == [("get_weather", {"city": "Nice"})]
    assert response.stop_reason is StopReason.TOOL_USE
    body = sent(fake_provider).body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["tools"] == [{"name": "get_weather", "description": "Current weather",
                              "input_schema": WEATHER.input_schema}]
    history = [Message.user("q"), response.to_message(),
               Message.tool_results([ToolResultBlock(response.tool_calls[0].id, "20C")])]
    vertex(fake_provider).complete(CompletionRequest(CLAUDE, history, tools=[WEATHER]))
    assert sent(fake_provider).body["messages"][1]["content"][0] == {
        "type": "thinking", "thinking": "Let me look.", "signature": "YW50aHJvcGljLXNpZw=="}


def test_claude_count_tokens(fake_provider):
    fake_provider.script("v", Reply(usage={"input": 23}))
    history = [Message.user("q"), Message.assistant([TextBlock("a"), ToolUseBlock("t1", "get_weather", {})]),
               Message.tool_results([ToolResultBlock("t1", "ok")])]
    result = vertex(fake_provider).count_tokens(CompletionRequest(CLAUDE, history, system="sys", tools=[WEATHER],
                                                                  max_tokens=50, temperature=0.1))
    assert (result.input_tokens, result.model) == (23, CLAUDE)
    request = sent(fake_provider)
    assert request.path == f"{ROOT}/anthropic/models/count-tokens:rawPredict"
    assert set(request.body) == {"model", "messages", "system", "tools", "anthropic_version"}
    assert request.body["model"] == CLAUDE and request.body["anthropic_version"] == "vertex-2023-10-16"


def test_the_fake_checks_the_vertex_messages_body(fake_provider):
    url = fake_provider.base_url("v", "vertex") + f"/projects/p/locations/l/publishers/anthropic/models/{CLAUDE}" \
                                                  ":rawPredict"
    auth = {"authorization": "Bearer ya29.some-token-0000"}
    body = {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    for sent_body, message in [(body, "anthropic_version"),
                               ({**body, "anthropic_version": "vertex-2023-10-16", "model": CLAUDE}, "model"),
                               ({"anthropic_version": "vertex-2023-10-16", "messages": []}, "max_tokens")]:
        response = requests.post(url, data=json.dumps(sent_body), headers=auth, timeout=5)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert response.json()["error"]["message"].startswith(message)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault_name", FAULTS)
def test_claude_on_vertex_raises_the_right_error_for_every_fault(fake_provider, mode, fault_name):
    """Claude on Vertex speaks the Anthropic protocol: every fault maps as it does for Anthropic."""
    fake_provider.script("v", FAULTS[fault_name][0])
    provider = vertex(fake_provider, read_timeout=READ_TIMEOUT)
    expected = expected_error(fault_name, "anthropic", mode)
    with pytest.raises(expected) as info:
        if mode == "complete":
            provider.complete(ask(CLAUDE), timeout=DEADLINE)
        else:
            collect(provider.complete_stream(ask(CLAUDE), timeout=DEADLINE))
    assert type(info.value) is expected and info.value.provider == "v"
    assert provider.complete(ask(CLAUDE)).text == "Hello!"  # the provider is still usable afterwards
