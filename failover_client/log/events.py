"""Hooks: callables that hear what a FailoverClient does, so users can count and log it.

A hook never breaks a request: whatever it raises is logged (once per hook and event name) and
swallowed.  Event names and the keyword arguments each hook receives:

* ``attempt_start``: provider, model, attempt (1-based number within the call)
* ``attempt_end``: provider, model, attempt, outcome ("ok" / "error" / "cancelled": a hedge that
  lost), elapsed_ms, error (or None), usage (the attempt's Usage, or None)
* ``retry``: provider, model, attempt, wait (seconds before the retry), error
* ``failover``: from_provider, to_provider, error
* ``circuit``: provider, state — the circuit breaker state this process just moved the provider
  to: "open" (a failure opened it), "half_open" (this call is the probe after the cooldown) or
  "closed" (the probe, or a forced attempt, succeeded).  With a RedisHealthStore only the
  process that caused a transition hears it.
* ``hedge``: provider, model, waiting_for (the provider that has not answered yet), after (the
  hedging delay in seconds) — a hedged request was started.

Providers skipped without a request (open circuit, client-side rate limit) have no events;
they are listed on the call's attempts with outcome "skipped".
* ``cache``: hit (True when a stored answer was returned), model — once per call that a
  response cache (``FailoverConfig.with_cache``) looked up.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

logger = logging.getLogger("failover_client")

EVENTS = ("attempt_start", "attempt_end", "retry", "failover", "circuit", "hedge", "cache")
Hook = Callable[..., Any]


class EventHooks:
    """The hooks registered for each event name.  Registration is thread-safe; emitting reads a
    snapshot, so hooks may be added while requests run."""

    def __init__(self) -> None:
        self._hooks: dict[str, tuple[Hook, ...]] = {}
        self._lock = threading.Lock()
        self._complained: set[tuple[int, str]] = set()

    def add(self, event: str, hook: Hook) -> None:
        from ..errors import InvalidArgumentError

        if event not in EVENTS:
            raise InvalidArgumentError(f"unknown event {event!r}; events are {EVENTS}")
        if not callable(hook):
            raise InvalidArgumentError(f"the hook for {event!r} is not callable")
        with self._lock:
            self._hooks[event] = (*self._hooks.get(event, ()), hook)

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def emit(self, event: str, **payload: Any) -> None:
        for hook in self._hooks.get(event, ()):
            try:
                hook(**payload)
            except Exception:
                key = (id(hook), event)
                if key not in self._complained:
                    self._complained.add(key)
                    logger.exception("a %s hook raised; it is ignored (logged once per hook)", event)
