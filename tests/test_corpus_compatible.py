"""Replay every recorded exchange with the OpenAI-compatible hosts of the shared corpus (Mistral,
Groq, DeepSeek, OpenRouter, Together, Perplexity, the Hugging Face router) through the
OpenAIProvider that ``create(<catalog name>)`` builds, over real HTTP (tests/cassettes.py).

Expected values come from a naive decoder written here from the recorded bytes: text and
Mistral's typed content parts, DeepSeek's ``reasoning_content``, OpenRouter's and Groq's
``reasoning``, tool calls by index, usage by the library's one rule (with Groq's ``x_groq``
usage when the recording asked for none), stop reasons, error classes and messages.  It shares
no code with the library's parsers.  One test case per recorded interaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_corpus_openai_anthropic import Expected, actual_of, compare, last_user_text, sse_events

from failover_client.errors import (
    AuthenticationError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from failover_client.providers import create
from failover_client.types import CompletionRequest, Message, collect

from cassettes import CassetteCase, Interaction, ReplayServer, cassette_id, corpus_dir, list_cassettes, load_cassette

DIRECTORIES = ("mistral", "groq", "deepseek", "openrouter", "other")
# Under other/, the recorded host names the catalog row; the other directories name it themselves
# (openrouter/llm__test_tools_streaming_variant_a.yaml: the source rewrote the URI to
# api.openai.com, but the bodies are OpenRouter's, as MANIFEST.md notes).
HOSTS = {"api.together.xyz": "together", "router.huggingface.co": "huggingface",
         "api.perplexity.ai": "perplexity", "api.x.ai": "xai"}
CHAT_PATH = "/chat/completions"
# Recordings of another endpoint than Chat Completions (replayed in tests/test_corpus_responses.py).
NON_CHAT_CASSETTES = {
    "other/ruby_llm__chat_streaming_responses_xai_grok-4-1-fast-non-reasoning_supports_streaming_responses.yml":
        "xAI's Responses API (POST /v1/responses): response.* events, not chat-completion chunks",
}
@dataclass(frozen=True)
class Case(CassetteCase):
    provider: str = ""  # the catalog name

    @property
    def prefix(self) -> str:
        """What the recorded path has before /chat/completions: the base URL's path."""
        return self.interaction.path[: -len(CHAT_PATH)]


def _load() -> tuple[list[Case], dict[str, list[int]]]:
    cases, dropped = [], {}
    for directory in DIRECTORIES:
        for path in list_cassettes(directory):
            name = cassette_id(path)
            for index, interaction in enumerate(load_cassette(path)):
                if not interaction.path.endswith(CHAT_PATH):
                    dropped.setdefault(name, []).append(index)
                    continue
                provider = HOSTS[urlsplit(interaction.uri).hostname] if directory == "other" else directory
                cases.append(Case(name, index, interaction, provider))
    return cases, dropped


CASES, DROPPED = _load()
needs_corpus = pytest.mark.skipif(not all((corpus_dir() / d).is_dir() for d in DIRECTORIES),
                                  reason=f"cassette corpus not found at {corpus_dir()}")


# --- the naive decoder ---------------------------------------------------------------------------

STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "content_filter"}


@dataclass
class Decoded:
    """What a recording says, accumulated event by event (or from one message)."""

    expected: Expected = field(default_factory=Expected)
    calls: dict[int, list[Any]] = field(default_factory=dict)  # index -> [id, name, arguments text]
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # an error object inside a 200 stream

    def add_content(self, content: Any) -> None:
        if isinstance(content, str):
            self.expected.text += content
            return
        for part in content or ():  # Mistral: [{"type": "thinking", "thinking": [{"type": "text", ...}]}, ...]
            if part["type"] == "text":
                self.expected.text += part["text"]
            elif part["type"] == "thinking":
                self.expected.thinking += "".join(t["text"] for t in part["thinking"] if t["type"] == "text")

    def add(self, fields: dict[str, Any]) -> None:
        """A message or a delta."""
        self.add_content(fields.get("content"))
        for key in ("reasoning_content", "reasoning"):
            if isinstance(fields.get(key), str):
                self.expected.thinking += fields[key]
                break
        for position, call in enumerate(fields.get("tool_calls") or ()):
            slot = self.calls.setdefault(call.get("index", position), [None, None, ""])
            slot[0] = call.get("id") or slot[0]
            slot[1] = call["function"].get("name") or slot[1]
            slot[2] += call["function"].get("arguments") or ""

    def finish(self, finish_reason: str | None) -> Expected:
        exp = self.expected
        exp.tool_calls = [(i, n, json.loads(a or "{}")) for i, n, a in (self.calls[k] for k in sorted(self.calls))]
        exp.signatures = [None] if exp.thinking else []  # these protocols carry no thinking signature
        usage = self.usage or {}
        exp.usage = {
            "input_tokens": usage.get("prompt_tokens", 0),
            "output_tokens": usage.get("completion_tokens", 0),
            "cache_read_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
            or usage.get("prompt_cache_hit_tokens", 0),
            "cache_write_tokens": 0,
            "reasoning_tokens": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
        }
        exp.raw_stop_reason = finish_reason
        exp.stop_reason = STOP.get(finish_reason or "", "other")
        return exp


def decode(interaction: Interaction, stream: bool) -> Decoded:
    decoded = Decoded()
    if not stream:
        data = interaction.response_json()
        decoded.expected.id, decoded.expected.model = data["id"], data["model"]
        choice = data["choices"][0]
        decoded.add(choice["message"])
        decoded.usage = data.get("usage")
        decoded.finish(choice["finish_reason"])
        return decoded
    finish = None
    for _event, data in sse_events(interaction.response_body):
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("error"):
            decoded.error = chunk["error"]
            break
        decoded.expected.id = decoded.expected.id or chunk.get("id", "")
        decoded.expected.model = decoded.expected.model or chunk.get("model", "")
        for choice in chunk.get("choices") or ():
            decoded.add(choice.get("delta") or {})
            finish = choice.get("finish_reason") or finish
        decoded.usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage") or decoded.usage
        if chunk.get("object") == "chat.completion.done":  # Perplexity's last chunk
            break
    decoded.finish(finish)
    return decoded


def expected_error(status: int, error: Any) -> tuple[type[ProviderError], str]:
    """The class our contract gives an HTTP status (or an in-band error's code) and its message."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    message = error.get("message") or error.get("detail") or ""
    text = f"{error.get('code') or ''} {error.get('type') or ''} {message}".lower()
    if "maximum context length" in text or "context_length_exceeded" in text:
        return ContextLengthExceededError, message
    if "model_not_found" in text:
        return ModelNotFoundError, message
    classes = {400: InvalidRequestError, 401: AuthenticationError, 403: AuthenticationError,
               404: ModelNotFoundError, 422: InvalidRequestError,
               429: QuotaExceededError if "insufficient_quota" in text else RateLimitError}
    return classes.get(status, ServerError if status >= 500 else ProviderError), message


def error_object(body: bytes) -> Any:
    data = json.loads(body)
    return data.get("error", data)


# --- the tests -----------------------------------------------------------------------------------


def replay(case: Case) -> tuple[list[Any], BaseException | None, list[Any]]:
    """(chunks or [response], the error raised, the requests the server saw)."""
    body = case.interaction.request_json()
    request = CompletionRequest(model=body["model"], messages=[Message.user(last_user_text(body))],
                                stream=bool(body.get("stream")))
    received: list[Any] = []
    raised = None
    with ReplayServer([case.interaction]) as server:
        provider = create(case.provider, api_key="test-key-0123456789", base_url=server.url + case.prefix,
                          read_timeout=30.0)
        try:
            if request.stream:
                for chunk in provider.complete_stream(request):
                    received.append(chunk)
            else:
                received.append(provider.complete(request))
        except ProviderError as exc:
            raised = exc
        finally:
            provider.close()
    return received, raised, server.requests


@needs_corpus
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_replay(case):
    interaction = case.interaction
    recorded = interaction.request_json()
    received, raised, requests = replay(case)

    assert len(requests) == 1, requests
    sent = requests[0]
    assert (sent.method, sent.path.split("?")[0]) == ("POST", interaction.path)
    assert sent.json()["model"] == recorded["model"]
    assert bool(sent.json().get("stream")) == bool(recorded.get("stream"))
    assert sent.headers["authorization"] == "Bearer test-key-0123456789"

    stream = interaction.content_type == "text/event-stream"
    if not interaction.ok:
        expected_cls, message = expected_error(interaction.status, error_object(interaction.response_body))
        assert type(raised) is expected_cls, f"{type(raised).__name__}: {raised}"
        assert (raised.status, raised.message, raised.provider) == (interaction.status, message, case.provider)
        return
    decoded = decode(interaction, stream)
    if decoded.error is not None:  # an error inside the 200 stream, after whatever came before it
        expected_cls, message = expected_error(decoded.error.get("code"), decoded.error)
        assert type(raised) is expected_cls and raised.message == message, repr(raised)
        partial = collect(received)
        assert (partial.text, partial.thinking) == (decoded.expected.text, decoded.expected.thinking)
        return
    assert raised is None, repr(raised)
    response = collect(received) if stream else received[0]
    compare(case, decoded.expected, actual_of(response))


@needs_corpus
def test_non_chat_cassettes_are_exactly_what_is_not_replayed():
    assert sorted(DROPPED) == sorted(NON_CHAT_CASSETTES)
    for name in NON_CHAT_CASSETTES:
        interactions = load_cassette(corpus_dir() / name)
        assert DROPPED[name] == list(range(len(interactions)))
        assert all(not i.path.endswith(CHAT_PATH) for i in interactions)
    on_disk = {cassette_id(p) for d in DIRECTORIES for p in list_cassettes(d)}
    assert {c.cassette for c in CASES} | set(NON_CHAT_CASSETTES) == on_disk


@needs_corpus
def test_the_replay_covers_what_it_claims():
    """The recordings (decoded naively, not by the library) exercise each feature named above,
    so a green run is not a vacuous one."""
    seen: dict[str, set[str]] = {}
    for case in CASES:
        features = seen.setdefault(case.provider, set())
        if not case.interaction.ok:
            features.add(f"error {case.interaction.status}")
            continue
        decoded = decode(case.interaction, case.interaction.content_type == "text/event-stream")
        features |= {name for name, present in (
            ("text", decoded.expected.text), ("thinking", decoded.expected.thinking),
            ("tool calls", decoded.expected.tool_calls), ("usage", decoded.usage),
            ("cache reads", decoded.expected.usage["cache_read_tokens"]), ("in-stream error", decoded.error),
        ) if present}
    assert {"thinking", "tool calls", "cache reads", "error 401"} <= seen["mistral"]
    assert {"thinking", "usage", "error 404"} <= seen["groq"]
    assert {"thinking", "tool calls", "cache reads", "error 400", "error 401"} <= seen["deepseek"]
    assert {"thinking", "tool calls", "in-stream error", "error 429", "error 400"} <= seen["openrouter"]
    assert {"text", "usage"} <= seen["together"] & seen["perplexity"] & seen["huggingface"]
