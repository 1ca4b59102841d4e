"""The example Flask app and Django project under real gunicorn (gthread, 2 workers x 8
threads) against the fake provider in its own process, as a deployment would run them:
concurrent plain and streamed requests while the primary fails 30% of the time, clients
hanging up mid-stream, then every provider down.

Proven: every answer is whole; a hang-up closes its upstream stream (each is logged as a
"abandoned" attempt by the worker that served it); the workers hold no more connections to the
provider than their threads can use; a chain that is down answers 502 before any header;
``--preload`` (the Django project builds its client in the master) works.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest

from chains import tcp_states_to
from cli_support import FakeServerProcess
from conftest import free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORDS = [f" w{i}" for i in range(40)]
ANSWER = "".join(WORDS)
WORKERS, THREADS, PROVIDERS = 2, 8, 2
PLAIN, STREAMED, HANG_UPS = 90, 90, 20

# The fake provider as its own process (``failover-client fake-server``): "primary" (OpenAI
# protocol) fails 30% of requests before answering (500, 503, 429), "backup" (Anthropic protocol)
# always answers; answers trickle out 5 ms a word, so a client that hangs up does so while the
# upstream still streams.
ANSWERING = {"fault": "trickle", "interval": 0.005, "reply": {"chunks": [f" w{i}" for i in range(40)]}}
FAULTS = [{"fault": "status", "code": 500}, {"fault": "overloaded"}, {"fault": "rate_limit", "retry_after": 0.05}]
FAKE_SCRIPT = {
    "primary": {"default": {"random_faults": {"rate": 1.0, "seed": 15, "faults": FAULTS + [ANSWERING] * 7}}},
    "backup": {"default": ANSWERING},
}

APPS = {  # name -> (gunicorn arguments, the app's directory)
    "flask": (["flask_app:app"], EXAMPLES),
    "django": (["--preload", "project.wsgi"], EXAMPLES / "django_project"),
}


def wait_for_port(port, process, what):
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} never listened on {port}")


@pytest.fixture
def fake_process(tmp_path):
    server = FakeServerProcess(tmp_path, FAKE_SCRIPT)
    yield int(server.url.rsplit(":", 1)[1]), server.process
    server.stop(signal.SIGKILL)


def start_gunicorn(app, fake_port, log_path):
    arguments, directory = APPS[app]
    gunicorn = Path(sys.executable).parent / "gunicorn"  # never PATH: it may hold another install
    assert gunicorn.is_file(), f"no gunicorn beside {sys.executable}: pip install -e '.[test]'"
    port = free_port()
    fake = f"http://127.0.0.1:{fake_port}"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-openai-0123456789", "ANTHROPIC_API_KEY": "sk-test-ant-0123456789",
           "OPENAI_BASE_URL": f"{fake}/primary/v1", "ANTHROPIC_BASE_URL": f"{fake}/backup",
           "FAILOVER_LOG": str(log_path), "DJANGO_SETTINGS_MODULE": "project.settings"}
    process = subprocess.Popen(
        [str(gunicorn), "--worker-class", "gthread", "--workers", str(WORKERS), "--threads", str(THREADS),
         "--bind", f"127.0.0.1:{port}", "--chdir", str(directory), "--log-level", "warning", *arguments],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_port(port, process, f"gunicorn ({app})")
    return port, process


def post(port, path, question="Hello"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, json.dumps({"question": question}), {"Content-Type": "application/json"})
    return connection, connection.getresponse()


def ask(port):
    started = time.perf_counter()
    connection, response = post(port, "/ask")
    with closing(connection):
        body = json.loads(response.read())
    return time.perf_counter() - started, response.status, body.get("text")


def stream(port):
    started = time.perf_counter()
    connection, response = post(port, "/stream")
    with closing(connection):
        events = [block for block in response.read().decode().split("\n\n") if block]
    text = "".join(json.loads(block[6:]).get("text", "") for block in events if block.startswith("data: "))
    return (time.perf_counter() - started, (response.status, response.getheader("Content-Type")), text,
            events[-1].split("\n")[0])


def hang_up(port):
    """Read the first event of a streamed answer, then drop the connection."""
    connection, response = post(port, "/stream")
    first = response.read(6)
    response.close()
    connection.close()
    return response.status, first


def abandoned_attempts(log_path):
    if not log_path.exists():
        return 0
    return sum(json.loads(line).get("outcome") == "abandoned" for line in log_path.read_text().splitlines())


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@pytest.mark.parametrize("app", sorted(APPS))
def test_example_app_under_gunicorn(app, fake_process, tmp_path):
    fake_port, fake = fake_process
    log_path = tmp_path / "attempts.log"
    port, server = start_gunicorn(app, fake_port, log_path)
    try:
        with ThreadPoolExecutor(WORKERS * THREADS) as pool:
            list(pool.map(lambda _: ask(port), range(WORKERS * THREADS)))  # warm the pools
            before = tcp_states_to(fake_port).count("ESTABLISHED")
            calls = [pool.submit(ask, port) for _ in range(PLAIN)]
            calls += [pool.submit(stream, port) for _ in range(STREAMED)]
            hang_ups = [pool.submit(hang_up, port) for _ in range(HANG_UPS)]
            plain = [call.result() for call in calls[:PLAIN]]
            streamed = [call.result() for call in calls[PLAIN:]]
            dropped = [call.result() for call in hang_ups]

        assert [(status, text) for _, status, text in plain] == [(200, ANSWER)] * PLAIN
        assert [(status, text, last) for _, status, text, last in streamed] == [
            ((200, "text/event-stream; charset=utf-8"), ANSWER, "event: done")] * STREAMED
        assert [(status, first.startswith(b"data: ")) for status, first in dropped] == [(200, True)] * HANG_UPS
        for _ in range(200):  # the workers notice a hang-up at their next write
            if abandoned_attempts(log_path) >= HANG_UPS:
                break
            time.sleep(0.05)
        assert abandoned_attempts(log_path) == HANG_UPS
        after = tcp_states_to(fake_port).count("ESTABLISHED")
        assert after <= WORKERS * THREADS * PROVIDERS  # no connection left behind by a hang-up or a failure

        latencies = [seconds for seconds, *_ in plain + streamed]
        print(f"\n{app}: {PLAIN + STREAMED} answers, 0 errors, {HANG_UPS} hang-ups cleaned up, "
              f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
              f"sockets to the provider before {before}, after {after}")

        fake.send_signal(signal.SIGKILL)  # every provider down: 502 before any header
        fake.wait()
        for path in ("/ask", "/stream"):
            connection, response = post(port, path)
            with closing(connection):
                body = json.loads(response.read())
            assert (response.status, response.getheader("Content-Type")) == (502, "application/json")
            assert body["error"]["type"] == "AllProvidersFailedError"
            assert {a["error_type"] for a in body["error"]["attempts"]} <= {"NetworkError", "CircuitOpen"}
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=30)
    assert "Traceback" not in errors, errors
