"""batch.run on a real Celery fleet: two prefork workers (Redis broker and result backend)
answer the ``failover_client.answer`` tasks tests/celery_batch_app.py registers, against the
fake provider server of this process, with the primary's rpm limit counted in Redis.

The limit is the point: each worker process counting alone would let the fleet send the
primary up to (processes x rpm) requests; shared, the whole run stays within one rpm (plus what
a minute boundary crossed during the run frees: the sliding window counts the previous minute
by how much of it still overlaps the last 60 s)."""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_celery import stop_worker

from failover_client import BatchRequest, CompletionRequest, CompletionResponse, InvalidRequestError, Message, batch
from failover_client.batch import Checkpoint
from failover_client.contrib.celery import ANSWER, EMBED, CeleryExecutor
from failover_client.errors import InvalidArgumentError
from failover_client.testing import FakeProviderServer, Fault
from failover_client.testing._embeddings import fake_vector

from conftest import RedisServer

TESTS = Path(__file__).resolve().parent
BOOT = 60  # seconds for the workers to start
RPM = 100
WORKERS, CONCURRENCY = 2, 2


def start_worker(n, env, log):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_batch_app:app", "worker", "--pool=prefork",
         f"--concurrency={CONCURRENCY}", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
         f"--hostname=batch{n}@%h"],
        cwd=TESTS, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_ready(app, workers, log):
    """Every worker answers a ping within BOOT seconds, or the test fails with their log."""
    deadline = time.monotonic() + BOOT
    while time.monotonic() < deadline:
        if any(worker.poll() is not None for worker in workers):
            break
        if len(app.control.ping(timeout=0.5)) == len(workers):
            return
    pytest.fail("the Celery workers did not start:\n" + log.read_text()[-3000:])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    directory = tmp_path_factory.mktemp("celery-batch")
    redis = RedisServer(directory)
    with FakeProviderServer() as server, open(directory / "workers.log", "w") as log, \
            pytest.MonkeyPatch.context() as environment:
        # this process imports celery_batch_app too, to send tasks
        environment.setenv("FC_CELERY_REDIS", redis.url.rsplit("/", 1)[0])
        environment.setenv("FC_CELERY_RPM", str(RPM))
        environment.setenv("FC_CELERY_FAKE", server.url)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
        workers = [start_worker(n, env, log) for n in range(WORKERS)]
        try:
            import celery_batch_app

            wait_until_ready(celery_batch_app.app, workers, directory / "workers.log")
            yield celery_batch_app.app, server
        finally:
            for worker in workers:
                stop_worker(worker)
            redis.stop()


def numbered(n, start=0):
    """Requests whose model names their position: the fake server answers with the model asked
    for, so an answer shows which request it belongs to."""
    return [BatchRequest(f"q{i}", CompletionRequest(f"model-{i}", [Message.user(f"question {i}")]))
            for i in range(start, start + n)]


def tasks_per_worker(app, task=ANSWER):
    stats = app.control.inspect(timeout=1).stats() or {}
    return sorted(info["total"].get(task, 0) for info in stats.values())


def test_500_requests_on_two_workers_in_order_within_one_shared_rpm(fleet):
    app, server = fleet
    server.reset()
    before = sum(tasks_per_worker(app))
    started = time.monotonic()
    results = batch.run(None, numbered(500), executor=CeleryExecutor(app), max_workers=64, progress=False)
    elapsed = time.monotonic() - started
    assert [r.custom_id for r in results] == [f"q{i}" for i in range(500)]
    assert all(r.ok for r in results), next(r.error for r in results if not r.ok)
    assert [r.response.model for r in results] == [f"model-{i}" for i in range(500)]
    served = [r.response.provider for r in results]
    primary = len(server.requests_for("primary"))
    assert served.count("primary") == primary and served.count("backup") == 500 - primary
    # one limit for the fleet: never the WORKERS x CONCURRENCY x RPM that counting per process allows
    assert RPM // 2 <= primary <= RPM + math.ceil(RPM * elapsed / 60)
    assert all(r.response.attempts[0].error_type == "RateLimited" for r in results if r.response.provider == "backup")
    per_worker = tasks_per_worker(app)
    assert sum(per_worker) - before == 500 and len(per_worker) == WORKERS and min(per_worker) > 0


def test_errors_stay_with_their_item_and_a_checkpoint_resumes(fleet, tmp_path):
    app, server = fleet
    server.reset()
    items = numbered(6, start=1000)
    items[2].request.temperature = 7.0  # refused by the worker's validation, for this item only
    checkpoint = tmp_path / "done.jsonl"
    first = batch.run(None, items[:3], executor=CeleryExecutor(app), checkpoint=checkpoint, progress=False)
    assert [r.ok for r in first] == [True, True, False]
    assert isinstance(first[2].error, InvalidArgumentError) and "temperature" in str(first[2].error)
    sent = len(server.requests)
    results = batch.run(None, items, executor=CeleryExecutor(app), checkpoint=checkpoint, progress=False)
    assert [r.custom_id for r in results] == [item.custom_id for item in items]
    assert [r.response.model if r.ok else None for r in results] == [
        "model-1000", "model-1001", None, "model-1003", "model-1004", "model-1005"]
    assert len(server.requests) == sent + 3  # only the three not done before
    assert sorted(r.custom_id for r in Checkpoint(checkpoint).load()) == [item.custom_id for item in items]


def test_the_complete_task_crosses_as_json(fleet):
    app, server = fleet
    request = CompletionRequest("model-x", [Message.user("one request")], max_tokens=12)
    response = CompletionResponse.from_dict(
        app.tasks["failover_client.complete"].delay(request.to_dict(encode_json=True)).get(timeout=20))
    assert (response.model, response.text) == ("model-x", "Hello!")
    assert server.requests[-1].body["max_tokens"] == 12


def test_a_client_for_run_is_refused(fleet):
    app, _server = fleet
    with pytest.raises(InvalidArgumentError, match="pass None as run\\(\\)'s client"):
        batch.run(object(), numbered(1), executor=CeleryExecutor(app))


@pytest.fixture
def fresh_rate_limits():
    """The primary's shared rpm count emptied before and after: the embedding test neither
    finds the 500-request test's minute spent nor leaves its own requests counted in it."""
    import redis

    import celery_batch_app

    store = redis.Redis.from_url(f"{celery_batch_app.REDIS}/{celery_batch_app.HEALTH_DB}")
    store.flushdb()
    yield
    store.flushdb()
    store.close()


def test_batch_embed_spreads_over_the_fleet_in_order_and_resumes_from_its_checkpoint(fleet, fresh_rate_limits,
                                                                                      tmp_path):
    app, server = fleet
    server.reset()
    texts = [f"passage {i}" for i in range(300)]
    checkpoint = tmp_path / "vectors.jsonl"
    options = dict(model="text-embedding-3-small", dimensions=4, batch_size=25, workers=8, progress=False,
                   checkpoint=checkpoint)
    before = sum(tasks_per_worker(app, EMBED))
    server.script("primary", Fault.status(400))  # one of the 12 requests is refused, on a worker
    with pytest.raises(InvalidRequestError):  # our error, across the result backend
        batch.embed(texts, None, executor=CeleryExecutor(app), **options)
    assert len(checkpoint.read_text().splitlines()) == 11
    answer = batch.embed(texts, None, executor=CeleryExecutor(app), **options)
    assert answer.vectors == [fake_vector(text, 4) for text in texts]
    assert answer.provider == "primary" and answer.usage.input_tokens > 0
    sent = server.requests_for("primary")
    assert len(sent) == 12 + 1  # the resumed run sent only the request that failed
    assert all(r.path.endswith("/embeddings") and len(r.body["input"]) == 25 for r in sent)
    per_worker = tasks_per_worker(app, EMBED)
    assert sum(per_worker) - before == 13 and len(per_worker) == WORKERS


def test_batch_embed_with_a_celery_executor_takes_no_client(fleet):
    app, _server = fleet
    with pytest.raises(InvalidArgumentError, match="pass None"):
        batch.embed(["x"], object(), model="m", executor=CeleryExecutor(app), progress=False)
