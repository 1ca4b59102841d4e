"""Load balancing across deployments of the same model (two Azure regions and OpenAI, say).

Balancing is a property of the failover chain, not a provider of its own: the deployments stay
separate links of the chain (``FailoverConfig.load_balance(*names, strategy=...)``), each with
its own circuit breaker, rate limit and model mapping, and for every call a strategy only
decides their order.  The first in that order gets the call; if it fails, or its circuit is
open, or it is over its rate limit, the call fails over to the next deployment of the group,
then on down the rest of the chain, exactly as for any other provider.  A balancing provider
wrapping the deployments would hide them from the breaker and the rate limiter, which are the
reason to have several deployments in the first place.

Strategies (thread-safe; state is per process):

* ``round_robin`` — each call starts one further along the group.
* ``weighted`` — the first deployment is drawn with probability proportional to its weight,
  the rest follow in a weighted random order (so failover spreads the same way).
* ``latency`` — lowest recent latency first: an exponentially weighted average of each
  deployment's successful attempts (time to the answer; to the first output for streams).
  A deployment with no sample younger than ``max_age`` seconds counts as unknown and goes
  first, so a deployment that was slow once is measured again instead of starved forever.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Callable, Mapping, Sequence

from ..errors import InvalidArgumentError


class Strategy:
    """Orders a group's members for one call, and may learn from how attempts went."""

    def order(self, names: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def observe(self, name: str, seconds: float) -> None:
        """A successful attempt on ``name`` took ``seconds``."""


class RoundRobin(Strategy):
    def __init__(self) -> None:
        self._turns = itertools.count()  # next() on a count is atomic under the GIL

    def order(self, names: Sequence[str]) -> list[str]:
        start = next(self._turns) % len(names)
        return [*names[start:], *names[:start]]


class Weighted(Strategy):
    """Weighted random order (Efraimidis-Spirakis: sort by ``u ** (1 / weight)``, descending)."""

    def __init__(self, weights: Mapping[str, float], rng: random.Random | None = None) -> None:
        self.weights = dict(weights)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def order(self, names: Sequence[str]) -> list[str]:
        with self._lock:
            keys = {name: self._rng.random() ** (1.0 / self.weights[name]) for name in names}
        return sorted(names, key=keys.__getitem__, reverse=True)


class LowestLatency(Strategy):
    def __init__(self, smoothing: float = 0.3, max_age: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.smoothing = smoothing
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._latency: dict[str, tuple[float, float]] = {}  # name -> (average seconds, when last seen)

    def order(self, names: Sequence[str]) -> list[str]:
        now = self._clock()
        with self._lock:
            known = {name: sample[0] for name in names
                     if (sample := self._latency.get(name)) is not None and now - sample[1] <= self.max_age}
        return sorted(names, key=lambda name: known.get(name, -1.0))  # stable: unknown ones first, in order

    def observe(self, name: str, seconds: float) -> None:
        now = self._clock()
        with self._lock:
            previous = self._latency.get(name)
            if previous is None or now - previous[1] > self.max_age:
                average = seconds
            else:
                average = previous[0] + self.smoothing * (seconds - previous[0])
            self._latency[name] = (average, now)

    def latency(self, name: str) -> float | None:
        """The current average for ``name`` (None when unknown)."""
        with self._lock:
            sample = self._latency.get(name)
        return None if sample is None else sample[0]


STRATEGIES = ("round_robin", "weighted", "latency")


def make_strategy(strategy: str | Strategy, names: Sequence[str],
                  weights: Mapping[str, float] | None) -> Strategy:
    """The strategy object for ``FailoverConfig.load_balance``, with its arguments checked."""
    if isinstance(strategy, Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise InvalidArgumentError(f"unknown balancing strategy {strategy!r}; use one of {STRATEGIES} "
                                   "or a balance.Strategy")
    if weights is not None and strategy != "weighted":
        raise InvalidArgumentError(f"weights only apply to strategy='weighted', not {strategy!r}")
    if strategy == "weighted":
        weights = dict(weights) if weights is not None else {name: 1.0 for name in names}
        if set(weights) != set(names):
            raise InvalidArgumentError(f"weights must name exactly the balanced providers {sorted(names)}, "
                                       f"got {sorted(weights)}")
        for name, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
                raise InvalidArgumentError(f"the weight of {name!r} must be a positive number, got {weight!r}")
        return Weighted(weights)
    return RoundRobin() if strategy == "round_robin" else LowestLatency()


def arrange(names: Sequence[str], groups: Sequence[tuple[tuple[str, ...], Strategy]]) -> list[str]:
    """The chain order for one call: each group's members, in the order its strategy picks,
    take the place of the group's first member; everything else keeps its place."""
    order: list[str] = []
    placed = set()
    group_of = {member: (members, strategy) for members, strategy in groups for member in members}
    for name in names:
        if name in placed:
            continue
        if name in group_of:
            members, strategy = group_of[name]
            present = [member for member in members if member in names]
            order.extend(strategy.order(present))
            placed.update(present)
        else:
            order.append(name)
            placed.add(name)
    return order
