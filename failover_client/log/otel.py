"""OpenTelemetry spans for FailoverClient calls, following the GenAI semantic conventions.

::

    from failover_client.log.otel import instrument
    client = instrument(FailoverClient(config))          # the global tracer provider
    client = instrument(FailoverClient(config), tracer_provider=provider)

Each call is a CLIENT span named ``chat <model>`` carrying ``gen_ai.operation.name``,
``gen_ai.request.*`` (model, max_tokens, temperature, top_p, stop_sequences), and once answered
``gen_ai.response.model``/``id``/``finish_reasons``, ``gen_ai.usage.*`` (input, output, cache
read, cache creation and reasoning tokens) and ``failover.provider`` / ``failover.attempts``.
Each attempt is a child span with ``gen_ai.provider.name``, ``gen_ai.request.model`` (the model
after mapping), ``failover.provider`` (the chain's name), ``failover.attempt`` and
``failover.outcome``; a failed call or attempt has ``error.type`` and an ERROR status.

OpenTelemetry is an optional extra (``pip install 'failover-client[otel]'``, which needs only
``opentelemetry-api``); it is imported when :func:`instrument` is called, never before.
Attempt spans come from the client's ``attempt_start``/``attempt_end`` hooks and are parented
explicitly to the call span, so streams consumed lazily (or interleaved) nest correctly.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator, TypeVar

from ..errors import InvalidArgumentError
from ..provider import Provider

if TYPE_CHECKING:
    from ..failover import FailoverClient
    from ..types import CompletionRequest, CompletionResponse, StreamChunk, Usage

T = TypeVar("T")
OPERATION = "chat"


def instrument(client: FailoverClient, tracer_provider: Any = None) -> TracedClient:
    """``client`` with a span per call and per attempt (see the module docstring)."""
    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError("OpenTelemetry is an optional extra: pip install 'failover-client[otel]'") from None
    from .. import __version__
    from ..failover import FailoverClient

    if not isinstance(client, FailoverClient):
        raise InvalidArgumentError(f"instrument() takes a FailoverClient, got {type(client).__name__}")
    tracer = trace.get_tracer("failover_client", __version__, tracer_provider=tracer_provider)
    return TracedClient(client, tracer)


class _Call:
    """The spans of one call in flight: the call span, its context, and open attempt spans."""

    def __init__(self, span: Any, context: Any) -> None:
        self.span = span
        self.context = context
        self.attempts: dict[int, Any] = {}


class TracedClient(Provider):
    """A FailoverClient whose calls and attempts are OpenTelemetry spans."""

    def __init__(self, client: FailoverClient, tracer: Any) -> None:
        from opentelemetry import trace

        self.client = client
        self.name = client.name
        self.supports_tools = client.supports_tools
        self.supports_vision = client.supports_vision
        self._tracer = tracer
        self._trace = trace
        self._local = threading.local()
        self._provider_names = {entry.name: entry.provider.name for entry in client.config.chain()}
        client.config.on("attempt_start", self._attempt_started).on("attempt_end", self._attempt_ended)

    def __repr__(self) -> str:
        return f"TracedClient({self.client!r})"

    # -- calls ------------------------------------------------------------------------------

    def _start(self, request: CompletionRequest) -> _Call:
        span = self._tracer.start_span(f"{OPERATION} {request.model}", kind=self._trace.SpanKind.CLIENT,
                                       attributes=_request_attributes(request))
        return _Call(span, self._trace.set_span_in_context(span))

    def _within(self, call: _Call, step: Callable[[], T]) -> T:
        """Run ``step`` with ``call`` as this thread's current call, so hooks find its spans."""
        previous = getattr(self._local, "call", None)
        self._local.call = call
        try:
            return step()
        finally:
            self._local.call = previous

    def complete(self, request: CompletionRequest, *, timeout: float | None = None) -> CompletionResponse:
        call = self._start(request)
        try:
            response = self._within(call, lambda: self.client.complete(request, timeout=timeout))
            call.span.set_attributes(_response_attributes(response.model, response.id, response.stop_reason.value,
                                                          response.usage, response.provider, len(response.attempts)))
            return response
        except Exception as exc:
            _fail(call.span, exc, self._trace)
            raise
        finally:
            _finish(call)

    def complete_stream(self, request: CompletionRequest, *,
                        timeout: float | None = None) -> Generator[StreamChunk, None, None]:
        call = self._start(request)
        stream: Iterator[StreamChunk] = self.client.complete_stream(request, timeout=timeout)
        seen: dict[str, Any] = {"model": request.model, "id": None, "stop": None, "usage": None, "provider": None,
                                "attempts": 0}
        try:
            while (chunk := self._within(call, lambda: next(stream, None))) is not None:
                _note(seen, chunk)
                yield chunk
            call.span.set_attributes(_response_attributes(seen["model"], seen["id"], seen["stop"], seen["usage"],
                                                          seen["provider"], seen["attempts"]))
        except Exception as exc:
            _fail(call.span, exc, self._trace)
            raise
        except BaseException:  # closed, interrupted or collected by its consumer
            call.span.set_attribute("failover.outcome", "abandoned")
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                self._within(call, close)
            _finish(call)

    def close(self) -> None:
        self.client.close()

    # -- attempts (hooks) ---------------------------------------------------------------------

    def _attempt_started(self, *, provider: str, model: str, attempt: int, **_: Any) -> None:
        call: _Call | None = getattr(self._local, "call", None)
        if call is None:  # a call made on the bare client, not through this wrapper
            return
        call.attempts[attempt] = self._tracer.start_span(
            f"{OPERATION} {model}", context=call.context, kind=self._trace.SpanKind.CLIENT,
            attributes={"gen_ai.operation.name": OPERATION, "gen_ai.request.model": model,
                        "gen_ai.provider.name": self._provider_names.get(provider, provider),
                        "failover.provider": provider, "failover.attempt": attempt})

    def _attempt_ended(self, *, attempt: int, outcome: str, error: BaseException | None = None,
                       usage: Usage | None = None, **_: Any) -> None:
        call: _Call | None = getattr(self._local, "call", None)
        span = call.attempts.pop(attempt, None) if call is not None else None
        if span is None:
            return
        span.set_attribute("failover.outcome", outcome)
        if usage is not None:
            span.set_attributes(_usage_attributes(usage))
        if error is not None:
            _fail(span, error, self._trace)
        span.end()


def _request_attributes(request: CompletionRequest) -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.operation.name": OPERATION, "gen_ai.request.model": request.model}
    for name, value in (("max_tokens", request.max_tokens), ("temperature", request.temperature),
                        ("top_p", request.top_p), ("stop_sequences", request.stop_sequences)):
        if value is not None:
            attributes[f"gen_ai.request.{name}"] = value
    return attributes


def _usage_attributes(usage: Usage) -> dict[str, int]:
    return {"gen_ai.usage.input_tokens": usage.input_tokens, "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
            "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens}


def _response_attributes(model: str | None, response_id: str | None, stop: str | None, usage: Usage | None,
                         provider: str | None, attempts: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {"failover.attempts": attempts}
    for name, value in (("gen_ai.response.model", model), ("gen_ai.response.id", response_id),
                        ("failover.provider", provider)):
        if value:
            attributes[name] = value
    if stop:
        attributes["gen_ai.response.finish_reasons"] = [stop]
    if usage is not None:
        attributes.update(_usage_attributes(usage))
    return attributes


def _note(seen: dict[str, Any], chunk: StreamChunk) -> None:
    for key, value in (("model", chunk.model), ("id", chunk.id), ("usage", chunk.usage), ("provider", chunk.provider)):
        if value:
            seen[key] = value
    if chunk.stop_reason is not None:
        seen["stop"] = chunk.stop_reason.value
    if chunk.attempts:
        seen["attempts"] = len(chunk.attempts)


def _fail(span: Any, error: BaseException, trace: Any) -> None:
    span.set_attribute("error.type", type(error).__name__)
    span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)[:200]))


def _finish(call: _Call) -> None:
    """End the call span, and any attempt span it left open (a stream abandoned mid-way)."""
    for span in call.attempts.values():
        span.end()
    call.attempts.clear()
    call.span.end()
