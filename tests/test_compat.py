"""OpenAI- and Anthropic-shaped bodies in, OpenAI-shaped answers out (failover_client.compat).

The reference is the official SDKs themselves: each body is built with the SDK's typed params and
sent twice to the fake server, once by the SDK's own client and once through
``CompletionRequest.from_openai``/``from_anthropic`` and our provider; the two wire bodies must be
equal.  Where our request has one way of saying what the vendor's body says two ways (a stop
string is a one-item list, a developer message is the system prompt...), the shape names the
difference explicitly, so every other key is still compared.  Answers go the other way: our
``to_openai()`` and ``openai_chunks`` output must parse with the openai SDK's own types and
carry what the SDK read from the same server.
"""

import inspect
import json
from dataclasses import dataclass
from typing import Any, Callable

import anthropic
import openai
import pytest
from anthropic.types import (
    AssistantMessageParam,
    Base64ImageSourceParam,
    CacheControlEphemeralParam,
    ImageBlockParam,
    JSONOutputFormatParam,
    OutputConfigParam,
    RedactedThinkingBlockParam,
    TextBlockParam,
    ThinkingBlockParam,
    ThinkingConfigAdaptiveParam,
    ThinkingConfigDisabledParam,
    ThinkingConfigEnabledParam,
    ToolChoiceAnyParam,
    ToolChoiceAutoParam,
    ToolChoiceToolParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
    URLImageSourceParam,
    UserMessageParam,
)
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionDeveloperMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionNamedToolChoiceParam,
    ChatCompletionStreamOptionsParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.shared_params import FunctionDefinition, ResponseFormatJSONObject, ResponseFormatJSONSchema

from failover_client import CompletionRequest, InvalidArgumentError, StopReason, StreamChunk, ToolCallDelta, collect
from failover_client.compat import openai_chunks
from failover_client.providers import AnthropicProvider, OpenAIProvider
from failover_client.testing import FakeProviderServer, Reply, ToolCall

KEY = "sk-test-key-0123456789"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def server():
    with FakeProviderServer() as running:
        yield running


@dataclass
class Shape:
    """A request body, and the difference (if any) our wire body has from the SDK's."""

    name: str
    body: dict[str, Any]
    differs: Callable[[dict[str, Any]], dict[str, Any]] = lambda body: body


# --- OpenAI chat completions -----------------------------------------------------------------

def user(content):
    return ChatCompletionUserMessageParam(role="user", content=content)


def system(content):
    return ChatCompletionSystemMessageParam(role="system", content=content)


def text_part(text):
    return ChatCompletionContentPartTextParam(type="text", text=text)


def image_part(url):
    return ChatCompletionContentPartImageParam(type="image_url", image_url={"url": url})


def function_tool(name, description="", parameters=None, **more):
    function = FunctionDefinition(name=name, parameters=parameters or {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, **more)
    if description:
        function["description"] = description
    return ChatCompletionFunctionToolParam(type="function", function=function)


def tool_call(call_id, name, arguments):
    return ChatCompletionMessageFunctionToolCallParam(
        id=call_id, type="function", function={"name": name, "arguments": json.dumps(arguments)})


WEATHER_TOOL = function_tool("get_weather", "Current weather in a city")
TIME_TOOL = function_tool("get_time", "Local time in a city")
TOOL_TURNS = [
    user("Weather and time in Paris?"),
    ChatCompletionAssistantMessageParam(role="assistant", content=None, tool_calls=[
        tool_call("call_1", "get_weather", {"city": "Paris"}), tool_call("call_2", "get_time", {"city": "Paris"})]),
    ChatCompletionToolMessageParam(role="tool", tool_call_id="call_1", content="18C, sunny"),
    ChatCompletionToolMessageParam(role="tool", tool_call_id="call_2", content="14:05"),
]


def openai_body(*messages, model="gpt-4o", **fields):
    return {"model": model, "messages": list(messages), **fields}


OPENAI_SHAPES = [
    Shape("plain", openai_body(user("Hello"))),
    Shape("system", openai_body(system("Be terse."), user("Hello"))),
    Shape("multi_turn", openai_body(
        system("Be terse."), user("Hi"), ChatCompletionAssistantMessageParam(role="assistant", content="Hello!"),
        user("How are you?"))),
    Shape("image_url", openai_body(user([text_part("What is this?"), image_part("https://example.com/cat.png")]))),
    Shape("image_data_uri", openai_body(user([image_part(f"data:image/png;base64,{PNG}"), text_part("Describe.")]))),
    Shape("tools_auto", openai_body(user("Weather in Paris?"), tools=[WEATHER_TOOL], tool_choice="auto")),
    Shape("tools_required", openai_body(user("Weather?"), tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required")),
    Shape("tools_none", openai_body(user("Just chat."), tools=[WEATHER_TOOL], tool_choice="none")),
    Shape("named_tool", openai_body(user("Weather?"), tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=(
        ChatCompletionNamedToolChoiceParam(type="function", function={"name": "get_time"})))),
    Shape("strict_tool_no_parallel", openai_body(
        user("Weather?"), tools=[function_tool("get_weather", "Weather", strict=True)], tool_choice="auto",
        parallel_tool_calls=False)),
    Shape("multi_turn_tool_use", openai_body(*TOOL_TURNS, tools=[WEATHER_TOOL, TIME_TOOL])),
    Shape("tool_use_then_user", openai_body(*TOOL_TURNS, ChatCompletionAssistantMessageParam(
        role="assistant", content="18C and 14:05.", tool_calls=[tool_call("call_3", "get_weather", {"city": "Nice"})]),
        ChatCompletionToolMessageParam(role="tool", tool_call_id="call_3", content="21C"), user("Thanks"),
        tools=[WEATHER_TOOL, TIME_TOOL])),
    Shape("sampling", openai_body(user("Hi"), max_tokens=64, temperature=0.3, top_p=0.9)),
    Shape("stop_list", openai_body(user("Count"), stop=["\n\n", "END"])),
    Shape("json_object", openai_body(system("Answer in JSON."), user("List 2 colours"),
                                     response_format=ResponseFormatJSONObject(type="json_object"))),
    Shape("json_schema", openai_body(user("A colour"), response_format=ResponseFormatJSONSchema(
        type="json_schema", json_schema={"name": "colour", "strict": True, "schema": {
            "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
            "additionalProperties": False}}))),
    Shape("reasoning", openai_body(user("Prove it."), model="o3-mini", max_completion_tokens=500,
                                   reasoning_effort="high")),
    Shape("metadata_and_vendor_options", openai_body(
        user("Hi"), metadata={"ticket": "T-1"}, seed=7, user="u-42", frequency_penalty=0.5, presence_penalty=0.1,
        logit_bias={"50256": -100}, service_tier="flex")),
    Shape("stream", openai_body(user("Hello"), stream=True,
                                stream_options=ChatCompletionStreamOptionsParam(include_usage=True))),
    # the same request said another way: our wire says it the one way we have
    Shape("developer_message", openai_body(
        ChatCompletionDeveloperMessageParam(role="developer", content="Be terse."), user("Hi")),
        lambda body: {**body, "messages": [{"role": "system", "content": "Be terse."}, *body["messages"][1:]]}),
    Shape("two_system_messages", openai_body(system("Be terse."), system("Answer in French."), user("Hi")),
          lambda body: {**body, "messages": [{"role": "system", "content": "Be terse.\n\nAnswer in French."},
                                             *body["messages"][2:]]}),
    Shape("stop_string", openai_body(user("Count"), stop="END"), lambda body: {**body, "stop": ["END"]}),
    Shape("one_text_part", openai_body(user([text_part("Hello")])),
          lambda body: {**body, "messages": [{"role": "user", "content": "Hello"}]}),
    Shape("tool_without_description", openai_body(user("Weather?"), tools=[function_tool("get_weather")]),
          lambda body: {**body, "tools": [{**body["tools"][0], "function": {
              **body["tools"][0]["function"], "description": ""}}]}),
    Shape("max_completion_tokens_on_gpt_4o", openai_body(user("Hi"), max_completion_tokens=64),
          lambda body: {**{k: v for k, v in body.items() if k != "max_completion_tokens"}, "max_tokens": 64}),
    Shape("no_parallel_without_choice", openai_body(user("Weather?"), tools=[WEATHER_TOOL], parallel_tool_calls=False),
          lambda body: {**body, "tool_choice": "auto"}),
    Shape("text_format", openai_body(user("Hi"), response_format={"type": "text"}),
          lambda body: {k: v for k, v in body.items() if k != "response_format"}),
]


def sdk_openai_body(server, body):
    client = openai.OpenAI(api_key=KEY, base_url=server.base_url("sdk", "openai"), max_retries=0)
    with client:
        answer = client.chat.completions.create(**body)
        if body.get("stream"):
            list(answer)
    return server.requests[-1].body


def our_wire_body(server, request, provider_class, protocol):
    with provider_class(api_key=KEY, base_url=server.base_url("ours", protocol), name="ours") as provider:
        if request.stream:
            collect(provider.complete_stream(request))
        else:
            provider.complete(request)
    return server.requests[-1].body


def test_an_openai_body_maps_to_the_neutral_fields():
    request = CompletionRequest.from_openai(openai_body(
        ChatCompletionDeveloperMessageParam(role="developer", content="Be terse."), *TOOL_TURNS,
        user([image_part(f"data:image/png;base64,{PNG}")]), stop="END", seed=3, reasoning_effort="low",
        tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=False))
    assert request.system == "Be terse."
    assert [m.role.value for m in request.messages] == ["user", "assistant", "user", "user"]
    assert [b.input for b in request.messages[1].content] == [{"city": "Paris"}, {"city": "Paris"}]
    assert [(b.tool_use_id, b.content) for b in request.messages[2].content] == [
        ("call_1", "18C, sunny"), ("call_2", "14:05")]
    image = request.messages[3].content[0]
    assert (image.media_type, image.data, image.url) == ("image/png", PNG, None)
    assert request.stop_sequences == ["END"] and request.extra == {"seed": 3}
    assert request.thinking.effort == "low"
    assert (request.tool_choice.mode, request.tool_choice.disable_parallel) == ("any", True)
    assert request.tools[0].input_schema["required"] == ["city"]


# --- Anthropic Messages ----------------------------------------------------------------------

def said(role, *blocks):
    turn = UserMessageParam if role == "user" else AssistantMessageParam
    return turn(role=role, content=list(blocks))


def text(value, **more):
    return TextBlockParam(type="text", text=value, **more)


EPHEMERAL = CacheControlEphemeralParam(type="ephemeral")
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CLAUDE_WEATHER = ToolParam(name="get_weather", description="Current weather in a city", input_schema=CITY_SCHEMA)
CLAUDE_TIME = ToolParam(name="get_time", description="Local time in a city", input_schema=CITY_SCHEMA)
CLAUDE_TOOL_TURNS = [
    said("user", text("Weather and time in Paris?")),
    said("assistant", text("Checking."), ToolUseBlockParam(type="tool_use", id="toolu_1", name="get_weather",
                                                           input={"city": "Paris"}),
         ToolUseBlockParam(type="tool_use", id="toolu_2", name="get_time", input={"city": "Paris"})),
    said("user", ToolResultBlockParam(type="tool_result", tool_use_id="toolu_1", content="18C, sunny"),
         ToolResultBlockParam(type="tool_result", tool_use_id="toolu_2", is_error=True,
                              content=[text("clock unavailable")])),
]


def anthropic_body(*messages, model="claude-sonnet-4-5", max_tokens=256, **fields):
    return {"model": model, "max_tokens": max_tokens, "messages": list(messages), **fields}


ANTHROPIC_SHAPES = [
    Shape("plain", anthropic_body(said("user", text("Hello")))),
    Shape("system_string", anthropic_body(said("user", text("Hello")), system="Be terse.")),
    Shape("system_blocks_cached", anthropic_body(
        said("user", text("Hello")), system=[text("You are a librarian."), text("Long catalogue...",
                                                                                 cache_control=EPHEMERAL)])),
    Shape("image_base64", anthropic_body(said("user", ImageBlockParam(
        type="image", source=Base64ImageSourceParam(type="base64", media_type="image/png", data=PNG)),
        text("What is this?")))),
    Shape("image_url", anthropic_body(said("user", text("And this?"), ImageBlockParam(
        type="image", source=URLImageSourceParam(type="url", url="https://example.com/cat.png"))))),
    Shape("tools_auto", anthropic_body(said("user", text("Weather?")), tools=[CLAUDE_WEATHER],
                                       tool_choice=ToolChoiceAutoParam(type="auto"))),
    Shape("tools_any_cached", anthropic_body(said("user", text("Weather?")), tools=[
        CLAUDE_TIME, ToolParam(name="get_weather", description="Weather", input_schema=CITY_SCHEMA, strict=True,
                               cache_control=EPHEMERAL)], tool_choice=ToolChoiceAnyParam(type="any"))),
    Shape("named_tool_no_parallel", anthropic_body(
        said("user", text("Weather?")), tools=[CLAUDE_WEATHER, CLAUDE_TIME],
        tool_choice=ToolChoiceToolParam(type="tool", name="get_time", disable_parallel_tool_use=True))),
    Shape("multi_turn_tool_use", anthropic_body(*CLAUDE_TOOL_TURNS, tools=[CLAUDE_WEATHER, CLAUDE_TIME])),
    Shape("thinking_in_a_tool_loop", anthropic_body(
        said("user", text("Weather?")),
        said("assistant", ThinkingBlockParam(type="thinking", thinking="I should call the tool.", signature="c2ln"),
             RedactedThinkingBlockParam(type="redacted_thinking", data="b3BhcXVl"),
             ToolUseBlockParam(type="tool_use", id="toolu_1", name="get_weather", input={"city": "Paris"})),
        said("user", ToolResultBlockParam(type="tool_result", tool_use_id="toolu_1", content="18C",
                                          cache_control=EPHEMERAL)),
        max_tokens=4096, tools=[CLAUDE_WEATHER],
        thinking=ThinkingConfigEnabledParam(type="enabled", budget_tokens=2048))),
    Shape("adaptive_thinking_with_effort", anthropic_body(
        said("user", text("Prove it.")), thinking=ThinkingConfigAdaptiveParam(type="adaptive"),
        output_config=OutputConfigParam(effort="high"))),
    Shape("thinking_disabled", anthropic_body(said("user", text("Hi")),
                                              thinking=ThinkingConfigDisabledParam(type="disabled"))),
    Shape("json_schema_output", anthropic_body(said("user", text("A colour")), output_config=OutputConfigParam(
        format=JSONOutputFormatParam(type="json_schema", schema={
            "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})))),
    Shape("sampling_stop_metadata_top_k", anthropic_body(
        said("user", text("Count")), temperature=0.2, top_p=0.9, stop_sequences=["END", "\n\n"],
        metadata={"user_id": "u-42"}, top_k=5)),
    Shape("cached_user_text", anthropic_body(said("user", text("A long document...", cache_control=EPHEMERAL),
                                                  text("Summarise it.")))),
    Shape("stream", anthropic_body(said("user", text("Hello")), stream=True)),
    # the same request said another way: our wire says it the one way we have
    Shape("string_content", anthropic_body(UserMessageParam(role="user", content="Hello")),
          lambda body: {**body, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]}),
    Shape("tool_without_description", anthropic_body(
        said("user", text("Weather?")), tools=[ToolParam(name="get_weather", input_schema=CITY_SCHEMA)]),
        lambda body: {**body, "tools": [{**body["tools"][0], "description": ""}]}),
    Shape("five_minute_ttl", anthropic_body(said("user", text("Doc", cache_control=CacheControlEphemeralParam(
        type="ephemeral", ttl="5m")))),
        lambda body: {**body, "messages": [said("user", text("Doc", cache_control=EPHEMERAL))]}),
]


def sdk_anthropic_body(server, body):
    """What the anthropic SDK sends.  Sampling options its ``create`` no longer names
    (temperature, top_p, top_k) go through its ``extra_body``, merged into the same body."""
    named = inspect.signature(anthropic.resources.Messages.create).parameters
    params = {key: value for key, value in body.items() if key in named}
    extra_body = {key: value for key, value in body.items() if key not in named}
    client = anthropic.Anthropic(api_key=KEY, base_url=server.base_url("sdk", "anthropic"), max_retries=0)
    with client:
        answer = client.messages.create(**params, extra_body=extra_body or None)
        if body.get("stream"):
            list(answer)
    return server.requests[-1].body


VENDORS = {  # the SDK's way of sending a body, our way of reading it, our provider for that wire
    "openai": (sdk_openai_body, CompletionRequest.from_openai, OpenAIProvider),
    "anthropic": (sdk_anthropic_body, CompletionRequest.from_anthropic, AnthropicProvider),
}


@pytest.mark.parametrize("vendor, shape", [("openai", shape) for shape in OPENAI_SHAPES] + [
    ("anthropic", shape) for shape in ANTHROPIC_SHAPES], ids=lambda value: getattr(value, "name", value))
def test_a_vendor_body_goes_out_as_the_vendor_sdk_sends_it(server, vendor, shape):
    sdk_send, read, provider_class = VENDORS[vendor]
    expected = shape.differs(sdk_send(server, shape.body))
    assert our_wire_body(server, read(shape.body), provider_class, vendor) == expected


def test_an_anthropic_body_can_be_served_by_an_openai_provider(server):
    """The point of a neutral request: a Messages body from an existing codebase fails over to
    an OpenAI-style host, tool loop and system blocks included."""
    request = CompletionRequest.from_anthropic(anthropic_body(
        *CLAUDE_TOOL_TURNS, system=[text("Be terse.", cache_control=EPHEMERAL)], tools=[CLAUDE_WEATHER]))
    body = our_wire_body(server, request, OpenAIProvider, "openai")
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "tool"]
    assert body["messages"][0]["content"] == "Be terse."
    assert body["messages"][2]["tool_calls"][1]["function"] == {"name": "get_time", "arguments": '{"city": "Paris"}'}
    assert body["messages"][4] == {"role": "tool", "tool_call_id": "toolu_2", "content": "clock unavailable"}


# --- what is refused, by name ----------------------------------------------------------------

@pytest.mark.parametrize("body, named", [
    ("not a body", "body: expected an object"),
    ({"messages": []}, "'model' is missing"),
    (openai_body(user("Hi"), n=2), "n: only one choice"),
    (openai_body(user("Hi"), logprobs=True), "logprobs: not supported"),
    (openai_body(user("Hi"), functions=[{"name": "f"}]), "functions: not supported (use tools)"),
    (openai_body(user("Hi"), frobnicate=1), "frobnicate: unknown or unsupported"),
    (openai_body(user("Hi"), system("late")), r"messages[1]: a system message after"),
    (openai_body({"role": "function", "name": "f", "content": "x"}), "messages[0].role: 'function'"),
    (openai_body(user("Hi"), name="bob"), "name: unknown or unsupported"),
    (openai_body({"role": "user", "content": "Hi", "name": "bob"}), "messages[0]: unsupported field(s) name"),
    (openai_body(user([{"type": "image_url", "image_url": {"url": "https://e/x.png", "detail": "low"}}])),
     "messages[0].content[0].image_url.detail: 'low' has no neutral form"),
    (openai_body(user([{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}])),
     "messages[0].content[0]: content part type 'input_audio'"),
    (openai_body(user([image_part("data:image/png,raw")])), "must be data:<media type>;base64"),
    (openai_body(user("Hi"), {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}),
     "messages[1].tool_calls[0].function.arguments: not JSON"),
    (openai_body(user("Hi"), {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}), "must be a JSON object"),
    (openai_body(user("Hi"), {"role": "tool", "content": "x"}), "messages[1]: 'tool_call_id' is missing"),
    (openai_body(user("Hi"), tool_choice="sometimes"), "tool_choice: 'sometimes' is not one of"),
    (openai_body(user("Hi"), temperature=5), "temperature must be a number in"),
    ({"model": "gpt-4o", "messages": "Hi"}, "messages: expected a list, got 'Hi'"),
])
def test_an_openai_body_we_cannot_honour_is_refused_naming_the_field(body, named):
    with pytest.raises(InvalidArgumentError) as info:
        CompletionRequest.from_openai(body)
    assert named in str(info.value)


@pytest.mark.parametrize("body, named", [
    (anthropic_body(said("user", text("Hi")), container="c1"), "body: unsupported field(s) container"),
    (anthropic_body(said("user", {"type": "document", "source": {}})),
     "messages[0].content[0].type: block type 'document'"),
    (anthropic_body(said("user", text("Hi")), tools=[{"type": "web_search_20250305", "name": "web_search"}]),
     "tools[0].type: server tool 'web_search_20250305'"),
    (anthropic_body(said("user", text("Hi", cache_control={"type": "ephemeral", "ttl": "1h"}))),
     "messages[0].content[0].cache_control"),
    (anthropic_body(said("user", text("Hi")), output_config={"effort": "high"}), "output_config.effort"),
    (anthropic_body({"role": "system", "content": "x"}), "messages[0].role: 'system'"),
    (anthropic_body(said("user", text("Hi")), thinking={"type": "enabled"}), "thinking: 'budget_tokens' is missing"),
    (anthropic_body(said("user", ToolResultBlockParam(type="tool_result", tool_use_id="t", content=[
        ToolUseBlockParam(type="tool_use", id="x", name="f", input={})]))), "a tool result holds only text and image"),
    (anthropic_body(said("user", text("Hi")), max_tokens=0), "max_tokens must be a positive int"),
])
def test_an_anthropic_body_we_cannot_honour_is_refused_naming_the_field(body, named):
    with pytest.raises(InvalidArgumentError) as info:
        CompletionRequest.from_anthropic(body)
    assert named in str(info.value)


def test_vendor_options_travel_in_extra():
    request = CompletionRequest.from_anthropic(anthropic_body(said("user", text("Hi")), top_k=3,
                                                              service_tier="standard_only"))
    assert request.extra == {"top_k": 3, "service_tier": "standard_only"}


# --- answers out, in OpenAI's format ---------------------------------------------------------

ANSWERS = {
    "text": Reply("Sunny all day.", usage={"input": 21, "output": 4, "cache_read": 5}),
    "tool_call": Reply("Let me check.", tool_calls=[
        ToolCall("get_weather", {"city": "Paris"}, id="call_w1"),
        ToolCall("get_time", {"city": "Paris"}, id="call_t1")]),
    "max_tokens": Reply("Cut", stop_reason="max_tokens"),
}


def sdk_answer(server, reply, stream):
    """What the openai SDK reads from the fake server for one scripted reply."""
    server.script("sdk", reply)
    with openai.OpenAI(api_key=KEY, base_url=server.base_url("sdk", "openai"), max_retries=0) as client:
        if stream:
            return list(client.chat.completions.create(model="gpt-4o", messages=[user("Hi")], stream=True,
                                                       stream_options={"include_usage": True}))
        return client.chat.completions.create(model="gpt-4o", messages=[user("Hi")])


def our_answer(server, reply, protocol, stream):
    server.script("ours", reply)
    provider_class = OpenAIProvider if protocol == "openai" else AnthropicProvider
    request = CompletionRequest.from_openai(openai_body(user("Hi")))
    with provider_class(api_key=KEY, base_url=server.base_url("ours", protocol), name="ours") as provider:
        return list(provider.complete_stream(request)) if stream else provider.complete(request)


def essentials(completion):
    """What an app relaying the format reads: text, tool calls, finish reason, token counts."""
    choice = completion.choices[0]
    calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or ()]
    usage = completion.usage
    return (choice.message.content, calls, choice.finish_reason,
            (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens))


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_to_openai_parses_as_the_sdk_type_and_equals_what_the_sdk_read(server, answer):
    expected = sdk_answer(server, ANSWERS[answer], stream=False)
    ours = ChatCompletion.model_validate(our_answer(server, ANSWERS[answer], "openai", stream=False).to_openai())
    assert essentials(ours) == essentials(expected)
    assert ours.object == "chat.completion" and ours.model == expected.model


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_an_anthropic_answer_relays_as_the_same_chat_completion(server, answer):
    expected = sdk_answer(server, ANSWERS[answer], stream=False)
    ours = ChatCompletion.model_validate(our_answer(server, ANSWERS[answer], "anthropic", stream=False).to_openai())
    assert essentials(ours)[:3] == essentials(expected)[:3]
    assert ours.usage.completion_tokens == expected.usage.completion_tokens


def fold(chunks):
    """Chat-completion chunks folded the way OpenAI's own clients do, into essentials()."""
    text, calls, finish, usage = [], {}, None, None
    for chunk in chunks:
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens)
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or ():
                slot = calls.setdefault(call.index, [None, None, ""])
                slot[0] = call.id or slot[0]
                slot[1] = (call.function.name if call.function else None) or slot[1]
                slot[2] += (call.function.arguments if call.function else None) or ""
    tools = [(call_id, name, json.loads(arguments)) for _, (call_id, name, arguments) in sorted(calls.items())]
    return "".join(text) or None, tools, finish, usage


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_openai_chunks_parse_as_the_sdk_type_and_fold_to_what_the_sdk_streamed(server, protocol, answer):
    expected = fold(sdk_answer(server, ANSWERS[answer], stream=True))
    ours = [ChatCompletionChunk.model_validate(chunk)
            for chunk in openai_chunks(our_answer(server, ANSWERS[answer], protocol, stream=True))]
    assert all(chunk.object == "chat.completion.chunk" for chunk in ours)
    assert ours[0].choices[0].delta.role == "assistant"
    assert ours[-1].choices == [] and ours[-1].usage is not None  # usage last, as with include_usage
    folded = fold(ours)
    if protocol == "openai":
        assert folded == expected
    else:  # Anthropic counts its prompt its own way; the rest must match
        assert folded[:3] == expected[:3] and folded[3][1] == expected[3][1]


def test_openai_chunks_number_tool_calls_from_zero_whatever_the_provider_index():
    """Anthropic numbers content blocks (text first, so the first tool is 1); OpenAI's clients
    index tool calls from 0."""
    stream = [
        StreamChunk(id="msg_1", model="m", text="Checking."),
        StreamChunk(tool_call=ToolCallDelta(1, "toolu_a", "get_weather", "")),
        StreamChunk(tool_call=ToolCallDelta(1, None, None, '{"city": "Paris"}')),
        StreamChunk(tool_call=ToolCallDelta(2, "toolu_b", "get_time", '{"city": "Rome"}')),
        StreamChunk(stop_reason=StopReason.TOOL_USE),
    ]
    chunks = [ChatCompletionChunk.model_validate(chunk) for chunk in openai_chunks(stream)]
    text, calls, finish, usage = fold(chunks)
    assert text == "Checking." and finish == "tool_calls" and usage is None
    assert calls == [("toolu_a", "get_weather", {"city": "Paris"}), ("toolu_b", "get_time", {"city": "Rome"})]
    assert [c.choices[0].delta.tool_calls[0].index for c in chunks if c.choices and c.choices[0].delta.tool_calls] == [
        0, 0, 1]
