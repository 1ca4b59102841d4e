"""Retry the primary, then the fallbacks: the FailoverClient and its configuration.

The rules (design.md §4):

1. Providers are tried in order: the primary (retried ``retry_primary(n)`` times), then each
   fallback once, with the request's model mapped per fallback (unknown names pass through).
2. Every attempt gets only the time left on the overall deadline.
3. An error that matches no trigger is raised at once, annotated with ``attempts``.
4. Retrying the same provider waits with exponential back-off and full jitter, honouring
   ``Retry-After`` up to the policy's cap; a longer wait moves on instead of blocking a worker.
   Moving to another provider never sleeps.
5. When everything failed: AllProvidersFailedError listing every attempt, last error as cause.
6. A stream commits to a provider at its first chunk that carries output; failures before that
   fail over exactly as ``complete`` does, failures after it raise StreamInterruptedError with
   the partial output.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generator, Iterator

from .errors import (
    AllProvidersFailedError,
    AuthenticationError,
    ContentFilteredError,
    ContextLengthExceededError,
    FailoverClientError,
    InvalidArgumentError,
    NetworkError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    StreamInterruptedError,
    redact,
)
from .events import EventHooks
from .provider import Provider
from .retry import Deadline, RetryPolicy
from .types import Attempt, CompletionRequest, CompletionResponse, StopReason, StreamChunk, Usage, collect


class FailoverTrigger(enum.Enum):
    """Which failures move on to the next provider (and may be retried on the same one)."""

    RATE_LIMIT = (RateLimitError,)
    SERVER_ERROR = (ServerError, ResponseDecodeError)
    TIMEOUT = (ProviderTimeoutError,)
    NETWORK_ERROR = (NetworkError,)
    AUTH_ERROR = (AuthenticationError,)
    CONTEXT_LENGTH = (ContextLengthExceededError,)
    CONTENT_FILTER = (ContentFilteredError,)
    ANY_ERROR = (ProviderError,)

    def matches(self, exc: BaseException) -> bool:
        return isinstance(exc, self.value)


DEFAULT_TRIGGERS = frozenset({FailoverTrigger.RATE_LIMIT, FailoverTrigger.SERVER_ERROR,
                              FailoverTrigger.TIMEOUT, FailoverTrigger.NETWORK_ERROR})


@dataclass
class FallbackProvider:
    """A provider in the chain under a name of its own, with request models mapped for it."""

    name: str
    provider: Provider
    model_mapping: dict[str, str] = field(default_factory=dict)

    def with_model_mapping(self, model: str, mapped: str) -> FallbackProvider:
        self.model_mapping[model] = mapped
        return self

    def model_for(self, model: str) -> str:
        return self.model_mapping.get(model, model)


@dataclass
class FailoverConfig:
    """What to try, on which failures, how often and for how long.  Methods chain."""

    primary_name: str
    primary: Provider
    fallbacks: list[FallbackProvider] = field(default_factory=list)
    triggers: frozenset[FailoverTrigger] = DEFAULT_TRIGGERS
    max_attempts: int = 0  # how many fallbacks may be tried; 0 = all
    primary_retries: int = 0
    deadline: float | None = None
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    stream_interrupt: str = "raise"
    sleep: Callable[[float], None] = time.sleep
    hooks: EventHooks = field(default_factory=EventHooks)

    def add_fallback(self, fallback: FallbackProvider) -> FailoverConfig:
        if not isinstance(fallback, FallbackProvider):
            raise InvalidArgumentError("add_fallback takes a FallbackProvider(name, provider)")
        if fallback.name in self.names():
            raise InvalidArgumentError(f"provider name {fallback.name!r} is already in the chain")
        self.fallbacks.append(fallback)
        return self

    def with_triggers(self, *triggers: FailoverTrigger) -> FailoverConfig:
        """Replace the triggers."""
        self.triggers = frozenset(_check_triggers(triggers))
        return self

    def trigger_on(self, *triggers: FailoverTrigger) -> FailoverConfig:
        """Add triggers to the current ones."""
        self.triggers = self.triggers | frozenset(_check_triggers(triggers))
        return self

    def with_max_attempts(self, n: int) -> FailoverConfig:
        self.max_attempts = _non_negative("with_max_attempts", n)
        return self

    def retry_primary(self, n: int) -> FailoverConfig:
        self.primary_retries = _non_negative("retry_primary", n)
        return self

    def with_deadline(self, seconds: float | None) -> FailoverConfig:
        if seconds is not None and not seconds > 0:
            raise InvalidArgumentError("with_deadline takes a positive number of seconds or None")
        self.deadline = seconds
        return self

    def with_retry_policy(self, policy: RetryPolicy) -> FailoverConfig:
        self.retry_policy = policy
        return self

    def on_stream_interrupt(self, mode: str) -> FailoverConfig:
        if mode != "raise":
            raise InvalidArgumentError(f"on_stream_interrupt({mode!r}): only 'raise' is available in this version")
        self.stream_interrupt = mode
        return self

    def on(self, event: str, hook: Callable[..., Any]) -> FailoverConfig:
        """Call ``hook(**payload)`` on ``event`` (see failover_client.events for names and payloads)."""
        self.hooks.add(event, hook)
        return self

    def names(self) -> list[str]:
        return [self.primary_name] + [f.name for f in self.fallbacks]

    def chain(self) -> list[FallbackProvider]:
        primary = FallbackProvider(self.primary_name, self.primary)
        fallbacks = self.fallbacks[: self.max_attempts] if self.max_attempts else self.fallbacks
        return [primary, *fallbacks]


def _check_triggers(triggers: tuple[Any, ...]) -> tuple[FailoverTrigger, ...]:
    for trigger in triggers:
        if not isinstance(trigger, FailoverTrigger):
            raise InvalidArgumentError(f"{trigger!r} is not a FailoverTrigger")
    return triggers


def _non_negative(what: str, n: int) -> int:
    if not isinstance(n, int) or n < 0:
        raise InvalidArgumentError(f"{what} takes a whole number >= 0, got {n!r}")
    return n


class _Run:
    """The bookkeeping of one call through the chain: which provider is next, the attempts so
    far, and the decision after each failure (raise, retry after a wait, or move on)."""

    def __init__(self, config: FailoverConfig, request: CompletionRequest, timeout: float | None) -> None:
        self.config = config
        self.request = request
        limits = [t for t in (timeout, config.deadline) if t is not None]
        self.deadline = Deadline(min(limits) if limits else None)
        self.attempts: list[Attempt] = []
        self.last_error: ProviderError | None = None
        self._wait: float | None = None
        self._started = 0.0
        self._hooks = config.hooks
        self._previous: str | None = None  # the provider of the last failed attempt

    def candidates(self) -> Iterator[tuple[str, Provider, CompletionRequest]]:
        """(name, provider, request) for each attempt, sleeping before a planned retry."""
        for entry in self.config.chain():
            request = self.request.with_model(entry.model_for(self.request.model))
            while not self.deadline.expired():
                self._wait = None
                self._started = time.perf_counter()
                if self._hooks:
                    self._announce(entry.name, request.model)
                yield entry.name, entry.provider, request
                if self._wait is None:
                    break
                if self._wait > 0:
                    self.config.sleep(self._wait)
            if self.deadline.expired():
                return

    def _announce(self, name: str, model: str) -> None:
        if self._previous is not None and self._previous != name:
            self._hooks.emit("failover", from_provider=self._previous, to_provider=name, error=self.last_error)
        self._hooks.emit("attempt_start", provider=name, model=model, attempt=len(self.attempts) + 1)

    def timeout(self) -> float | None:
        return self.deadline.remaining()

    def _elapsed_ms(self) -> float:
        return round((time.perf_counter() - self._started) * 1000, 3)

    def succeeded(self, name: str, model: str, usage: Usage | None = None) -> list[Attempt]:
        self.attempts.append(Attempt(name, model, "ok", self._elapsed_ms()))
        if self._hooks:
            self._hooks.emit("attempt_end", provider=name, model=model, attempt=len(self.attempts), outcome="ok",
                             elapsed_ms=self.attempts[-1].elapsed_ms, error=None, usage=usage)
        return self.attempts

    def record(self, name: str, model: str, exc: ProviderError) -> None:
        self.attempts.append(Attempt(name, model, "error", self._elapsed_ms(), type(exc).__name__,
                                     redact(str(exc))[:300], exc.status))
        self.last_error = exc
        self._previous = name
        if self._hooks:
            self._hooks.emit("attempt_end", provider=name, model=model, attempt=len(self.attempts), outcome="error",
                             elapsed_ms=self.attempts[-1].elapsed_ms, error=exc, usage=None)

    def failed(self, name: str, model: str, exc: ProviderError) -> None:
        """Record the failure; raise it at once unless a trigger matches; else plan a retry
        of the same provider (``_wait`` seconds) when that is allowed and worth waiting for."""
        self.record(name, model, exc)
        if not any(trigger.matches(exc) for trigger in self.config.triggers):
            exc.attempts = list(self.attempts)  # type: ignore[attr-defined]
            raise exc
        retries = sum(1 for a in self.attempts if a.provider == name)
        if exc.retryable and name == self.config.primary_name and retries <= self.config.primary_retries:
            wait = self.config.retry_policy.delay(retries, exc.retry_after)
            left = self.deadline.remaining()
            if wait is not None and (left is None or wait < left):
                self._wait = wait
                if self._hooks:
                    self._hooks.emit("retry", provider=name, model=model, attempt=len(self.attempts),
                                     wait=wait, error=exc)

    def exhausted(self) -> AllProvidersFailedError:
        reason = "deadline exceeded" if self.deadline.expired() else "all providers failed"
        return AllProvidersFailedError(reason, attempts=self.attempts)


class FailoverClient(Provider):
    """A Provider that answers from the first provider in its chain that can."""

    name = "failover"

    def __init__(self, config: FailoverConfig) -> None:
        if not isinstance(config, FailoverConfig):
            raise InvalidArgumentError("FailoverClient takes a FailoverConfig")
        self.config = config
        self.supports_tools = all(e.provider.supports_tools for e in config.chain())
        self.supports_vision = all(e.provider.supports_vision for e in config.chain())

    def __repr__(self) -> str:
        return f"FailoverClient({' -> '.join(self.config.names())})"

    def complete(self, request: CompletionRequest, *, timeout: float | None = None) -> CompletionResponse:
        request.validate()
        run = _Run(self.config, request, timeout)
        filtering = FailoverTrigger.CONTENT_FILTER in self.config.triggers
        for name, provider, attempt_request in run.candidates():
            try:
                response = provider.complete(attempt_request, timeout=run.timeout())
                if filtering and response.stop_reason in (StopReason.CONTENT_FILTER, StopReason.REFUSAL):
                    raise ContentFilteredError(f"the answer was withheld ({response.raw_stop_reason or 'refusal'})",
                                               provider=name, model=attempt_request.model)
            except ProviderError as exc:
                run.failed(name, attempt_request.model, exc)
                continue
            response.provider = name
            response.attempts = run.succeeded(name, attempt_request.model, response.usage)
            return response
        raise run.exhausted() from run.last_error

    def complete_stream(self, request: CompletionRequest, *,
                        timeout: float | None = None) -> Generator[StreamChunk, None, None]:
        request.validate()
        run = _Run(self.config, request, timeout)
        for name, provider, attempt_request in run.candidates():
            sent: list[StreamChunk] = []
            stream = provider.complete_stream(attempt_request, timeout=run.timeout())
            try:
                for chunk in stream:
                    chunk.provider = name
                    sent.append(chunk)
                    if chunk.has_output:
                        break
                else:
                    yield from sent
                    yield StreamChunk(provider=name, attempts=run.succeeded(name, attempt_request.model, _usage(sent)))
                    return
                yield from sent
                for chunk in stream:
                    chunk.provider = name
                    sent.append(chunk)
                    yield chunk
            except ProviderError as exc:
                if any(chunk.has_output for chunk in sent):
                    run.record(name, attempt_request.model, exc)
                    raise self._interrupted(exc, sent, run) from exc
                run.failed(name, attempt_request.model, exc)
                continue
            finally:
                stream.close()
            yield StreamChunk(provider=name, attempts=run.succeeded(name, attempt_request.model, _usage(sent)))
            return
        raise run.exhausted() from run.last_error

    @staticmethod
    def _interrupted(exc: ProviderError, sent: list[StreamChunk], run: _Run) -> StreamInterruptedError:
        partial = collect_partial(sent)
        partial.attempts = list(run.attempts)
        return StreamInterruptedError(
            f"the stream failed after output reached the caller: {exc.message}",
            partial=partial, provider=exc.provider, model=exc.model, status=exc.status,
            request_id=exc.request_id, body=exc.body, code=exc.code, retryable=False)

    def close(self) -> None:
        for entry in self.config.chain():
            entry.provider.close()


FailoverProvider = FailoverClient


def _usage(chunks: list[StreamChunk]) -> Usage | None:
    """The usage a stream reported (its last report is the total)."""
    return next((c.usage for c in reversed(chunks) if c.usage is not None), None)


def collect_partial(chunks: list[StreamChunk]) -> CompletionResponse:
    """What arrived before a stream broke, as a response; unfinished tool arguments are dropped."""
    try:
        return collect(chunks)
    except FailoverClientError:
        return collect(replace(c, tool_call=None) for c in chunks)
