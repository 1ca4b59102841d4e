"""The Provider contract for Ollama's native chat API against the fake server: what goes on the
wire for each request feature, and what comes back for each reply feature, plain and streamed
as NDJSON.  (Every fault kind runs in tests/test_faults.py.)"""

import pytest
import requests

from failover_client import (
    CompletionRequest,
    ImageBlock,
    Message,
    NotSupportedError,
    ResponseFormat,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from failover_client.errors import (
    ContextLengthExceededError,
    ModelNotFoundError,
    OverloadedError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from failover_client.failover import FailoverClient, FailoverConfig, FallbackProvider
from failover_client.providers.ollama import OllamaProvider
from failover_client.testing import Fault, Reply, ToolCall

from support import WEATHER, ask, make_provider, sent


@pytest.fixture(autouse=True)
def no_cloud_key(monkeypatch):
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)


def ollama(server, name="p", **options):
    options.setdefault("api_key", None)  # a local server: no key
    return make_provider(server, name, "ollama", **options)


def test_text_answer_without_any_key(fake_provider, call):
    fake_provider.script("p", Reply(text="Hello there, friend"))
    response = call(ollama(fake_provider), ask(model="llama3.2"))
    assert response.text == "Hello there, friend"
    assert response.stop_reason is StopReason.END_TURN and response.raw_stop_reason == "stop"
    assert response.provider == "p" and response.model == "llama3.2"
    request = sent(fake_provider)
    assert request.path == "/p/api/chat" and "authorization" not in request.headers


def test_stream_yields_text_as_it_arrives(fake_provider):
    fake_provider.script("p", Reply(chunks=["one ", "two ", "three"]))
    texts = [c.text for c in ollama(fake_provider).complete_stream(ask()) if c.text]
    assert texts == ["one ", "two ", "three"]
    request = sent(fake_provider)
    assert request.body["stream"] is True and request.headers["accept"] == "application/x-ndjson"


def test_plain_call_says_stream_false_because_ollama_streams_by_default(fake_provider):
    ollama(fake_provider).complete(ask())
    assert sent(fake_provider).body["stream"] is False and not sent(fake_provider).stream


def test_a_cloud_key_is_sent_as_a_bearer_token(fake_provider, monkeypatch):
    fake_provider.require_key("p", "ollama-cloud-key-0123")
    assert ollama(fake_provider, api_key="ollama-cloud-key-0123").complete(ask()).text == "Hello!"
    assert sent(fake_provider).headers["authorization"] == "Bearer ollama-cloud-key-0123"
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-cloud-key-0123")
    provider = OllamaProvider(base_url=fake_provider.base_url("p", "ollama"), name="p")
    assert provider.complete(ask()).text == "Hello!"


def test_options_format_and_extra(fake_provider):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    provider = ollama(fake_provider)
    provider.complete(ask(system="Be terse.", temperature=0.3, top_p=0.8, stop_sequences=["END"], max_tokens=50,
                          response_format=ResponseFormat.json_schema(schema), extra={"keep_alive": "5m"}))
    body = sent(fake_provider).body
    assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hello"}]
    assert body["options"] == {"num_predict": 50, "temperature": 0.3, "top_p": 0.8, "stop": ["END"]}
    assert body["format"] == schema and body["keep_alive"] == "5m"
    provider.complete(ask(response_format=ResponseFormat.json()))
    body = sent(fake_provider).body
    assert body["format"] == "json" and "options" not in body


def test_tool_calls_come_back_with_object_arguments(fake_provider, call):
    fake_provider.script("p", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_a1"),
                                                ToolCall("get_weather", {"city": "Oslo", "units": ["c"]})]))
    response = call(ollama(fake_provider), ask(tools=[WEATHER]))
    assert [(c.name, c.input) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo", "units": ["c"]})]
    assert response.tool_calls[0].id == "call_a1" and response.tool_calls[1].id.startswith("call_")
    assert response.stop_reason is StopReason.TOOL_USE and response.raw_stop_reason == "stop"
    assert sent(fake_provider).body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather", "parameters": WEATHER.input_schema}}]


def test_tool_choice(fake_provider):
    provider = ollama(fake_provider)
    provider.complete(ask(tools=[WEATHER], tool_choice=ToolChoice.none()))
    assert "tools" not in sent(fake_provider).body  # the model cannot call what it is not shown
    for choice in (ToolChoice.any(), ToolChoice.tool("get_weather")):
        with pytest.raises(NotSupportedError, match="tool_choice"):
            provider.complete(ask(tools=[WEATHER], tool_choice=choice))
    assert len(fake_provider.requests) == 1


def test_tool_round_trip_messages(fake_provider):
    history = [
        Message.user("Weather in Paris?"),
        Message.assistant([TextBlock("Checking."), ToolUseBlock("call_1", "get_weather", {"city": "Paris"})]),
        Message.tool_results([ToolResultBlock("call_1", "18C, cloudy")]),
    ]
    ollama(fake_provider).complete(CompletionRequest("qwen3", history, tools=[WEATHER]))
    messages = sent(fake_provider).body["messages"]
    assert messages[1] == {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
    assert messages[2] == {"role": "tool", "content": "18C, cloudy", "tool_name": "get_weather",
                           "tool_call_id": "call_1"}


def test_images_travel_as_bare_base64(fake_provider):
    message = Message.user([TextBlock("What is this?"), ImageBlock.from_base64("iVBORw0K", "image/png")])
    ollama(fake_provider).complete(CompletionRequest("llava", [message]))
    assert sent(fake_provider).body["messages"][0] == {"role": "user", "content": "What is this?",
                                                       "images": ["iVBORw0K"]}


def test_an_image_url_is_refused_before_sending(fake_provider):
    message = Message.user([TextBlock("What is this?"), ImageBlock.from_url("https://example.com/cat.jpg")])
    with pytest.raises(NotSupportedError, match="not URLs"):
        ollama(fake_provider).complete(CompletionRequest("llava", [message]))
    assert fake_provider.requests == []


def test_thinking_comes_back_and_is_configured(fake_provider, call):
    fake_provider.script("p", Reply(text="42", thinking="Six times seven"))
    response = call(ollama(fake_provider), ask(thinking=ThinkingConfig()))
    assert response.content == [ThinkingBlock("Six times seven"), TextBlock("42")]
    assert sent(fake_provider).body["think"] is True


def test_think_takes_an_effort_or_false(fake_provider):
    provider = ollama(fake_provider)
    provider.complete(ask(thinking=ThinkingConfig(effort="high")))
    assert sent(fake_provider).body["think"] == "high"
    provider.complete(ask(thinking=ThinkingConfig(enabled=False)))
    assert sent(fake_provider).body["think"] is False
    provider.complete(ask())
    assert "think" not in sent(fake_provider).body


def test_thinking_is_sent_back_in_the_assistant_turn(fake_provider):
    history = [Message.user("q"), Message.assistant([ThinkingBlock("pondering"), TextBlock("a")]), Message.user("more")]
    ollama(fake_provider).complete(CompletionRequest("m", history))
    assert sent(fake_provider).body["messages"][1] == {"role": "assistant", "content": "a", "thinking": "pondering"}


def test_usage_from_the_eval_counts(fake_provider, call):
    fake_provider.script("p", Reply(usage={"input": 169, "output": 18}))
    assert call(ollama(fake_provider), ask()).usage == Usage(input_tokens=169, output_tokens=18)


@pytest.mark.parametrize("reason, expected, raw", [
    ("max_tokens", StopReason.MAX_TOKENS, "length"),
    ("stop_sequence", StopReason.END_TURN, "stop"),  # Ollama says "stop" for a stop sequence too
])
def test_stop_reasons(fake_provider, call, reason, expected, raw):
    fake_provider.script("p", Reply(stop_reason=reason))
    response = call(ollama(fake_provider), ask())
    assert (response.stop_reason, response.raw_stop_reason) == (expected, raw)


def test_an_error_line_after_output_interrupts_the_stream(fake_provider):
    fake_provider.script("p", Fault.stream_error_event(2, message="llama runner process has terminated",
                                                       reply=Reply(text="one two three four")))
    config = FailoverConfig("p", ollama(fake_provider)).add_fallback(FallbackProvider("b", ollama(fake_provider, "b")))
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in FailoverClient(config).complete_stream(ask()):
            received.append(chunk.text or "")
    assert info.value.partial_text == "".join(received) == "one two"
    assert isinstance(info.value.__cause__, ServerError)
    assert "llama runner process has terminated" in str(info.value.__cause__)


@pytest.mark.parametrize("fault, error, status, message", [
    (Fault.status(404), ModelNotFoundError, 404, "model 'gpt-4o' not found"),
    (Fault.context_length(), ContextLengthExceededError, 400, "exceeds the context length"),
    (Fault.rate_limit(), RateLimitError, 429, "too many requests"),
    (Fault.overloaded(), OverloadedError, 503, "server busy"),
])
def test_error_mapping(fake_provider, call, fault, error, status, message):
    fake_provider.script("p", fault)
    with pytest.raises(error, match=message) as info:
        call(ollama(fake_provider), ask())
    assert type(info.value) is error and info.value.status == status


def test_the_fake_server_streams_when_the_body_does_not_say(fake_provider):
    response = requests.post(fake_provider.base_url("p", "ollama") + "/api/chat",
                             json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}, timeout=5)
    lines = response.text.splitlines()
    assert response.headers["content-type"] == "application/x-ndjson"
    assert '"done":false' in lines[0] and '"done":true' in lines[-1]
