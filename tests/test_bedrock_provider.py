"""BedrockProvider (Converse / ConverseStream) against the fake server, and the AWS event-stream
decoder under it.

The contract part mirrors tests/test_provider_contract.py: what goes on the wire for each
request feature, what comes back for each reply feature, plain and streamed, with every request
signed (SigV4) and the signature checked by the fake server.  The decoder part feeds
``iter_aws_events`` messages built here by a minimal encoder of our own (and two byte-exact
vectors from protocols.md §7.5), cut at every byte boundary, corrupted, and ten thousand long.
"""

from __future__ import annotations

import binascii
import json
import struct
import tracemalloc
import uuid

import pytest
import requests

from failover_client import (
    AuthenticationError,
    CompletionRequest,
    ContextLengthExceededError,
    ImageBlock,
    InvalidRequestError,
    Message,
    MissingCredentialsError,
    ModelNotFoundError,
    NetworkError,
    NotSupportedError,
    OverloadedError,
    RateLimitError,
    ResponseFormat,
    ServerError,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    collect,
)
from failover_client.errors import InvalidArgumentError, ResponseDecodeError
from failover_client.providers import BedrockProvider
from failover_client.providers.bedrock import response_from_wire, stream_from_wire, usage_from
from failover_client.providers.sigv4 import AwsCredentials, SigV4Signer
from failover_client.streaming import AwsEvent, StreamDecodeError, StreamTooLargeError, iter_aws_events
from failover_client.testing import Fault, Reply, ToolCall
from failover_client.testing._bedrock import (
    TEMPORARY_ACCESS_KEY_ID,
    TEMPORARY_SECRET_ACCESS_KEY,
    TEMPORARY_SESSION_TOKEN,
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
)

from support import WEATHER, make_provider, sent

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "AWS_BEARER_TOKEN_BEDROCK")


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch):
    """Nothing here may depend on the AWS variables of the machine running the tests."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def bedrock(server, **options):
    return make_provider(server, "p", "bedrock", **options)


def ask(text="Hello", model=CLAUDE, **fields):
    return CompletionRequest(model=model, messages=[Message.user(text)], **fields)


# --- answers ------------------------------------------------------------------------------------


def test_text_answer(fake_provider, call):
    fake_provider.script("p", Reply(text="Hello there, friend"))
    response = call(bedrock(fake_provider), ask())
    assert response.text == "Hello there, friend"
    assert response.stop_reason is StopReason.END_TURN and response.raw_stop_reason == "end_turn"
    assert response.provider == "p" and response.model == CLAUDE
    assert response.id == ""  # Converse answers carry no id


def test_stream_yields_text_as_it_arrives_from_converse_stream(fake_provider):
    fake_provider.script("p", Reply(chunks=["one ", "two ", "three"]))
    texts = [c.text for c in bedrock(fake_provider).complete_stream(ask()) if c.text]
    assert texts == ["one ", "two ", "three"]
    request = sent(fake_provider)
    assert request.stream and request.path.endswith("/converse-stream")
    assert request.headers["accept"] == "application/vnd.amazon.eventstream"
    assert "stream" not in request.body  # the path says it, not the body


@pytest.mark.parametrize("model", [
    CLAUDE,
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
])
def test_model_id_is_one_percent_encoded_path_segment_and_the_signature_still_holds(fake_provider, model):
    """The fake server recomputes the signature over the path as sent, encoded once more
    (AWS's rule for every service but S3): a 200 means the double encoding matched."""
    response = bedrock(fake_provider).complete(ask(model=model))
    assert response.text == "Hello!"
    quoted = model.replace(":", "%3A").replace("/", "%2F")
    assert sent(fake_provider).path == f"/p/model/{quoted}/converse"
    assert sent(fake_provider).step == "reply"


def test_usage_follows_one_rule_with_cache_reads_and_writes(fake_provider, call):
    fake_provider.script("p", Reply(usage={"input": 100, "output": 40, "cache_read": 60, "cache_write": 25}))
    response = call(bedrock(fake_provider), ask())
    assert response.usage == Usage(input_tokens=100, output_tokens=40, cache_read_tokens=60, cache_write_tokens=25)


def test_inputtokens_excludes_cache_so_ours_adds_it_back():
    """AWS's prompt-caching guide: total input = inputTokens + cacheReadInputTokens +
    cacheWriteInputTokens (Bedrock's inputTokens is the uncached rest, as Anthropic's is)."""
    wire = {"inputTokens": 15, "outputTokens": 40, "totalTokens": 140, "cacheReadInputTokens": 60,
            "cacheWriteInputTokens": 25}
    assert usage_from(wire) == Usage(input_tokens=100, output_tokens=40, cache_read_tokens=60, cache_write_tokens=25)
    assert usage_from({"inputTokens": 7, "outputTokens": 30, "totalTokens": 37}) == Usage(7, 30)


def test_tool_calls_come_back_parsed(fake_provider, call):
    fake_provider.script("p", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}),
                                                ToolCall("get_weather", {"city": "Oslo", "units": ["c"]})]))
    response = call(bedrock(fake_provider), ask(tools=[WEATHER]))
    assert [(c.name, c.input) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo", "units": ["c"]})]
    assert all(c.id.startswith("tooluse_") for c in response.tool_calls)
    assert len({c.id for c in response.tool_calls}) == 2
    assert response.stop_reason is StopReason.TOOL_USE


def test_thinking_with_its_signature(fake_provider, call):
    fake_provider.script("p", Reply(text="42", thinking="Let me think about it", signature="c2lnbmF0dXJl"))
    request = ask(thinking=ThinkingConfig(budget_tokens=2048), max_tokens=4096)
    response = call(bedrock(fake_provider), request)
    assert response.content[0] == ThinkingBlock("Let me think about it", "c2lnbmF0dXJl")
    assert response.text == "42"
    body = sent(fake_provider).body
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert body["inferenceConfig"] == {"maxTokens": 4096}


@pytest.mark.parametrize("reason, expected", [
    ("max_tokens", StopReason.MAX_TOKENS),
    ("stop_sequence", StopReason.STOP_SEQUENCE),
    ("content_filter", StopReason.CONTENT_FILTER),  # Bedrock: content_filtered
    ("refusal", StopReason.CONTENT_FILTER),  # Bedrock: guardrail_intervened
])
def test_stop_reasons(fake_provider, call, reason, expected):
    fake_provider.script("p", Reply(stop_reason=reason))
    assert call(bedrock(fake_provider), ask()).stop_reason is expected


@pytest.mark.parametrize("raw", ["malformed_model_output", "malformed_tool_use", "model_context_window_exceeded"])
def test_other_stop_reasons_keep_the_raw_value(raw):
    data = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": raw}
    response = response_from_wire(data, "bedrock", NOVA)
    assert (response.stop_reason, response.raw_stop_reason) == (StopReason.OTHER, raw)


def test_an_answer_without_stop_reason_never_finished():
    data = {"output": {"message": {"role": "assistant", "content": [{"text": "half an ans"}]}}}
    with pytest.raises(ResponseDecodeError, match="stopReason"):
        response_from_wire(data, "bedrock", NOVA)


# --- what goes on the wire ----------------------------------------------------------------------


def test_tools_and_tool_choice_on_the_wire(fake_provider):
    provider = bedrock(fake_provider)
    spec = {"toolSpec": {"name": "get_weather", "description": "Current weather",
                         "inputSchema": {"json": WEATHER.input_schema}}}
    for choice, wire in [(ToolChoice.auto(), {"auto": {}}), (ToolChoice.any(), {"any": {}}),
                         (ToolChoice.tool("get_weather"), {"tool": {"name": "get_weather"}})]:
        provider.complete(ask(tools=[WEATHER], tool_choice=choice))
        assert sent(fake_provider).body["toolConfig"] == {"tools": [spec], "toolChoice": wire}
    provider.complete(ask(tools=[WEATHER]))
    assert sent(fake_provider).body["toolConfig"] == {"tools": [spec]}
    provider.complete(ask(tools=[WEATHER], tool_choice=ToolChoice.none()))
    assert "toolConfig" not in sent(fake_provider).body  # Converse has no "none": no tools shown


def test_tool_round_trip_messages(fake_provider):
    history = [
        Message.user("Weather in Paris and Oslo?"),
        Message.assistant([TextBlock("Checking."), ToolUseBlock("call_1", "get_weather", {"city": "Paris"}),
                           ToolUseBlock("call_2", "get_weather", {"city": "Oslo"})]),
        Message.tool_results([ToolResultBlock("call_1", "18C, cloudy"),
                              ToolResultBlock("call_2", [TextBlock("no data")], is_error=True)]),
    ]
    bedrock(fake_provider).complete(CompletionRequest(CLAUDE, history, tools=[WEATHER]))
    messages = sent(fake_provider).body["messages"]
    assert messages[1] == {"role": "assistant", "content": [
        {"text": "Checking."},
        {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {"city": "Oslo"}}}]}
    assert messages[2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18C, cloudy"}], "status": "success"}},
        {"toolResult": {"toolUseId": "call_2", "content": [{"text": "no data"}], "status": "error"}}]}


def test_tool_choice_none_with_tool_history_is_refused_before_sending(fake_provider):
    history = [Message.user("q"), Message.assistant([ToolUseBlock("c1", "get_weather", {})]),
               Message.tool_results([ToolResultBlock("c1", "ok")])]
    with pytest.raises(NotSupportedError, match="tool_choice 'none'"):
        bedrock(fake_provider).complete(CompletionRequest(CLAUDE, history, tools=[WEATHER],
                                                          tool_choice=ToolChoice.none()))
    assert fake_provider.requests == []


def test_images_as_bytes_and_s3_locations(fake_provider):
    message = Message.user([TextBlock("What is this?"), ImageBlock.from_base64("iVBORw0K", "image/png"),
                            ImageBlock.from_url("s3://my-bucket/cats/cat.JPEG")])
    bedrock(fake_provider).complete(CompletionRequest(CLAUDE, [message]))
    parts = sent(fake_provider).body["messages"][0]["content"]
    assert parts[1] == {"image": {"format": "png", "source": {"bytes": "iVBORw0K"}}}
    assert parts[2] == {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://my-bucket/cats/cat.JPEG"}}}}


@pytest.mark.parametrize("image, complaint", [
    (ImageBlock.from_url("https://example.com/cat.jpg"), "s3://"),
    (ImageBlock.from_base64("AAAA", "image/tiff"), "image/tiff"),
])
def test_images_bedrock_cannot_take_are_refused_before_sending(fake_provider, image, complaint):
    with pytest.raises(NotSupportedError, match=complaint):
        bedrock(fake_provider).complete(CompletionRequest(CLAUDE, [Message.user([image])]))
    assert fake_provider.requests == []


def test_system_inference_config_and_metadata(fake_provider):
    bedrock(fake_provider).complete(ask(system="Be terse.", temperature=0.3, top_p=0.8, stop_sequences=["END"],
                                        max_tokens=50, metadata={"tenant": "t1"}))
    body = sent(fake_provider).body
    assert body["system"] == [{"text": "Be terse."}]
    assert body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.3, "topP": 0.8, "stopSequences": ["END"]}
    assert body["requestMetadata"] == {"tenant": "t1"}
    assert "modelId" not in body and "model" not in body


def test_cache_marks_become_cache_points(fake_provider):
    request = CompletionRequest(
        CLAUDE, [Message.user([TextBlock("long document", cache=True), TextBlock("question")])],
        system=[TextBlock("You are exact.", cache=True)], tools=[ToolDefinition("f", "", cache=True)])
    bedrock(fake_provider).complete(request)
    body = sent(fake_provider).body
    point = {"cachePoint": {"type": "default"}}
    assert body["system"] == [{"text": "You are exact."}, point]
    assert body["messages"][0]["content"] == [{"text": "long document"}, point, {"text": "question"}]
    assert body["toolConfig"]["tools"][1] == point


def test_extra_is_merged_into_the_wire_body(fake_provider):
    bedrock(fake_provider).complete(ask(extra={"performanceConfig": {"latency": "optimized"},
                                               "additionalModelRequestFields": {"top_k": 5}}))
    body = sent(fake_provider).body
    assert body["performanceConfig"] == {"latency": "optimized"}
    assert body["additionalModelRequestFields"] == {"top_k": 5}


def test_json_schema_output(fake_provider):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    provider = bedrock(fake_provider)
    provider.complete(ask(response_format=ResponseFormat.json_schema(schema, name="person")))
    text_format = sent(fake_provider).body["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    assert text_format["structure"]["jsonSchema"]["name"] == "person"
    assert json.loads(text_format["structure"]["jsonSchema"]["schema"]) == schema  # a JSON string on the wire
    with pytest.raises(NotSupportedError, match="json_schema"):
        provider.complete(ask(response_format=ResponseFormat.json()))
    assert len(fake_provider.requests) == 1


def test_thinking_variants_and_blocks_sent_back_unchanged(fake_provider):
    provider = bedrock(fake_provider)
    provider.complete(ask(thinking=ThinkingConfig()))
    assert sent(fake_provider).body["additionalModelRequestFields"] == {"thinking": {"type": "adaptive"}}
    provider.complete(ask(thinking=ThinkingConfig(enabled=False)))
    assert sent(fake_provider).body["additionalModelRequestFields"] == {"thinking": {"type": "disabled"}}
    provider.complete(ask(model=NOVA, thinking=ThinkingConfig(enabled=False)))
    assert "additionalModelRequestFields" not in sent(fake_provider).body  # nothing to turn off
    history = [Message.user("q"), Message.assistant([ThinkingBlock("t", "sig"), ThinkingBlock("", redacted_data="UkVE"),
                                                     TextBlock("a")]), Message.user("and?")]
    provider.complete(CompletionRequest(CLAUDE, history))
    assert sent(fake_provider).body["messages"][1]["content"][:2] == [
        {"reasoningContent": {"reasoningText": {"text": "t", "signature": "sig"}}},
        {"reasoningContent": {"redactedContent": "UkVE"}}]


def test_thinking_settings_bedrock_cannot_express_are_refused_before_sending(fake_provider):
    provider = bedrock(fake_provider)
    with pytest.raises(NotSupportedError, match="additionalModelRequestFields"):
        provider.complete(ask(model=NOVA, thinking=ThinkingConfig(budget_tokens=1024)))
    with pytest.raises(NotSupportedError, match="additionalModelRequestFields"):
        provider.complete(ask(model=NOVA, thinking=ThinkingConfig(effort="low")))
    with pytest.raises(InvalidArgumentError, match="budget_tokens"):
        provider.complete(ask(max_tokens=1000, thinking=ThinkingConfig(budget_tokens=2000)))
    assert fake_provider.requests == []


# --- authentication -----------------------------------------------------------------------------


def signed_headers(request):
    authorization = request.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=")
    return authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")


def test_requests_are_signed_for_service_bedrock_in_the_region(fake_provider):
    bedrock(fake_provider, region="eu-west-3").complete(ask())
    request = sent(fake_provider)
    assert f"Credential={TEST_ACCESS_KEY_ID}/" in request.headers["authorization"]
    assert "/eu-west-3/bedrock/aws4_request," in request.headers["authorization"]
    assert signed_headers(request) == ["host", "x-amz-date"]
    assert "x-amz-security-token" not in request.headers


def test_a_wrong_secret_fails_the_servers_signature_check(fake_provider, call):
    provider = bedrock(fake_provider, aws_secret_access_key="not-the-right-secret/0123456789abcdefghij")
    with pytest.raises(AuthenticationError) as info:
        call(provider, ask())
    assert info.value.status == 403 and info.value.code == "InvalidSignatureException"
    assert "signature we calculated does not match" in info.value.message
    assert "not-the-right-secret" not in f"{info.value} {info.value!r} {provider!r}"


def test_an_unknown_access_key_is_not_recognised(fake_provider):
    with pytest.raises(AuthenticationError) as info:
        bedrock(fake_provider, aws_access_key_id="AKIAUNKNOWNKEY000000").complete(ask())
    assert info.value.code == "UnrecognizedClientException"


def test_temporary_credentials_send_and_sign_the_session_token(fake_provider, call):
    provider = bedrock(fake_provider, aws_access_key_id=TEMPORARY_ACCESS_KEY_ID,
                       aws_secret_access_key=TEMPORARY_SECRET_ACCESS_KEY, aws_session_token=TEMPORARY_SESSION_TOKEN)
    assert call(provider, ask()).text == "Hello!"
    request = sent(fake_provider)
    assert request.headers["x-amz-security-token"] == TEMPORARY_SESSION_TOKEN
    assert "x-amz-security-token" in signed_headers(request)
    wrong = bedrock(fake_provider, aws_access_key_id=TEMPORARY_ACCESS_KEY_ID,
                    aws_secret_access_key=TEMPORARY_SECRET_ACCESS_KEY, aws_session_token="an-expired-token")
    with pytest.raises(AuthenticationError, match="security token included in the request is invalid"):
        wrong.complete(ask())


def test_a_stale_signature_is_refused_by_the_fake_server(fake_provider):
    url = fake_provider.base_url("p", "bedrock") + f"/model/{NOVA.replace(':', '%3A')}/converse"
    body = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    keys = AwsCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    for age, accepted in ((0, True), (3600, False)):
        signer = SigV4Signer(keys, "us-east-1", "bedrock", clock=lambda age=age: __import__("time").time() - age)
        answer = requests.post(url, data=body, headers={"Content-Type": "application/json",
                                                        **signer.sign("POST", url, body)}, timeout=10)
        assert (answer.status_code == 200) is accepted
    assert answer.headers["x-amzn-errortype"].startswith("InvalidSignatureException:")
    assert "Signature expired" in answer.json()["message"]


def test_bedrock_api_key_is_a_bearer_token(fake_provider, call):
    key = "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t"
    provider = bedrock(fake_provider, api_key=key, aws_access_key_id=None, aws_secret_access_key=None)
    assert call(provider, ask()).text == "Hello!"
    request = sent(fake_provider)
    assert request.headers["authorization"] == f"Bearer {key}"
    assert "x-amz-date" not in request.headers
    fake_provider.require_key("p", "bedrock-api-key-another-one")
    with pytest.raises(AuthenticationError) as info:
        call(provider, ask())
    assert info.value.status == 403 and key not in f"{info.value} {info.value!r}"


def test_secrets_echoed_by_an_error_body_are_redacted(fake_provider):
    provider = bedrock(fake_provider, aws_access_key_id=TEMPORARY_ACCESS_KEY_ID,
                       aws_secret_access_key=TEMPORARY_SECRET_ACCESS_KEY, aws_session_token=TEMPORARY_SESSION_TOKEN)
    fake_provider.script("p", Fault.status(400, message=f"bad token {TEMPORARY_SESSION_TOKEN} for "
                                                        f"{TEMPORARY_SECRET_ACCESS_KEY}"))
    with pytest.raises(InvalidRequestError) as info:
        provider.complete(ask())
    text = f"{info.value} {info.value!r} {info.value.body}"
    assert TEMPORARY_SESSION_TOKEN not in text and TEMPORARY_SECRET_ACCESS_KEY not in text
    assert "[REDACTED]" in info.value.message


def test_credentials_and_region_from_the_environment(fake_provider, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEMPORARY_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEMPORARY_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TEMPORARY_SESSION_TOKEN)
    provider = BedrockProvider(base_url=fake_provider.base_url("p", "bedrock"), name="p")
    assert provider.complete(ask()).text == "Hello!"
    assert "/us-west-2/bedrock/aws4_request" in sent(fake_provider).headers["authorization"]
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-from-the-environment")
    BedrockProvider(base_url=fake_provider.base_url("p", "bedrock"), name="p").complete(ask())
    assert sent(fake_provider).headers["authorization"] == "Bearer bedrock-api-key-from-the-environment"


def test_missing_credentials_or_region_name_what_to_set(fake_provider, monkeypatch):
    with pytest.raises(MissingCredentialsError) as info:
        BedrockProvider(base_url=fake_provider.base_url("p", "bedrock"), region="us-east-1").complete(ask())
    for name in ("AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert name in str(info.value)
    with pytest.raises(MissingCredentialsError, match="AWS_REGION"):
        BedrockProvider(aws_access_key_id=TEST_ACCESS_KEY_ID, aws_secret_access_key="x").complete(ask())
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-abc")
    with pytest.raises(MissingCredentialsError, match="AWS_REGION"):
        BedrockProvider().complete(ask())
    assert fake_provider.requests == []


def test_endpoint_from_the_region_and_bad_arguments():
    assert BedrockProvider(region="eu-west-3").base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    with pytest.raises(InvalidArgumentError, match="region"):
        BedrockProvider(region="us-east-1.attacker.example")
    with pytest.raises(InvalidArgumentError, match="not both"):
        BedrockProvider(api_key="k", aws_access_key_id="AKID", aws_secret_access_key="s")
    with pytest.raises(InvalidArgumentError, match="go together"):
        BedrockProvider(region="us-east-1", aws_access_key_id="AKID")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, error_type, message, expected", [
    (400, "ThrottlingException", "Too many tokens, please wait before trying again.", RateLimitError),
    (429, "ModelNotReadyException", "Model is not ready for inference. Wait and try your request again.",
     OverloadedError),
    (503, "ServiceUnavailableException", "Bedrock is unable to process your request.", OverloadedError),
    (403, "AccessDeniedException", "You don't have access to the model with the specified model ID.",
     AuthenticationError),
    (400, "ValidationException", "The model returned the following errors: prompt is too long: 227255 tokens > "
                                 "200000 maximum", ContextLengthExceededError),
    (400, "ValidationException", "The model returned the following errors: Input Tokens Exceeded: Number of "
                                 "input tokens exceeds maximum length.", ContextLengthExceededError),
    (400, "ValidationException", "The provided model identifier is invalid.", ModelNotFoundError),
])
def test_the_error_type_header_classifies_errors(fake_provider, call, status, error_type, message, expected):
    fake_provider.script("p", Fault.status(status, error_type=error_type, message=message))
    with pytest.raises(expected) as info:
        call(bedrock(fake_provider), ask())
    assert type(info.value) is expected
    assert (info.value.status, info.value.code, info.value.message) == (status, error_type, message)


@pytest.mark.parametrize("exception_type, message, expected", [
    ("throttlingException", "Too many requests, please wait before trying again.", RateLimitError),
    ("serviceUnavailableException", "Bedrock is unable to process your request.", OverloadedError),
    ("modelStreamErrorException", "The model stream failed.", ServerError),
    ("internalServerException", "An internal server error occurred.", ServerError),
    ("validationException", "Input is too long for requested model.", ContextLengthExceededError),
    ("validationException", "Malformed input request.", InvalidRequestError),
])
def test_exception_messages_mid_stream(fake_provider, exception_type, message, expected):
    fake_provider.script("p", Fault.stream_error_event(3, exception_type, message))
    received = []
    with pytest.raises(expected) as info:
        for chunk in bedrock(fake_provider).complete_stream(ask()):
            received.append(chunk)
    assert type(info.value) is expected
    assert info.value.message == message and info.value.code == exception_type and info.value.status is None
    assert "".join(c.text or "" for c in received) == "Hello!"  # what came before the exception


# --- the stream's end, decoded from messages built here ------------------------------------------


def event(event_type, body):
    return AwsEvent({":event-type": event_type, ":message-type": "event"}, json.dumps(body).encode())


START = event("messageStart", {"role": "assistant"})
DELTA = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
STOP = event("messageStop", {"stopReason": "end_turn"})
METADATA = event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4}})


def test_the_stream_ends_at_metadata_without_reading_further():
    def events():
        yield from (START, DELTA, STOP, METADATA)
        raise AssertionError("read past metadata")

    response = collect(stream_from_wire(events(), "bedrock", NOVA))
    assert response.text == "Hi" and response.usage == Usage(3, 1)


def test_an_end_right_after_message_stop_is_complete_and_before_it_is_not():
    response = collect(stream_from_wire(iter([START, DELTA, STOP]), "bedrock", NOVA))
    assert (response.text, response.stop_reason, response.usage) == ("Hi", StopReason.END_TURN, Usage())
    with pytest.raises(NetworkError, match="before messageStop"):
        collect(stream_from_wire(iter([START, DELTA]), "bedrock", NOVA))


def test_redacted_reasoning_and_error_messages_in_a_stream():
    redacted = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {
        "redactedContent": "ZW5jcnlwdGVk"}}})
    response = collect(stream_from_wire(iter([START, redacted, DELTA, STOP]), "bedrock", CLAUDE))
    assert response.content == [ThinkingBlock("", None, redacted_data="ZW5jcnlwdGVk"), TextBlock("Hi")]
    failure = AwsEvent({":message-type": "error", ":error-code": "InternalFailure",
                        ":error-message": "We encountered an internal error."}, b"")
    with pytest.raises(ServerError, match="internal error") as info:
        collect(stream_from_wire(iter([START, failure]), "bedrock", CLAUDE))
    assert info.value.code == "InternalFailure"


# --- the event-stream decoder -------------------------------------------------------------------

# protocols.md §7.5: byte-exact messages that botocore's EventStreamBuffer decodes.
DELTA_VECTOR = bytes.fromhex(
    "0000009e00000057fe1b824f"
    "0b3a6576656e742d747970650700116" "36f6e74656e74426c6f636b44656c7461"
    "0d3a636f6e74656e742d74797065070010" "6170706c69636174696f6e2f6a736f6e"
    "0d3a6d6573736167652d74797065070005" "6576656e74"
    "7b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a224869227d2c2270223a22616263227d"
    "9343f010")
EXCEPTION_VECTOR = bytes.fromhex(
    "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e"
    "67457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a"
    "736f6e0d3a6d6573736167652d747970650700096578636570" "74696f6e7b226d657373616765223a"
    "22546f6f206d616e792072657175657374732c20706c6561736520776169742062656" "66f72652074"
    "7279696e6720616761696e2e227de8ffb26a")


def header(name, kind, value=None):
    """One header in the wire format, written independently of the library's decoder."""
    raw = bytes([len(name)]) + name.encode() + bytes([kind])
    fixed = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}
    if kind in fixed:
        return raw + struct.pack(fixed[kind], value)
    if kind in (6, 7):
        data = value.encode() if kind == 7 else value
        return raw + struct.pack(">H", len(data)) + data
    if kind == 9:
        return raw + value.bytes
    return raw  # 0 and 1: true and false carry no value


def message(headers, payload):
    block = b"".join(headers)
    prelude = struct.pack(">II", 16 + len(block) + len(payload), len(block))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + block + payload
    return body + struct.pack(">I", binascii.crc32(body))


def json_event(event_type, body):
    return message([header(":event-type", 7, event_type), header(":content-type", 7, "application/json"),
                    header(":message-type", 7, "event")], json.dumps(body).encode())


def decoded(chunks, **limits):
    return [(dict(e.headers), e.payload) for e in iter_aws_events(chunks, **limits)]


def test_the_documented_vectors_decode():
    (delta, exc) = decoded([DELTA_VECTOR + EXCEPTION_VECTOR])
    assert delta == ({":event-type": "contentBlockDelta", ":content-type": "application/json",
                      ":message-type": "event"}, b'{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abc"}')
    assert exc == ({":exception-type": "throttlingException", ":content-type": "application/json",
                    ":message-type": "exception"}, b'{"message":"Too many requests, please wait before trying again."}')
    assert (len(DELTA_VECTOR), len(EXCEPTION_VECTOR)) == (158, 178)


def test_every_header_type():
    when, ident = 1_700_000_000_123, uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = [header("t", 0), header("f", 1), header("byte", 2, -7), header("short", 3, -300),
               header("int", 4, 2**31 - 1), header("long", 5, -(2**63)), header("bytes", 6, b"\x00\xff"),
               header("str", 7, "caf\u00e9 \u2028"), header("ts", 8, when), header("id", 9, ident)]
    [(got, payload)] = decoded([message(headers, b"")])
    assert got == {"t": True, "f": False, "byte": -7, "short": -300, "int": 2**31 - 1, "long": -(2**63),
                   "bytes": b"\x00\xff", "str": "caf\u00e9 \u2028", "ts": when, "id": ident}
    assert payload == b""


def test_split_at_every_byte_boundary_and_byte_by_byte():
    stream = (json_event("messageStart", {"role": "assistant"}) + DELTA_VECTOR
              + json_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "\u00e9\u2028 ok"}})
              + EXCEPTION_VECTOR)
    whole = decoded([stream])
    assert [h.get(":event-type") or h[":exception-type"] for h, _ in whole] == [
        "messageStart", "contentBlockDelta", "contentBlockDelta", "throttlingException"]
    for cut in range(1, len(stream)):
        assert decoded([stream[:cut], b"", stream[cut:]]) == whole, cut
    assert decoded(stream[i : i + 1] for i in range(len(stream))) == whole


def test_bad_checksums_are_fatal_and_say_which():
    prelude = bytearray(DELTA_VECTOR)
    prelude[2] ^= 0x01  # the total length: covered by the prelude CRC
    with pytest.raises(StreamDecodeError, match="message 0: prelude CRC32 mismatch"):
        decoded([bytes(prelude)])
    payload = bytearray(DELTA_VECTOR)
    payload[120] ^= 0x20  # a payload byte: only the message CRC notices
    with pytest.raises(StreamDecodeError, match="message 1: message CRC32 mismatch"):
        decoded([EXCEPTION_VECTOR + bytes(payload)])


@pytest.mark.parametrize("raw, complaint", [
    (header("a", 7, "x") + header("a", 7, "y"), "appears twice"),
    (header("a", 12), "unknown header type 12"),
    (header("a", 7, "xyz")[:-1], "malformed headers"),
    (bytes([9]) + b"short", "malformed headers"),
])
def test_malformed_headers_are_refused(raw, complaint):
    with pytest.raises(StreamDecodeError, match=complaint):
        decoded([message([raw], b"{}")])


def test_a_stream_ending_inside_a_message_is_an_error():
    with pytest.raises(StreamDecodeError, match="ended inside message 1"):
        decoded([DELTA_VECTOR, EXCEPTION_VECTOR[:40]])
    assert decoded([]) == [] and decoded([b""]) == []


def test_huge_payloads_arrive_whole_and_impossible_lengths_are_refused_at_once():
    payload = bytes(range(256)) * (20 * 4096)  # 20 MiB, under botocore's 24 MiB limit
    big = message([header(":event-type", 7, "chunk")], payload)
    pieces = [big[i : i + 65536] for i in range(0, len(big), 65536)]
    [(headers, got)] = decoded(pieces, max_event=32 * 1024 * 1024)  # allowed past the 16 MiB default
    assert headers == {":event-type": "chunk"} and got == payload
    with pytest.raises(StreamTooLargeError, match="max_event_bytes"):  # the default refuses it from its prelude
        decoded(iter(pieces[:1]))

    def too_big():
        prelude = struct.pack(">II", 16 + 25 * 1024 * 1024, 0)
        yield prelude + struct.pack(">I", binascii.crc32(prelude))
        raise AssertionError("the decoder waited for a message it must refuse")

    with pytest.raises(StreamDecodeError, match="impossible lengths"):
        decoded(too_big())


def test_ten_thousand_messages_in_constant_memory():
    """Each message has its own header block (a sequence number), so neither the buffer nor the
    cache of header blocks may grow with the stream: ~2.4 MB pass through, little stays."""
    def stream():
        for i in range(10_000):
            raw = message([header(":event-type", 7, "contentBlockDelta"), header(":seq", 4, i)],
                          json.dumps({"contentBlockIndex": 0, "delta": {"text": f"token {i} "}}).encode())
            yield raw[:7]  # every message arrives in two pieces, the cut inside its prelude
            yield raw[7:]

    tracemalloc.start()
    try:
        count = total = 0
        for event_ in iter_aws_events(stream()):
            count += 1
            total += len(event_.payload)
            assert event_.headers[":seq"] == count - 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 10_000 and total > 500_000
    assert peak < 200_000, peak
