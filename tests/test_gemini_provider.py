"""The Provider contract for the Gemini API (GeminiProvider) against the fake server: what goes
on the wire for each request feature, what comes back for each reply feature, plain and
streamed, and how Google's errors map.  Every fault kind also runs through tests/test_faults.py
("gemini" is in support.PROTOCOLS); this module adds what is particular to Gemini.  The last
section checks the fake server itself against Google's recorded traffic."""

import json

import pytest
import requests

from failover_client import (
    AuthenticationError,
    CompletionRequest,
    ContentFilteredError,
    ContextLengthExceededError,
    ImageBlock,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    NetworkError,
    NotSupportedError,
    OverloadedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseFormat,
    ServerError,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    TokenCountRequest,
    ToolChoice,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    collect,
)
from failover_client.errors import InvalidArgumentError, MissingCredentialsError
from failover_client.providers import gemini as wire
from failover_client.testing import Fault, Reply, ToolCall

from cassettes import corpus_dir, load_cassette
from support import make_provider, sent

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyFAKE-test-key-0123456789abcdef"
WEATHER = ToolDefinition("get_weather", "Current weather", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
    "additionalProperties": False})


def gemini(server, name="p", **options):
    options.setdefault("api_key", KEY)
    return make_provider(server, name, "gemini", **options)


def ask(text="Hello", model=MODEL, **fields):
    return CompletionRequest(model=model, messages=[Message.user(text)], **fields)


# --- requests ---------------------------------------------------------------------------------


def test_text_answer(fake_provider, call):
    fake_provider.script("p", Reply(text="Hello there, friend"))
    response = call(gemini(fake_provider), ask())
    assert response.text == "Hello there, friend"
    assert response.stop_reason is StopReason.END_TURN and response.raw_stop_reason == "STOP"
    assert response.provider == "p" and response.id and response.model == MODEL


def test_stream_yields_text_as_it_arrives_from_the_sse_route(fake_provider):
    fake_provider.script("p", Reply(chunks=["one ", "two ", "three"]))
    texts = [c.text for c in gemini(fake_provider).complete_stream(ask()) if c.text]
    assert texts == ["one ", "two ", "three"]
    request = sent(fake_provider)
    assert request.path == f"/p/v1beta/models/{MODEL}:streamGenerateContent"
    assert request.query == {"alt": "sse"} and request.stream
    assert "stream" not in request.body and "model" not in request.body


@pytest.mark.parametrize("stream", [False, True])
def test_the_key_travels_only_in_the_header(fake_provider, stream):
    provider = gemini(fake_provider)
    provider.count_tokens(ask())
    if stream:
        collect(provider.complete_stream(ask()))
    else:
        provider.complete(ask())
    for request in fake_provider.requests:
        assert request.headers["x-goog-api-key"] == KEY
        assert KEY not in request.path and "key" not in request.query
        assert KEY.encode() not in request.raw_body
    assert KEY not in repr(provider)


def test_key_from_the_environment(fake_provider, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-from-google-api-key")
    gemini(fake_provider, api_key=None).complete(ask())
    assert sent(fake_provider).headers["x-goog-api-key"] == "AIza-from-google-api-key"
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-from-gemini-api-key")  # the Gemini variable wins
    gemini(fake_provider, name="q", api_key=None).complete(ask())
    assert sent(fake_provider).headers["x-goog-api-key"] == "AIza-from-gemini-api-key"


def test_missing_key_names_both_variables_before_sending(fake_provider, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="GEMINI_API_KEY.*GOOGLE_API_KEY"):
        gemini(fake_provider, api_key=None).complete(ask())
    assert fake_provider.requests == []


@pytest.mark.parametrize("model, path, served", [
    ("models/gemini-2.5-flash", "/p/v1beta/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash"),
    ("tunedModels/my-tuned-7", "/p/v1beta/tunedModels/my-tuned-7:generateContent", "my-tuned-7"),
    ("odd model/name", "/p/v1beta/models/odd%20model%2Fname:generateContent", "odd model/name"),
])
def test_model_id_in_the_url(fake_provider, model, path, served):
    """A "models/" prefix is not doubled; the id is quoted as one path segment."""
    response = gemini(fake_provider).complete(ask(model=model))
    assert sent(fake_provider).path == path and response.model == served


def test_system_sampling_stop_sequences_and_max_tokens(fake_provider):
    gemini(fake_provider).complete(ask(system="Be terse.", temperature=0.3, top_p=0.8, stop_sequences=["END"],
                                       max_tokens=50))
    body = sent(fake_provider).body
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    assert body["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.3, "topP": 0.8,
                                        "stopSequences": ["END"]}
    gemini(fake_provider).complete(ask(system=[TextBlock("One."), TextBlock("Two.")]))
    assert sent(fake_provider).body["systemInstruction"] == {"parts": [{"text": "One."}, {"text": "Two."}]}
    assert "generationConfig" not in sent(fake_provider).body


def test_assistant_turns_use_the_model_role(fake_provider):
    history = [Message.user("Hi"), Message.assistant("Hello!"), Message.user("Bye")]
    gemini(fake_provider).complete(CompletionRequest(MODEL, history))
    assert [c["role"] for c in sent(fake_provider).body["contents"]] == ["user", "model", "user"]


def test_images_inline_by_url_and_by_data_url(fake_provider):
    message = Message.user([
        TextBlock("What is this?"),
        ImageBlock.from_base64("iVBORw0K", "image/png"),
        ImageBlock.from_url("https://example.com/cat.jpg"),
        ImageBlock.from_url("gs://bucket/dog.webp"),
        ImageBlock(url="https://example.com/render", media_type="image/gif"),
        ImageBlock.from_url("https://example.com/no-extension"),
        ImageBlock.from_url("data:image/jpeg;base64,/9j/4AAQ"),
    ])
    gemini(fake_provider).complete(CompletionRequest(MODEL, [message]))
    assert sent(fake_provider).body["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/dog.webp"}},
        {"fileData": {"mimeType": "image/gif", "fileUri": "https://example.com/render"}},
        {"fileData": {"fileUri": "https://example.com/no-extension"}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
    ]


@pytest.mark.parametrize("block, problem", [
    (ImageBlock.from_url("ftp://example.com/cat.jpg"), "https://, gs://"),
    (ImageBlock(data="iVBORw0K"), "media_type"),
    (ImageBlock.from_url("data:image/png,rawbytes"), "base64"),
])
def test_bad_images_fail_before_sending(fake_provider, block, problem):
    with pytest.raises(InvalidArgumentError, match=problem):
        gemini(fake_provider).complete(CompletionRequest(MODEL, [Message.user([block])]))
    assert fake_provider.requests == []


def test_extra_fields_are_sent_and_unknown_ones_refused_as_google_does(fake_provider):
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    gemini(fake_provider).complete(ask(extra={"safetySettings": safety}))
    assert sent(fake_provider).body["safetySettings"] == safety
    with pytest.raises(InvalidRequestError, match='Unknown name "seed"') as info:
        gemini(fake_provider).complete(ask(extra={"seed": 7}))
    assert info.value.status == 400 and info.value.code == "INVALID_ARGUMENT"


# --- tools and thought signatures --------------------------------------------------------------


def test_tools_and_tool_choice_on_the_wire(fake_provider):
    provider = gemini(fake_provider)
    for choice, expected in [
        (ToolChoice.auto(), {"mode": "AUTO"}),
        (ToolChoice.any(), {"mode": "ANY"}),
        (ToolChoice.none(), {"mode": "NONE"}),
        (ToolChoice.tool("get_weather"), {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ]:
        provider.complete(ask(tools=[WEATHER], tool_choice=choice))
        body = sent(fake_provider).body
        assert body["toolConfig"] == {"functionCallingConfig": expected}
        assert body["tools"] == [{"functionDeclarations": [{
            "name": "get_weather", "description": "Current weather", "parametersJsonSchema": WEATHER.input_schema}]}]


def test_tool_calls_come_back_parsed_with_stable_ids(fake_provider, call):
    fake_provider.script("p", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}),
                                                ToolCall("get_weather", {"city": "Oslo", "units": ["c"]})]))
    response = call(gemini(fake_provider), ask(tools=[WEATHER]))
    assert [(c.name, c.input) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo", "units": ["c"]})]
    # Gemini gives calls no ids: ours are made from the response id and the call's position
    assert [c.id for c in response.tool_calls] == [f"call_{response.id}_0", f"call_{response.id}_1"]
    assert response.stop_reason is StopReason.TOOL_USE and response.raw_stop_reason == "STOP"


def test_a_call_id_given_by_the_server_is_kept(fake_provider, call):
    fake_provider.script("p", Reply(tool_calls=[ToolCall("get_weather", {"city": "Rome"}, id="fc-server-1")]))
    assert call(gemini(fake_provider), ask(tools=[WEATHER])).tool_calls[0].id == "fc-server-1"


def test_function_call_round_trip_carries_the_thought_signature_back(fake_provider, call):
    """Gemini 3 rejects function-call history without its signature (the fake does as well, see
    the next test): the signature must come back on the functionCall part it arrived on."""
    model = "gemini-3-pro-preview"
    fake_provider.script("p", Reply(thinking="The user wants weather.", signature="c2lnLW9uLXRoZS1jYWxs",
                                    tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
    provider = gemini(fake_provider)
    first = call(provider, ask("Weather in Paris?", model=model, tools=[WEATHER]))
    assert first.content[0] == ThinkingBlock("The user wants weather.", "c2lnLW9uLXRoZS1jYWxs")
    (tool_use,) = first.tool_calls
    history = [Message.user("Weather in Paris?"), first.to_message(),
               Message.tool_results([ToolResultBlock(tool_use.id, "18C, cloudy")])]
    fake_provider.script("p", Reply(text="It is 18C and cloudy."))
    second = call(provider, CompletionRequest(model, history, tools=[WEATHER]))
    assert second.text == "It is 18C and cloudy."
    contents = sent(fake_provider).body["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"text": "The user wants weather.", "thought": True},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": tool_use.id},
         "thoughtSignature": "c2lnLW9uLXRoZS1jYWxs"}]}
    assert contents[2] == {"role": "user", "parts": [{"functionResponse": {
        "name": "get_weather", "response": {"output": "18C, cloudy"}, "id": tool_use.id}}]}


def test_function_calls_without_their_signature_are_refused_by_gemini_3(fake_provider):
    history = [Message.user("Weather in Paris?"),
               Message.assistant([ToolUseBlock("c1", "get_weather", {"city": "Paris"})]),
               Message.tool_results([ToolResultBlock("c1", "18C")])]
    with pytest.raises(InvalidRequestError, match="thought_signature"):
        gemini(fake_provider).complete(CompletionRequest("gemini-3-flash-preview", history, tools=[WEATHER]))
    gemini(fake_provider).complete(CompletionRequest("gemini-2.5-flash", history, tools=[WEATHER]))  # 2.5 does not


def test_a_signature_on_a_text_part_goes_back_on_that_part(fake_provider, call):
    fake_provider.script("p", Reply(text="Four.", thinking="2+2", signature="dGV4dC1zaWc="))
    first = call(gemini(fake_provider), ask("2+2?"))
    assert first.content == [ThinkingBlock("2+2", "dGV4dC1zaWc="), TextBlock("Four.")]
    gemini(fake_provider).complete(CompletionRequest(MODEL, [Message.user("2+2?"), first.to_message(),
                                                             Message.user("And 3+3?")]))
    assert sent(fake_provider).body["contents"][1]["parts"] == [
        {"text": "2+2", "thought": True}, {"text": "Four.", "thoughtSignature": "dGV4dC1zaWc="}]


def test_error_results_and_unmatched_results(fake_provider):
    history = [Message.user("q"), Message.assistant([ToolUseBlock("c1", "lookup", {})]),
               Message.tool_results([ToolResultBlock("c1", "no such row", is_error=True)])]
    gemini(fake_provider).complete(CompletionRequest(MODEL, history))
    assert sent(fake_provider).body["contents"][2]["parts"][0]["functionResponse"]["response"] == {
        "error": "no such row"}
    orphan = [Message.user("q"), Message.tool_results([ToolResultBlock("nowhere", "x")])]
    with pytest.raises(InvalidArgumentError, match="'nowhere' answers no tool call"):
        gemini(fake_provider).complete(CompletionRequest(MODEL, orphan))
    with_image = [*history[:2], Message.tool_results([ToolResultBlock("c1", [ImageBlock.from_url("https://x/y.png")])])]
    with pytest.raises(NotSupportedError, match="only text"):
        gemini(fake_provider).complete(CompletionRequest(MODEL, with_image))


# --- thinking, structured output, usage, stop reasons ---------------------------------------------


@pytest.mark.parametrize("config, expected", [
    (ThinkingConfig(budget_tokens=1024), {"includeThoughts": True, "thinkingBudget": 1024}),
    (ThinkingConfig(effort="low"), {"includeThoughts": True, "thinkingLevel": "LOW"}),
    (ThinkingConfig(budget_tokens=2048, effort="high"), {"includeThoughts": True, "thinkingBudget": 2048}),
    (ThinkingConfig(), {"includeThoughts": True}),
    (ThinkingConfig(enabled=False), {"thinkingBudget": 0}),
])
def test_thinking_config(fake_provider, config, expected):
    gemini(fake_provider).complete(ask(thinking=config))
    assert sent(fake_provider).body["generationConfig"] == {"thinkingConfig": expected}


def test_thought_summaries_become_thinking_blocks(fake_provider, call):
    fake_provider.script("p", Reply(text="42", thinking="Let me work this out carefully", signature="c2ln"))
    response = call(gemini(fake_provider), ask(thinking=ThinkingConfig(budget_tokens=512)))
    assert response.content == [ThinkingBlock("Let me work this out carefully", "c2ln"), TextBlock("42")]
    assert response.thinking == "Let me work this out carefully" and response.text == "42"


def test_json_mode_and_schema(fake_provider):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    provider = gemini(fake_provider)
    provider.complete(ask(response_format=ResponseFormat.json_schema(schema, name="person")))
    assert sent(fake_provider).body["generationConfig"] == {"responseMimeType": "application/json",
                                                            "responseJsonSchema": schema}
    provider.complete(ask(response_format=ResponseFormat.json()))
    assert sent(fake_provider).body["generationConfig"] == {"responseMimeType": "application/json"}


def test_usage_follows_one_rule(fake_provider, call):
    """Gemini's candidatesTokenCount leaves out thoughts; ours includes them.  The cache is
    already inside promptTokenCount, and Gemini has no cache writes."""
    fake_provider.script("p", Reply(text="x", thinking="t", usage={"input": 100, "output": 40, "cache_read": 60,
                                                                   "reasoning": 10}))
    response = call(gemini(fake_provider), ask())
    assert response.usage == Usage(input_tokens=100, output_tokens=40, cache_read_tokens=60, cache_write_tokens=0,
                                   reasoning_tokens=10)


def test_usage_counts_tool_use_prompt_tokens_as_input():
    meta = {"promptTokenCount": 17, "candidatesTokenCount": 41, "toolUsePromptTokenCount": 102,
            "thoughtsTokenCount": 412, "cachedContentTokenCount": 5, "totalTokenCount": 572}
    usage = wire.usage_from(meta)
    assert usage == Usage(input_tokens=119, output_tokens=453, cache_read_tokens=5, reasoning_tokens=412)
    assert usage.total_tokens == meta["totalTokenCount"]
    assert wire.usage_from(None) == Usage()


@pytest.mark.parametrize("reason, expected, raw", [
    ("max_tokens", StopReason.MAX_TOKENS, "MAX_TOKENS"),
    ("content_filter", StopReason.CONTENT_FILTER, "SAFETY"),
    ("stop_sequence", StopReason.END_TURN, "STOP"),  # Gemini does not tell a stop sequence from the end
    ("refusal", StopReason.END_TURN, "STOP"),  # a refusal is said as text
])
def test_stop_reasons(fake_provider, call, reason, expected, raw):
    fake_provider.script("p", Reply(stop_reason=reason))
    response = call(gemini(fake_provider), ask())
    assert (response.stop_reason, response.raw_stop_reason) == (expected, raw)


@pytest.mark.parametrize("raw, expected", [
    ("RECITATION", StopReason.CONTENT_FILTER), ("PROHIBITED_CONTENT", StopReason.CONTENT_FILTER),
    ("SPII", StopReason.CONTENT_FILTER), ("BLOCKLIST", StopReason.CONTENT_FILTER),
    ("MALFORMED_FUNCTION_CALL", StopReason.OTHER), ("LANGUAGE", StopReason.OTHER),
    ("SOMETHING_NEW", StopReason.OTHER),
])
def test_other_finish_reasons_keep_the_raw_value(raw, expected):
    data = {"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": raw}],
            "responseId": "r1", "modelVersion": MODEL}
    response = wire.response_from_wire(data, "p")
    assert (response.stop_reason, response.raw_stop_reason, response.text) == (expected, raw, "x")


def test_only_candidate_zero_is_read():
    data = {"candidates": [{"content": {"parts": [{"text": "second"}]}, "finishReason": "STOP", "index": 1},
                           {"content": {"parts": [{"text": "first"}]}, "finishReason": "MAX_TOKENS", "index": 0}]}
    response = wire.response_from_wire(data, "p")
    assert (response.text, response.stop_reason) == ("first", StopReason.MAX_TOKENS)


def test_an_answer_without_finish_reason_is_an_error(fake_provider):
    fake_provider.script("p", Fault.truncated_stream(after_events=2, reply=Reply(text="one two three four")))
    with pytest.raises(NetworkError, match="finishReason"):
        collect(gemini(fake_provider).complete_stream(ask()))
    with pytest.raises(ResponseDecodeError, match="finishReason"):
        wire.response_from_wire({"candidates": [{"content": {"parts": [{"text": "x"}]}}]}, "p")


@pytest.mark.parametrize("stream", [False, True])
def test_a_blocked_prompt_is_a_content_filter_error(fake_provider, stream):
    fake_provider.script("p", Fault.content_filter())
    provider = gemini(fake_provider)
    with pytest.raises(ContentFilteredError, match="blocked") as info:
        collect(provider.complete_stream(ask())) if stream else provider.complete(ask())
    assert info.value.code == "SAFETY" and info.value.provider == "p"


# --- token counting ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_type", [TokenCountRequest, CompletionRequest])
def test_count_tokens(fake_provider, as_type):
    fake_provider.script("p", Reply(usage={"input": 42}))
    provider = gemini(fake_provider)
    assert provider.supports_token_counting
    request = ask("How long is this?", system="Be brief.", tools=[WEATHER])
    result = provider.count_tokens(TokenCountRequest.from_request(request) if as_type is TokenCountRequest
                                   else request)
    assert (result.input_tokens, result.exact, result.model, result.provider) == (42, True, MODEL, "p")
    recorded = sent(fake_provider)
    assert recorded.path == f"/p/v1beta/models/{MODEL}:countTokens"
    assert recorded.body == {"generateContentRequest": {
        "model": f"models/{MODEL}",
        "contents": [{"role": "user", "parts": [{"text": "How long is this?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Current weather",
                                             "parametersJsonSchema": WEATHER.input_schema}]}]}}


def test_count_tokens_errors(fake_provider):
    fake_provider.script("p", Fault.rate_limit())
    with pytest.raises(RateLimitError):
        gemini(fake_provider).count_tokens(ask())
    with pytest.raises(InvalidArgumentError, match="messages"):
        gemini(fake_provider).count_tokens(TokenCountRequest(MODEL, []))


# --- errors -------------------------------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error_without_the_key(fake_provider):
    fake_provider.require_key("p", "AIza-the-right-key-000000000000")
    with pytest.raises(AuthenticationError) as info:
        gemini(fake_provider).complete(ask())
    exc = info.value
    assert exc.status == 400 and exc.code == "INVALID_ARGUMENT"
    assert exc.message == "API key not valid. Please pass a valid API key."
    assert KEY not in str(exc) and KEY not in repr(exc) and KEY not in (exc.body or "")


def test_rate_limit_retry_after_comes_from_retry_info(fake_provider):
    """Google sends no Retry-After header: the hint is RetryInfo.retryDelay in the body."""
    provider = gemini(fake_provider)
    fake_provider.script("p", Fault.rate_limit())  # the fake's RetryInfo says 37s
    with pytest.raises(RateLimitError) as info:
        provider.complete(ask())
    assert type(info.value) is RateLimitError and info.value.retry_after == 37.0
    assert info.value.code == "RESOURCE_EXHAUSTED" and info.value.retryable
    body = {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.5s"}]}}
    fake_provider.script("p", Fault.status(429, body=body))
    with pytest.raises(RateLimitError) as info:
        provider.complete(ask())
    assert info.value.retry_after == 0.5
    fake_provider.script("p", Fault.rate_limit(retry_after=3))  # a header, where there is one, wins
    with pytest.raises(RateLimitError) as info:
        provider.complete(ask())
    assert info.value.retry_after == 3.0


@pytest.mark.parametrize("fault, error, code", [
    (Fault.context_length(), ContextLengthExceededError, "INVALID_ARGUMENT"),
    (Fault.overloaded(), OverloadedError, "UNAVAILABLE"),
    (Fault.status(500), ServerError, "INTERNAL"),
    (Fault.status(504), ServerError, "DEADLINE_EXCEEDED"),
    (Fault.status(403), AuthenticationError, "PERMISSION_DENIED"),
    (Fault.status(404), ModelNotFoundError, "NOT_FOUND"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_google_errors_map_to_our_classes(fake_provider, fault, error, code, stream):
    fake_provider.script("p", fault)
    provider = gemini(fake_provider)
    with pytest.raises(error) as info:
        collect(provider.complete_stream(ask())) if stream else provider.complete(ask())
    assert type(info.value) is error and info.value.code == code and info.value.provider == "p"


def test_an_error_in_the_stream_after_output(fake_provider):
    fake_provider.script("p", Fault.stream_error_event(1, "rate_limit_error", "Resource has been exhausted",
                                                       reply=Reply(text="one two three")))
    received = []
    with pytest.raises(RateLimitError, match="Resource has been exhausted") as info:
        for chunk in gemini(fake_provider).complete_stream(ask()):
            received.append(chunk.text or "")
    assert "".join(received) == "one" and info.value.status is None and info.value.code == "RESOURCE_EXHAUSTED"


# --- the fake server speaks Google --------------------------------------------------------------


def post(server, path, body, headers=None, name="p"):
    return requests.post(server.base_url(name, "gemini") + path, data=json.dumps(body), timeout=5,
                         headers={"content-type": "application/json", **(headers or {})})


HELLO = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize("path, body, headers, status, google_status, message", [
    (f"/models/{MODEL}:generateContent", HELLO, {}, 403, "PERMISSION_DENIED", "unregistered callers"),
    (f"/models/{MODEL}:generateContents", HELLO, {"x-goog-api-key": "k"}, 404, "NOT_FOUND", "Method not found"),
    (f"/models/{MODEL}:streamGenerateContent", HELLO, {"x-goog-api-key": "k"}, 400, "INVALID_ARGUMENT", "alt=sse"),
    (f"/models/{MODEL}:generateContent", {"contents": []}, {"x-goog-api-key": "k"}, 400, "INVALID_ARGUMENT",
     "contents is not specified"),
    (f"/models/{MODEL}:generateContent", {"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
     {"x-goog-api-key": "k"}, 400, "INVALID_ARGUMENT", "valid role: user, model"),
    (f"/models/{MODEL}:generateContent", {"contents": [{"role": "user", "parts": []}]},
     {"x-goog-api-key": "k"}, 400, "INVALID_ARGUMENT", "parts must not be empty"),
    (f"/models/{MODEL}:generateContent", {**HELLO, "stream": True}, {"x-goog-api-key": "k"}, 400,
     "INVALID_ARGUMENT", 'Unknown name "stream"'),
])
def test_fake_validates_like_the_real_api(fake_provider, path, body, headers, status, google_status, message):
    response = post(fake_provider, path, body, headers)
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["status"]) == (status, status, google_status)
    assert message in error["message"]
    assert fake_provider.requests[-1].step == f"rejected:{status}"


def test_fake_accepts_snake_case_fields_and_the_key_in_the_query(fake_provider):
    body = {"contents": HELLO["contents"], "system_instruction": {"parts": [{"text": "x"}]}}
    assert post(fake_provider, f"/models/{MODEL}:generateContent?key=k", body).status_code == 200


needs_corpus = pytest.mark.skipif(not (corpus_dir() / "google").is_dir(),
                                  reason=f"cassette corpus not found at {corpus_dir()}")


@needs_corpus
def test_fake_stream_bytes_match_the_recording(fake_provider):
    """Same framing (data-only events, CRLF CRLF, no terminator), same JSON layout and the same
    keys in the same order as a real streamed answer of the Gemini API."""
    recorded = load_cassette(corpus_dir() / "google" / "mirascope__test_strict_mode_with_tools_streamed__google_"
                                                       "gemini_3_pro_preview.yaml")[1]
    fake_provider.script("p", Reply(chunks=["{", '"a": 1', "}"]))
    response = post(fake_provider, f"/models/{MODEL}:streamGenerateContent?alt=sse", HELLO, {"x-goog-api-key": "k"})
    assert response.headers["content-type"] == recorded.response_headers["content-type"] == "text/event-stream"
    assert response.headers["content-disposition"] == recorded.response_headers["content-disposition"]

    def events(body):
        assert body.endswith(b"}\r\n\r\n") and b"[DONE]" not in body
        return [json.loads(block[len(b"data: "):]) for block in body.split(b"\r\n\r\n") if block]

    def key_tree(value):
        """The keys of a JSON value, in order and nested, without the values."""
        if isinstance(value, dict):
            return [(key, key_tree(item)) for key, item in value.items()]
        return [key_tree(item) for item in value] if isinstance(value, list) else None

    ours, real = events(response.content), events(recorded.response_body)
    assert [e["candidates"][0].get("finishReason") for e in ours] == [None, None, None, "STOP"]
    assert [e["candidates"][0].get("finishReason") for e in real] == [None, None, None, "STOP"]
    assert [key_tree(e) for e in ours] == [key_tree(e) for e in real]
    assert response.content.startswith(b'data: {"candidates": [{"content": {"parts": [{"text": "{"}],"role": ')


@needs_corpus
def test_fake_error_bodies_match_the_recordings(fake_provider):
    recorded = load_cassette(corpus_dir() / "google" /
                             "mirascope__test_authentication_error_stream__google_gemini_2_5_flash.yaml")[0]
    fake_provider.require_key("p", "right")
    response = post(fake_provider, f"/models/{MODEL}:streamGenerateContent?alt=sse", HELLO,
                    {"x-goog-api-key": "wrong"})
    assert response.status_code == recorded.status == 400
    assert response.content == recorded.response_body
    fake_provider.script("q", Fault.rate_limit())
    limited = post(fake_provider, f"/models/{MODEL}:generateContent", HELLO, {"x-goog-api-key": "k"}, name="q").json()
    real = json.loads(load_cassette(corpus_dir() / "google" / "ruby_llm__chat_real_error_scenarios_gemini_gemini-"
                                    "2_5-flash_handles_context_length_exceeded_errors.yml")[0].response_body)
    assert [d["@type"] for d in limited["error"]["details"]][-1] == real["error"]["details"][-1]["@type"]
    assert limited["error"]["details"][-1]["retryDelay"] == "37s"
