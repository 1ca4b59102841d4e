"""Real Celery workers (prefork pool, Redis broker and result backend) run tasks that call the
FailoverClient tests/celery_app.py makes at import time in the worker's parent, against the
fake provider server of this process.  Requests, responses and every exception class of
failover_client.errors cross the result backend: with the pickle serializer whole, with the
JSON one as Celery rebuilds exceptions (``cls(*args)``: class and message)."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from failover_client import CompletionRequest, CompletionResponse, Message, ToolDefinition, errors
from failover_client.health import GO, CircuitBreaker
from failover_client.testing import FakeProviderServer, Reply

from chains import outcomes, sent_text
from conftest import RedisServer

TESTS = Path(__file__).resolve().parent
BOOT = 60  # seconds for a worker to start
WAIT = 20  # seconds for a task result


def start_worker(app, env, log):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", f"celery_app:{app}", "worker", "--pool=prefork", "--concurrency=2",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
         f"--hostname={app}@%h"],
        cwd=TESTS, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(worker):
    """Warm shutdown of the worker and its pool, then SIGKILL to whatever is left of its group."""
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.wait(5)


def wait_until_ready(app, workers, log):
    """Each worker answers a task within BOOT seconds, or the test fails with its log."""
    pending = [app.json_app.tasks["json.process"].delay(), app.pickle_app.tasks["pickle.process"].delay()]
    deadline = time.monotonic() + BOOT
    while time.monotonic() < deadline:
        if any(worker.poll() is not None for worker in workers):
            break
        if all(result.ready() for result in pending):
            return
        time.sleep(0.1)
    pytest.fail("a Celery worker did not start:\n" + log.read_text()[-3000:])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    directory = tmp_path_factory.mktemp("celery")
    redis = RedisServer(directory)
    settings = {"FC_CELERY_REDIS": redis.url.rsplit("/", 1)[0]}
    with FakeProviderServer() as server, open(directory / "workers.log", "w") as log:
        settings["FC_CELERY_FAKE"] = server.url
        saved = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)  # this process imports celery_app too, to send tasks
        # C_FORCE_ROOT: Celery refuses pickle as root unless told (CI containers run as root)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]), "C_FORCE_ROOT": "1"}
        workers = [start_worker(app, env, log) for app in ("json_app", "pickle_app")]
        try:
            import celery_app

            wait_until_ready(celery_app, workers, directory / "workers.log")
            yield celery_app, server
        finally:
            for worker in workers:
                stop_worker(worker)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            redis.stop()


def a_request(text):
    return CompletionRequest(
        model="gpt-4o", messages=[Message.user(text)], system="Answer briefly.", max_tokens=64, temperature=0.2,
        stop_sequences=["\n\n"], metadata={"user_id": "u-42"},
        tools=[ToolDefinition("lookup", "Look a word up", {"type": "object", "properties": {"q": {"type": "string"}}})])


def test_requests_and_responses_cross_as_json(fleet):
    app, server = fleet
    server.script("primary", Reply(text="an answer in JSON", usage={"input": 17, "output": 4}))
    request = a_request("json round trip")
    result = app.json_app.tasks["json.complete"].delay(request.to_dict(encode_json=True)).get(timeout=WAIT)
    response = CompletionResponse.from_dict(result)
    assert response.text == "an answer in JSON" and response.provider == "primary"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (17, 4)
    assert outcomes(response.attempts) == [("primary", "ok", None)]
    sent = next(r for r in server.requests if r.body and "json round trip" in str(r.body["messages"]))
    assert sent.body["max_tokens"] == 64 and sent.body["stop"] == ["\n\n"]
    assert sent.body["tools"][0]["function"]["name"] == "lookup"


def test_requests_and_responses_cross_pickled(fleet):
    app, server = fleet
    server.script("primary", Reply(text="an answer, pickled"))
    request = a_request("pickle round trip")
    response = app.pickle_app.tasks["pickle.complete"].delay(request).get(timeout=WAIT)
    assert isinstance(response, CompletionResponse)
    assert response.text == "an answer, pickled" and outcomes(response.attempts) == [("primary", "ok", None)]


def test_children_made_their_own_connections_after_the_parent_used_the_client(fleet):
    app, server = fleet
    parent_calls = [r for r in server.requests if sent_text(r) == "warm-up in the parent"]
    assert len(parent_calls) == 2  # one per worker, before their pools forked
    task = app.json_app.tasks["json.complete"]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: task.delay(CompletionRequest(
            "gpt-4o", [Message.user(f"task {i}")]).to_dict(encode_json=True)).get(timeout=WAIT), range(24)))
    assert all(CompletionResponse.from_dict(r).text == "Hello!" for r in results)
    assert sorted(sent_text(r) for r in server.requests if sent_text(r).startswith("task ")) == sorted(
        f"task {i}" for i in range(24))
    pid, parent = app.json_app.tasks["json.process"].delay().get(timeout=WAIT)
    assert pid != parent != os.getpid()


def test_the_fleet_reads_the_shared_circuit_state(fleet):
    app, _server = fleet
    store, breaker = app.client.config.health, CircuitBreaker()
    try:
        for _ in range(breaker.failure_threshold):  # this process opens the circuit...
            store.record_failure("primary", GO, breaker)
        request = a_request("circuit").to_dict(encode_json=True)
        result = app.json_app.tasks["json.complete"].delay(request).get(timeout=WAIT)
        response = CompletionResponse.from_dict(result)  # ...and the worker's child skips the primary
        assert outcomes(response.attempts) == [("primary", "skipped", "CircuitOpen"), ("backup", "ok", None)]
    finally:
        store.clear()


@pytest.mark.parametrize("class_name", sorted(
    name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, BaseException)
    and value.__module__ == errors.__name__))
def test_every_exception_class_crosses_the_result_backend(fleet, class_name):
    app, _server = fleet
    original = app.sample_error(class_name)
    with pytest.raises(type(original)) as pickled:
        app.pickle_app.tasks["pickle.raise_error"].delay(class_name).get(timeout=WAIT)
    assert type(pickled.value) is type(original) and pickled.value.args == original.args
    assert vars(pickled.value) == vars(original)  # every field: status, retry_after, attempts, partial...
    with pytest.raises(type(original)) as rebuilt:
        app.json_app.tasks["json.raise_error"].delay(class_name).get(timeout=WAIT)
    # JSON keeps the class and the message: Celery stores exc.args and calls cls(*args)
    assert type(rebuilt.value) is type(original) and rebuilt.value.args == original.args
    assert str(rebuilt.value).endswith(original.args[0])
