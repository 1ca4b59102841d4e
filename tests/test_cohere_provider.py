"""The Provider contract for Cohere Chat v2 against the fake server: what goes on the wire for
each request feature, and what comes back for each reply feature, plain and streamed.  (Every
fault kind runs in tests/test_faults.py.)"""

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
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from failover_client.errors import (
    AuthenticationError,
    ContentFilteredError,
    ContextLengthExceededError,
    MissingCredentialsError,
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from failover_client.failover import FailoverClient, FailoverConfig, FallbackProvider
from failover_client.providers.cohere import CohereProvider
from failover_client.testing import Fault, Reply, ToolCall

from support import WEATHER, ask, make_provider, sent

KEY = "co-test-key-0123456789"


def cohere(server, name="p", **options):
    return make_provider(server, name, "cohere", **options)


def test_text_answer(fake_provider, call):
    fake_provider.script("p", Reply(text="Hello there, friend"))
    response = call(cohere(fake_provider), ask(model="command-a-03-2025"))
    assert response.text == "Hello there, friend"
    assert response.stop_reason is StopReason.END_TURN and response.raw_stop_reason == "COMPLETE"
    assert response.provider == "p" and response.id and response.model == "command-a-03-2025"
    assert sent(fake_provider).path == "/p/v2/chat"


def test_stream_yields_text_as_it_arrives(fake_provider):
    fake_provider.script("p", Reply(chunks=["one ", "two ", "three"]))
    texts = [c.text for c in cohere(fake_provider).complete_stream(ask()) if c.text]
    assert texts == ["one ", "two ", "three"]
    request = sent(fake_provider)
    assert request.body["stream"] is True and request.headers["accept"] == "text/event-stream"


def test_plain_call_says_stream_false(fake_provider):
    cohere(fake_provider).complete(ask())
    assert sent(fake_provider).body["stream"] is False


def test_bearer_key_from_argument_or_either_environment_variable(fake_provider, monkeypatch):
    fake_provider.require_key("p", KEY)
    assert cohere(fake_provider, api_key=KEY).complete(ask()).text == "Hello!"
    assert sent(fake_provider).headers["authorization"] == f"Bearer {KEY}"
    for variable in ("CO_API_KEY", "COHERE_API_KEY"):
        monkeypatch.delenv("CO_API_KEY", raising=False)
        monkeypatch.delenv("COHERE_API_KEY", raising=False)
        monkeypatch.setenv(variable, KEY)
        provider = CohereProvider(base_url=fake_provider.base_url("p", "cohere"), name="p")
        assert provider.complete(ask()).text == "Hello!"


def test_missing_key_names_the_variable_and_sends_nothing(fake_provider, monkeypatch):
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    provider = CohereProvider(base_url=fake_provider.base_url("p", "cohere"))
    with pytest.raises(MissingCredentialsError, match="CO_API_KEY"):
        provider.complete(ask())
    assert fake_provider.requests == []


def test_wrong_key_is_an_authentication_error_without_the_key(fake_provider):
    fake_provider.require_key("p", KEY)
    with pytest.raises(AuthenticationError) as info:
        cohere(fake_provider, api_key="co-wrong-key-9876543210").complete(ask())
    assert info.value.status == 401 and "co-wrong-key-9876543210" not in str(info.value)


def test_system_sampling_stop_sequences_and_extra(fake_provider):
    cohere(fake_provider).complete(ask(system="Be terse.", temperature=0.3, top_p=0.8, stop_sequences=["END"],
                                       max_tokens=50, extra={"seed": 7, "safety_mode": "STRICT"}))
    body = sent(fake_provider).body
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["messages"][1] == {"role": "user", "content": "Hello"}
    assert (body["temperature"], body["p"], body["stop_sequences"], body["max_tokens"]) == (0.3, 0.8, ["END"], 50)
    assert "top_p" not in body
    assert body["seed"] == 7 and body["safety_mode"] == "STRICT"


def test_tool_calls_come_back_parsed_with_the_tool_plan_as_text(fake_provider, call):
    fake_provider.script("p", Reply(text="I will look both up.", tool_calls=[
        ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Oslo", "units": ["c"]})]))
    response = call(cohere(fake_provider), ask(tools=[WEATHER]))
    assert [(c.name, c.input) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo", "units": ["c"]})]
    assert all(c.id.startswith("get_weather_") for c in response.tool_calls)
    assert response.text == "I will look both up."
    assert response.stop_reason is StopReason.TOOL_USE and response.raw_stop_reason == "TOOL_CALL"


def test_tools_and_tool_choice_on_the_wire(fake_provider):
    provider = cohere(fake_provider)
    for choice, wire in [(ToolChoice.any(), "REQUIRED"), (ToolChoice.none(), "NONE")]:
        provider.complete(ask(tools=[WEATHER], tool_choice=choice))
        body = sent(fake_provider).body
        assert body["tool_choice"] == wire
        assert body["tools"] == [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather", "parameters": WEATHER.input_schema}}]
        assert "strict_tools" not in body
    provider.complete(ask(tools=[WEATHER], tool_choice=ToolChoice.auto()))
    assert "tool_choice" not in sent(fake_provider).body  # auto is Cohere's default
    strict = ToolDefinition("f", "", {"type": "object", "properties": {}}, strict=True)
    provider.complete(ask(tools=[WEATHER, strict]))
    assert sent(fake_provider).body["strict_tools"] is True


def test_forcing_one_named_tool_is_refused_before_sending(fake_provider):
    with pytest.raises(NotSupportedError, match="one named tool"):
        cohere(fake_provider).complete(ask(tools=[WEATHER], tool_choice=ToolChoice.tool("get_weather")))
    assert fake_provider.requests == []


def test_tool_round_trip_messages(fake_provider):
    history = [
        Message.user("Weather in Paris?"),
        Message.assistant([TextBlock("Checking."), ToolUseBlock("call_1", "get_weather", {"city": "Paris"})]),
        Message.tool_results([ToolResultBlock("call_1", "18C, cloudy")]),
        Message.assistant("It is 18C."),
    ]
    cohere(fake_provider).complete(CompletionRequest("command-a-03-2025", history, tools=[WEATHER]))
    messages = sent(fake_provider).body["messages"]
    assert messages[1] == {"role": "assistant", "tool_plan": "Checking.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"}
    assert messages[3] == {"role": "assistant", "content": [{"type": "text", "text": "It is 18C."}]}


def test_images_inline_and_by_url(fake_provider):
    message = Message.user([TextBlock("What is this?"), ImageBlock.from_base64("iVBORw0K", "image/png"),
                            ImageBlock.from_url("https://example.com/cat.jpg")])
    cohere(fake_provider).complete(CompletionRequest("command-a-vision-07-2025", [message]))
    assert sent(fake_provider).body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]


def test_an_image_in_a_tool_result_is_refused_before_sending(fake_provider):
    result = ToolResultBlock("c1", [TextBlock("chart:"), ImageBlock.from_base64("iVBORw0K", "image/png")])
    history = [Message.user("q"), Message.assistant([ToolUseBlock("c1", "f", {})]), Message.tool_results([result])]
    with pytest.raises(NotSupportedError, match="text only"):
        cohere(fake_provider).complete(CompletionRequest("m", history))
    assert fake_provider.requests == []


def test_json_mode_and_schema(fake_provider):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    provider = cohere(fake_provider)
    provider.complete(ask(response_format=ResponseFormat.json_schema(schema)))
    assert sent(fake_provider).body["response_format"] == {"type": "json_object", "json_schema": schema}
    provider.complete(ask(response_format=ResponseFormat.json()))
    assert sent(fake_provider).body["response_format"] == {"type": "json_object"}


def test_thinking_comes_back_and_is_configured(fake_provider, call):
    fake_provider.script("p", Reply(text="42", thinking="Six times seven"))
    response = call(cohere(fake_provider), ask(thinking=ThinkingConfig(budget_tokens=2048)))
    assert response.content == [ThinkingBlock("Six times seven"), TextBlock("42")]
    assert sent(fake_provider).body["thinking"] == {"type": "enabled", "token_budget": 2048}
    cohere(fake_provider).complete(ask(thinking=ThinkingConfig(enabled=False)))
    assert sent(fake_provider).body["thinking"] == {"type": "disabled"}


def test_thinking_is_sent_back_in_the_assistant_turn(fake_provider):
    history = [Message.user("q"), Message.assistant([ThinkingBlock("pondering"), TextBlock("a")]), Message.user("more")]
    cohere(fake_provider).complete(CompletionRequest("m", history))
    assert sent(fake_provider).body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "pondering"}, {"type": "text", "text": "a"}]


def test_usage_counts_the_model_tokens_with_the_cache_inside(fake_provider, call):
    fake_provider.script("p", Reply(usage={"input": 1508, "output": 67, "cache_read": 1472}))
    response = call(cohere(fake_provider), ask())
    assert response.usage == Usage(input_tokens=1508, output_tokens=67, cache_read_tokens=1472)


@pytest.mark.parametrize("reason, expected, raw", [
    ("max_tokens", StopReason.MAX_TOKENS, "MAX_TOKENS"),
    ("stop_sequence", StopReason.STOP_SEQUENCE, "STOP_SEQUENCE"),
    ("refusal", StopReason.END_TURN, "COMPLETE"),  # Cohere has no refusal reason: the refusal is text
])
def test_stop_reasons(fake_provider, call, reason, expected, raw):
    fake_provider.script("p", Reply(stop_reason=reason))
    response = call(cohere(fake_provider), ask())
    assert (response.stop_reason, response.raw_stop_reason) == (expected, raw)


def test_a_generation_that_ended_in_error_raises(fake_provider, call):
    fake_provider.script("p", Reply(stop_reason="content_filter"))  # Cohere says finish_reason ERROR
    with pytest.raises(ServerError) as info:
        call(cohere(fake_provider), ask())
    assert info.value.code == "ERROR" and info.value.provider == "p"


def test_an_error_after_output_interrupts_the_stream_with_its_message(fake_provider):
    fake_provider.script("p", Fault.stream_error_event(4, message="upstream model crashed",
                                                       reply=Reply(text="one two three four five")))
    config = FailoverConfig("p", cohere(fake_provider)).add_fallback(FallbackProvider("b", cohere(fake_provider, "b")))
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in FailoverClient(config).complete_stream(ask()):
            received.append(chunk.text or "")
    assert info.value.partial_text == "".join(received) == "one two"
    assert isinstance(info.value.__cause__, ServerError) and "upstream model crashed" in str(info.value.__cause__)


@pytest.mark.parametrize("fault, error, status, message", [
    (Fault.rate_limit(), RateLimitError, 429, "Trial key"),
    (Fault.context_length(), ContextLengthExceededError, 400, "too many tokens"),
    (Fault.content_filter(), ContentFilteredError, 400, "blocked"),
    (Fault.status(404), ModelNotFoundError, 404, "model 'gpt-4o' not found"),
    (Fault.status(402), QuotaExceededError, 402, "status 402"),
    (Fault.status(498), AuthenticationError, 498, "status 498"),
])
def test_error_mapping(fake_provider, call, fault, error, status, message):
    fake_provider.script("p", fault)
    with pytest.raises(error, match=message) as info:
        call(cohere(fake_provider), ask())
    assert type(info.value) is error and info.value.status == status


def test_the_fake_server_needs_a_bearer_key_and_ends_streams_like_cohere(fake_provider):
    url = fake_provider.base_url("p", "cohere") + "/v2/chat"
    body = {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    unauthenticated = requests.post(url, json=body, timeout=5)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["message"] == "no api key supplied"
    streamed = requests.post(url, json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=5)
    assert streamed.headers["content-type"] == "text/event-stream"
    blocks = streamed.text.strip().split("\n\n")
    assert blocks[0].startswith("event: message-start\n") and blocks[-2].startswith("event: message-end\n")
    assert blocks[-1] == "data: [DONE]"
