"""Many requests through any Provider or FailoverClient at once, on a pool of threads: the way
to run a batch where there is no Batch API (or when answers are wanted now, at full price).

``run(client, requests)`` returns one BatchResult per request, in input order, each with its
``response`` or its ``error`` (one failure never loses the others).  On a terminal it draws a
progress bar on stderr.  Ctrl-C stops it: requests not yet started are dropped, the ones in
flight are abandoned (their threads are daemons and end with their request), and what finished
is returned, the rest marked CANCELLED, with ``results.interrupted`` set.

With ``checkpoint=path`` every finished result is appended to a JSONL file the moment it
arrives; a later run with the same path and the same requests reads it and redoes only what
is not there (errored requests too, with ``redo_errors=True``), so a crashed or interrupted run
loses no finished work.  A request's id is its ``custom_id``, or its position in the input for
a plain CompletionRequest.

Where the requests are answered is the ``executor``'s business: by default a ThreadExecutor
(``max_workers`` threads of this process); ``failover_client.contrib.celery.CeleryExecutor``
spreads them over a Celery fleet's workers instead, with the same order, per-request errors,
progress and checkpoint.  An executor has ``check_client(client)`` (raise InvalidArgumentError
if this client cannot be used) and ``start(client, items, todo, timeout, max_workers, outbox)``,
which returns at once and, on threads of its own, takes positions to answer from
``outbox.next_index(todo)`` until it gives None, hands each result to ``outbox.deliver(i,
result)``, and anything that stops it to ``outbox.fail(exc)``.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import IO, Any, Callable, Iterable, Protocol, Sequence

from ..errors import FailoverClientError, InvalidArgumentError, redact
from ..provider import Provider
from ..types import BatchRequest, BatchResult, BatchResultStatus, CompletionRequest, EmbeddingResponse
from .journal import Journal


def embed(texts: Sequence[str], client: Provider, **options: Any) -> EmbeddingResponse:
    """Vectors for many ``texts`` through ``client``, in requests cut to the model's limits and
    run on a pool of threads (or a Celery fleet: ``executor=CeleryExecutor(app)``, client None),
    in input order, with progress and checkpoints; the options (``model``, ``batch_size``,
    ``workers``, ``checkpoint``, ``executor``...) are embedding.embed_all's."""
    from .embedding import embed_all

    return embed_all(texts, client, bar=ProgressBar, **options)


class RunResults(list[BatchResult]):
    """The results of a run, in input order; ``interrupted`` tells whether Ctrl-C cut it short."""

    interrupted = False


class Executor(Protocol):
    """Where run() has its requests answered (see the module doc)."""

    def check_client(self, client: Provider | None) -> None: ...

    def start(self, client: Provider | None, items: list[BatchRequest], todo: list[int], timeout: float | None,
              max_workers: int, outbox: Outbox) -> None: ...


class ThreadExecutor:
    """The default executor: ``max_workers`` daemon threads of this process, each answering
    with ``client`` the next request until none is left."""

    def check_client(self, client: Provider | None) -> None:
        if not isinstance(client, Provider):
            raise InvalidArgumentError(f"run() takes a Provider or FailoverClient, got {type(client).__name__}")

    def start(self, client: Provider | None, items: list[BatchRequest], todo: list[int], timeout: float | None,
              max_workers: int, outbox: Outbox) -> None:
        for n in range(min(max_workers, len(todo))):
            threading.Thread(target=_work, args=(client, items, todo, timeout, outbox), daemon=True,
                             name=f"failover-client-run-{n}").start()


def run(client: Provider | None, requests: Iterable[CompletionRequest | BatchRequest], *, max_workers: int = 8,
        timeout: float | None = None, checkpoint: str | os.PathLike[str] | None = None, redo_errors: bool = False,
        progress: bool | None = None, on_result: Callable[[BatchResult], Any] | None = None,
        executor: Executor | None = None) -> RunResults:
    """Run ``requests`` with ``max_workers`` in flight at once (on threads of this process, or
    where ``executor`` sends them; then ``client`` is what that executor asks for: None for a
    CeleryExecutor, whose workers have their own); ``timeout`` bounds each request.
    ``progress`` None draws the bar only when stderr is a terminal.  ``on_result`` is called
    with each result as it arrives, on the calling thread."""
    executor = ThreadExecutor() if executor is None else executor
    executor.check_client(client)
    if not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidArgumentError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
    items = _identified(requests)
    log = Checkpoint(checkpoint) if checkpoint is not None else None
    results: list[BatchResult | None] = [None] * len(items)
    if log is not None:
        results = _resumed(items, log, redo_errors)
        log.open()
    todo = [i for i, result in enumerate(results) if result is None]
    bar = ProgressBar(len(items), sys.stderr, progress, resumed=[r for r in results if r is not None])
    outbox = Outbox(log)
    executor.start(client, items, todo, timeout, max_workers, outbox)
    interrupted = False
    try:
        for _ in todo:
            i, result = outbox.take()
            if isinstance(result, BaseException):
                raise result  # a worker could not go on (the checkpoint cannot be written)
            results[i] = result
            bar.update([result])
            if on_result is not None:
                on_result(result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for i, result in outbox.close():  # delivered while we stopped: finished, and checkpointed
            results[i] = result
        bar.close()
    out = RunResults(result or BatchResult(items[i].custom_id, BatchResultStatus.CANCELLED)
                     for i, result in enumerate(results))
    out.interrupted = interrupted
    return out


def _identified(requests: Iterable[CompletionRequest | BatchRequest]) -> list[BatchRequest]:
    items: list[BatchRequest] = []
    seen: set[str] = set()
    for i, request in enumerate(requests):
        if isinstance(request, CompletionRequest):
            request = BatchRequest(str(i), request)
        elif not isinstance(request, BatchRequest):
            raise InvalidArgumentError(f"requests[{i}] is {type(request).__name__}, not a CompletionRequest or "
                                       "BatchRequest")
        if request.custom_id in seen:
            raise InvalidArgumentError(f"requests[{i}]: custom_id {request.custom_id!r} is used twice")
        seen.add(request.custom_id)
        items.append(request)
    return items


def _resumed(items: list[BatchRequest], log: Checkpoint, redo_errors: bool) -> list[BatchResult | None]:
    """By position, the results an earlier run recorded (None: still to do)."""
    results: list[BatchResult | None] = [None] * len(items)
    position = {item.custom_id: i for i, item in enumerate(items)}
    for earlier in log.load():
        i = position.get(earlier.custom_id)
        if i is not None and (earlier.ok or (earlier.status is BatchResultStatus.ERRORED and not redo_errors)):
            results[i] = earlier
    return results


def _work(client: Provider, items: list[BatchRequest], todo: list[int], timeout: float | None,
          outbox: Outbox) -> None:
    """One worker: take the next request until none is left or the run stopped."""
    try:
        while (i := outbox.next_index(todo)) is not None:
            outbox.deliver(i, answer(client, items[i], timeout))
    except BaseException as exc:
        outbox.fail(exc)


def answer(client: Provider, item: BatchRequest, timeout: float | None) -> BatchResult:
    """One request's result: its response, or the error it raised (any error: a provider bug
    must not cost the other requests their answers)."""
    try:
        return BatchResult(item.custom_id, BatchResultStatus.SUCCEEDED,
                           response=client.complete(item.request, timeout=timeout))
    except FailoverClientError as exc:
        return BatchResult(item.custom_id, BatchResultStatus.ERRORED, error=exc)
    except Exception as exc:
        error = FailoverClientError(redact(f"{type(exc).__name__}: {exc}"))
        return BatchResult(item.custom_id, BatchResultStatus.ERRORED, error=error)


class Outbox:
    """Where workers hand in results.  Handing in and checkpointing happen together under one
    lock, and closing takes that lock, so every result the run returns as finished is in the
    checkpoint, and nothing is written once the run has returned."""

    def __init__(self, log: Checkpoint | None) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._closed = False
        self._next = 0
        self._results: queue.SimpleQueue[tuple[int, BatchResult | BaseException]] = queue.SimpleQueue()

    def next_index(self, todo: list[int]) -> int | None:
        with self._lock:
            if self._closed or self._next >= len(todo):
                return None
            self._next += 1
            return todo[self._next - 1]

    def deliver(self, i: int, result: BatchResult) -> None:
        with self._lock:
            if self._closed:
                return  # the run was interrupted while this request was in flight
            if self._log is not None:
                self._log.write(result)
            self._results.put((i, result))

    @property
    def closed(self) -> bool:
        """True once the run has stopped taking results (it ended, or Ctrl-C cut it short)."""
        return self._closed

    def fail(self, exc: BaseException) -> None:
        self._results.put((-1, exc))

    def take(self) -> tuple[int, BatchResult | BaseException]:
        return self._results.get()

    def close(self) -> list[tuple[int, BatchResult]]:
        """Stop the workers; the results handed in but not yet taken."""
        with self._lock:
            self._closed = True
            if self._log is not None:
                self._log.close()
        left = []
        while not self._results.empty():
            i, result = self._results.get()
            if isinstance(result, BatchResult):
                left.append((i, result))
        return left


class Checkpoint(Journal):
    """A JSONL file of finished results (BatchResult.to_json, one per line), appended to as
    they arrive and flushed at once, so a crash loses at most the line being written."""

    def load(self) -> list[BatchResult]:
        """The results recorded so far; a line a crash cut short (or any unreadable line) is
        skipped, so its request runs again."""
        results = []
        for line in self.lines():
            try:
                results.append(BatchResult.from_json(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        return results

    def write(self, result: BatchResult) -> None:
        self.append(result.to_json())


class ProgressBar:
    """``  37/100 [#######.............]  37%  2 errors  12.5/s`` on one line of a terminal,
    redrawn at most ten times a second; silent when ``enabled`` is False, or None and
    ``stream`` is not a terminal."""

    WIDTH = 30

    def __init__(self, total: int, stream: IO[str], enabled: bool | None = None,
                 resumed: Sequence[BatchResult] = ()) -> None:
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.done = self.errors = 0
        self.update(resumed, draw=False)
        self._resumed = self.done  # read from a checkpoint: not part of the rate
        self._started = time.monotonic()
        self._drawn = 0.0

    def update(self, results: Sequence[BatchResult], *, draw: bool = True) -> None:
        self.done += len(results)
        self.errors += sum(1 for r in results if r.status is BatchResultStatus.ERRORED)
        now = time.monotonic()
        if draw and self.enabled and (now - self._drawn >= 0.1 or self.done == self.total):
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        share = 100 * self.done // self.total if self.total else 100
        rate = (self.done - self._resumed) / max(now - self._started, 1e-6)
        errors = f"  {self.errors} errors" if self.errors else ""
        self.stream.write(f"\r{self.done:>{len(str(self.total))}}/{self.total} [{'#' * filled}"
                          f"{'.' * (self.WIDTH - filled)}] {share:>3}%{errors}  {rate:.1f}/s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
