"""failover_client.batch.run: many requests on a thread pool against the fake server — input
order whatever the latencies, every error captured, Ctrl-C (a real SIGINT) returning what
finished, and a JSONL checkpoint that lets a killed run resume without redoing work."""

import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from failover_client import (
    BatchRequest,
    BatchResult,
    BatchResultStatus,
    CompletionRequest,
    FailoverClient,
    FailoverClientError,
    FailoverConfig,
    FallbackProvider,
    InvalidArgumentError,
    InvalidRequestError,
    Message,
    Provider,
    RateLimitError,
    batch,
)
from failover_client.testing import Fault, Reply

from support import make_provider


def numbered(n):
    """Requests whose answers say which request they answer: the fake echoes the model."""
    return [CompletionRequest(f"model-{i}", [Message.user(f"question {i}")]) for i in range(n)]


def models(results):
    return [r.response.model if r.response else None for r in results]


def wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_results_come_back_in_input_order_whatever_the_latencies(fake_provider):
    rng = random.Random(7)
    fake_provider.script("p", *[Reply(delay=rng.uniform(0, 0.05)) for _ in range(24)])
    results = batch.run(make_provider(fake_provider, "p", "openai"), numbered(24), max_workers=6)
    assert models(results) == [f"model-{i}" for i in range(24)]
    assert [r.custom_id for r in results] == [str(i) for i in range(24)]
    assert all(r.ok for r in results) and results.interrupted is False
    served = [r.body["model"] for r in fake_provider.requests]
    assert sorted(served) == sorted(f"model-{i}" for i in range(24))


def test_batch_requests_keep_their_ids(fake_provider):
    requests = [BatchRequest(f"item-{i}", request) for i, request in enumerate(numbered(3))]
    results = batch.run(make_provider(fake_provider, "p", "anthropic"), requests, max_workers=2)
    assert [(r.custom_id, r.response.model) for r in results] == [(f"item-{i}", f"model-{i}") for i in range(3)]


def test_each_error_is_captured_and_the_others_still_answer(fake_provider):
    fake_provider.script("p", Reply(), Fault.status(400, message="bad"), Reply(), Fault.rate_limit(), Reply(),
                         Fault.status(400, message="bad"))
    results = batch.run(make_provider(fake_provider, "p", "openai"), numbered(6), max_workers=1)
    assert [r.status.value for r in results] == ["succeeded", "errored"] * 3
    assert [type(r.error) for r in results[1::2]] == [InvalidRequestError, RateLimitError, InvalidRequestError]
    assert models(results[::2]) == ["model-0", "model-2", "model-4"]
    again = pickle.loads(pickle.dumps(results[3]))
    assert isinstance(again.error, RateLimitError) and again.error.status == 429 and again.custom_id == "3"


class Flaky(Provider):
    """A provider with a bug: one request makes it raise something that is not our error."""

    def complete(self, request, *, timeout=None):
        if request.model == "model-1":
            raise ZeroDivisionError("division by zero")
        from failover_client import CompletionResponse

        return CompletionResponse(id="x", model=request.model)


def test_even_an_unexpected_exception_is_one_errored_result():
    results = batch.run(Flaky(), numbered(3), max_workers=2)
    assert [r.status.value for r in results] == ["succeeded", "errored", "succeeded"]
    assert type(results[1].error) is FailoverClientError
    assert str(results[1].error) == "ZeroDivisionError: division by zero"


def test_a_failover_client_runs_like_any_provider(fake_provider):
    fake_provider.set_default("primary", Fault.rate_limit())
    config = FailoverConfig("primary", make_provider(fake_provider, "primary", "openai")).add_fallback(
        FallbackProvider("backup", make_provider(fake_provider, "backup", "anthropic")))
    results = batch.run(FailoverClient(config), numbered(4), max_workers=2)
    assert [r.response.provider for r in results] == ["backup"] * 4
    assert models(results) == [f"model-{i}" for i in range(4)]


def test_ctrl_c_returns_what_finished_and_marks_the_rest(fake_provider):
    fake_provider.script("p", Reply(), Reply(), Reply())
    fake_provider.set_default("p", Fault.stall_before_headers(1))
    seen = []

    def interrupt_after_three(result):
        seen.append(result)
        if len(seen) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered to this (the main) thread

    results = batch.run(make_provider(fake_provider, "p", "openai"), numbered(10), max_workers=3,
                        on_result=interrupt_after_three)
    assert results.interrupted is True
    assert [r.status for r in results].count(BatchResultStatus.SUCCEEDED) == 3
    assert [r.status for r in results].count(BatchResultStatus.CANCELLED) == 7
    assert all(r.response is None and r.error is None for r in results if not r.ok)
    fake_provider.set_default("p", Reply())  # were the workers still going, they would get answers now
    wait_for(lambda: not any(t.name.startswith("failover-client-run-") for t in threading.enumerate()))
    assert len(fake_provider.requests) <= 6  # three answered, at most three in flight: the rest never sent


def test_the_checkpoint_holds_each_finished_result(fake_provider, tmp_path):
    path = tmp_path / "run.jsonl"
    fake_provider.script("p", Reply(), Fault.status(400, message="bad"), Reply())
    results = batch.run(make_provider(fake_provider, "p", "openai"), numbered(3), max_workers=1, checkpoint=path)
    lines = [BatchResult.from_json(line) for line in path.read_text().splitlines()]
    assert [(r.custom_id, r.status) for r in lines] == [(r.custom_id, r.status) for r in results]
    assert lines[0].response == results[0].response and isinstance(lines[1].error, InvalidRequestError)


def test_a_rerun_skips_what_the_checkpoint_holds(fake_provider, tmp_path):
    path = tmp_path / "run.jsonl"
    provider = make_provider(fake_provider, "p", "openai")
    fake_provider.script("p", Reply(text="first"), Fault.status(400, message="bad"), Reply(text="first"))
    batch.run(provider, numbered(3), max_workers=1, checkpoint=path)
    fake_provider.set_default("p", Reply(text="second"))
    again = batch.run(provider, numbered(5), max_workers=2, checkpoint=path)
    assert [r.response.text if r.ok else "error" for r in again] == ["first", "error", "first", "second", "second"]
    assert len(fake_provider.requests) == 3 + 2
    redone = batch.run(provider, numbered(5), checkpoint=path, redo_errors=True)
    assert [r.response.text for r in redone] == ["first", "second", "first", "second", "second"]
    assert [r.body["model"] for r in fake_provider.requests[5:]] == ["model-1"]


def test_a_line_cut_short_by_a_crash_is_redone(fake_provider, tmp_path):
    path = tmp_path / "run.jsonl"
    provider = make_provider(fake_provider, "p", "openai")
    batch.run(provider, numbered(2), checkpoint=path)
    whole = path.read_text().splitlines()
    path.write_text(whole[0] + "\n" + whole[1][: len(whole[1]) // 2])  # killed while writing line 2
    results = batch.run(provider, numbered(2), checkpoint=path)
    assert all(r.ok for r in results)
    assert len(fake_provider.requests) == 3
    assert sorted(BatchResult.from_json(line).custom_id for line in path.read_text().splitlines()
                  if line.endswith("}")) == ["0", "1"]


RUNNER = textwrap.dedent("""
    import sys
    from failover_client import CompletionRequest, Message, batch
    from failover_client.providers import OpenAIProvider

    provider = OpenAIProvider(api_key="sk-test-key-0123456789", base_url=sys.argv[1], name="p")
    requests = [CompletionRequest(f"model-{i}", [Message.user(f"question {i}")]) for i in range(10)]
    batch.run(provider, requests, max_workers=2, checkpoint=sys.argv[2])
""")


def test_a_killed_run_resumes_without_redoing_finished_work(fake_provider, tmp_path):
    path = tmp_path / "run.jsonl"
    fake_provider.script("p", *[Reply(text="before the crash")] * 4)
    fake_provider.set_default("p", Fault.stall_before_headers(60))
    child = subprocess.Popen([sys.executable, "-c", RUNNER, fake_provider.base_url("p", "openai"), str(path)])
    try:
        wait_for(lambda: path.exists() and path.read_text().count("\n") == 4 and len(fake_provider.requests) == 6)
    finally:
        child.kill()
        child.wait(10)
    done_before = {BatchResult.from_json(line).custom_id for line in path.read_text().splitlines()}
    fake_provider.set_default("p", Reply(text="after the crash"))
    sent_before = len(fake_provider.requests)
    results = batch.run(make_provider(fake_provider, "p", "openai"), numbered(10), max_workers=3, checkpoint=path)
    assert all(r.ok for r in results) and models(results) == [f"model-{i}" for i in range(10)]
    assert {r.custom_id for r in results if r.response.text == "before the crash"} == done_before
    resent = sorted(int(r.body["model"].split("-")[1]) for r in fake_provider.requests[sent_before:])
    assert resent == sorted(i for i in range(10) if str(i) not in done_before) and len(resent) == 6


def test_progress_bar_when_asked_and_quiet_when_not_a_terminal(fake_provider, capsys):
    provider = make_provider(fake_provider, "p", "openai")
    batch.run(provider, numbered(5), max_workers=2)
    assert capsys.readouterr().err == ""  # stderr is not a terminal here
    fake_provider.script("p", Fault.status(400, message="bad"))
    batch.run(provider, numbered(5), max_workers=1, progress=True)
    err = capsys.readouterr().err
    assert err.endswith("\n") and "\r5/5 [" + "#" * 30 + "] 100%  1 errors" in err


@pytest.mark.parametrize("call, message", [
    (lambda: batch.run("openai", []), "takes a Provider or FailoverClient, got str"),
    (lambda: batch.run(Flaky(), [], max_workers=0), "max_workers must be a whole number >= 1"),
    (lambda: batch.run(Flaky(), ["hi"]), r"requests\[0\] is str"),
    (lambda: batch.run(Flaky(), [BatchRequest("a", numbered(1)[0])] * 2), "custom_id 'a' is used twice"),
])
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(InvalidArgumentError, match=message):
        call()


def test_an_empty_run_returns_nothing():
    assert batch.run(Flaky(), []) == []
