"""Replay every recorded Cohere and Ollama exchange of the shared corpus, and the Azure OpenAI
ones under openai/, through the real providers over real HTTP (tests/cassettes.py ReplayServer).

Which provider answers a recording is decided by its recorded URL: Cohere ``/v2/chat`` goes to
CohereProvider; Ollama ``/api/chat`` to OllamaProvider and Ollama's OpenAI-compatible
``/v1/chat/completions`` to OpenAIProvider (base URL ending in ``/v1``); any
``*.openai.azure.com`` recording to AzureOpenAIProvider.  Two recordings speak APIs none of our
classes implements (NOT_DRIVEN below); their frames are still decoded and checked.

Every expected value is computed here from the recorded body by naive decoding (split SSE on
blank lines, split NDJSON on newlines, json.loads, concatenate) that shares no code with the
library's parsers; OpenAI-shaped bodies use the naive decoder of test_corpus_openai_anthropic.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from test_corpus_openai_anthropic import Case, Expected, actual_of, compare, expected_openai, sse_events

from failover_client.errors import (
    AuthenticationError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
)
from failover_client.provider import HttpProvider
from failover_client.providers.azure import AzureOpenAIProvider
from failover_client.providers.cohere import CohereProvider
from failover_client.providers.ollama import OllamaProvider
from failover_client.providers.openai import OpenAIProvider
from failover_client.streaming import iter_ndjson
from failover_client.types import CompletionRequest, Message, ToolDefinition, collect

from cassettes import Interaction, ReplayServer, cassette_id, corpus_dir, list_cassettes, load_cassette, split_chunks

# Recordings of APIs that no provider class here speaks, and why.  Their NDJSON frames are
# decoded by test_not_driven_recordings_still_decode; test_not_driven_is_exactly_what_the_filter_drops
# keeps this table equal to what the routing below leaves out, so nothing is dropped silently.
NOT_DRIVEN = {
    "cohere/openllmetry__test_cohere_chat_legacy_with_streaming.yaml": (
        "Cohere's v1 chat API (POST /v1/chat, `message` + `chat_history`, application/stream+json events "
        "stream-start/text-generation/stream-end): CohereProvider implements v2 only, Cohere's current API."),
    "ollama/openllmetry__test_ollama_streaming_generation_legacy.yaml": (
        "Ollama's /api/generate (a bare `prompt`, `response` fragments): prompt completion, not chat; "
        "OllamaProvider speaks /api/chat."),
}
AZURE_HOST = ".openai.azure.com"


def route(provider_dir: str, interaction: Interaction) -> str | None:
    """The protocol that replays a recording: "cohere", "ollama", "openai", "azure", or None."""
    host = urlsplit(interaction.uri).hostname or ""
    if provider_dir == "openai":
        return "azure" if host.endswith(AZURE_HOST) else None
    if provider_dir == "cohere":
        return "cohere" if interaction.path == "/v2/chat" else None
    if interaction.path == "/api/chat":
        return "ollama"
    return "openai" if interaction.path == "/v1/chat/completions" else None


def _load_all() -> tuple[list[Case], dict[str, list[int]]]:
    """(cases to replay, each naming the protocol that replays it as its ``provider``,
    {cohere/ollama cassette: indexes no provider replays})."""
    cases: list[Case] = []
    dropped: dict[str, list[int]] = {}
    for provider_dir in ("cohere", "ollama", "openai"):
        for path in list_cassettes(provider_dir):
            name = cassette_id(path)
            for index, interaction in enumerate(load_cassette(path)):
                protocol = route(provider_dir, interaction)
                if protocol is not None:
                    cases.append(Case(name, index, interaction, protocol))
                elif provider_dir != "openai":  # openai/ is test_corpus_openai_anthropic's
                    dropped.setdefault(name, []).append(index)
    return cases, dropped


CASES, DROPPED = _load_all()
needs_corpus = pytest.mark.skipif(not all((corpus_dir() / d).is_dir() for d in ("cohere", "ollama", "openai")),
                                  reason=f"cassette corpus not found at {corpus_dir()}")


# --- naive, independent decoding of the recorded bodies --------------------------------------

COHERE_STOP = {"COMPLETE": "end_turn", "STOP_SEQUENCE": "stop_sequence", "MAX_TOKENS": "max_tokens",
               "TOOL_CALL": "tool_use"}
OLLAMA_STOP = {"stop": "end_turn", "length": "max_tokens"}


def cohere_usage(usage: dict[str, Any]) -> dict[str, int]:
    tokens = usage.get("tokens") or {}
    return {"input_tokens": int(tokens.get("input_tokens") or 0),
            "output_tokens": int(tokens.get("output_tokens") or 0),
            "cache_read_tokens": int(usage.get("cached_tokens") or 0),
            "cache_write_tokens": 0, "reasoning_tokens": 0}


def expected_cohere(body: bytes, stream: bool, model: str) -> Expected:
    exp = Expected(model=model)
    if not stream:
        data = json.loads(body)
        message = data["message"]
        exp.id = data["id"]
        exp.text = (message.get("tool_plan") or "") + "".join(
            c["text"] for c in message.get("content") or () if c["type"] == "text")
        exp.thinking = "".join(c["thinking"] for c in message.get("content") or () if c["type"] == "thinking")
        exp.tool_calls = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                          for c in message.get("tool_calls") or ()]
        finish, usage = data["finish_reason"], data.get("usage") or {}
    else:
        calls: dict[int, list[Any]] = {}
        finish, usage = None, {}
        for _name, data in sse_events(body):
            if data == "[DONE]":
                continue
            event = json.loads(data)
            delta = event.get("delta") or {}
            message = delta.get("message") or {}
            if event["type"] == "message-start":
                exp.id = event["id"]
            elif event["type"] in ("content-start", "content-delta"):
                exp.text += message["content"].get("text") or ""
                exp.thinking += message["content"].get("thinking") or ""
            elif event["type"] == "tool-plan-delta":
                exp.text += message["tool_plan"]
            elif event["type"] == "tool-call-start":
                call = message["tool_calls"]
                calls[event["index"]] = [call["id"], call["function"]["name"], call["function"]["arguments"]]
            elif event["type"] == "tool-call-delta":
                calls[event["index"]][2] += message["tool_calls"]["function"]["arguments"]
            elif event["type"] == "message-end":
                finish, usage = delta["finish_reason"], delta.get("usage") or {}
        exp.tool_calls = [(i, n, json.loads(a)) for i, n, a in (calls[k] for k in sorted(calls))]
    exp.usage = cohere_usage(usage)
    exp.raw_stop_reason = finish
    exp.stop_reason = COHERE_STOP.get(finish, "other")
    return exp


def expected_ollama(body: bytes, stream: bool) -> Expected:
    exp = Expected()
    objects = [json.loads(line) for line in body.decode().split("\n") if line.strip()]
    assert stream or len(objects) == 1
    calls = []
    for obj in objects:
        message = obj.get("message") or {}
        exp.text += message.get("content") or ""
        exp.thinking += message.get("thinking") or ""
        calls += message.get("tool_calls") or []
    last = objects[-1]
    assert last["done"] is True
    exp.model = last["model"]
    exp.tool_calls = [(c.get("id") or f"call_{i}", c["function"]["name"], c["function"]["arguments"])
                      for i, c in enumerate(calls)]
    exp.usage = {"input_tokens": last.get("prompt_eval_count") or 0, "output_tokens": last.get("eval_count") or 0,
                 "cache_read_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0}
    exp.raw_stop_reason = last.get("done_reason")
    stop = OLLAMA_STOP.get(exp.raw_stop_reason or "", "other")
    exp.stop_reason = "tool_use" if calls and stop == "end_turn" else stop
    return exp


def expected_error(case: Case) -> tuple[type[ProviderError], str]:
    """The class our contract gives a recorded error, and the message its body carries."""
    interaction = case.interaction
    data = json.loads(interaction.response_body)
    error = data.get("error", data)
    message = error if isinstance(error, str) else error.get("message") or ""
    if interaction.status == 401:
        return AuthenticationError, message
    too_long = data.get("error_type") == "TOO_MANY_TOKENS" or "context length" in message
    if interaction.status == 404 or "not found" in message:
        return ModelNotFoundError, message
    if interaction.status == 400:
        return (ContextLengthExceededError if too_long else InvalidRequestError), message
    raise AssertionError(f"{case.id}: no contract for HTTP {interaction.status}")


# --- rebuilding the request ------------------------------------------------------------------


def recorded_request(case: Case) -> dict[str, Any]:
    body = case.interaction.request_json()
    assert isinstance(body, dict), f"{case.id}: recorded request body is not a JSON object"
    return body


def deployment(case: Case) -> str:
    parts = case.interaction.path.split("/")
    return parts[parts.index("deployments") + 1]


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or ()):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text") or "" for p in content if p.get("type") == "text")
    return "hello"


def recorded_stream(case: Case) -> bool:
    """Whether the recorded request streams; Ollama's native API streams unless told not to."""
    default = case.provider == "ollama"
    return bool(recorded_request(case).get("stream", default))


def recorded_tools(body: dict[str, Any]) -> list[ToolDefinition] | None:
    tools = [ToolDefinition(t["function"]["name"], t["function"].get("description") or "",
                            t["function"].get("parameters") or {}) for t in body.get("tools") or ()]
    return tools or None


def rebuild_request(case: Case) -> CompletionRequest:
    body = recorded_request(case)
    model = deployment(case) if case.provider == "azure" else body["model"]
    return CompletionRequest(model=model, messages=[Message.user(last_user_text(body))],
                             tools=recorded_tools(body), stream=recorded_stream(case))


def make_provider(case: Case, server: ReplayServer) -> HttpProvider:
    options: dict[str, Any] = dict(api_key="test-key", connect_timeout=5.0, read_timeout=30.0)
    if case.provider == "cohere":
        return CohereProvider(base_url=server.url, **options)
    if case.provider == "ollama":
        return OllamaProvider(base_url=server.url, **options)
    if case.provider == "openai":  # Ollama's OpenAI-compatible API
        return OpenAIProvider(base_url=server.url + "/v1", **options)
    version = parse_qs(case.interaction.query)["api-version"][0]
    return AzureOpenAIProvider(azure_endpoint=server.url, api_version=version, **options)


def decode_expected(case: Case, request: CompletionRequest) -> Expected:
    body, stream = case.interaction.response_body, request.stream
    if case.provider == "cohere":
        expected = expected_cohere(body, stream, request.model)
    elif case.provider == "ollama":
        expected = expected_ollama(body, stream)
    else:
        expected = expected_openai(body, stream)
    expected.signatures = [None] if expected.thinking else []  # none of these protocols signs its reasoning
    return expected


# --- the tests -------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_replay(case: Case) -> None:
    interaction = case.interaction
    request = rebuild_request(case)
    with ReplayServer([interaction]) as server:
        provider = make_provider(case, server)
        try:
            if interaction.ok:
                response = collect(provider.complete_stream(request)) if request.stream else provider.complete(request)
            else:
                with pytest.raises(ProviderError) as info:
                    collect(provider.complete_stream(request)) if request.stream else provider.complete(request)
        finally:
            provider.close()

    # What the provider sent: one POST to the recorded path, with the recorded model, stream flag and tools.
    assert len(server.requests) == 1 and not server.unexpected, server.requests
    sent = server.requests[0]
    path, _, query = sent.path.partition("?")
    assert sent.method == "POST" and path == interaction.path
    body, recorded = sent.json(), recorded_request(case)
    assert body["model"] == request.model and bool(body.get("stream")) == request.stream
    if recorded.get("tools"):
        assert body["tools"] == recorded["tools"]
    if case.provider == "azure":
        assert parse_qs(query) == parse_qs(interaction.query) and sent.headers["api-key"] == "test-key"
    else:
        assert sent.headers["authorization"] == "Bearer test-key"

    if not interaction.ok:
        expected_cls, expected_message = expected_error(case)
        exc = info.value
        assert type(exc) is expected_cls, f"{case.id}: {type(exc).__name__} for HTTP {interaction.status}: {exc}"
        assert (exc.status, exc.message) == (interaction.status, expected_message) and expected_message
        return
    compare(case, decode_expected(case, request), actual_of(response))


def frames(body: bytes) -> list[str]:
    """NDJSON frames the naive way: the non-blank lines."""
    return [line for line in body.decode().split("\n") if line.strip()]


@needs_corpus
@pytest.mark.parametrize("name", sorted(NOT_DRIVEN))
def test_not_driven_recordings_still_decode(name: str) -> None:
    """The byte-level NDJSON decoder, fed the body in awkward pieces, yields the recorded frames,
    each a JSON object, the last one marking the end of the stream."""
    for interaction in load_cassette(corpus_dir() / name):
        assert interaction.is_streaming and interaction.ok
        decoded = list(iter_ndjson(split_chunks(interaction.response_body)))
        assert decoded == frames(interaction.response_body) and len(decoded) > 10
        events = [json.loads(frame) for frame in decoded]
        assert all(isinstance(e, dict) for e in events)
        last = events[-1]
        assert last.get("is_finished") is True or last.get("done") is True
        assert all(e.get("is_finished") is False or e.get("done") is False for e in events[:-1])


@needs_corpus
def test_not_driven_is_exactly_what_the_filter_drops() -> None:
    assert sorted(DROPPED) == sorted(NOT_DRIVEN)
    for name in NOT_DRIVEN:
        assert DROPPED[name] == list(range(len(load_cassette(corpus_dir() / name))))
    replayed = {c.cassette for c in CASES}
    on_disk = {cassette_id(p) for d in ("cohere", "ollama") for p in list_cassettes(d)}
    assert replayed | set(NOT_DRIVEN) >= on_disk and not replayed & set(NOT_DRIVEN)
    azure = {cassette_id(p) for p in list_cassettes("openai")
             if any(AZURE_HOST in i.uri for i in load_cassette(p))}
    assert azure == {c.cassette for c in CASES if c.provider == "azure"} and len(azure) >= 1
