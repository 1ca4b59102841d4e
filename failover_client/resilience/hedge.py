"""Hedged requests: when an attempt is slow, race the next provider against it.

``FailoverConfig.with_hedging(after_seconds)`` runs a call's attempts in worker threads.  When
the newest attempt has not answered within ``after_seconds``, the next provider of the chain
starts alongside it (one extra request per hedge step, never more); an attempt that fails starts
the next one at once, as without hedging.  The first good answer wins.  Every other attempt is
cancelled: its sockets are shut down (see :mod:`failover_client.resilience.cancel`), so a loser blocked on
a silent server lets go at once, and whatever it returns afterwards is discarded (an opened
stream is closed).  Losers are listed in the attempts as "cancelled" and say nothing to the
circuit breaker.

For streams the race is run up to the first chunk that carries output: that is where a stream
commits to a provider (design.md §4.6), so hedging covers a slow start, and once output has
reached the caller the winner alone carries on, in the caller's thread.

No thread pool is kept: a pool created before ``fork()`` is broken in the child (Celery
prefork), and a hedge is rare enough that starting a thread for it costs nothing that matters.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Protocol, TypeVar

from ..errors import AllProvidersFailedError, ProviderError, ProviderTimeoutError
from ..retry import Deadline
from ..types import CompletionRequest
from . import cancel

T = TypeVar("T")


class Try(Protocol):
    """One attempt, as the failover loop plans it: what a race needs to know of it."""

    @property
    def name(self) -> str: ...

    request: CompletionRequest


class Sleeper(Protocol):
    sleep: Callable[[float], None]


class Run(Protocol):
    """The failover loop's bookkeeping for one call (``_Run`` in failover.py), as far as a race
    uses it: this module decides only when attempts start; the loop keeps its own rules."""

    config: Sleeper
    deadline: Deadline
    last_error: ProviderError | None

    def next_start(self) -> float | None: ...

    def start_next(self) -> Try | None: ...

    def announce_hedge(self, attempt: Any, *, waiting_for: Any, after: float) -> None: ...

    def failed(self, attempt: Any, exc: ProviderError) -> None: ...

    def cancelled(self, attempt: Any) -> None: ...

    def exhausted(self) -> AllProvidersFailedError: ...


Attempt = Callable[[Any, Any], T]  # (the Try, the Run) -> its result


def race(run: Run, attempt: Attempt[T], after: float) -> tuple[Try, T]:
    """The first attempt of ``run`` that succeeds, and its result; raise as the failover rules
    say when none does.  ``attempt(try_, run)`` makes one attempt (in a worker thread)."""
    results: queue.SimpleQueue[tuple[Try, bool | None, Any]] = queue.SimpleQueue()
    running: dict[Try, cancel.CancelScope] = {}
    newest: Try | None = None
    newest_at = 0.0
    try:
        while True:
            start_at = run.next_start()
            now = time.monotonic()  # read after next_start(), which may answer "now" itself
            waiting = newest is not None and newest in running  # the newest attempt is still out
            hedge_at = newest_at + after if waiting else now
            if start_at is not None and now >= max(start_at, hedge_at):
                started = run.start_next()
                if started is not None:
                    if waiting and newest is not None:
                        run.announce_hedge(started, waiting_for=newest, after=after)
                    running[started] = _launch(started, attempt, run, results)
                    newest, newest_at = started, now
                    continue
                start_at = run.next_start()
            if not running:
                if start_at is None:
                    raise run.exhausted() from run.last_error
                run.config.sleep(max(0.0, start_at - time.monotonic()))  # a planned retry of the same provider
                continue
            next_start = None if start_at is None else max(start_at, hedge_at)
            moments = [m for m in (run.deadline.at, next_start) if m is not None]
            try:
                done, ok, value = results.get(timeout=max(0.0, min(moments) - now) if moments else None)
            except queue.Empty:
                if run.deadline.expired():
                    _time_out(run, running)
                    raise run.exhausted() from run.last_error
                continue
            del running[done]
            if ok:
                return done, value
            if ok is None:
                raise value  # not a provider failure: a bug, surface it unchanged
            run.failed(done, value)
    finally:
        for loser, scope in running.items():
            scope.cancel()
            run.cancelled(loser)


def _launch(started: Try, attempt: Attempt[Any], run: Run,
            results: queue.SimpleQueue[tuple[Try, bool | None, Any]]) -> cancel.CancelScope:
    scope = cancel.CancelScope()

    def work() -> None:
        cancel.enter(scope)
        outcome: tuple[Try, bool | None, Any]
        try:
            outcome = (started, True, attempt(started, run))
        except ProviderError as exc:
            outcome = (started, False, exc)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            outcome = (started, None, exc)
        if not scope.deliver(lambda: results.put(outcome)) and outcome[1]:
            close = getattr(outcome[2], "close", None)
            if close is not None:
                close()  # a lost race's opened stream: give its connection back

    threading.Thread(target=work, name=f"failover-hedge-{started.name}", daemon=True).start()
    return scope


def _time_out(run: Run, running: dict[Try, cancel.CancelScope]) -> None:
    """The deadline passed with attempts still out: stop them and record each as timed out."""
    while running:
        late, scope = running.popitem()
        scope.cancel()
        run.failed(late, ProviderTimeoutError("deadline exceeded; the attempt was cancelled",
                                              provider=late.name, model=late.request.model))
