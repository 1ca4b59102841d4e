"""Failover calls on a Celery fleet: a ``complete`` task to register on your app, and a batch
executor that spreads :func:`failover_client.batch.run` over the fleet's workers.

In the module your workers import (Celery itself is imported only by this module)::

    from celery import Celery
    from failover_client import FailoverClient
    from failover_client.contrib.celery import register
    from failover_client.health import RedisHealthStore

    app = Celery("llm", broker="redis://redis:6379/0", backend="redis://redis:6379/1")

    def make_client():
        client = FailoverClient.from_models("openai/gpt-5.5", "anthropic/claude-sonnet-5")
        client.config.with_health_store(RedisHealthStore("redis://redis:6379/2"))
        client.config.with_rate_limit("openai", rpm=500)  # one limit for the whole fleet
        return client

    complete = register(app, make_client)

``register`` adds three tasks: ``failover_client.complete`` (a request's ``to_dict()`` in, the
response's ``to_dict()`` out; errors raised as themselves), ``failover_client.answer``, one
item of a batch whose errors come back inside its result, and ``failover_client.embed``, one
request of :func:`failover_client.batch.embed` (like ``complete``, for an EmbeddingRequest).
``make_client`` is called once in each worker process, at its first task, after the pool has
forked (a client may be given instead; its connections are per process anyway).  Requests and
answers cross the broker as JSON, so any serializer works.

Anywhere that can reach the broker::

    response = CompletionResponse.from_dict(complete.delay(request.to_dict(encode_json=True)).get())

    from failover_client import batch
    from failover_client.contrib.celery import CeleryExecutor
    results = batch.run(None, requests, executor=CeleryExecutor(app), max_workers=64)

``batch.run`` keeps up to ``max_workers`` tasks in flight (about twice the fleet's total
concurrency keeps every worker busy) and gives what it always gives: results in input order,
each with its response or its error, a progress bar, a checkpoint to resume from.  The
client argument is None: the workers answer with their own.  A large embedding job spreads the
same way, its requests cut to the model's limits here and sent ``workers`` at a time::

    vectors = batch.embed(texts, None, model="text-embedding-3-small", executor=CeleryExecutor(app),
                          workers=64).vectors

The breaker and the rate limits are only as shared as the client's health store: with the
default (memory) store each worker process opens its own circuits and counts its own requests,
so N processes would send N times the rpm limit.  Give the client a
:class:`~failover_client.health.RedisHealthStore` and the fleet keeps one limit together; a
warning is logged when a worker's client has rate limits and no shared store.

The executor reads results with one Redis MGET per poll, so the result backend must be a
key-value store (Redis, as the health store needs anyway).  Ctrl-C stops the run as usual; the
tasks still queued are revoked.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Union

from ..batch import Outbox, answer
from ..errors import FailoverClientError, InvalidArgumentError, redact
from ..provider import Provider
from ..types import BatchRequest, BatchResult, BatchResultStatus, CompletionRequest, EmbeddingRequest, EmbeddingResponse

if TYPE_CHECKING:
    from celery import Celery, Task

COMPLETE = "failover_client.complete"
ANSWER = "failover_client.answer"
EMBED = "failover_client.embed"
POLL_INTERVAL = 0.01  # seconds between looks at the results of the tasks in flight

logger = logging.getLogger("failover_client")
ClientSource = Union[Provider, Callable[[], Provider]]


def register(app: Celery, client: ClientSource) -> Task:
    """Add the ``failover_client.complete`` and ``failover_client.answer`` tasks to ``app``,
    answering with ``client`` (a Provider or FailoverClient, or a function making one, called
    once per worker process); the ``complete`` task."""
    client_here = _per_process(client)

    @app.task(name=COMPLETE)
    def complete(request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One request (``CompletionRequest.to_dict()``) -> its ``CompletionResponse.to_dict()``."""
        decoded = _decoded(CompletionRequest, request, "request")
        return client_here().complete(decoded, timeout=timeout).to_dict(encode_json=True)

    @app.task(name=ANSWER)
    def answer_item(item: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One batch item (``BatchRequest.to_dict()``) -> its ``BatchResult.to_dict()``, the
        error inside it: one failure must not look like a broken task."""
        try:
            decoded = _decoded(BatchRequest, item, "batch item")
        except InvalidArgumentError as exc:
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            return BatchResult(str(custom_id), BatchResultStatus.ERRORED, error=exc).to_dict(encode_json=True)
        return answer(client_here(), decoded, timeout).to_dict(encode_json=True)

    @app.task(name=EMBED)
    def embed(request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One request (``EmbeddingRequest.to_dict()``) -> its ``EmbeddingResponse.to_dict()``."""
        decoded = _decoded(EmbeddingRequest, request, "embedding request")
        return client_here().embed(decoded, timeout=timeout).to_dict(encode_json=True)

    return complete


def _decoded(cls: Any, data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"a {what} crosses the queue as a dict (its to_dict()), got {type(data).__name__}")
    try:
        return cls.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidArgumentError(f"not a {what}: {type(exc).__name__}: {exc}") from None


def _per_process(source: ClientSource) -> Callable[[], Provider]:
    """``source`` as a function giving this process's client (made at the first call)."""
    if isinstance(source, Provider):
        _warn_if_counted_per_process(source)
        return lambda: source
    if not callable(source):
        raise InvalidArgumentError(f"register() takes a Provider or a function making one, got {source!r}")
    made: list[Provider] = []
    lock = threading.Lock()

    def client_here() -> Provider:
        if not made:
            with lock:
                if not made:
                    client = source()
                    if not isinstance(client, Provider):
                        raise InvalidArgumentError(f"the client function gave {type(client).__name__}, "
                                                   "not a Provider or FailoverClient")
                    _warn_if_counted_per_process(client)
                    made.append(client)
        return made[0]
    return client_here


def _warn_if_counted_per_process(client: Provider) -> None:
    from ..failover import FailoverClient
    from ..health import MemoryHealthStore

    if isinstance(client, FailoverClient) and client.config.rate_limits \
            and isinstance(client.config.health, MemoryHealthStore):
        logger.warning("the Celery tasks' client has rate limits but keeps its counts in this process: every "
                       "worker process will send up to the whole limit; give it a RedisHealthStore to share them")


class CeleryExecutor:
    """Sends each request of a :func:`failover_client.batch.run` to the fleet as a
    ``failover_client.answer`` task (on ``queue``, or the app's default queue) and collects
    the results as they finish."""

    def __init__(self, app: Celery, *, queue: str | None = None, poll_interval: float = POLL_INTERVAL) -> None:
        if not hasattr(app.backend, "get_many") or not hasattr(app.backend, "mget"):
            raise InvalidArgumentError(f"CeleryExecutor needs a key-value result backend (Redis), the app has "
                                       f"{type(app.backend).__name__}")
        self.app = app
        self.queue = queue
        self.poll_interval = poll_interval

    def check_client(self, client: Provider | None) -> None:
        if client is not None:
            raise InvalidArgumentError("with a CeleryExecutor the workers answer with the client given to "
                                       "register(): pass None as run()'s client (or embed()'s)")

    def start(self, client: Provider | None, items: list[BatchRequest], todo: list[int], timeout: float | None,
              max_workers: int, outbox: Outbox) -> None:
        threading.Thread(target=self._dispatch, args=(items, todo, timeout, max_workers, outbox), daemon=True,
                         name="failover-client-celery").start()

    def _dispatch(self, items: list[BatchRequest], todo: list[int], timeout: float | None, window: int,
                  outbox: Outbox) -> None:
        """Keep ``window`` tasks in flight; hand in each result as it arrives."""
        try:
            positions = iter(lambda: outbox.next_index(todo), None)
            for i, meta in self._finished(ANSWER, lambda i: [items[i].to_dict(encode_json=True), timeout],
                                          positions, window, lambda: outbox.closed):
                outbox.deliver(i, _result(items[i], meta))
        except BaseException as exc:
            outbox.fail(exc if isinstance(exc, FailoverClientError) else FailoverClientError(
                redact(f"the Celery batch stopped: {type(exc).__name__}: {exc}")))

    def embed(self, requests: dict[int, EmbeddingRequest], timeout: float | None,
              window: int) -> Iterator[tuple[int, EmbeddingResponse | FailoverClientError]]:
        """:func:`failover_client.batch.embed`'s requests (by position) as ``failover_client.embed``
        tasks, ``window`` in flight; each answer, or its error, as it arrives."""
        for i, meta in self._finished(EMBED, lambda i: [requests[i].to_dict(encode_json=True), timeout],
                                      iter(requests), window, lambda: False):
            yield i, _embedding(meta)

    def _finished(self, task: str, args: Callable[[int], list[Any]], positions: Iterable[int], window: int,
                  stopped: Callable[[], bool]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Send ``task`` for each of ``positions`` (with ``args(i)``), ``window`` in flight, and give
        each one's backend meta as it finishes.  Once ``stopped()``, or when the caller stops
        reading, the tasks still queued are revoked (running ones end alone)."""
        pending: dict[str, int] = {}  # task id -> position
        backend = self.app.backend
        positions = iter(positions)
        try:
            while True:
                while len(pending) < window and (i := next(positions, None)) is not None:
                    pending[self.app.send_task(task, args=args(i), queue=self.queue).id] = i
                if not pending or stopped():
                    return
                for task_id, meta in backend.get_many(set(pending), interval=self.poll_interval, max_iterations=1):
                    i = pending.pop(task_id)
                    backend.forget(task_id)
                    yield i, meta
        finally:
            if pending:
                self.app.control.revoke(list(pending))


def _result(item: BatchRequest, meta: dict[str, Any]) -> BatchResult:
    """A task's outcome (its backend meta) as the item's BatchResult."""
    from celery import states

    status, value = meta.get("status"), meta.get("result")
    if status == states.SUCCESS:
        try:
            return BatchResult.from_dict(value)
        except (KeyError, TypeError, ValueError, AttributeError):
            error = FailoverClientError(f"the {ANSWER} task returned {type(value).__name__}, not a BatchResult")
            return BatchResult(item.custom_id, BatchResultStatus.ERRORED, error=error)
    if status == states.REVOKED:
        return BatchResult(item.custom_id, BatchResultStatus.CANCELLED)
    return BatchResult(item.custom_id, BatchResultStatus.ERRORED, error=_task_error(ANSWER, value))


def _embedding(meta: dict[str, Any]) -> EmbeddingResponse | FailoverClientError:
    """An embed task's outcome: its EmbeddingResponse, or the error it raised (one of ours keeps
    its class and message across the backend)."""
    from celery import states

    value = meta.get("result")
    if meta.get("status") != states.SUCCESS:
        return _task_error(EMBED, value)
    try:
        return EmbeddingResponse.from_dict(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        return FailoverClientError(f"the {EMBED} task returned {type(value).__name__}, not an EmbeddingResponse")


def _task_error(task: str, value: Any) -> FailoverClientError:
    """What a failed task raised, as our error; a task the workers do not know stops the run."""
    from celery.exceptions import NotRegistered

    if isinstance(value, NotRegistered):
        raise FailoverClientError(f"the workers have no {task} task: call "
                                  "failover_client.contrib.celery.register(app, client) in the app they load")
    if isinstance(value, FailoverClientError):
        return value
    return FailoverClientError(redact(f"the Celery task failed: {type(value).__name__}: {value}"))
