"""Replay every recorded OpenAI Chat Completions and Anthropic Messages exchange of the shared
corpus through the real providers, over real HTTP (tests/cassettes.py ReplayServer).

Every expected value is computed here from the recorded body by a deliberately naive decoder
(split SSE on blank lines, json.loads each data line, concatenate the deltas) that shares no
code with the library's parsers; the providers are only ever fed bytes over a socket.

One test case per recorded interaction (``<provider>/<file>#<index>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from failover_client.errors import (
    AuthenticationError,
    ContentFilteredError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from failover_client.providers.anthropic import AnthropicProvider
from failover_client.providers.openai import OpenAIProvider
from failover_client.types import CompletionRequest, CompletionResponse, Message, ThinkingBlock, collect

from cassettes import CassetteCase, Interaction, ReplayServer, cassette_id, corpus_dir, list_cassettes, load_cassette

PROVIDERS = ("openai", "anthropic")

# Cassettes under openai/ and anthropic/ that are deliberately NOT replayed, because their
# recorded endpoint is not the protocol the provider class speaks (the selection below is by the
# recorded URI path: ``.../chat/completions`` for OpenAIProvider, ``/v1/messages`` for
# AnthropicProvider).  test_excluded_cassettes_are_exactly_what_the_filter_drops keeps these
# lists equal to what the filter leaves out, so nothing is dropped silently.
#
# OpenAI Responses API (POST /v1/responses): a different protocol from Chat Completions
# (``input``/``output`` items, ``response.*`` SSE events, ``output_tokens`` usage), replayed
# through OpenAIResponsesProvider in tests/test_corpus_responses.py.
RESPONSES_API_CASSETTES = (
    "openai/crewai__test_openai_responses_api_with_web_search.yaml",
    "openai/mirascope__test_call__openai_gpt_4o_responses__stream.yaml",
    "openai/ruby_llm__chat_real_error_scenarios_openai_gpt-5-nano_handles_context_length_exceeded_errors.yml",
    "openai/ruby_llm__chat_with_extended_thinking_openai_gpt-5_4_streams_thinking_content_when_available.yml",
)
# Anthropic's legacy Text Completions API (POST /v1/complete, ``event: completion``): not the
# Messages API that AnthropicProvider speaks.
LEGACY_COMPLETIONS_CASSETTES = (
    "anthropic/openinference__test_anthropic_instrumentation_completions_streaming.yaml",
)
EXCLUDED_CASSETTES = RESPONSES_API_CASSETTES + LEGACY_COMPLETIONS_CASSETTES


def is_replayed(provider: str, interaction: Interaction) -> bool:
    """The filter: does this recorded request speak the protocol of our provider class?"""
    if provider == "openai":
        return interaction.path.endswith("/chat/completions")
    return interaction.path == "/v1/messages"


@dataclass(frozen=True)
class Case(CassetteCase):  # cassette: "<provider>/<file>"
    provider: str = ""


def _load_all() -> tuple[list[Case], dict[str, list[int]]]:
    """(cases to replay, {cassette: indexes the filter dropped})."""
    cases: list[Case] = []
    dropped: dict[str, list[int]] = {}
    for provider in PROVIDERS:
        for path in list_cassettes(provider):
            name = cassette_id(path)
            for index, interaction in enumerate(load_cassette(path)):
                if is_replayed(provider, interaction):
                    cases.append(Case(name, index, interaction, provider))
                else:
                    dropped.setdefault(name, []).append(index)
    return cases, dropped


CASES, DROPPED = _load_all()
CORPUS_PRESENT = all((corpus_dir() / p).is_dir() for p in PROVIDERS)
needs_corpus = pytest.mark.skipif(not CORPUS_PRESENT, reason=f"cassette corpus not found at {corpus_dir()}")


# --- naive, independent decoding of the recorded bodies --------------------------------------


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """(event name, data) per event: blank-line separated blocks, ``:`` comments skipped."""
    text = body.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    events = []
    for block in text.split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if data:
            events.append((name, "\n".join(data)))
    return events


@dataclass
class Expected:
    id: str = ""
    model: str = ""
    text: str = ""
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, arguments)
    thinking: str = ""
    signatures: list[str | None] = field(default_factory=list)  # one per non-redacted thinking block
    redacted: list[str] = field(default_factory=list)  # redacted_thinking payloads
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str = "other"
    raw_stop_reason: str | None = None
    refusal: str | None = None


OPENAI_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
               "content_filter": "content_filter"}
ANTHROPIC_STOP = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}


def openai_usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    return {
        "input_tokens": usage.get("prompt_tokens") or 0,
        "output_tokens": usage.get("completion_tokens") or 0,
        "cache_read_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0,
    }


def anthropic_usage(usage: dict[str, Any]) -> dict[str, int]:
    plain = usage.get("input_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    read = usage.get("cache_read_input_tokens") or 0
    return {
        "input_tokens": plain + write + read,
        "output_tokens": usage.get("output_tokens") or 0,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "reasoning_tokens": (usage.get("output_tokens_details") or {}).get("thinking_tokens") or 0,
    }


def openai_stop(exp: Expected, finish: str | None) -> None:
    exp.raw_stop_reason = finish
    if exp.refusal:
        exp.stop_reason = "refusal"
    else:
        exp.stop_reason = OPENAI_STOP.get(finish or "", "other")


def expected_openai(body: bytes, stream: bool) -> Expected:
    exp = Expected()
    if not stream:
        data = json.loads(body)
        exp.id, exp.model = data.get("id") or "", data.get("model") or ""
        choice = next(c for c in data["choices"] if c.get("index", 0) == 0)
        message = choice.get("message") or {}
        exp.text = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        exp.thinking = reasoning if isinstance(reasoning, str) else ""
        exp.tool_calls = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"] or "{}"))
                          for c in message.get("tool_calls") or ()]
        exp.refusal = message.get("refusal") or None
        exp.usage = openai_usage(data.get("usage"))
        openai_stop(exp, choice.get("finish_reason"))
        return exp
    calls: dict[int, list[Any]] = {}
    refusal = ""
    finish = None
    usage = None
    for _event, data in sse_events(body):
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        exp.id = exp.id or chunk.get("id") or ""
        exp.model = exp.model or chunk.get("model") or ""
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # only choice 0 is ours
            delta = choice.get("delta") or {}
            exp.text += delta.get("content") or ""
            refusal += delta.get("refusal") or ""
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            exp.thinking += reasoning if isinstance(reasoning, str) else ""
            for call in delta.get("tool_calls") or ():
                slot = calls.setdefault(call.get("index", 0), [None, None, ""])
                function = call.get("function") or {}
                slot[0] = call.get("id") or slot[0]
                slot[1] = function.get("name") or slot[1]
                slot[2] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
        usage = chunk.get("usage") or usage
    exp.tool_calls = [(i, n, json.loads(a or "{}")) for i, n, a in (calls[k] for k in sorted(calls))]
    exp.refusal = refusal or None
    exp.usage = openai_usage(usage)
    openai_stop(exp, finish)
    return exp


def _anthropic_blocks(exp: Expected, blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            exp.text += block.get("text") or ""
        elif kind == "tool_use":  # client tools only; server_tool_use runs on Anthropic's side
            exp.tool_calls.append((block["id"], block["name"], block.get("input") or {}))
        elif kind == "thinking":
            exp.thinking += block.get("thinking") or ""
            exp.signatures.append(block.get("signature") or None)
        elif kind == "redacted_thinking":
            exp.redacted.append(block["data"])


def expected_anthropic(body: bytes, stream: bool) -> Expected:
    exp = Expected()
    if not stream:
        data = json.loads(body)
        exp.id, exp.model = data.get("id") or "", data.get("model") or ""
        _anthropic_blocks(exp, data["content"])
        usage = data.get("usage") or {}
        raw = data.get("stop_reason")
    else:
        blocks: dict[int, dict[str, Any]] = {}
        usage = {}
        raw = None
        for _event, data in sse_events(body):
            event = json.loads(data)
            kind = event.get("type")
            if kind == "message_start":
                message = event["message"]
                exp.id, exp.model = message.get("id") or "", message.get("model") or ""
                usage = {k: v for k, v in (message.get("usage") or {}).items() if v is not None}
            elif kind == "content_block_start":
                blocks[event["index"]] = dict(event["content_block"], _json="")
            elif kind == "content_block_delta":
                block, delta = blocks[event["index"]], event["delta"]
                if delta["type"] == "text_delta":
                    block["text"] = (block.get("text") or "") + delta["text"]
                elif delta["type"] == "thinking_delta":
                    block["thinking"] = (block.get("thinking") or "") + delta["thinking"]
                elif delta["type"] == "signature_delta":
                    block["signature"] = (block.get("signature") or "") + delta["signature"]
                elif delta["type"] == "input_json_delta":
                    block["_json"] += delta["partial_json"]
            elif kind == "message_delta":
                raw = (event.get("delta") or {}).get("stop_reason") or raw
                usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        for block in blocks.values():
            if block["_json"]:
                block["input"] = json.loads(block["_json"])
        _anthropic_blocks(exp, [blocks[i] for i in sorted(blocks)])
    exp.usage = anthropic_usage(usage)
    exp.raw_stop_reason = raw
    exp.stop_reason = raw if raw in ANTHROPIC_STOP else "other"
    return exp


def expected_error(status: int, body: bytes) -> tuple[type[ProviderError], str]:
    """The class our contract gives this status and body, and the message the body carries."""
    data = json.loads(body)
    error = data.get("error", data) if isinstance(data, dict) else {}
    message = error.get("message") or ""
    marker = f"{error.get('code') or ''} {error.get('type') or ''} {message}".lower()
    cls: type[ProviderError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 404 or "model_not_found" in marker:
        cls = ModelNotFoundError
    elif status in (400, 422):
        if "context_length_exceeded" in marker or "prompt is too long" in marker:
            cls = ContextLengthExceededError
        elif "content_filter" in marker:
            cls = ContentFilteredError
        else:
            cls = InvalidRequestError
    elif status == 429:
        cls = QuotaExceededError if "insufficient_quota" in marker else RateLimitError
    elif status == 529:
        cls = OverloadedError
    elif status >= 500:
        cls = ServerError
    else:
        raise AssertionError(f"no contract for HTTP {status}")
    return cls, message


def actual_of(response: CompletionResponse) -> Expected:
    thinking_blocks = [b for b in response.content if isinstance(b, ThinkingBlock)]
    return Expected(
        id=response.id,
        model=response.model,
        text=response.text,
        tool_calls=[(b.id, b.name, b.input) for b in response.tool_calls],
        thinking=response.thinking,
        signatures=[b.signature or None for b in thinking_blocks if b.redacted_data is None],
        redacted=[b.redacted_data for b in thinking_blocks if b.redacted_data is not None],
        usage={name: getattr(response.usage, name) for name in
               ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")},
        stop_reason=response.stop_reason.value,
        raw_stop_reason=response.raw_stop_reason,
        refusal=response.refusal,
    )


# --- rebuilding the request ------------------------------------------------------------------


def recorded_request(case: Case) -> dict[str, Any]:
    body = case.interaction.request_json()
    assert isinstance(body, dict), f"{case.id}: recorded request body is not a JSON object"
    return body


def recorded_model(case: Case) -> str:
    body = recorded_request(case)
    if body.get("model"):
        return str(body["model"])
    # Azure OpenAI names the deployment in the URL and may omit "model" from the body.
    parts = case.interaction.path.split("/")
    assert "deployments" in parts, f"{case.id}: no model in the recorded request"
    return parts[parts.index("deployments") + 1]


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or ()):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [p.get("text") for p in content or () if isinstance(p, dict) and p.get("type") == "text"]
        if texts:
            return "".join(texts)
    return "hello"


def rebuild_request(case: Case) -> CompletionRequest:
    body = recorded_request(case)
    return CompletionRequest(model=recorded_model(case), messages=[Message.user(last_user_text(body))],
                             stream=bool(body.get("stream", False)))


def make_provider(case: Case, server: ReplayServer) -> OpenAIProvider | AnthropicProvider:
    options: dict[str, Any] = dict(api_key="test-key", connect_timeout=5.0, read_timeout=30.0)
    if case.provider == "openai":
        # The client appends /chat/completions: the base is whatever precedes it on the recorded
        # path (/v1, or Azure's /openai/deployments/<name>).  Azure's ?api-version query cannot be
        # reproduced (base_url may not carry a query), only its path.
        prefix = case.interaction.path[: -len("/chat/completions")]
        return OpenAIProvider(base_url=server.url + prefix, **options)
    # The client appends /v1/messages; pydantic-ai's "?beta=true" query is not reproduced.
    return AnthropicProvider(base_url=server.url, **options)


# --- the tests -------------------------------------------------------------------------------


def compare(case: Case, expected: Expected, actual: Expected) -> None:
    mismatches = {name: (getattr(expected, name), getattr(actual, name))
                  for name in expected.__dataclass_fields__ if getattr(expected, name) != getattr(actual, name)}
    detail = "\n".join(f"  {k}: expected {e!r}\n  {' ' * len(k)}  library  {a!r}" for k, (e, a) in mismatches.items())
    assert not mismatches, f"{case.id}: decoded response differs from the recording:\n{detail}"


@needs_corpus
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_replay(case: Case) -> None:
    interaction = case.interaction
    request = rebuild_request(case)
    recorded = recorded_request(case)
    with ReplayServer([interaction]) as server:
        provider = make_provider(case, server)
        try:
            if interaction.ok:
                if request.stream:
                    response = collect(provider.complete_stream(request))
                else:
                    response = provider.complete(request)
            else:
                expected_cls, expected_message = expected_error(interaction.status, interaction.response_body)
                with pytest.raises(ProviderError) as info:
                    if request.stream:
                        collect(provider.complete_stream(request))
                    else:
                        provider.complete(request)
        finally:
            provider.close()

    # What the provider sent: one POST to the recorded path, with the recorded model and stream flag.
    assert len(server.requests) == 1 and not server.unexpected, server.requests
    sent = server.requests[0]
    assert sent.method == "POST"
    assert sent.path.split("?", 1)[0] == interaction.path
    body = sent.json()
    assert body["model"] == recorded_model(case)
    assert bool(body.get("stream", False)) == bool(recorded.get("stream", False))
    if case.provider == "openai" and request.stream:
        assert body["stream_options"]["include_usage"] is True

    if not interaction.ok:
        exc = info.value
        assert type(exc) is expected_cls, f"{case.id}: {type(exc).__name__} for HTTP {interaction.status}: {exc}"
        assert exc.status == interaction.status
        assert expected_message and exc.message == expected_message
        assert exc.provider == case.provider
        return

    is_sse = interaction.content_type == "text/event-stream"
    assert is_sse == request.stream, f"{case.id}: stream={request.stream} but body is {interaction.content_type}"
    decode = expected_openai if case.provider == "openai" else expected_anthropic
    expected = decode(interaction.response_body, is_sse)
    compare(case, expected, actual_of(response))


@needs_corpus
def test_excluded_cassettes_are_exactly_what_the_filter_drops() -> None:
    # Every interaction of an excluded cassette is dropped, and nothing else is.
    assert sorted(DROPPED) == sorted(EXCLUDED_CASSETTES)
    for name in EXCLUDED_CASSETTES:
        interactions = load_cassette(corpus_dir() / name)
        assert DROPPED[name] == list(range(len(interactions)))
        expected_path = "/v1/responses" if name in RESPONSES_API_CASSETTES else "/v1/complete"
        assert {i.path for i in interactions} == {expected_path}, name
    # And every cassette file under openai/ and anthropic/ is accounted for.
    replayed = {c.cassette for c in CASES}
    on_disk = {cassette_id(p) for provider in PROVIDERS for p in list_cassettes(provider)}
    assert replayed | set(EXCLUDED_CASSETTES) == on_disk
    assert not replayed & set(EXCLUDED_CASSETTES)


@needs_corpus
def test_every_corpus_cassette_loads() -> None:
    """The loader reads every file of the corpus (all providers, all five formats)."""
    formats = set()
    for provider_dir in sorted(p for p in corpus_dir().iterdir() if p.is_dir()):
        for path in list_cassettes(provider_dir.name):
            interactions = load_cassette(path)
            assert interactions, path
            for interaction in interactions:
                formats.add(interaction.format)
                assert interaction.method in ("GET", "POST", "PUT", "DELETE"), path
                assert interaction.uri.startswith(("http://", "https://")), path
                assert 100 <= interaction.status < 600, path
                assert all(k == k.lower() for k in interaction.response_headers), path
                assert "content-encoding" not in interaction.response_headers or not \
                    interaction.response_body.startswith(b"\x1f\x8b"), path
                if interaction.content_type == "application/json":
                    json.loads(interaction.response_body)
    assert {"F-VCR", "F-PAI", "F-OTEL", "F-RUBY", "F-LCGZ"} <= formats


def test_replay_server_chunks_streams_and_records_requests() -> None:
    body = "".join(f'data: {{"n": {i}, "s": "caf\\u00e9 \u00e9"}}\r\n\r\n' for i in range(20)).encode()
    sse = Interaction("POST", "https://h/v1/x", b"{}", 200, {"content-type": "text/event-stream"}, body)
    error = Interaction("POST", "https://h/v1/x", b"{}", 404, {"content-type": "application/json"}, b'{"e": 1}')
    with ReplayServer([sse, error]) as server:
        with requests.Session() as session:
            first = session.post(server.url + "/v1/x?q=1", data=b'{"a": 1}', stream=True)
            assert first.status_code == 200 and first.headers["transfer-encoding"] == "chunked"
            pieces = list(first.raw.stream(65536, decode_content=True))
            second = session.post(server.url + "/v1/y", data=b"{}")
            third = session.post(server.url + "/v1/z", data=b"{}")
    assert b"".join(pieces) == body and len(pieces) > 10
    assert (second.status_code, second.content) == (404, b'{"e": 1}')
    assert third.status_code == 599 and len(server.unexpected) == 1
    assert [r.path for r in server.requests] == ["/v1/x?q=1", "/v1/y", "/v1/z"]
    assert server.requests[0].json() == {"a": 1}

