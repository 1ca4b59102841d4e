"""Relaying a stream to a web client: Server-Sent Events or plain text, as bytes.

Both take what ``FailoverClient.open_stream`` returns (any iterable of StreamChunk works) and
give the body of a streaming HTTP response.  Open the stream *before* the response starts, so
that "every provider failed" can still be a 502/503 (see failover_client.contrib.django and
.flask), then hand these generators to the framework.

Both close the upstream stream when they stop, whatever stops them: the end of the answer, a
failure, or the web server closing the body iterator because the browser went away (WSGI
servers call ``close()`` on it, which raises GeneratorExit at the pending ``yield``).  Without
that the provider's connection would stay open, still reading an answer nobody wants.

The SSE events, one per chunk that carries output (keys present only when set)::

    data: {"text": "Hel"}
    data: {"thinking": "..."}
    data: {"tool_call": {"index": 0, "id": "call_1", "name": "get_weather", "arguments": "{\\"ci"}}
    data: {"refusal": "..."}

then one of::

    event: done
    data: {"provider": "primary", "model": "gpt-4o", "stop_reason": "end_turn",
           "usage": {"input_tokens": 10, ...}, "cost_usd": 0.0001, "attempts": [{...}, ...]}

    event: error
    data: {"type": "StreamInterruptedError", "message": "the stream failed after ..."}
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .errors import FailoverClientError

if TYPE_CHECKING:
    from .failover import FailoverClient
    from .types import CompletionRequest, StreamChunk

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}  # nginx would otherwise hold the events back in its buffer
TEXT_HEADERS = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"}


def sse(stream: Iterable[StreamChunk]) -> Iterator[bytes]:
    """The stream as ``text/event-stream`` events (see the module docstring for their shape).
    A failure of ours mid-stream becomes an ``error`` event and a clean end of the body: the
    headers went out long ago, so an event is the only way left to tell the browser."""
    summary = _Summary()
    try:
        for chunk in stream:
            summary.add(chunk)
            delta = _delta(chunk)
            if delta:
                yield _event(delta)
        yield _event(summary.final(), "done")
    except FailoverClientError as exc:
        yield _event({"type": type(exc).__name__, "message": str(exc)}, "error")
    finally:
        _close(stream)


def text(stream: Iterable[StreamChunk]) -> Iterator[bytes]:
    """Only the text of the stream, UTF-8.  A mid-stream failure is raised, so the server ends
    the body without its final chunk: the client sees a broken transfer, not a short answer."""
    try:
        for chunk in stream:
            if chunk.text:
                yield chunk.text.encode("utf-8")
    finally:
        _close(stream)


def respond(client: FailoverClient, request: CompletionRequest, *, as_text: bool = False,
            timeout: float | None = None) -> tuple[int, dict[str, str], Iterator[bytes] | bytes]:
    """``(status, headers, body)`` for a streamed answer, framework-neutral: the stream is
    opened first, so a call that fails before its answer begins gets a JSON 502/503 (see
    :func:`error_body`) instead of 200 headers followed by an error event.  The body is an
    iterator of bytes to stream, or the bytes of that JSON error."""
    from .errors import AllProvidersFailedError, ProviderError

    try:
        stream = client.open_stream(request, timeout=timeout)
    except (AllProvidersFailedError, ProviderError) as exc:
        status, body = error_body(exc)
        return status, {"Content-Type": "application/json"}, json.dumps(body).encode()
    return 200, dict(TEXT_HEADERS if as_text else SSE_HEADERS), text(stream) if as_text else sse(stream)


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for a call that failed before its answer began: 503 when no
    provider could even be tried (open circuits, rate limits), 502 when providers failed.
    The frameworks' helpers send it; the message is already free of credentials."""
    from .errors import AllProvidersFailedError

    status = 503 if isinstance(exc, AllProvidersFailedError) and not any(
        a.outcome == "error" for a in exc.attempts) else 502
    body: dict[str, Any] = {"error": {"type": type(exc).__name__, "message": str(exc)}}
    attempts = getattr(exc, "attempts", None)
    if attempts:
        body["error"]["attempts"] = [asdict(a) for a in attempts]
    return status, body


def _event(data: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def _delta(chunk: StreamChunk) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if chunk.text:
        delta["text"] = chunk.text
    if chunk.thinking:
        delta["thinking"] = chunk.thinking
    if chunk.tool_call is not None:
        delta["tool_call"] = asdict(chunk.tool_call)
    if chunk.refusal:
        delta["refusal"] = chunk.refusal
    return delta


class _Summary:
    """What the final event reports, gathered from the chunks that went by."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {"provider": None, "model": None, "stop_reason": None, "usage": None}
        self.usage: Any = None
        self.attempts: list[Any] = []

    def add(self, chunk: StreamChunk) -> None:
        self.fields["provider"] = chunk.provider or self.fields["provider"]
        self.fields["model"] = chunk.model or self.fields["model"]
        if chunk.stop_reason is not None:
            self.fields["stop_reason"] = chunk.stop_reason.value
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.attempts:
            self.attempts = chunk.attempts

    def final(self) -> dict[str, Any]:
        from .models import cost_of

        if self.usage is not None:
            self.fields["usage"] = asdict(self.usage)
        cost = cost_of(self.usage, self.fields["model"] or "", provider=self.fields["provider"])
        return {**self.fields, "cost_usd": cost, "attempts": [asdict(a) for a in self.attempts]}


def _close(stream: Iterable[Any]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
