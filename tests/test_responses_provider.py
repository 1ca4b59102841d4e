"""OpenAIResponsesProvider: what it sends for each request feature (against the fake server),
how it reads the stream events the fake server does not write (against hand-written streams
served over real HTTP), and how the catalog picks it.  The shared contract and fault suites
cover it too ("responses" is in support.PROTOCOLS), and tests/test_corpus_responses.py checks
its parsing against the official SDK's."""

import json

import pytest

from failover_client import (
    CompletionRequest,
    FailoverClient,
    ImageBlock,
    Message,
    NotSupportedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseFormat,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    collect,
)
from failover_client.errors import InvalidArgumentError, ServerError
from failover_client.providers import OpenAIProvider, OpenAIResponsesProvider, create
from failover_client.providers.openai_responses import lone_text, stream_from_wire

from cassettes import Interaction, ReplayServer
from support import WEATHER, ask, make_provider, sent

KEY = "sk-test-key-0123456789"


def test_request_features_on_the_wire(fake_provider):
    provider = make_provider(fake_provider, "p", "responses")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    provider.complete(ask(system="Be brief.", max_tokens=300, temperature=0.2, top_p=0.9, tools=[WEATHER],
                          tool_choice=ToolChoice.tool("get_weather"), metadata={"run": "7"},
                          response_format=ResponseFormat.json_schema(schema, name="City"),
                          thinking=ThinkingConfig(budget_tokens=1024)))
    body = sent(fake_provider).body
    assert sent(fake_provider).path == "/p/v1/responses"
    assert body == {
        "model": "gpt-4o",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}],
        "store": False,
        "instructions": "Be brief.",
        "max_output_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "tools": [{"type": "function", "name": "get_weather", "description": "Current weather",
                   "parameters": WEATHER.input_schema, "strict": False}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "City", "schema": schema, "strict": True}},
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "metadata": {"run": "7"},
    }


@pytest.mark.parametrize("choice, wire", [(ToolChoice.auto(), "auto"), (ToolChoice.any(), "required"),
                                          (ToolChoice.none(), "none")])
def test_tool_choice_modes(fake_provider, choice, wire):
    make_provider(fake_provider, "p", "responses").complete(ask(tools=[WEATHER], tool_choice=choice))
    assert sent(fake_provider).body["tool_choice"] == wire


def test_json_mode_and_serial_tool_calls(fake_provider):
    choice = ToolChoice(mode="auto", disable_parallel=True)
    make_provider(fake_provider, "p", "responses").complete(
        ask(tools=[WEATHER], tool_choice=choice, response_format=ResponseFormat.json()))
    body = sent(fake_provider).body
    assert body["text"] == {"format": {"type": "json_object"}} and body["parallel_tool_calls"] is False


def conversation(thinking):
    return CompletionRequest("gpt-5", [
        Message.user([TextBlock("Weather in Paris?"), ImageBlock.from_url("https://example.com/sky.png")]),
        Message.assistant([ThinkingBlock("Call the tool.", "gAAAA-blob"), ThinkingBlock("unsigned"),
                           TextBlock("Checking."), ToolUseBlock("call_1", "get_weather", {"city": "Paris"})]),
        Message.tool_results([
            ToolResultBlock("call_1", "18C, sunny"),
            ToolResultBlock("call_2", [TextBlock("see"), ImageBlock.from_base64("AAAA", "image/png")])]),
        Message.user("And tomorrow?"),
    ], tools=[WEATHER], thinking=thinking)


def test_a_conversation_goes_whole_as_input_items(fake_provider):
    provider = make_provider(fake_provider, "p", "responses")
    provider.complete(conversation(ThinkingConfig(effort="medium")))
    assert sent(fake_provider).body["input"] == [
        {"role": "user", "content": [
            {"type": "input_text", "text": "Weather in Paris?"},
            {"type": "input_image", "image_url": "https://example.com/sky.png", "detail": "auto"}]},
        # the encrypted reasoning goes back without its id (store is false); unsigned thinking cannot
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Call the tool."}],
         "encrypted_content": "gAAAA-blob"},
        {"role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C, sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": [
            {"type": "input_text", "text": "see"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "And tomorrow?"}]},
    ]
    provider.complete(conversation(None))  # a request without reasoning sends no reasoning items
    assert [item.get("type") for item in sent(fake_provider).body["input"]] == [
        None, None, "function_call", "function_call_output", "function_call_output", None]


def test_stop_sequences_are_refused_before_sending(fake_provider):
    with pytest.raises(NotSupportedError, match="stop sequences"):
        make_provider(fake_provider, "p", "responses").complete(ask(stop_sequences=["END"]))
    assert fake_provider.requests == []


# --- events the fake server does not write, over real HTTP -----------------------------------------


def sse(*events):
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


CREATED = {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5", "status": "in_progress"}}


def completed(output, status="completed", **fields):
    return {"type": f"response.{status}", "response": {"id": "resp_1", "model": "gpt-5", "status": status,
                                                       "output": output, "usage": None, **fields}}


def streamed(body):
    interaction = Interaction("POST", "https://api.openai.com/v1/responses", b"{}", 200,
                              {"content-type": "text/event-stream"}, body)
    with ReplayServer([interaction]) as server, OpenAIResponsesProvider(KEY, base_url=server.url + "/v1") as p:
        return collect(p.complete_stream(ask(stream=True)))


def test_arguments_given_only_whole_in_done_make_the_tool_input():
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "get_weather", "arguments": ""}
    response = streamed(sse(
        CREATED,
        {"type": "response.output_item.added", "output_index": 0, "item": call},
        {"type": "response.function_call_arguments.done", "output_index": 0, "item_id": "fc_1",
         "arguments": '{"city": "Oslo"}'},
        completed([{**call, "arguments": '{"city": "Oslo"}'}]),
        {"type": "done"},  # never read: the stream ended at response.completed
    ) + b"data: [DONE]\n\n")
    assert response.tool_calls == [ToolUseBlock("call_9", "get_weather", {"city": "Oslo"})]
    assert response.stop_reason is StopReason.TOOL_USE


def test_summary_parts_are_joined_as_in_a_plain_answer():
    item = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "First."},
                                                           {"type": "summary_text", "text": "Second."}]}
    ids = {"item_id": "rs_1", "output_index": 0}
    response = streamed(sse(
        CREATED,
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "summary": []}},
        {"type": "response.reasoning_summary_part.added", **ids, "summary_index": 0},
        {"type": "response.reasoning_summary_text.delta", **ids, "summary_index": 0, "delta": "First."},
        {"type": "response.reasoning_summary_part.added", **ids, "summary_index": 1},
        {"type": "response.reasoning_summary_text.delta", **ids, "summary_index": 1, "delta": "Second."},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        completed([item], "incomplete", incomplete_details={"reason": "max_output_tokens"}),
    ))
    assert response.thinking == "First.\n\nSecond."
    assert (response.stop_reason, response.raw_stop_reason) == (StopReason.MAX_TOKENS, "max_output_tokens")


@pytest.mark.parametrize("event", [
    # response.failed: the reason is in response.error
    completed([], "failed", error={"code": "rate_limit_exceeded", "message": "Rate limit reached for gpt-5"}),
    # the documented flat error event, and the nested shape OpenAI has been seen to send
    {"type": "error", "code": "rate_limit_exceeded", "message": "Rate limit reached for gpt-5", "param": None},
    {"type": "error", "error": {"type": "tokens", "code": "rate_limit_exceeded",
                                "message": "Rate limit reached for gpt-5", "param": None}},
], ids=["response.failed", "flat error event", "nested error event"])
def test_failures_inside_the_stream_are_classified_like_http_errors(event):
    with pytest.raises(RateLimitError, match="Rate limit reached for gpt-5") as info:
        streamed(sse(CREATED, event))
    assert info.value.provider == "openai" and info.value.status is None


def served_plain(body, status=200):
    interaction = Interaction("POST", "https://api.openai.com/v1/responses", b"{}", status,
                              {"content-type": "application/json"}, json.dumps(body).encode())
    with ReplayServer([interaction]) as server, OpenAIResponsesProvider(KEY, base_url=server.url + "/v1") as p:
        return p.complete(ask())


def test_a_failed_or_unfinished_plain_answer_raises():
    with pytest.raises(ServerError, match="boom"):
        served_plain(completed([], "failed", error={"code": "server_error", "message": "boom"})["response"])
    with pytest.raises(ResponseDecodeError, match="'queued'"):  # a background response, not an answer
        served_plain(completed([], "queued")["response"])
    with pytest.raises(ResponseDecodeError, match="arguments that are not JSON"):
        served_plain(completed([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{nope"}])[
            "response"])


# --- the catalog --------------------------------------------------------------------------------------


def test_api_responses_selects_the_protocol_for_rows_that_serve_it():
    provider = create("openai", api="responses", api_key=KEY)
    assert type(provider) is OpenAIResponsesProvider and provider.base_url == "https://api.openai.com/v1"
    assert type(create("openai", api="chat", api_key=KEY)) is OpenAIProvider
    azure = create("azure", api="responses", api_key=KEY, endpoint="https://my-resource.openai.azure.com/")
    assert type(azure) is OpenAIResponsesProvider and azure.name == "azure"
    assert azure.base_url == "https://my-resource.openai.azure.com/openai/v1"
    assert azure.api_key_env == "AZURE_OPENAI_API_KEY"
    assert create("xai", api="responses", api_key=KEY).base_url == "https://api.x.ai/v1"
    with pytest.raises(InvalidArgumentError, match="groq does not serve OpenAI's Responses API"):
        create("groq", api="responses", api_key=KEY)
    with pytest.raises(InvalidArgumentError, match="api must be 'chat' or 'responses'"):
        create("openai", api="assistants", api_key=KEY)


def test_from_models_sends_responses_only_models_to_the_responses_api(fake_provider, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    base = {"base_url": fake_provider.base_url("oai", "responses")}
    with FailoverClient.from_models("openai/gpt-5-pro", overrides={"openai": base}) as client:
        assert client.complete(ask(model="gpt-5-pro")).text == "Hello!"
    with FailoverClient.from_models("openai/gpt-4o", overrides={"openai": base}) as client:
        client.complete(ask(model="gpt-4o"))
    with FailoverClient.from_models("openai/gpt-4o", overrides={"openai": {**base, "api": "responses"}}) as client:
        client.complete(ask(model="gpt-4o"))
    assert [(r.protocol, r.body["model"]) for r in fake_provider.requests] == [
        ("responses", "gpt-5-pro"), ("openai", "gpt-4o"), ("responses", "gpt-4o")]


@pytest.mark.parametrize("data, text", [
    ('{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,'
     '"content_index":0,"delta":"420","logprobs":[],"obfuscation":"nuCYcVoOe"}', "420"),  # OpenAI's order
    ('{"sequence_number":3,"type":"response.output_text.delta","delta":"1, 2","item_id":"msg_1",'
     '"output_index":1,"content_index":0,"logprobs":[]}', "1, 2"),  # xAI's
    ('{"type":"response.output_text.delta","delta":"say \\"delta\\": \\u00e9"}', 'say "delta": é'),
    ('{"type": "response.output_text.delta", "delta": "spaced"}', None),  # decoded whole instead
    ('{"type":"response.refusal.delta","delta":"no"}', None),
])
def test_a_text_delta_is_decoded_alone_only_when_that_is_safe(data, text):
    assert lone_text(data) == text
    events = [("response.output_text.delta", data), ("", json.dumps(completed([])))]
    chunks = list(stream_from_wire(iter(events), "p", "m"))
    assert [c.text for c in chunks if c.text] == [json.loads(data)["delta"]] * ("refusal" not in data)
