"""Replay every recorded Bedrock exchange of the shared corpus (../shared/corpus/bedrock, the
gzipped langchain-aws cassettes included) through BedrockProvider, over real HTTP
(tests/cassettes.py ReplayServer, streams sent in many small chunks).

Each recorded request body is turned into a CompletionRequest by a naive converter written here;
the provider must send back the same Converse body (up to the differences listed in
``normalised``), to the same path, signed.  Expected answers come from a deliberately naive
decoder of the recorded bytes (struct-unpack the event-stream frames, json.loads each payload,
concatenate the deltas) sharing no code with the library's parsers.

The one InvokeModelWithResponseStream recording is not a protocol BedrockProvider speaks
(model-native bodies, not Converse): its frames are decoded with ``iter_aws_events`` and checked
against the naive decoder, and the Anthropic events they wrap are folded by the Anthropic
stream decoder.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from failover_client import (
    CompletionRequest,
    ImageBlock,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    collect,
)
from failover_client.errors import (
    AuthenticationError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    RateLimitError,
)
from failover_client.providers import BedrockProvider
from failover_client.providers.anthropic import stream_from_wire as anthropic_stream
from failover_client.streaming import iter_aws_events
from failover_client.testing._bedrock import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY

from cassettes import (
    CassetteCase,
    Interaction,
    ReplayServer,
    cassette_id,
    corpus_dir,
    list_cassettes,
    load_cassette,
    split_chunks,
)

INVOKE_MODEL_CASSETTES = (
    "bedrock/otel-python-contrib__test_invoke_model_with_response_stream_with_content[anthropic.claude].yaml",
)
STOP = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens", "stop_sequence": "stop_sequence",
        "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}


def is_converse(interaction: Interaction) -> bool:
    return interaction.path.endswith(("/converse", "/converse-stream"))


@dataclass(frozen=True)
class Case(CassetteCase):

    @property
    def stream(self) -> bool:
        return self.interaction.path.endswith("/converse-stream")

    @property
    def model(self) -> str:
        return unquote(self.interaction.path.split("/")[2])

    @property
    def region(self) -> str:
        host = urlsplit(self.interaction.uri).hostname or ""  # <AWS_REGION> placeholders: any region will do
        parts = host.split(".")
        return parts[1] if len(parts) > 2 and parts[1].replace("-", "").isalnum() else "us-east-1"


def _load() -> tuple[list[Case], dict[str, list[int]]]:
    cases, dropped = [], {}
    for path in list_cassettes("bedrock"):
        name = cassette_id(path)
        for index, interaction in enumerate(load_cassette(path)):
            if is_converse(interaction):
                cases.append(Case(name, index, interaction))
            else:
                dropped.setdefault(name, []).append(index)
    return cases, dropped


CASES, DROPPED = _load()
needs_corpus = pytest.mark.skipif(not (corpus_dir() / "bedrock").is_dir(),
                                  reason=f"cassette corpus not found at {corpus_dir()}")


# --- naive, independent decoding of the recordings ----------------------------------------------


def frames(body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """(string headers, payload) per event-stream message, by plain struct unpacking."""
    out, pos = [], 0
    while pos < len(body):
        total, headers_length = struct.unpack(">II", body[pos : pos + 8])
        raw, headers = body[pos + 12 : pos + 12 + headers_length], {}
        while raw:
            name_length = raw[0]
            name = raw[1 : 1 + name_length].decode()
            assert raw[1 + name_length] == 7, "recordings carry string headers only"
            (value_length,) = struct.unpack(">H", raw[2 + name_length : 4 + name_length])
            headers[name] = raw[4 + name_length : 4 + name_length + value_length].decode()
            raw = raw[4 + name_length + value_length :]
        out.append((headers, body[pos + 12 + headers_length : pos + total - 4]))
        pos += total
    return out


@dataclass
class Expected:
    model: str = ""
    text: str = ""
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)
    thinking: str = ""
    signatures: list[str | None] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str = "other"
    raw_stop_reason: str | None = None


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    read, write = usage.get("cacheReadInputTokens") or 0, usage.get("cacheWriteInputTokens") or 0
    return {"input_tokens": (usage.get("inputTokens") or 0) + read + write,
            "output_tokens": usage.get("outputTokens") or 0, "cache_read_tokens": read, "cache_write_tokens": write}


def _fold_blocks(exp: Expected, blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        if "text" in block:
            exp.text += block["text"]
        elif "toolUse" in block:
            use = block["toolUse"]
            exp.tool_calls.append((use["toolUseId"], use["name"], use["input"]))
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"].get("reasoningText") or {}
            exp.thinking += reasoning.get("text", "")
            exp.signatures.append(reasoning.get("signature"))


def expected_answer(case: Case) -> Expected:
    exp = Expected(model=case.model)
    body = case.interaction.response_body
    if not case.stream:
        data = json.loads(body)
        _fold_blocks(exp, data["output"]["message"]["content"])
        usage, raw = data.get("usage") or {}, data.get("stopReason")
    else:
        blocks: dict[int, dict[str, Any]] = {}
        usage, raw = {}, None
        for headers, payload in frames(body):
            event, data = headers[":event-type"], json.loads(payload)
            if event == "contentBlockStart" and "toolUse" in data["start"]:
                tool = data["start"]["toolUse"]
                blocks[data["contentBlockIndex"]] = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"],
                                                                 "json": ""}}
            elif event == "contentBlockDelta":
                delta = data["delta"]
                block = blocks.setdefault(data["contentBlockIndex"], {})
                if "text" in delta:
                    block["text"] = block.get("text", "") + delta["text"]
                elif "toolUse" in delta:
                    block["toolUse"]["json"] += delta["toolUse"]["input"]
                elif "reasoningContent" in delta:
                    text = block.setdefault("reasoningContent", {"reasoningText": {"text": ""}})["reasoningText"]
                    text["text"] += delta["reasoningContent"].get("text", "")
                    if "signature" in delta["reasoningContent"]:
                        text["signature"] = delta["reasoningContent"]["signature"]
            elif event == "messageStop":
                raw = data["stopReason"]
            elif event == "metadata":
                usage = data["usage"]
        for block in blocks.values():
            if "toolUse" in block:
                block["toolUse"]["input"] = json.loads(block["toolUse"].pop("json") or "{}")
        _fold_blocks(exp, [blocks[i] for i in sorted(blocks)])
    exp.usage = _usage(usage)
    exp.raw_stop_reason = raw
    exp.stop_reason = STOP.get(raw or "", "other")
    return exp


def actual(response: Any) -> Expected:
    return Expected(
        model=response.model, text=response.text,
        tool_calls=[(b.id, b.name, b.input) for b in response.tool_calls], thinking=response.thinking,
        signatures=[b.signature for b in response.content if isinstance(b, ThinkingBlock)],
        usage={k: getattr(response.usage, k) for k in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                       "cache_write_tokens")},
        stop_reason=response.stop_reason.value, raw_stop_reason=response.raw_stop_reason)


def expected_error(interaction: Interaction) -> tuple[type[ProviderError], str, str | None]:
    message = json.loads(interaction.response_body)["message"]
    header = interaction.response_headers.get("x-amzn-errortype")
    code = header.split(":", 1)[0] if header else None
    cls: type[ProviderError]
    if interaction.status == 403 or code in ("UnrecognizedClientException", "AccessDeniedException"):
        cls = AuthenticationError
    elif interaction.status == 429 or code == "ThrottlingException":
        cls = RateLimitError
    elif "too long" in message.lower() or "input tokens exceeded" in message.lower():
        cls = ContextLengthExceededError
    elif interaction.status == 404 or "model identifier is invalid" in message:
        cls = ModelNotFoundError
    elif interaction.status == 400:
        cls = InvalidRequestError
    else:
        raise AssertionError(f"no contract for HTTP {interaction.status}")
    return cls, message, code


# --- rebuilding the request ---------------------------------------------------------------------


def _json_text(value: Any) -> str:
    return json.dumps(value)


def _result_content(items: list[dict[str, Any]]) -> str | list[TextBlock]:
    texts = [item["text"] if "text" in item else _json_text(item["json"]) for item in items]
    return texts[0] if len(texts) == 1 else [TextBlock(t) for t in texts]


def _block(block: dict[str, Any]) -> Any:
    if "text" in block:
        return TextBlock(block["text"])
    if "toolUse" in block:
        use = block["toolUse"]
        return ToolUseBlock(use["toolUseId"], use["name"], use["input"])
    if "toolResult" in block:
        result = block["toolResult"]
        return ToolResultBlock(result["toolUseId"], _result_content(result["content"]),
                               is_error=result.get("status") == "error")
    if "reasoningContent" in block:
        reasoning = block["reasoningContent"]
        if "redactedContent" in reasoning:
            return ThinkingBlock("", None, redacted_data=reasoning["redactedContent"])
        return ThinkingBlock(reasoning["reasoningText"]["text"], reasoning["reasoningText"].get("signature"))
    if "image" in block:
        image = block["image"]
        return ImageBlock.from_base64(image["source"]["bytes"], f"image/{image['format']}")
    raise AssertionError(f"no neutral form for {sorted(block)}")


def rebuild_request(case: Case) -> CompletionRequest:
    body = case.interaction.request_json()
    messages = [Message(Role(m["role"]), [_block(b) for b in m["content"]]) for m in body["messages"]]
    inference = body.get("inferenceConfig") or {}
    system = "".join(b["text"] for b in body.get("system") or ())
    tools, choice = None, None
    if "toolConfig" in body:
        tools = [ToolDefinition(t["toolSpec"]["name"], t["toolSpec"].get("description", ""),
                                t["toolSpec"]["inputSchema"]["json"]) for t in body["toolConfig"]["tools"]]
        wire_choice = body["toolConfig"].get("toolChoice")
        if wire_choice:
            mode = next(iter(wire_choice))
            choice = ToolChoice(mode, wire_choice[mode].get("name"))
    thinking = None
    wire_thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if wire_thinking:
        thinking = ThinkingConfig(budget_tokens=wire_thinking.get("budget_tokens"))
    return CompletionRequest(
        model=case.model, messages=messages, system=system or None, max_tokens=inference.get("maxTokens"),
        temperature=inference.get("temperature"), top_p=inference.get("topP"),
        stop_sequences=inference.get("stopSequences"), tools=tools, tool_choice=choice, thinking=thinking)


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """A Converse body without what our types do not carry: empty ``system`` and
    ``inferenceConfig`` (botocore clients send them, we leave them out), JSON tool results (ours
    are text: the JSON as text), a tool result's default ``status`` (we always send it), and
    Anthropic's ``thinking.display`` option."""
    body = json.loads(json.dumps(body))
    for key in ("system", "inferenceConfig"):
        if body.get(key) in ([], {}):
            del body[key]
    for message in body["messages"]:
        for block in message["content"]:
            result = block.get("toolResult")
            if result is not None:
                result.setdefault("status", "success")
                result["content"] = [{"text": _json_text(i["json"])} if "json" in i else i for i in result["content"]]
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if thinking:
        thinking.pop("display", None)
    return body


# --- the tests ----------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_replay(case: Case) -> None:
    interaction = case.interaction
    request = rebuild_request(case)
    with ReplayServer([interaction], forward_headers=("x-amzn-errortype",)) as server:
        provider = BedrockProvider(base_url=server.url, region=case.region, aws_access_key_id=TEST_ACCESS_KEY_ID,
                                   aws_secret_access_key=TEST_SECRET_ACCESS_KEY, read_timeout=30.0)
        try:
            if interaction.ok:
                response = collect(provider.complete_stream(request)) if case.stream else provider.complete(request)
            else:
                with pytest.raises(ProviderError) as info:
                    collect(provider.complete_stream(request)) if case.stream else provider.complete(request)
        finally:
            provider.close()

    assert len(server.requests) == 1 and not server.unexpected
    sent = server.requests[0]
    assert sent.method == "POST" and unquote(sent.path) == unquote(interaction.path)
    assert f"/{case.region}/bedrock/aws4_request, SignedHeaders=host;x-amz-date," in sent.headers["authorization"]
    assert normalised(sent.json()) == normalised(interaction.request_json())

    if not interaction.ok:
        expected_cls, message, code = expected_error(interaction)
        exc = info.value
        assert type(exc) is expected_cls, f"{case.id}: {type(exc).__name__}: {exc}"
        assert (exc.status, exc.message, exc.provider) == (interaction.status, message, "bedrock")
        if code:
            assert exc.code == code
        return
    assert actual(response) == expected_answer(case)


@needs_corpus
def test_only_the_invoke_model_recording_is_left_out() -> None:
    assert sorted(DROPPED) == sorted(INVOKE_MODEL_CASSETTES)
    on_disk = {cassette_id(p) for p in list_cassettes("bedrock")}
    assert {c.cassette for c in CASES} | set(INVOKE_MODEL_CASSETTES) == on_disk
    assert len(on_disk) == 11 and len(CASES) == 14


@needs_corpus
@pytest.mark.parametrize("name", INVOKE_MODEL_CASSETTES)
def test_invoke_model_stream_frames(name: str) -> None:
    [interaction] = load_cassette(corpus_dir() / name)
    assert interaction.path.endswith("/invoke-with-response-stream") and DROPPED[name] == [0]
    body = interaction.response_body
    ours = [(dict(e.headers), e.payload) for e in iter_aws_events(split_chunks(body))]
    naive = frames(body)
    assert ours == naive and len(ours) == 15
    assert {h[":event-type"] for h, _ in ours} == {"chunk"}
    # Each chunk wraps one Anthropic Messages stream event, base64 in "bytes".
    inner = [json.loads(base64.b64decode(json.loads(payload)["bytes"])) for _, payload in ours]
    text = "".join(e["delta"]["text"] for e in inner if e["type"] == "content_block_delta")
    stop = next(e["delta"]["stop_reason"] for e in inner if e["type"] == "message_delta")
    response = collect(anthropic_stream(((e["type"], json.dumps(e)) for e in inner), "bedrock", "anthropic.claude-v2"))
    assert (response.text, response.raw_stop_reason) == (text, stop)
    assert text.startswith("Okay") and stop == "max_tokens"
