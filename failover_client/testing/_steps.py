"""Protocol-neutral script steps: what a fake provider should answer next.

A test says *what* happens (a reply with this text, a 429 with this hint, a reset after two
events) once, in these types; each protocol module decides *how* that looks on its wire.
Keeping the steps free of wire details is what lets one script drive every protocol.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Union

STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "content_filter", "refusal"}
)
USAGE_KEYS = ("input", "output", "cache_read", "cache_write", "reasoning")
# Default of the Reply fields that are worked out from the others; the annotations give the
# types they always have after construction.
DERIVED: Any = None

# Anthropic-style error types (the vocabulary of Fault.stream_error_event) and the HTTP status
# each one arrives with when it is not inside a stream.
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
ERROR_KINDS = frozenset({"status", "rate_limit", "overloaded", "context_length", "content_filter"})
PARTIAL_KINDS = frozenset({
    "html_error", "reset_before_headers", "reset_mid_body", "stall_before_headers",
    "stall_mid_stream", "trickle", "truncated_stream", "malformed_json", "stream_error_event",
    "empty_200",
})


def split_words(text: str) -> tuple[str, ...]:
    """Split text into streaming deltas the way models do: words carrying their leading space."""
    parts = re.findall(r"\s*\S+", text)
    tail = text[len("".join(parts)) :]
    if tail:
        parts = parts[:-1] + [parts[-1] + tail] if parts else [tail]
    return tuple(parts)


@dataclass(frozen=True)
class ToolCall:
    """One tool call in a reply; `id` is generated in the protocol's style when None."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arguments, Mapping):
            raise TypeError("ToolCall.arguments must be a dict (it is sent as a JSON object)")
        object.__setattr__(self, "arguments", dict(self.arguments))


@dataclass(frozen=True)
class Reply:
    """A successful answer, rendered by whichever protocol the request arrived on.

    `text` defaults to "Hello!" for a plain answer and to "" when the reply carries tool calls or
    a refusal. When `chunks` is given it defines the text ("".join(chunks)). After construction
    `text`, `chunks`, `usage` (all five keys) and `stop_reason` are always filled in. The
    default output token count is the number of streamed text and refusal deltas.
    """

    text: str = DERIVED
    _: KW_ONLY
    chunks: Sequence[str] = DERIVED
    tool_calls: Sequence[ToolCall] = ()
    thinking: str | None = None
    signature: str | None = None
    refusal: str | None = None
    stop_reason: str = DERIVED
    usage: Mapping[str, int] = DERIVED
    model: str | None = None
    headers: Mapping[str, str] = DERIVED
    delay: float = 0.0

    def __post_init__(self) -> None:
        calls = tuple(self.tool_calls)
        if not all(isinstance(call, ToolCall) for call in calls):
            raise TypeError("Reply.tool_calls must hold ToolCall objects")
        if self.chunks is not None:
            chunks = tuple(self.chunks)
            text = "".join(chunks)
            if self.text is not None and self.text != text:
                raise ValueError("Reply.chunks must join to Reply.text (give one of them)")
        else:
            text = self.text if self.text is not None else self._default_text(calls)
            chunks = split_words(text)
        stop = self.stop_reason or (
            "refusal" if self.refusal is not None else "tool_use" if calls else "end_turn"
        )
        if stop not in STOP_REASONS:
            raise ValueError(f"unknown stop_reason {stop!r}; use one of {sorted(STOP_REASONS)}")
        signature = self.signature
        if self.thinking is not None and signature is None:
            digest = hashlib.sha256(self.thinking.encode()).digest()
            signature = base64.b64encode(digest * 3).decode()
        set_ = object.__setattr__
        set_(self, "text", text)
        set_(self, "chunks", chunks)
        set_(self, "tool_calls", calls)
        set_(self, "stop_reason", stop)
        set_(self, "signature", signature)
        set_(self, "usage", self._full_usage(len(chunks) + len(self.refusal_chunks)))
        set_(self, "headers", dict(self.headers or {}))

    def _default_text(self, calls: tuple[ToolCall, ...]) -> str:
        return "" if calls or self.refusal is not None else "Hello!"

    def _full_usage(self, n_chunks: int) -> dict[str, int]:
        given = dict(self.usage or {})
        unknown = set(given) - set(USAGE_KEYS)
        if unknown:
            raise ValueError(f"unknown usage keys {sorted(unknown)}; use {list(USAGE_KEYS)}")
        usage = {"input": 10, "output": n_chunks, "cache_read": 0, "cache_write": 0, "reasoning": 0}
        usage.update(given)
        if usage["input"] < usage["cache_read"] + usage["cache_write"]:
            raise ValueError("usage['input'] is the whole prompt: it must include cache_read and cache_write")
        return usage

    @property
    def thinking_chunks(self) -> tuple[str, ...]:
        return split_words(self.thinking or "")

    @property
    def refusal_chunks(self) -> tuple[str, ...]:
        return split_words(self.refusal or "")

    @property
    def label(self) -> str:
        return "reply"


@dataclass(frozen=True)
class Fault:
    """Something going wrong, built with the classmethods below (one per failure kind).

    Faults that answer partly before failing (resets, stalls, trickles, truncation, error
    events) use `reply` for the good part; None means the name's default reply (or Reply()).
    """

    kind: str
    http_status: int | None = None
    body: str | bytes | Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error_type: str | None = None
    message: str | None = None
    error_code: str | None = None
    after_events: int = 0
    seconds: float = 0.0
    interval: float = 0.0
    reply: Reply | None = None

    def __post_init__(self) -> None:
        if self.kind not in ERROR_KINDS | PARTIAL_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; build faults with Fault.<kind>(...)")
        object.__setattr__(self, "headers", dict(self.headers))

    @property
    def label(self) -> str:
        if self.kind in ("status", "html_error"):
            return f"{self.kind}:{self.http_status}"
        return self.kind

    @property
    def is_error(self) -> bool:
        """True for faults answered with one complete HTTP error response."""
        return self.kind in ERROR_KINDS

    @classmethod
    def status(
        cls,
        code: int,
        *,
        body: str | bytes | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        error_type: str | None = None,
        message: str | None = None,
        error_code: str | None = None,
    ) -> Fault:
        """Any HTTP status with the protocol's JSON error body (or `body` instead)."""
        return cls(
            "status", http_status=code, body=body, headers=headers or {},
            error_type=error_type, message=message, error_code=error_code,
        )

    @classmethod
    def rate_limit(
        cls, retry_after: float | str | None = None, retry_after_ms: float | None = None
    ) -> Fault:
        """429 with the protocol's real body and `retry-after` / `retry-after-ms` hints."""
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        return cls("rate_limit", headers=headers)

    @classmethod
    def overloaded(cls) -> Fault:
        """Anthropic 529 overloaded_error; OpenAI 503 server_error."""
        return cls("overloaded")

    @classmethod
    def context_length(cls) -> Fault:
        """400 with the protocol's real context-window-exceeded error."""
        return cls("context_length")

    @classmethod
    def content_filter(cls) -> Fault:
        """400 content-policy error (Azure-style for OpenAI)."""
        return cls("content_filter")

    @classmethod
    def html_error(cls, status: int = 502) -> Fault:
        """An HTML error page from a proxy in front of the API."""
        return cls("html_error", http_status=status)

    @classmethod
    def reset_before_headers(cls) -> Fault:
        """Read the request, then reset the connection before any response byte."""
        return cls("reset_before_headers")

    @classmethod
    def reset_mid_body(cls, after_events: int = 2, *, reply: Reply | None = None) -> Fault:
        """Headers and N stream events (plain: half the body), then a connection reset."""
        return cls("reset_mid_body", after_events=after_events, reply=reply)

    @classmethod
    def stall_before_headers(cls, seconds: float, *, reply: Reply | None = None) -> Fault:
        """Wait (stop() interrupts it), then answer normally."""
        return cls("stall_before_headers", seconds=seconds, reply=reply)

    @classmethod
    def stall_mid_stream(
        cls, after_events: int, seconds: float, *, reply: Reply | None = None
    ) -> Fault:
        """N events (plain: half the body), a wait, then the rest."""
        return cls("stall_mid_stream", after_events=after_events, seconds=seconds, reply=reply)

    @classmethod
    def trickle(cls, interval: float, reply: Reply | None = None) -> Fault:
        """Events `interval` apart (plain: the body in 16-byte slices `interval` apart)."""
        return cls("trickle", interval=interval, reply=reply)

    @classmethod
    def truncated_stream(cls, after_events: int = 2, *, reply: Reply | None = None) -> Fault:
        """N events then a clean end without the terminal event (plain: an unfinished answer)."""
        return cls("truncated_stream", after_events=after_events, reply=reply)

    @classmethod
    def malformed_json(cls, *, reply: Reply | None = None) -> Fault:
        """A 200 whose JSON (plain) or second event (stream) does not parse."""
        return cls("malformed_json", reply=reply)

    @classmethod
    def stream_error_event(
        cls,
        after_events: int = 0,
        error_type: str = "overloaded_error",
        message: str = "Overloaded",
        *,
        reply: Reply | None = None,
    ) -> Fault:
        """A 200 stream that carries an error event after N events (plain: the status error)."""
        return cls(
            "stream_error_event", after_events=after_events, error_type=error_type,
            message=message, reply=reply,
        )

    @classmethod
    def empty_200(cls) -> Fault:
        """200 with the right content type and no body (stream: no events)."""
        return cls("empty_200")

    def as_status_error(self) -> Fault:
        """The plain-request equivalent of a stream error event."""
        kind = {"overloaded_error": "overloaded", "rate_limit_error": "rate_limit"}.get(
            self.error_type or "", "status"
        )
        if kind != "status":
            return Fault(kind, message=self.message)
        return Fault.status(ERROR_TYPE_STATUS.get(self.error_type or "", 500), message=self.message)


Step = Union[Reply, Fault]


class RandomFaults:
    """A default step for soak tests: each request gets one of `faults` (with probability
    `rate`, each equally likely) or else `reply`, drawn from a RNG seeded with `seed`.  The
    server draws under its lock, so a seed and an order of arrival give the same answers."""

    def __init__(self, rate: float, faults: Sequence[Fault], *, seed: int = 0, reply: Reply | None = None) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"RandomFaults rate must lie in [0, 1], got {rate!r}")
        if not faults or not all(isinstance(fault, Fault) for fault in faults):
            raise TypeError("RandomFaults needs a non-empty sequence of Fault objects")
        self.rate = rate
        self.faults = tuple(faults)
        self.reply = reply or Reply()
        self._rng = random.Random(seed)

    def draw(self) -> Step:
        if self._rng.random() < self.rate:
            return self._rng.choice(self.faults)
        return self.reply
