"""Usage accounting: requests, tokens and cost by provider and model, with an optional budget.

Two ways to feed a :class:`UsageTracker`, use one per client:

* ``tracker.attach(config)`` registers an ``attempt_end`` hook on a FailoverConfig, so every
  attempt of every call is counted under the chain's provider name, fallbacks and failures
  included (a failed attempt adds tokens and cost only when it was billed, i.e. the hook was
  given its usage).  Hooks never break a request, so this path cannot enforce a budget.
* ``tracker.wrap(provider)`` wraps any Provider, a FailoverClient included: it refuses a call
  once the budget is spent, and counts what came back: the answer, the failed attempts listed
  on it (or on AllProvidersFailedError), and the partial output of an interrupted stream,
  which the provider did bill.  ``tracker.guard(provider)`` only enforces the budget, for a
  client whose counting is already done by ``attach``.

The budget is checked *before* each call against what has been *spent* so far: a call starts
only while spending is below the budget, and a call that crosses it still returns its answer
(the provider has billed it by then).  So spending overshoots by at most the calls in flight
when the limit is reached; projecting a call's cost beforehand would need its output length,
which nobody knows.  The refusal is :class:`~failover_client.errors.BudgetExceededError`,
which is not a ProviderError, so a FailoverClient never fails over on it.

Costs come from the model registry (:mod:`failover_client.models`); an answer whose model or
price is unknown is counted in ``unpriced`` rather than silently costing nothing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Generator

from ..errors import AllProvidersFailedError, BudgetExceededError, FailoverClientError, InvalidArgumentError
from ..provider import Provider, stream_usage

if TYPE_CHECKING:
    from ..failover import FailoverConfig
    from ..models import Registry
    from ..types import (
        Attempt,
        CompletionRequest,
        CompletionResponse,
        EmbeddingRequest,
        EmbeddingResponse,
        StreamChunk,
        TokenCountRequest,
        Usage,
    )


@dataclass
class UsageTotals:
    """Sums for one provider/model (or for everything)."""

    requests: int = 0  # attempts that returned an answer
    failures: int = 0  # attempts that failed (billed or not)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # attempts with tokens whose cost is unknown
    estimated: int = 0  # attempts whose provider reported no usage: their tokens (and cost) are our estimate

    def add(self, usage: Usage | None, ok: bool, cost_usd: float | None) -> None:
        if ok:
            self.requests += 1
        else:
            self.failures += 1
        if usage is None:
            return
        self.estimated += usage.estimated
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_tokens += usage.cache_read_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        self.reasoning_tokens += usage.reasoning_tokens
        if cost_usd is None:
            self.unpriced += 1 if usage.total_tokens else 0
        else:
            self.cost_usd += cost_usd

    def merge(self, other: UsageTotals) -> UsageTotals:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)
        return self


class UsageTracker:
    """Thread-safe sums of requests, tokens and cost by provider and model.

    ``budget_usd`` (optional) is the spending limit enforced by :meth:`wrap` and :meth:`guard`.
    ``registry`` prices the usage (the default registry when omitted).
    """

    def __init__(self, budget_usd: float | None = None, *, registry: Registry | None = None) -> None:
        if budget_usd is not None and not budget_usd > 0:
            raise InvalidArgumentError(f"budget_usd must be a positive number of dollars, got {budget_usd!r}")
        self.budget_usd = budget_usd
        self._registry = registry
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], UsageTotals] = {}
        self.cache_hits = 0  # calls answered by a response cache (failover_client.cache)
        self.cache_misses = 0

    # -- recording --------------------------------------------------------------------------

    def record(self, provider: str, model: str, usage: Usage | None = None, *, ok: bool = True,
               batch: bool = False) -> float | None:
        """Count one attempt; returns its cost (None when unknown or there was no usage)."""
        price = self._price(provider, model, usage, batch)
        with self._lock:
            totals = self._totals.get((provider, model))
            if totals is None:
                totals = self._totals[(provider, model)] = UsageTotals()
            totals.add(usage, ok, price)
        return price

    def _price(self, provider: str, model: str, usage: Usage | None, batch: bool) -> float | None:
        if usage is None or not usage.total_tokens:
            return None if usage is None else 0.0
        from ..models import cost, default_registry

        info = (self._registry or default_registry()).find(model, provider=provider)
        return None if info is None else cost(usage, info, batch=batch)

    def on_attempt_end(self, *, provider: str, model: str, outcome: str, error: BaseException | None = None,
                       usage: Usage | None = None, **_: Any) -> None:
        """The ``attempt_end`` hook (see failover_client.log.events)."""
        billed = usage if usage is not None else _partial_usage(error)
        self.record(provider, model, billed, ok=outcome in ("ok", "abandoned"))  # an abandoned stream was billed

    def on_cache(self, *, hit: bool, **_: Any) -> None:
        """The ``cache`` hook: one response-cache lookup."""
        with self._lock:
            if hit:
                self.cache_hits += 1
            else:
                self.cache_misses += 1

    def attach(self, config: FailoverConfig) -> FailoverConfig:
        """Count every attempt and cache lookup of the client built from ``config``; returns ``config``."""
        return config.on("attempt_end", self.on_attempt_end).on("cache", self.on_cache)

    def wrap(self, provider: Provider, name: str | None = None) -> TrackedProvider:
        """``provider`` with budget enforcement and accounting (see the module docstring)."""
        return TrackedProvider(provider, self, name, count=True)

    def guard(self, provider: Provider, name: str | None = None) -> TrackedProvider:
        """``provider`` with budget enforcement only (its usage is counted through ``attach``)."""
        return TrackedProvider(provider, self, name, count=False)

    # -- budget -----------------------------------------------------------------------------

    @property
    def spent_usd(self) -> float:
        with self._lock:
            return sum(t.cost_usd for t in self._totals.values())

    def check_budget(self) -> None:
        """Raise BudgetExceededError when spending has reached the budget."""
        if self.budget_usd is None:
            return
        spent = self.spent_usd
        if spent >= self.budget_usd:
            raise BudgetExceededError(
                f"the budget of ${self.budget_usd:.4f} is used up (${spent:.4f} spent); the request was not sent",
                spent=spent, budget=self.budget_usd)

    # -- reading ----------------------------------------------------------------------------

    def totals(self) -> UsageTotals:
        """Everything, summed."""
        total = UsageTotals()
        with self._lock:
            for part in self._totals.values():
                total.merge(part)
        return total

    def by_model(self) -> dict[str, UsageTotals]:
        """``{"provider/model": totals}``, a snapshot."""
        with self._lock:
            return {f"{p}/{m}": UsageTotals().merge(t) for (p, m), t in sorted(self._totals.items())}

    def by_provider(self) -> dict[str, UsageTotals]:
        result: dict[str, UsageTotals] = {}
        with self._lock:
            for (provider, _), part in sorted(self._totals.items()):
                result.setdefault(provider, UsageTotals()).merge(part)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_usd": self.budget_usd,
            "total": asdict(self.totals()),
            "by_provider": {name: asdict(t) for name, t in self.by_provider().items()},
            "by_model": {name: asdict(t) for name, t in self.by_model().items()},
            "cache": {"hits": self.cache_hits, "misses": self.cache_misses},
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def reset(self) -> None:
        with self._lock:
            self._totals.clear()
            self.cache_hits = self.cache_misses = 0

    # -- what a wrapped call returned ----------------------------------------------------------

    def _count_attempts(self, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            if attempt.outcome == "error":
                self.record(attempt.provider, attempt.model, None, ok=False)
            elif attempt.outcome == "cache":
                self.on_cache(hit=True)

    def _count_answer(self, provider: str, model: str, usage: Usage | None, attempts: list[Attempt]) -> None:
        self._count_attempts(attempts)
        self.record(provider, model, usage, ok=True)

    def _count_failure(self, exc: FailoverClientError, provider: str, model: str, usage: Usage | None) -> None:
        """A failed call: every attempt it lists failed; the last one (or the call itself, when it
        lists none) carries the usage that was billed, e.g. an interrupted stream's output."""
        billed = usage or _partial_usage(exc)
        partial = getattr(exc, "partial", None)
        attempts = list(exc.attempts if isinstance(exc, AllProvidersFailedError)
                        else getattr(exc, "attempts", None) or getattr(partial, "attempts", None) or [])
        if attempts:
            *earlier, last = attempts
            self._count_attempts(earlier)
            self.record(last.provider, last.model, billed, ok=False)
        else:
            self.record(getattr(exc, "provider", None) or provider, getattr(exc, "model", None) or model, billed,
                        ok=False)


def _partial_usage(error: BaseException | None) -> Usage | None:
    """The usage of output that reached the caller before a stream broke (it was billed)."""
    partial = getattr(error, "partial", None)
    usage = getattr(partial, "usage", None)
    return usage if usage is not None and usage.total_tokens else None


class TrackedProvider(Provider):
    """A Provider that checks a tracker's budget before each call and (with ``count``) adds
    what each call used to the tracker."""

    def __init__(self, provider: Provider, tracker: UsageTracker, name: str | None = None, *,
                 count: bool = True) -> None:
        if not isinstance(provider, Provider):
            raise InvalidArgumentError(f"UsageTracker.wrap takes a Provider, got {type(provider).__name__}")
        self.provider = provider
        self.tracker = tracker
        self.name = name or provider.name
        self._count = count
        for flag in ("supports_tools", "supports_vision", "supports_streaming", "supports_token_counting",
                     "supports_batch", "supports_embeddings"):
            setattr(self, flag, getattr(provider, flag))

    def __repr__(self) -> str:
        return f"TrackedProvider({self.provider!r})"

    def complete(self, request: CompletionRequest, *, timeout: float | None = None) -> CompletionResponse:
        return self._counted(self.provider.complete, request, timeout)  # type: ignore[no-any-return]

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """Counted like a completion: one request, its input tokens, their cost, the budget."""
        return self._counted(self.provider.embed, request, timeout)  # type: ignore[no-any-return]

    def _counted(self, call: Callable[..., Any], request: CompletionRequest | EmbeddingRequest,
                 timeout: float | None) -> Any:
        """``call(request)`` once the budget allows it, with what it used (or failed) counted."""
        self.tracker.check_budget()
        try:
            response = call(request, timeout=timeout)
        except FailoverClientError as exc:
            if self._count:
                self.tracker._count_failure(exc, self.name, request.model, None)
            raise
        if self._count:
            self.tracker._count_answer(response.provider or self.name, response.model or request.model,
                                       response.usage, response.attempts)
        return response

    def complete_stream(self, request: CompletionRequest, *,
                        timeout: float | None = None) -> Generator[StreamChunk, None, None]:
        self.tracker.check_budget()
        seen = _StreamSeen(self.name, request.model)
        try:
            for chunk in self.provider.complete_stream(request, timeout=timeout):
                seen.note(chunk)
                yield chunk
        except FailoverClientError as exc:
            if self._count:
                self.tracker._count_failure(exc, seen.provider, seen.model, seen.usage)
            raise
        except BaseException:  # abandoned by the consumer: billed all the same
            if self._count:
                self.tracker._count_answer(seen.provider, seen.model, stream_usage(request, seen.chunks), seen.attempts)
            raise
        if self._count:
            self.tracker._count_answer(seen.provider, seen.model, seen.usage, seen.attempts)

    def count_tokens(self, request: TokenCountRequest | CompletionRequest, *, timeout: float | None = None) -> Any:
        return self.provider.count_tokens(request, timeout=timeout)

    def create_batch(self, requests: Any) -> Any:
        self.tracker.check_budget()
        return self.provider.create_batch(requests)

    def get_batch(self, batch_id: str) -> Any:
        return self.provider.get_batch(batch_id)

    def get_batch_results(self, batch_id: str) -> Any:
        return self.provider.get_batch_results(batch_id)

    def cancel_batch(self, batch_id: str) -> Any:
        return self.provider.cancel_batch(batch_id)

    def list_batches(self) -> Any:
        return self.provider.list_batches()

    def close(self) -> None:
        self.provider.close()


class _StreamSeen:
    """What a stream has said about itself so far: who answered, the model, usage, attempts."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.usage: Usage | None = None
        self.attempts: list[Attempt] = []
        self.chunks: list[StreamChunk] = []  # to estimate the usage of a stream dropped mid-way

    def note(self, chunk: StreamChunk) -> None:
        self.chunks.append(chunk)
        if chunk.provider:
            self.provider = chunk.provider
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.attempts:
            self.attempts = chunk.attempts
