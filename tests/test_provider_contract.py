"""The Provider contract for OpenAI Chat Completions and Anthropic Messages, against the fake
server: what is sent on the wire for each request feature, and what comes back for each reply
feature, plain and streamed.  (Each further protocol has a contract module of its own.)"""

import pytest

from failover_client import (
    CompletionRequest,
    ImageBlock,
    Message,
    NotSupportedError,
    Provider,
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
from failover_client.errors import InvalidArgumentError
from failover_client.testing import Reply, ToolCall

from support import WEATHER, ask, make_provider, sent


@pytest.fixture(params=["openai", "anthropic"])
def protocol(request):
    return request.param


def test_text_answer(fake_provider, protocol, call):
    fake_provider.script("p", Reply(text="Hello there, friend"))
    response = call(make_provider(fake_provider, "p", protocol), ask())
    assert response.text == "Hello there, friend"
    assert response.stop_reason is StopReason.END_TURN
    assert response.provider == "p" and response.id and response.model == "gpt-4o"


def test_stream_yields_text_as_it_arrives(fake_provider, protocol):
    fake_provider.script("p", Reply(chunks=["one ", "two ", "three"]))
    texts = [c.text for c in make_provider(fake_provider, "p", protocol).complete_stream(ask(stream=True)) if c.text]
    assert texts == ["one ", "two ", "three"]
    assert sent(fake_provider).stream and sent(fake_provider).body["stream"] is True


def test_openai_stream_asks_for_usage(fake_provider, call):
    fake_provider.script("p", Reply(usage={"input": 7, "output": 3}))
    response = call(make_provider(fake_provider, "p", "openai"), ask())
    assert response.usage.input_tokens == 7 and response.usage.output_tokens == 3
    if sent(fake_provider).stream:
        assert sent(fake_provider).body["stream_options"] == {"include_usage": True}


def test_usage_follows_one_rule_with_cache_and_reasoning(fake_provider, protocol, call):
    usage = {"input": 100, "output": 40, "cache_read": 60, "cache_write": 25, "reasoning": 10}
    if protocol == "openai":
        usage["cache_write"] = 0  # OpenAI reports no cache writes
    fake_provider.script("p", Reply(usage=usage))
    response = call(make_provider(fake_provider, "p", protocol), ask())
    assert response.usage == Usage(input_tokens=100, output_tokens=40, cache_read_tokens=60,
                                   cache_write_tokens=usage["cache_write"],
                                   reasoning_tokens=10 if protocol == "openai" else response.usage.reasoning_tokens)


def test_tool_calls_come_back_parsed(fake_provider, protocol, call):
    fake_provider.script("p", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}),
                                                ToolCall("get_weather", {"city": "Oslo", "units": ["c"]})]))
    response = call(make_provider(fake_provider, "p", protocol), ask(tools=[WEATHER]))
    assert [(c.name, c.input) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo", "units": ["c"]})]
    assert all(c.id for c in response.tool_calls)
    assert response.stop_reason is StopReason.TOOL_USE


def test_tools_and_tool_choice_on_the_wire(fake_provider, protocol):
    provider = make_provider(fake_provider, "p", protocol)
    for choice, openai_wire, anthropic_wire in [
        (ToolChoice.auto(), "auto", {"type": "auto"}),
        (ToolChoice.any(), "required", {"type": "any"}),
        (ToolChoice.none(), "none", {"type": "none"}),
        (ToolChoice.tool("get_weather"), {"type": "function", "function": {"name": "get_weather"}},
         {"type": "tool", "name": "get_weather"}),
    ]:
        provider.complete(ask(tools=[WEATHER], tool_choice=choice))
        body = sent(fake_provider).body
        if protocol == "openai":
            assert body["tool_choice"] == openai_wire
            assert body["tools"] == [{"type": "function", "function": {
                "name": "get_weather", "description": "Current weather", "parameters": WEATHER.input_schema}}]
        else:
            assert body["tool_choice"] == anthropic_wire
            assert body["tools"] == [{"name": "get_weather", "description": "Current weather",
                                      "input_schema": WEATHER.input_schema}]


def test_tool_round_trip_messages(fake_provider, protocol):
    history = [
        Message.user("Weather in Paris?"),
        Message.assistant([TextBlock("Checking."), ToolUseBlock("call_1", "get_weather", {"city": "Paris"})]),
        Message.tool_results([ToolResultBlock("call_1", "18C, cloudy")]),
    ]
    make_provider(fake_provider, "p", protocol).complete(CompletionRequest("gpt-4o", history, tools=[WEATHER]))
    messages = sent(fake_provider).body["messages"]
    if protocol == "openai":
        assert messages[1]["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Paris"}'}}]
        assert messages[1]["content"] == "Checking."
        assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"}
    else:
        assert messages[1]["content"][1] == {"type": "tool_use", "id": "call_1", "name": "get_weather",
                                             "input": {"city": "Paris"}}
        assert messages[2] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, cloudy"}]}


def test_images_inline_and_by_url(fake_provider, protocol):
    message = Message.user([TextBlock("What is this?"), ImageBlock.from_base64("iVBORw0K", "image/png"),
                            ImageBlock.from_url("https://example.com/cat.jpg")])
    make_provider(fake_provider, "p", protocol).complete(CompletionRequest("gpt-4o", [message]))
    parts = sent(fake_provider).body["messages"][0]["content"]
    if protocol == "openai":
        assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}
        assert parts[2] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    else:
        assert parts[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                        "data": "iVBORw0K"}}
        assert parts[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


def test_system_sampling_and_stop_sequences(fake_provider, protocol):
    make_provider(fake_provider, "p", protocol).complete(
        ask(system="Be terse.", temperature=0.3, top_p=0.8, stop_sequences=["END"], max_tokens=50))
    body = sent(fake_provider).body
    assert body["temperature"] == 0.3 and body["top_p"] == 0.8
    if protocol == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Be terse."}
        assert body["stop"] == ["END"] and body["max_tokens"] == 50
    else:
        assert body["system"] == "Be terse." and body["stop_sequences"] == ["END"] and body["max_tokens"] == 50


def test_extra_is_merged_into_the_wire_body(fake_provider, protocol):
    make_provider(fake_provider, "p", protocol).complete(ask(extra={"seed": 7, "vendor_flag": {"x": 1}}))
    body = sent(fake_provider).body
    assert body["seed"] == 7 and body["vendor_flag"] == {"x": 1}


def test_openai_reasoning_models_get_max_completion_tokens_and_effort(fake_provider):
    provider = make_provider(fake_provider, "p", "openai")
    provider.complete(ask(model="o3-mini", max_tokens=500, thinking=ThinkingConfig(effort="high")))
    body = sent(fake_provider).body
    assert body["max_completion_tokens"] == 500 and "max_tokens" not in body
    assert body["reasoning_effort"] == "high"
    provider.complete(ask(model="gpt-4o", max_tokens=500))
    assert sent(fake_provider).body["max_tokens"] == 500


def test_json_mode_and_schema(fake_provider, protocol):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    provider = make_provider(fake_provider, "p", protocol)
    provider.complete(ask(response_format=ResponseFormat.json_schema(schema, name="person")))
    body = sent(fake_provider).body
    if protocol == "openai":
        assert body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "person", "schema": schema, "strict": True}}
        provider.complete(ask(response_format=ResponseFormat.json()))
        assert sent(fake_provider).body["response_format"] == {"type": "json_object"}
    else:
        assert body["output_config"]["format"] == {"type": "json_schema", "schema": schema}
        requests_before = len(fake_provider.requests)
        with pytest.raises(NotSupportedError, match="json_schema"):
            provider.complete(ask(response_format=ResponseFormat.json()))
        assert len(fake_provider.requests) == requests_before


def test_anthropic_thinking_budget_caching_and_signatures(fake_provider, call):
    fake_provider.script("p", Reply(text="42", thinking="Let me think", signature="c2lnbmF0dXJl"))
    request = CompletionRequest(
        "claude-sonnet-4-5",
        [Message.user([TextBlock("long document", cache=True), TextBlock("question")])],
        system=[TextBlock("You are exact.", cache=True)],
        tools=[ToolDefinition("f", "", cache=True)], thinking=ThinkingConfig(budget_tokens=2048), max_tokens=4096)
    response = call(make_provider(fake_provider, "p", "anthropic"), request)
    assert response.content[0] == ThinkingBlock("Let me think", "c2lnbmF0dXJl")
    assert response.text == "42"
    body = sent(fake_provider).body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["system"] == [{"type": "text", "text": "You are exact.", "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["messages"][0]["content"][1]
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent(fake_provider).headers["anthropic-version"] == "2023-06-01"


def test_anthropic_thinking_blocks_are_sent_back_unchanged(fake_provider):
    history = [Message.user("q"), Message.assistant([ThinkingBlock("t", "sig"), ThinkingBlock("", redacted_data="R"),
                                                     ToolUseBlock("c1", "f", {})]),
               Message.tool_results([ToolResultBlock("c1", "ok")])]
    make_provider(fake_provider, "p", "anthropic").complete(CompletionRequest("m", history))
    assert sent(fake_provider).body["messages"][1]["content"][:2] == [
        {"type": "thinking", "thinking": "t", "signature": "sig"}, {"type": "redacted_thinking", "data": "R"}]


def test_anthropic_rejects_a_thinking_budget_above_max_tokens_before_sending(fake_provider):
    with pytest.raises(InvalidArgumentError, match="budget_tokens"):
        make_provider(fake_provider, "p", "anthropic").complete(
            ask(max_tokens=1000, thinking=ThinkingConfig(budget_tokens=2000)))
    assert fake_provider.requests == []


def test_refusal(fake_provider, protocol, call):
    fake_provider.script("p", Reply(refusal="I can't help with that."))
    response = call(make_provider(fake_provider, "p", protocol), ask())
    assert response.stop_reason is StopReason.REFUSAL
    if protocol == "openai":
        assert response.refusal == "I can't help with that."


@pytest.mark.parametrize("wire, reason, expected", [
    ("openai", "max_tokens", StopReason.MAX_TOKENS),
    ("openai", "stop_sequence", StopReason.END_TURN),  # OpenAI reports a stop sequence as plain "stop"
    ("openai", "content_filter", StopReason.CONTENT_FILTER),
    ("anthropic", "max_tokens", StopReason.MAX_TOKENS),
    ("anthropic", "stop_sequence", StopReason.STOP_SEQUENCE),
])
def test_stop_reasons(fake_provider, call, wire, reason, expected):
    fake_provider.script("p", Reply(stop_reason=reason))
    assert call(make_provider(fake_provider, "p", wire), ask()).stop_reason is expected


def test_unsupported_operations_say_so():
    """A provider without token counting or a Batch API (the base class) says so; OpenAI's and
    Anthropic's have both (tests/test_tokens.py, tests/test_batch_api.py)."""
    provider = Provider()
    for operation in (lambda: provider.create_batch([]), lambda: provider.get_batch("b"),
                      lambda: provider.list_batches(), lambda: provider.cancel_batch("b"),
                      lambda: provider.get_batch_results("b"), lambda: provider.count_tokens(ask())):
        with pytest.raises(NotSupportedError):
            operation()
