"""Retry the primary, then the fallbacks: the FailoverClient and its configuration.

The rules (design.md §4):

1. Providers are tried in order: the primary (retried ``retry_primary(n)`` times), then each
   fallback once, with the request's model mapped per fallback (unknown names pass through).
   Members of a load-balanced group are put in order per call (failover_client.resilience.balance).
   A provider whose circuit is open, that is over its client-side rate limit, or whose protocol
   cannot carry the request (``Provider.can_carry``: a document it has no block for) is skipped
   without sending anything and listed as a "skipped" attempt; when every circuit is open, the
   provider whose cooldown ends first is tried all the same (failover_client.health).
2. Every attempt gets only the time left on the overall deadline.
3. An error that matches no trigger is raised at once, annotated with ``attempts`` — except a
   context-length or content-filter error with a route of its own (``on_context_length``,
   ``on_content_filter``): the call then goes on down that route's fallbacks instead of the
   rest of the chain.
4. Retrying the same provider waits with exponential back-off and full jitter, honouring
   ``Retry-After`` up to the policy's cap; a longer wait moves on instead of blocking a worker.
   Moving to another provider never sleeps.
5. When everything failed: AllProvidersFailedError listing every attempt, last error as cause.
6. A stream commits to a provider at its first chunk that carries output; failures before that
   fail over exactly as ``complete`` does.  Failures after it raise StreamInterruptedError with
   the partial output, or with ``on_stream_interrupt("resume")`` continue on the next provider
   with the partial text as an assistant prefix, yielding only the continuation.  A stream its
   consumer drops (``close()``, an exception thrown into it, KeyboardInterrupt, garbage
   collection) ends its attempt as "abandoned": listed, hooked, logged, with the usage that
   arrived (estimated otherwise); the breaker's permit goes back without counting a failure,
   and the provider's connection is closed, not pooled half-read.
7. With ``with_hedging(seconds)`` a slow attempt is raced by the next provider
   (failover_client.resilience.hedge).
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator, TypeVar

from .errors import (
    AllProvidersFailedError,
    AuthenticationError,
    ContentFilteredError,
    ContextLengthExceededError,
    FailoverClientError,
    InvalidArgumentError,
    InvalidOutputError,
    InvalidRequestError,
    ModelNotFoundError,
    NetworkError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    StreamInterruptedError,
    redact,
)
from .health import FORCED, GO, HALF_OPEN, CircuitBreaker, HealthStore, MemoryHealthStore, Permit
from .log import log_attempt, new_request_id
from .log.events import EventHooks
from .provider import Provider, stream_usage
from .resilience.balance import Strategy, arrange, make_strategy
from .resilience.ratelimit import RateLimit, estimate_tokens, used_tokens
from .retry import Deadline, RetryPolicy
from .types import (
    Attempt,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    StopReason,
    StreamChunk,
    Usage,
    collect,
)

if TYPE_CHECKING:
    from .cache import ResponseCache

T = TypeVar("T")


class FailoverTrigger(enum.Enum):
    """Which failures move on to the next provider (and may be retried on the same one)."""

    RATE_LIMIT = (RateLimitError,)
    SERVER_ERROR = (ServerError, ResponseDecodeError)
    TIMEOUT = (ProviderTimeoutError,)
    NETWORK_ERROR = (NetworkError,)
    AUTH_ERROR = (AuthenticationError,)
    CONTEXT_LENGTH = (ContextLengthExceededError,)
    CONTENT_FILTER = (ContentFilteredError,)
    MODEL_NOT_FOUND = (ModelNotFoundError,)
    ANY_ERROR = (ProviderError,)
    # Opt-in: an answer to a structured-output request that is not JSON of its schema (see _answer).
    INVALID_OUTPUT = (InvalidOutputError,)

    def matches(self, exc: BaseException) -> bool:
        return isinstance(exc, self.value)


# A model missing on one provider is that provider's problem: the next one may have it.
DEFAULT_TRIGGERS = frozenset({FailoverTrigger.RATE_LIMIT, FailoverTrigger.SERVER_ERROR,
                              FailoverTrigger.TIMEOUT, FailoverTrigger.NETWORK_ERROR,
                              FailoverTrigger.MODEL_NOT_FOUND})
# The errors that may have fallback lists of their own, by route name.
ROUTED_ERRORS: dict[str, type[ProviderError]] = {
    "context_length": ContextLengthExceededError,
    "content_filter": ContentFilteredError,
}


@dataclass
class FallbackProvider:
    """A provider in the chain under a name of its own, with request models mapped for it.

    A model without a mapping is sent as it is, or as ``default_model`` when one is given: a
    model name of another vendor means nothing to this provider, so a cross-vendor fallback
    should name the model it serves rather than pass the name through to a 404."""

    name: str
    provider: Provider
    model_mapping: dict[str, str] = field(default_factory=dict)
    default_model: str | None = None

    def with_model_mapping(self, model: str, mapped: str) -> FallbackProvider:
        self.model_mapping[model] = mapped
        return self

    def model_for(self, model: str) -> str:
        return self.model_mapping.get(model, self.default_model or model)


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
    health: HealthStore = field(default_factory=MemoryHealthStore)
    breaker: CircuitBreaker | None = field(default_factory=CircuitBreaker)
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    balanced: list[tuple[tuple[str, ...], Strategy]] = field(default_factory=list)
    hedge_after: float | None = None
    routes: dict[str, list[FallbackProvider]] = field(default_factory=dict)
    cache: ResponseCache | None = None
    cache_sampled: bool = False

    def with_cache(self, cache: ResponseCache | None, *, cache_sampled: bool = False) -> FailoverConfig:
        """Answer identical requests from ``cache`` (failover_client.cache.MemoryCache or
        RedisCache; None turns caching off); answers to requests with ``temperature`` above 0
        are cached only with ``cache_sampled=True``."""
        from .cache import ResponseCache

        if cache is not None and not isinstance(cache, ResponseCache):
            raise InvalidArgumentError("with_cache takes a failover_client.cache.MemoryCache or RedisCache")
        self.cache, self.cache_sampled = cache, bool(cache_sampled)
        return self

    def __post_init__(self) -> None:
        """A config built through the constructor is checked as the builder methods check it,
        so a wrong one fails here, not with an AttributeError in the middle of a call."""
        _check_link("FailoverConfig primary", self.primary_name, self.primary)
        if not isinstance(self.fallbacks, list):
            raise InvalidArgumentError("FailoverConfig.fallbacks must be a list of FallbackProvider")
        fallbacks, self.fallbacks = self.fallbacks, []
        for fallback in fallbacks:
            self.add_fallback(fallback)
        self.triggers = frozenset(_check_triggers(tuple(self.triggers)))
        _non_negative("FailoverConfig.max_attempts", self.max_attempts)
        _non_negative("FailoverConfig.primary_retries", self.primary_retries)
        _seconds_or_none("FailoverConfig.deadline", self.deadline)
        _seconds_or_none("FailoverConfig.hedge_after", self.hedge_after)
        self.on_stream_interrupt(self.stream_interrupt)
        self.with_health_store(self.health)

    def add_fallback(self, fallback: FallbackProvider) -> FailoverConfig:
        if not isinstance(fallback, FallbackProvider):
            raise InvalidArgumentError("add_fallback takes a FallbackProvider(name, provider)")
        _check_link("FallbackProvider", fallback.name, fallback.provider)
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
        """Retry the first provider of each call up to ``n`` times before moving on."""
        self.primary_retries = _non_negative("retry_primary", n)
        return self

    def with_deadline(self, seconds: float | None) -> FailoverConfig:
        self.deadline = _seconds_or_none("with_deadline", seconds)
        return self

    def with_retry_policy(self, policy: RetryPolicy) -> FailoverConfig:
        self.retry_policy = policy
        return self

    def for_web(self, max_sleep: float = 2.0) -> FailoverConfig:
        """The web profile: use it for calls made while a user waits on a request thread (a
        Django or Flask view under gunicorn).  The defaults suit scripts and batches, where
        honouring a 20 s Retry-After beats failing; a request thread should rather answer from
        the fallback.  Here the primary is retried once, after at most ``max_sleep`` seconds of
        back-off or Retry-After; a longer hint moves on at once.  One call thus sleeps at most
        ``max_sleep`` seconds in all.  Pair it with ``with_deadline``."""
        if max_sleep is None or _seconds_or_none("for_web", max_sleep) is None:
            raise InvalidArgumentError("for_web takes a positive number of seconds, got None")
        self.primary_retries = 1
        self.retry_policy = RetryPolicy(base_delay=min(0.25, max_sleep), max_delay=max_sleep,
                                        max_retry_after=max_sleep)
        return self

    def with_health_store(self, store: HealthStore) -> FailoverConfig:
        """Where circuit-breaker state and rate-limit counts live: a MemoryHealthStore of this
        config by default; pass one RedisHealthStore to every process that must agree."""
        if not isinstance(store, HealthStore):
            raise InvalidArgumentError("with_health_store takes a HealthStore (MemoryHealthStore or RedisHealthStore)")
        self.health = store
        return self

    def with_circuit_breaker(self, failure_threshold: int = 5, window: float = 60.0, cooldown: float = 30.0,
                             probe_timeout: float = 30.0, count_auth_errors: bool = False) -> FailoverConfig:
        """Tune the breaker (on by default with these values); see failover_client.health."""
        self.breaker = CircuitBreaker(failure_threshold, window, cooldown, probe_timeout, count_auth_errors)
        return self

    def without_circuit_breaker(self) -> FailoverConfig:
        self.breaker = None
        return self

    def with_rate_limit(self, name: str, *, rpm: int | None = None, tpm: int | None = None,
                        wait: bool = False) -> FailoverConfig:
        """At most ``rpm`` requests and ``tpm`` tokens a minute to provider ``name``; over it a
        call moves on to the next provider, or with ``wait=True`` waits within its deadline."""
        if name not in {entry.name for entry in self.links()}:
            raise InvalidArgumentError(f"with_rate_limit: no provider named {name!r} in the chain or its routes")
        self.rate_limits[name] = RateLimit(rpm, tpm, wait)
        return self

    def load_balance(self, *names: str, strategy: str | Strategy = "round_robin",
                     weights: dict[str, float] | None = None) -> FailoverConfig:
        """Spread calls over deployments of the same model: per call, ``strategy``
        ("round_robin", "weighted" with ``weights``, or "latency") orders these providers, which
        then stand together where the first of them is in the chain; failover goes on through
        the rest of the group, then the rest of the chain."""
        if len(names) < 2:
            raise InvalidArgumentError("load_balance needs at least two provider names")
        unknown = [name for name in names if name not in self.names()]
        if unknown:
            raise InvalidArgumentError(f"load_balance: {unknown} are not in the chain (add them first)")
        grouped = {member for members, _ in self.balanced for member in members}
        if grouped & set(names) or len(set(names)) != len(names):
            raise InvalidArgumentError(f"load_balance: a provider can be in one group once; {names} overlaps")
        self.balanced.append((tuple(names), make_strategy(strategy, names, weights)))
        return self

    def with_hedging(self, after_seconds: float | None) -> FailoverConfig:
        """Start the next provider alongside an attempt that has not answered within
        ``after_seconds``; the first good answer wins (None turns hedging off)."""
        self.hedge_after = _seconds_or_none("with_hedging", after_seconds)
        return self

    def on_stream_interrupt(self, mode: str) -> FailoverConfig:
        """After output reached the caller, a failure either raises StreamInterruptedError
        ("raise", the default) or continues on the next provider ("resume")."""
        if mode not in ("raise", "resume"):
            raise InvalidArgumentError(f"on_stream_interrupt takes 'raise' or 'resume', not {mode!r}")
        self.stream_interrupt = mode
        return self

    def on_context_length(self, *fallbacks: FallbackProvider) -> FailoverConfig:
        """Where a call goes when the prompt is too long for a provider (bigger-context models),
        instead of the rest of the chain.  No arguments removes the route."""
        return self._set_route("context_length", fallbacks)

    def on_content_filter(self, *fallbacks: FallbackProvider) -> FailoverConfig:
        """Where a call goes when a provider's content filter refuses it (another vendor),
        instead of the rest of the chain.  No arguments removes the route."""
        return self._set_route("content_filter", fallbacks)

    def _set_route(self, kind: str, fallbacks: tuple[FallbackProvider, ...]) -> FailoverConfig:
        others = [link for route, links in self.routes.items() if route != kind for link in links]
        known = {link.name: link.provider for link in [*self.chain(), *self.fallbacks, *others]}
        for fallback in fallbacks:
            if not isinstance(fallback, FallbackProvider):
                raise InvalidArgumentError(f"on_{kind} takes FallbackProvider(name, provider) objects")
            if known.setdefault(fallback.name, fallback.provider) is not fallback.provider:
                raise InvalidArgumentError(f"provider name {fallback.name!r} already names another provider")
        if fallbacks:
            self.routes[kind] = list(fallbacks)
        else:
            self.routes.pop(kind, None)
        return self

    def on(self, event: str, hook: Callable[..., Any]) -> FailoverConfig:
        """Call ``hook(**payload)`` on ``event`` (see failover_client.log.events for names and payloads)."""
        self.hooks.add(event, hook)
        return self

    def names(self) -> list[str]:
        return [self.primary_name] + [f.name for f in self.fallbacks]

    def chain(self) -> list[FallbackProvider]:
        primary = FallbackProvider(self.primary_name, self.primary)
        fallbacks = self.fallbacks[: self.max_attempts] if self.max_attempts else self.fallbacks
        return [primary, *fallbacks]

    def links(self) -> list[FallbackProvider]:
        """Every provider of the chain and of the routes (each name once)."""
        routed = [link for route in self.routes.values() for link in route]
        seen: dict[str, FallbackProvider] = {}
        for link in [FallbackProvider(self.primary_name, self.primary), *self.fallbacks, *routed]:
            seen.setdefault(link.name, link)
        return list(seen.values())

    def plan(self) -> list[FallbackProvider]:
        """The chain in the order one call tries it: balanced groups arranged, then cut to
        ``1 + max_attempts`` providers."""
        entries = {entry.name: entry for entry in [FallbackProvider(self.primary_name, self.primary), *self.fallbacks]}
        order = arrange(list(entries), self.balanced) if self.balanced else list(entries)
        planned = [entries[name] for name in order]
        return planned[: 1 + self.max_attempts] if self.max_attempts else planned

    def observe(self, name: str, seconds: float) -> None:
        """Tell ``name``'s balancing group how long its successful attempt took."""
        for members, strategy in self.balanced:
            if name in members:
                strategy.observe(name, seconds)


def _check_link(what: str, name: Any, provider: Any) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"{what} needs a non-empty name, got {name!r}")
    if not callable(getattr(provider, "complete", None)):
        raise InvalidArgumentError(f"{what} {name!r}: {type(provider).__name__} is not a Provider")


def _check_triggers(triggers: tuple[Any, ...]) -> tuple[FailoverTrigger, ...]:
    for trigger in triggers:
        if not isinstance(trigger, FailoverTrigger):
            raise InvalidArgumentError(f"{trigger!r} is not a FailoverTrigger")
    return triggers


def _non_negative(what: str, n: int) -> int:
    if not isinstance(n, int) or n < 0:
        raise InvalidArgumentError(f"{what} takes a whole number >= 0, got {n!r}")
    return n


def _seconds_or_none(what: str, seconds: float | None) -> float | None:
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0):
        raise InvalidArgumentError(f"{what} takes a positive number of seconds or None, got {seconds!r}")
    return seconds


# Why a provider was passed over, by the breaker's permit: (Attempt.error_type, Attempt.error).
_SKIPPED = {
    "open": ("CircuitOpen", "circuit open"),
    "probing": ("CircuitOpen", "circuit half-open, its probe is out"),
    "held": ("RetryAfter", "asked to wait (Retry-After)"),
}


@dataclass(eq=False)
class _Try:
    """One attempt: the link it goes to, the request as sent there, and what it holds — the
    breaker's permit and the tokens reserved against a rate limit."""

    entry: FallbackProvider
    request: CompletionRequest
    number: int
    permit: Permit = GO
    reserved: int | None = None
    started: float = field(default_factory=time.perf_counter)
    first_output: float | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def provider(self) -> Provider:
        return self.entry.provider


class _Run:
    """The bookkeeping of one call through the chain: which provider is next (skipping the
    unavailable ones), the attempts so far, and the decision after each failure (raise, reroute,
    retry after a wait, or move on).  Only the caller's thread touches it, hedged or not."""

    def __init__(self, config: FailoverConfig, request: CompletionRequest, timeout: float | None) -> None:
        self.config = config
        self.request = self._original = request
        limits = [t for t in (timeout, config.deadline) if t is not None]
        self.deadline = Deadline(min(limits) if limits else None)
        self.attempts: list[Attempt] = []
        self.last_error: ProviderError | None = None
        self.resuming = False
        self.filters_refusals = (FailoverTrigger.CONTENT_FILTER in config.triggers
                                 or "content_filter" in config.routes)
        self.checks_output = FailoverTrigger.INVALID_OUTPUT in config.triggers
        self._hooks = config.hooks
        self._queue = deque(config.plan())
        self._first = self._queue[0].name if self._queue else None  # the provider retry_primary applies to
        self._retry: tuple[FallbackProvider, float, float] | None = None  # a planned retry: link, wait, start time
        self._cooling: list[tuple[float, FallbackProvider]] = []  # skipped by the breaker: (seconds left, link)
        self._routed: set[str] = set()
        self._sent = 0
        self._previous: str | None = None  # the provider of the last failed attempt
        self.request_id = new_request_id()  # ties this call's attempts together in the log

    # --- what to try next ---------------------------------------------------------------

    def tries(self) -> Iterator[_Try]:
        """Each attempt to make in turn, sleeping before a planned retry (the unhedged loop)."""
        while self.next_start() is not None:
            if self._retry is not None and self._retry[1] > 0:
                self.config.sleep(self._retry[1])  # the policy's wait, exactly
            started = self.start_next()
            if started is None:
                return
            yield started

    def next_start(self) -> float | None:
        """When (on time.monotonic) the next attempt may start; None when nothing is left."""
        if self.deadline.expired():
            return None
        if self._retry is not None:
            return self._retry[2]
        return time.monotonic() if self._queue or (self._cooling and not self._sent) else None

    def start_next(self) -> _Try | None:
        """Begin the next attempt that may be sent, listing the providers skipped on the way;
        None when there is none (and then next_start() is None too)."""
        if self._retry is not None:
            self._queue.appendleft(self._retry[0])
            self._retry = None
        while self._queue and not self.deadline.expired():
            started = self._admit(self._queue.popleft())
            if started is not None:
                return started
        cooling, self._cooling = self._cooling, []
        if cooling and not self._sent and not self.deadline.expired():
            entry = min(cooling, key=lambda pair: pair[0])[1]  # every circuit is open: the first to cool down
            return self._begin(entry, self._request_for(entry), FORCED, None)
        return None

    def _request_for(self, entry: FallbackProvider) -> CompletionRequest:
        return self.request.with_model(entry.model_for(self.request.model))

    def _cannot_carry(self, entry: FallbackProvider, request: CompletionRequest) -> tuple[str, str] | None:
        """(error type, reason) when ``entry`` is no place to send ``request``, else None."""
        reason = entry.provider.can_carry(request)
        return None if reason is None else ("NotSupported", reason)

    def _admit(self, entry: FallbackProvider) -> _Try | None:
        """An attempt on ``entry`` if it can carry the request and its circuit and its rate
        limit let one through."""
        request = self._request_for(entry)
        cannot = self._cannot_carry(entry, request)
        if cannot is not None:
            self._skip(entry, request, *cannot)
            return None
        permit = GO
        if self.config.breaker is not None:
            permit = self.config.health.acquire(entry.name, self.config.breaker)
            if not permit.allowed:
                self._cooling.append((permit.retry_in, entry))
                self._skip(entry, request, *_SKIPPED[permit.kind])
                return None
            if permit.kind == "probe":
                self._announce_circuit(entry.name, HALF_OPEN)
        limit = self.config.rate_limits.get(entry.name)
        reserved = None
        if limit is not None:
            reserved = self._reserve(entry.name, request, limit)
            if reserved is None:
                self.config.health.release(entry.name, permit)
                self._skip(entry, request, "RateLimited", "over its client-side rate limit")
                return None
        return self._begin(entry, request, permit, reserved)

    def _reserve(self, name: str, request: CompletionRequest, limit: RateLimit) -> int | None:
        """Count this request against ``limit`` (waiting for room if the limit says so and the
        deadline allows); the tokens reserved, or None when it does not fit."""
        tokens = estimate_tokens(request) if limit.tpm else 0
        while True:
            wait = self.config.health.take_rate(name, tokens, limit)
            if wait == 0:
                return tokens
            left = self.deadline.remaining()
            if not limit.wait or wait == math.inf or (left is not None and wait >= left):
                return None  # a request bigger than the whole budget never fits
            self.config.sleep(wait)

    def _begin(self, entry: FallbackProvider, request: CompletionRequest, permit: Permit,
               reserved: int | None) -> _Try:
        self._sent += 1
        if self._hooks:
            if self._previous is not None and self._previous != entry.name:
                self._hooks.emit("failover", from_provider=self._previous, to_provider=entry.name,
                                 error=self.last_error)
            self._hooks.emit("attempt_start", provider=entry.name, model=request.model, attempt=self._sent)
        return _Try(entry, request, self._sent, permit, reserved)

    def _skip(self, entry: FallbackProvider, request: CompletionRequest, kind: str, why: str) -> None:
        self.attempts.append(Attempt(entry.name, request.model, "skipped", 0.0, kind, why))

    # --- what happened ------------------------------------------------------------------

    def timeout(self) -> float | None:
        return self.deadline.remaining()

    def _record(self, attempt: _Try, outcome: str, exc: ProviderError | None = None,
                usage: Usage | None = None) -> None:
        elapsed = round((time.perf_counter() - attempt.started) * 1000, 3)
        model = attempt.request.model
        if exc is None:
            self.attempts.append(Attempt(attempt.name, model, outcome, elapsed))
        else:
            self.attempts.append(Attempt(attempt.name, model, outcome, elapsed, type(exc).__name__,
                                         redact(str(exc))[:300], exc.status))
        log_attempt(self.request_id, attempt.name, model, attempt.number, outcome, elapsed, exc, usage)
        if self._hooks:
            self._hooks.emit("attempt_end", provider=attempt.name, model=model, attempt=attempt.number,
                             outcome=outcome, elapsed_ms=elapsed, error=exc, usage=usage)

    def succeeded(self, attempt: _Try, usage: Usage | None = None) -> list[Attempt]:
        self._record(attempt, "ok", usage=usage)
        if self.config.breaker is not None:
            self._announce_circuit(attempt.name, self.config.health.record_success(attempt.name, attempt.permit))
        used = used_tokens(usage)
        if attempt.reserved is not None and used is not None and used != attempt.reserved:
            self.config.health.add_tokens(attempt.name, used - attempt.reserved)
        if self.config.balanced:
            self.config.observe(attempt.name, (attempt.first_output or time.perf_counter()) - attempt.started)
        return self.attempts

    def record(self, attempt: _Try, exc: ProviderError) -> None:
        """List a failed attempt and tell the breaker (if the failure is the provider's fault)."""
        self._record(attempt, "error", exc)
        self.last_error = exc
        self._previous = attempt.name
        breaker = self.config.breaker
        if breaker is None:
            return
        if breaker.counts(exc):
            self._announce_circuit(attempt.name, self.config.health.record_failure(attempt.name, attempt.permit,
                                                                                   breaker))
        else:
            self.config.health.release(attempt.name, attempt.permit)

    def abandoned(self, attempt: _Try, usage: Usage | None = None) -> None:
        """The caller dropped the attempt mid-way (see rule 6): neither a success nor the
        provider's failure, so the breaker only gets its permit back (a half-open probe's slot
        is free for the next call at once)."""
        self._record(attempt, "abandoned", usage=usage)
        if self.config.breaker is not None:
            self.config.health.release(attempt.name, attempt.permit)

    def cancelled(self, attempt: _Try) -> None:
        """A hedge that lost: listed, and silent towards the breaker."""
        self._record(attempt, "cancelled")
        self.config.health.release(attempt.name, attempt.permit)

    def failed(self, attempt: _Try, exc: ProviderError) -> None:
        """Record the failure; then go down the error's own route if it has one, or move on (or
        plan a retry) if a trigger matches; else raise it at once, annotated with the attempts."""
        self.record(attempt, exc)
        if self._reroute(exc):
            return
        if not self._moves_on(exc):
            exc.attempts = list(self.attempts)  # type: ignore[attr-defined]
            raise exc
        if not self._plan_retry(attempt, exc) and exc.retry_after and self.config.breaker is not None:
            # moving on instead of waiting: let every caller skip it for as long as it asked
            self.config.health.hold(attempt.name, min(exc.retry_after, self.config.breaker.cooldown))

    def _reroute(self, exc: ProviderError) -> bool:
        for route, error_class in ROUTED_ERRORS.items():
            if isinstance(exc, error_class) and route in self.config.routes and route not in self._routed:
                self._routed.add(route)
                self._queue = deque(self.config.routes[route])
                self._retry = None
                return True
        return False

    def _moves_on(self, exc: ProviderError) -> bool:
        if any(trigger.matches(exc) for trigger in self.config.triggers):
            return True
        if any(isinstance(exc, ROUTED_ERRORS[route]) for route in self._routed):
            return True  # further down the route this kind of error opened
        return self.resuming and isinstance(exc, InvalidRequestError)  # e.g. a provider refusing the prefix

    def _plan_retry(self, attempt: _Try, exc: ProviderError) -> bool:
        """Plan a retry of the same provider if allowed and worth the wait; whether it was."""
        retries = sum(1 for a in self.attempts if a.provider == attempt.name and a.outcome == "error")
        if exc.retryable and attempt.name == self._first and retries <= self.config.primary_retries:
            wait = self.config.retry_policy.delay(retries, exc.retry_after)
            left = self.deadline.remaining()
            if wait is not None and (left is None or wait < left):
                self._retry = (attempt.entry, wait, time.monotonic() + wait)
                if self._hooks:
                    self._hooks.emit("retry", provider=attempt.name, model=attempt.request.model,
                                     attempt=attempt.number, wait=wait, error=exc)
                return True
        return False

    def resume(self, shown_text: str) -> None:
        """Continue the call on the next provider, asking it to carry on from ``shown_text``.
        The prefix goes without trailing whitespace: Anthropic rejects a final assistant turn
        that ends in whitespace (the continuation filter puts the spacing right)."""
        original = self._original
        prefix = Message.assistant(shown_text.rstrip())
        self.request = replace(original, messages=[*original.messages, prefix])
        self.resuming = True

    def exhausted(self) -> AllProvidersFailedError:
        if self.deadline.expired():
            reason = "deadline exceeded"
        elif not self._sent:
            reason = "no provider was available (open circuits, client-side rate limits, or requests they cannot carry)"
        else:
            reason = "all providers failed"
        return AllProvidersFailedError(reason, attempts=self.attempts)

    def announce_hedge(self, attempt: _Try, *, waiting_for: _Try, after: float) -> None:
        if self._hooks:
            self._hooks.emit("hedge", provider=attempt.name, model=attempt.request.model,
                             waiting_for=waiting_for.name, after=after)

    def _announce_circuit(self, provider: str, state: str | None) -> None:
        if state is not None and self._hooks:
            self._hooks.emit("circuit", provider=provider, state=state)


@dataclass
class _Opened:
    """A stream that produced its first output (or ended without any): what was read, and the rest."""

    stream: Generator[StreamChunk, None, None]
    head: list[StreamChunk]

    def chunks(self, name: str) -> Iterator[StreamChunk]:
        yield from self.head
        for chunk in self.stream:
            chunk.provider = name
            yield chunk

    def close(self) -> None:
        self.stream.close()


class Stream:
    """A streamed answer already committed to a provider (see ``FailoverClient.open_stream``).

    Iterating gives the chunks from the first one carrying output on; the last chunk carries
    the attempts.  ``provider`` names who is answering, ``attempts`` lists the tries so far
    (complete once the stream has ended).  ``close()`` — or leaving a ``with`` block — closes
    the upstream connection when the consumer stops early (a client that hung up)."""

    def __init__(self, chunks: Generator[StreamChunk, None, None], head: list[StreamChunk],
                 attempts: list[Attempt]) -> None:
        self._chunks = chunks
        self._head = deque(head)
        self._attempts = attempts
        self.provider = next((c.provider for c in reversed(head) if c.provider), None)

    @property
    def attempts(self) -> list[Attempt]:
        return list(self._attempts)

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> StreamChunk:
        chunk = self._head.popleft() if self._head else next(self._chunks)
        self.provider = chunk.provider or self.provider  # a resumed stream moves on
        return chunk

    def close(self) -> None:
        self._head.clear()
        self._chunks.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FailoverClient(Provider):
    """A Provider that answers from the first provider in its chain that can."""

    name = "failover"

    def __init__(self, config: FailoverConfig) -> None:
        if not isinstance(config, FailoverConfig):
            raise InvalidArgumentError("FailoverClient takes a FailoverConfig")
        self.config = config
        self.supports_tools = all(e.provider.supports_tools for e in config.chain())
        self.supports_vision = all(e.provider.supports_vision for e in config.chain())

    @classmethod
    def from_models(cls, *models: str, overrides: dict[str, dict[str, Any]] | None = None) -> FailoverClient:
        """A chain from ``"provider/model"`` strings of the catalog, keys from the environment:
        the first is the primary; a request for its model goes to each fallback as that
        fallback's model.  ``overrides`` maps a provider name to options for it, e.g.
        ``{"openai": {"base_url": ...}}``.  Every missing environment variable is named in one
        MissingCredentialsError.  Tune the result through ``client.config``."""
        from .providers.registry import chain

        (name, primary, model), *fallbacks = chain(*models, overrides=overrides)
        config = FailoverConfig(name, primary)
        for fallback_name, provider, fallback_model in fallbacks:
            config.add_fallback(FallbackProvider(fallback_name, provider).with_model_mapping(model, fallback_model))
        return cls(config)

    def __repr__(self) -> str:
        return f"FailoverClient({' -> '.join(self.config.names())})"

    def _first_success(self, run: _Run, attempt: Callable[[_Try, _Run], T]) -> tuple[_Try, T]:
        """The first attempt that succeeds and its result, one after the other or hedged."""
        if self.config.hedge_after is not None:
            from .resilience.hedge import race

            return race(run, attempt, self.config.hedge_after)
        for started in run.tries():
            try:
                return started, attempt(started, run)
            except ProviderError as exc:
                run.failed(started, exc)
            except BaseException:  # interrupted (Ctrl-C in a notebook): free its probe slot, say so
                run.abandoned(started, stream_usage(started.request, []))  # the prompt was sent: estimated
                raise
        raise run.exhausted() from run.last_error

    def complete(self, request: CompletionRequest, *, timeout: float | None = None) -> CompletionResponse:
        request.validate()
        key, stored = self._cached(request)
        if stored is not None:
            return stored
        run = _Run(self.config, request, timeout)
        winner, response = self._first_success(run, _answer)
        response.provider = winner.name
        response.attempts = run.succeeded(winner, response.usage)
        self._store(key, response)
        return response

    @property
    def supports_embeddings(self) -> bool:  # type: ignore[override]
        return any(entry.provider.supports_embeddings for entry in self.config.chain())

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """Vectors from the first provider that can give them, under the rules of ``complete``.
        Vectors of different models are not interchangeable, so a fallback takes part only when
        it is sent the same model (another deployment or region) or has a mapping for this model
        (``with_model_mapping``); any other is listed as skipped, with the reason."""
        request.validate()
        key, stored = self._cached(request)
        if stored is not None:
            return stored
        run = _EmbeddingRun(self.config, request, timeout)  # type: ignore[arg-type]
        winner, response = self._first_success(run, _embedding)
        response.provider = winner.name
        response.attempts = run.succeeded(winner, response.usage)
        self._store(key, response)
        return response

    def _cached(self, request: Any) -> tuple[str | None, Any]:
        """(this call's cache key, the stored answer on a hit); (None, None) when not cached."""
        config = self.config
        if config.cache is None:
            return None, None
        from .cache import cache_key, cacheable, decode

        if not cacheable(request, config.cache_sampled):
            return None, None
        started = time.perf_counter()
        key = cache_key(request, [(entry.name, entry.model_for(request.model)) for entry in config.chain()])
        raw = config.cache.get(key)
        kind = EmbeddingResponse if isinstance(request, EmbeddingRequest) else CompletionResponse
        stored = None if raw is None else decode(raw, kind, round((time.perf_counter() - started) * 1000, 3))
        if config.hooks:
            config.hooks.emit("cache", hit=stored is not None, model=request.model)
        return key, stored

    def _store(self, key: str | None, answer: Any) -> None:
        if key is not None and self.config.cache is not None:
            from .cache import encode

            self.config.cache.set(key, encode(answer))

    def complete_stream(self, request: CompletionRequest, *,
                        timeout: float | None = None) -> Generator[StreamChunk, None, None]:
        request.validate()
        key, stored = self._cached(request)
        if stored is not None:
            from .cache import replay

            yield from replay(stored)
            return
        yield from self._relay(_Run(self.config, request, timeout), key)

    def open_stream(self, request: CompletionRequest, *, timeout: float | None = None) -> Stream:
        """Fail over until the first chunk carrying output is in hand, then hand the stream over.

        ``complete_stream`` is lazy: nothing is sent until it is iterated, so a web view that
        returns it has sent its 200 headers before it learns that every provider failed.  This
        runs the failover first and raises what ``complete`` would (AllProvidersFailedError, a
        non-trigger ProviderError), so the view can still answer 502/503.  Close the Stream (or
        use it in a ``with``) when the consumer stops early: that closes the upstream response."""
        request.validate()
        key, stored = self._cached(request)
        if stored is not None:
            from .cache import replay

            replayed = replay(stored)
            return Stream(replayed, [next(replayed)], stored.attempts)  # the first chunk names the provider
        run = _Run(self.config, request, timeout)
        chunks = self._relay(run, key)
        head: list[StreamChunk] = []
        try:
            for chunk in chunks:
                head.append(chunk)
                if chunk.has_output:
                    break
        except BaseException:
            chunks.close()
            raise
        return Stream(chunks, head, run.attempts)

    def _relay(self, run: _Run, key: str | None) -> Generator[StreamChunk, None, None]:
        """The chunks of one streamed call through the chain (rule 6 of the module docstring),
        the whole answer stored in the cache under ``key`` when one provider gave it all."""
        shown: list[StreamChunk] = []  # everything the caller has received
        interruption: ProviderError | None = None
        while True:
            try:
                winner, opened = self._first_success(run, _open_stream)
            except FailoverClientError as exc:
                if interruption is None:
                    raise
                raise self._interrupted(interruption, shown, run) from exc
            continuation = _Continuation(_text(shown)) if interruption is not None else None
            received: list[StreamChunk] = []
            try:
                for chunk in opened.chunks(winner.name):
                    received.append(chunk)
                    for out in continuation.feed(chunk) if continuation else (chunk,):
                        shown.append(out)
                        yield out
                for out in continuation.flush() if continuation else ():
                    shown.append(out)
                    yield out
            except ProviderError as exc:
                interruption = exc
                if self.config.stream_interrupt == "resume" and _resumable(shown):
                    try:
                        run.failed(winner, exc)
                    except ProviderError:
                        raise self._interrupted(exc, shown, run) from exc
                    run.resume(_text(shown))
                    continue
                run.record(winner, exc)
                raise self._interrupted(exc, shown, run) from exc
            except BaseException:  # closed, thrown into, interrupted or collected by its consumer
                run.abandoned(winner, stream_usage(winner.request, received))
                raise
            finally:
                opened.close()
            attempts = run.succeeded(winner, _usage(received))
            if interruption is None:
                self._store(key, replace(collect(shown), provider=winner.name))  # a whole answer from one provider
            yield StreamChunk(provider=winner.name, attempts=attempts, response_format=winner.request.response_format)
            return

    def can_carry(self, request: CompletionRequest) -> str | None:
        """None when some provider of the chain can carry ``request`` (as its model maps), else
        each one's reason."""
        reasons = []
        for entry in self.config.plan():
            reason = entry.provider.can_carry(request.with_model(entry.model_for(request.model)))
            if reason is None:
                return None
            reasons.append(f"{entry.name}: {reason}")
        return "; ".join(reasons)

    @property
    def supports_token_counting(self) -> bool:  # type: ignore[override]
        return any(entry.provider.supports_token_counting for entry in self.config.chain())

    def count_tokens(self, request: Any, *, timeout: float | None = None) -> Any:
        """Input tokens (a TokenCountResult) from the primary, failing over on the same triggers
        and with the same model mapping as ``complete`` (never hedged); a provider that cannot
        count at all (NotSupportedError) is passed over.  ``provider`` on the result names who
        counted."""
        from .errors import NotSupportedError
        from .tokens import prompt_request

        run = _Run(self.config, prompt_request(request), timeout)
        for attempt in run.tries():
            try:
                result = attempt.provider.count_tokens(attempt.request, timeout=run.timeout())
            except NotSupportedError as exc:
                run.record(attempt, exc)  # not a failure to raise: the next provider may count
                continue
            except ProviderError as exc:
                run.failed(attempt, exc)
                continue
            run.succeeded(attempt)
            result.provider = attempt.name
            return result
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
        closed: set[int] = set()
        for entry in self.config.links():
            if id(entry.provider) not in closed:
                closed.add(id(entry.provider))
                entry.provider.close()


FailoverProvider = FailoverClient


def _answer(attempt: _Try, run: _Run) -> CompletionResponse:
    """One plain attempt; a withheld answer is an error when content filtering fails over, and
    a structured-output answer that is not JSON of its schema when INVALID_OUTPUT does.  (A
    stream cannot be judged before it commits, at its first output: there the trigger does
    nothing, and ``collect(stream).parsed`` raises InvalidOutputError.)"""
    response = attempt.provider.complete(attempt.request, timeout=run.timeout())
    response.response_format = attempt.request.response_format  # what .parsed checks, whoever answered
    if run.filters_refusals and response.stop_reason in (StopReason.CONTENT_FILTER, StopReason.REFUSAL):
        raise ContentFilteredError(f"the answer was withheld ({response.raw_stop_reason or 'refusal'})",
                                   provider=attempt.name, model=attempt.request.model)
    if run.checks_output and response.response_format is not None:
        response.provider = attempt.name
        _ = response.parsed  # raises InvalidOutputError
    return response


def _embedding(attempt: _Try, run: _Run) -> EmbeddingResponse:
    return attempt.provider.embed(attempt.request, timeout=run.timeout())  # type: ignore[arg-type]


class _EmbeddingRun(_Run):
    """A call of ``embed``: as any other, except that a fallback whose vectors would come from
    another model, or that serves no embeddings, is passed over (and listed as skipped)."""

    def _cannot_carry(self, entry: FallbackProvider, request: Any) -> tuple[str, str] | None:
        model = self.request.model
        if not entry.provider.supports_embeddings:
            return "NotInterchangeable", "serves no embeddings"
        if entry.name != self.config.primary_name and model not in entry.model_mapping \
                and entry.model_for(model) != model:
            return "NotInterchangeable", (f"no embedding model mapping for {model!r} (vectors of "
                                          f"{entry.model_for(model)!r} would not be comparable)")
        return None


def _open_stream(attempt: _Try, run: _Run) -> _Opened:
    """One streamed attempt, read up to its first chunk that carries output (the commit point)."""
    stream = attempt.provider.complete_stream(attempt.request, timeout=run.timeout())
    head: list[StreamChunk] = []
    try:
        for chunk in stream:
            chunk.provider = attempt.name
            head.append(chunk)
            if chunk.has_output:
                attempt.first_output = time.perf_counter()
                break
    except BaseException:
        stream.close()
        raise
    return _Opened(stream, head)


class _Continuation:
    """Passes on what a resumed stream sends, with two repairs, so the caller sees only the
    continuation of what it already has (``shown``):

    * a provider that ignores the assistant prefix and starts over repeats ``shown``: chunks are
      held while the new text could still be that repeat, which is then dropped;
    * the prefix went out without its trailing whitespace, so when the caller's text already
      ends in whitespace, the continuation's leading whitespace is dropped.
    """

    def __init__(self, shown: str) -> None:
        self._shown = shown.strip()
        self._spaced = shown != shown.rstrip()
        self._held: list[StreamChunk] = []
        self._text = ""
        self._decided = False

    def feed(self, chunk: StreamChunk) -> list[StreamChunk]:
        if self._decided:
            return [chunk]
        self._held.append(chunk)
        self._text += chunk.text or ""
        new = self._text.lstrip()
        if not new or (len(new) < len(self._shown) and self._shown.startswith(new)):
            return []  # could still be the start of a repeat
        return self._release(new[len(self._shown):] if new.startswith(self._shown) else self._text)

    def flush(self) -> list[StreamChunk]:
        """At the end of the stream: whatever is still held only repeated what was shown."""
        return [] if self._decided else self._release("")

    def _release(self, text: str) -> list[StreamChunk]:
        self._decided = True
        if self._spaced:
            text = text.lstrip()
        held, self._held = self._held, []
        first = next((i for i, chunk in enumerate(held) if chunk.text), None)
        return [replace(chunk, text=(text or None) if i == first else None) if chunk.text else chunk
                for i, chunk in enumerate(held)]


def _text(chunks: list[StreamChunk]) -> str:
    return "".join(chunk.text or "" for chunk in chunks)


def _resumable(chunks: list[StreamChunk]) -> bool:
    """Only plain text can be continued from a prefix: not tool calls, reasoning or refusals."""
    return bool(_text(chunks).strip()) and not any(
        c.tool_call or c.thinking or c.refusal or c.redacted_thinking for c in chunks)


def _usage(chunks: list[StreamChunk]) -> Usage | None:
    """The usage a stream reported (its last report is the total)."""
    return next((c.usage for c in reversed(chunks) if c.usage is not None), None)


def collect_partial(chunks: list[StreamChunk]) -> CompletionResponse:
    """What arrived before a stream broke, as a response; unfinished tool arguments are dropped."""
    try:
        return collect(chunks)
    except FailoverClientError:
        return collect(replace(c, tool_call=None) for c in chunks)
