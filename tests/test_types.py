"""The neutral types: exact JSON round trips, helpers, validation, folding a stream."""

import json
import pickle

import pytest

from failover_client import (
    Attempt,
    CompletionRequest,
    CompletionResponse,
    ImageBlock,
    InvalidArgumentError,
    Message,
    ResponseFormat,
    Role,
    StopReason,
    StreamChunk,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    ToolCallDelta,
    ToolChoice,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    collect,
)

FULL_REQUEST = CompletionRequest(
    model="gpt-4o",
    system=[TextBlock("Be terse.", cache=True)],
    messages=[
        Message.user([TextBlock("What is here?"), ImageBlock.from_base64("aGk=", "image/png"),
                      ImageBlock.from_url("https://example.com/a.png")]),
        Message.assistant([ThinkingBlock("hmm", signature="sig=="), ThinkingBlock("", redacted_data="opaque"),
                           TextBlock("Let me look."), ToolUseBlock("call_1", "lookup", {"q": "cat", "n": [1, 2]})]),
        Message.tool_results([ToolResultBlock("call_1", "a cat"),
                              ToolResultBlock("call_2", [TextBlock("x"), ImageBlock(url="https://e/b.png")],
                                              is_error=True)]),
    ],
    max_tokens=300, temperature=0.2, top_p=0.9, stop_sequences=["END"],
    tools=[ToolDefinition("lookup", "Look things up", {"type": "object", "properties": {"q": {"type": "string"}}},
                          strict=True, cache=True)],
    tool_choice=ToolChoice.tool("lookup"), stream=True,
    thinking=ThinkingConfig(budget_tokens=2048), response_format=ResponseFormat.json_schema({"type": "object"}),
    metadata={"user_id": "u1"}, extra={"seed": 7, "logit_bias": {"50256": -100}},
)


def test_request_round_trips_exactly_through_json():
    text = FULL_REQUEST.to_json()
    again = CompletionRequest.from_json(text)
    assert again == FULL_REQUEST
    assert isinstance(again.messages[0].role, Role)
    assert isinstance(again.messages[1].content[3], ToolUseBlock)
    assert isinstance(again.messages[2].content[1].content[1], ImageBlock)
    assert again.to_json() == text


def test_response_and_chunk_round_trip():
    response = CompletionResponse(
        id="msg_1", model="m", content=[ThinkingBlock("t", "s"), TextBlock("hi"), ToolUseBlock("c", "f", {"a": 1})],
        stop_reason=StopReason.TOOL_USE, usage=Usage(10, 5, 3, 2, 1), provider="p", raw_stop_reason="tool_use",
        attempts=[Attempt("p", "m", "error", 1.5, "RateLimitError", "slow down", 429), Attempt("q", "m", "ok", 2.0)],
    )
    assert CompletionResponse.from_json(response.to_json()) == response
    chunk = StreamChunk(tool_call=ToolCallDelta(0, "c", "f", '{"a'), usage=Usage(1, 2), stop_reason=StopReason.OTHER)
    assert StreamChunk.from_json(chunk.to_json()) == chunk
    assert json.loads(response.to_json())["stop_reason"] == "tool_use"


def test_types_pickle():
    assert pickle.loads(pickle.dumps(FULL_REQUEST)) == FULL_REQUEST


def test_response_helpers():
    response = CompletionResponse(id="1", model="m", content=[
        ThinkingBlock("a"), ThinkingBlock("b"), TextBlock("x"), ToolUseBlock("1", "f", {}), TextBlock("y")])
    assert response.text == "xy"
    assert response.thinking == "ab"
    assert [c.name for c in response.tool_calls] == ["f"]
    assert response.to_message().role is Role.ASSISTANT
    assert Usage(10, 4).total_tokens == 14


def test_collect_folds_text_thinking_tools_and_usage():
    chunks = [
        StreamChunk(id="r1", model="m"),
        StreamChunk(thinking="th"), StreamChunk(thinking="ink"), StreamChunk(signature="sig"),
        StreamChunk(text="Hel"), StreamChunk(text="lo"),
        StreamChunk(tool_call=ToolCallDelta(1, "call_a", "get")),
        StreamChunk(tool_call=ToolCallDelta(1, arguments='{"c')),
        StreamChunk(tool_call=ToolCallDelta(1, arguments='ity": "Paris"}')),
        StreamChunk(tool_call=ToolCallDelta(2, "call_b", "noargs")),
        StreamChunk(stop_reason=StopReason.TOOL_USE, raw_stop_reason="tool_calls", usage=Usage(3, 4)),
    ]
    response = collect(chunks)
    assert response.id == "r1" and response.model == "m"
    assert response.content == [ThinkingBlock("think", "sig"), TextBlock("Hello"),
                                ToolUseBlock("call_a", "get", {"city": "Paris"}), ToolUseBlock("call_b", "noargs", {})]
    assert response.stop_reason is StopReason.TOOL_USE and response.raw_stop_reason == "tool_calls"
    assert response.usage == Usage(3, 4)


@pytest.mark.parametrize("change, field", [
    ({"model": ""}, "model"),
    ({"messages": []}, "messages"),
    ({"messages": ["hi"]}, "messages[0]"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"temperature": 3.0}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"tool_choice": ToolChoice("tool")}, "ToolChoice"),
    ({"tool_choice": ToolChoice("sometimes")}, "ToolChoice.mode"),
    ({"response_format": ResponseFormat("json_schema")}, "json_schema"),
    ({"extra": ["x"]}, "extra"),
])
def test_validation_names_the_bad_field(change, field):
    from dataclasses import replace

    request = replace(CompletionRequest("m", [Message.user("hi")]), **change)
    with pytest.raises(InvalidArgumentError, match=field.replace("[", r"\[").replace("]", r"\]")) as info:
        request.validate()
    assert isinstance(info.value, ValueError)


def test_image_data_url():
    assert ImageBlock.from_base64("QUJD", "image/jpeg").data_url() == "data:image/jpeg;base64,QUJD"
    assert ImageBlock.from_url("https://x/y.png").data_url() == "https://x/y.png"


def test_collect_keeps_block_order_and_separate_signed_thinking_blocks():
    chunks = [
        StreamChunk(thinking="first"), StreamChunk(signature="s1"),
        StreamChunk(tool_call=ToolCallDelta(1, "t1", "look")),
        StreamChunk(redacted_thinking="opaque"),
        StreamChunk(thinking="second"), StreamChunk(signature="s2"),
        StreamChunk(text="done"),
    ]
    assert collect(chunks).content == [
        ThinkingBlock("first", "s1"), ToolUseBlock("t1", "look", {}), ThinkingBlock("", redacted_data="opaque"),
        ThinkingBlock("second", "s2"), TextBlock("done")]
