"""``failover-client batch``, end to end: the installed console script run as a process against
the fake server (keys from the environment, base URLs pointed at the server)."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from failover_client import BatchJob, BatchResult, BatchResultStatus, BatchStatus
from failover_client.testing import Fault, Reply

from support import console_script

KEYS = {"OPENAI_API_KEY": "sk-test-openai-0123456789", "ANTHROPIC_API_KEY": "sk-ant-test-0123456789"}


def cli(*args, check=True, **options):
    process = subprocess.run([console_script(), "batch", *args], capture_output=True, text=True, timeout=60,
                             env={**os.environ, **KEYS}, **options)
    if check:
        assert process.returncode == 0, process.stderr
    return process


def write_lines(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def request_lines(n, model="gpt-4o-mini"):
    return [{"custom_id": f"q{i}", "request": {"model": model, "messages": [
        {"role": "user", "content": [{"type": "text", "text": f"question {i}"}]}], "max_tokens": 20}}
        for i in range(n)]


@pytest.mark.parametrize("protocol, model", [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")])
def test_submit_status_results(fake_provider, tmp_path, protocol, model):
    fake_provider.script("p", Reply(text="answer 0"), Fault.status(400, message="no such thing"),
                         Reply(text="answer 2"))
    where = ["--provider", protocol, "--base-url", fake_provider.base_url("p", protocol)]
    submitted = cli("submit", write_lines(tmp_path / "in.jsonl", request_lines(3, model)), *where)
    job = BatchJob.from_json(submitted.stdout)
    assert job.counts.total == 3 and not job.done
    assert f"submitted batch {job.id} (3 requests) to {protocol}" in submitted.stderr
    ended = BatchJob.from_json(cli("status", job.id, *where).stdout)
    assert ended.status is BatchStatus.COMPLETED and (ended.counts.succeeded, ended.counts.errored) == (2, 1)
    out = tmp_path / "out.jsonl"
    fetched = cli("results", job.id, "-o", str(out), *where)
    results = {r.custom_id: r for r in map(BatchResult.from_json, out.read_text().splitlines())}
    assert (results["q0"].response.text, results["q2"].response.text) == ("answer 0", "answer 2")
    assert results["q1"].status is BatchResultStatus.ERRORED and "no such thing" in str(results["q1"].error)
    assert "2 succeeded" in fetched.stderr and "1 errored" in fetched.stderr


def test_cancel_and_list(fake_provider, tmp_path):
    where = ["--provider", "anthropic", "--base-url", fake_provider.base_url("p", "anthropic")]
    fake_provider.batches.complete_after(polls=5)
    ids = [BatchJob.from_json(cli("submit", write_lines(tmp_path / "in.jsonl", request_lines(2, "claude-haiku-4-5")),
                                  *where).stdout).id for _ in range(3)]
    cancelling = BatchJob.from_json(cli("cancel", ids[0], *where).stdout)
    assert cancelling.status is BatchStatus.CANCELLING
    listed = [BatchJob.from_json(line) for line in cli("list", "--limit", "2", *where).stdout.splitlines()]
    assert [job.id for job in listed] == ids[:0:-1]


def test_openai_native_lines_are_accepted(fake_provider, tmp_path):
    lines = [{"custom_id": "native-1", "method": "POST", "url": "/v1/chat/completions", "body": {
        "model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "What is 2+2?"}], "max_tokens": 100}}]
    cli("submit", write_lines(tmp_path / "in.jsonl", lines), "--provider", "openai",
        "--base-url", fake_provider.base_url("p", "openai"))
    upload = fake_provider.requests[0].raw_body
    assert b'{"custom_id":"native-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",' \
           b'"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],' \
           b'"max_tokens":100}}' in upload


@pytest.mark.parametrize("line, message", [
    ("not json", "in.jsonl:2: not a JSON object"),
    ('{"request": {}}', "in.jsonl:2: a line needs a string custom_id"),
    ('{"custom_id": "x", "request": {"messages": "hi"}}', "in.jsonl:2: not a CompletionRequest"),
    ('{"custom_id": "x", "body": {"model": "m", "messages": [], "logprobs": true}}', "in.jsonl:2: logprobs"),
    ('{"custom_id": "x", "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": '
     '[{"type": "text", "text": "hi"}]}], "stream": true}}', r"requests\[1\] \('x'\) asks for a stream"),
])
def test_a_bad_line_is_named_and_nothing_is_sent(fake_provider, tmp_path, line, message):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(request_lines(1)[0]) + "\n" + line + "\n")
    process = cli("submit", str(path), "--provider", "openai", "--base-url", fake_provider.base_url("p", "openai"),
                  check=False)
    assert process.returncode == 1 and process.stdout == ""
    assert process.stderr.startswith("failover-client batch: InvalidArgumentError: ")
    assert re.search(message, process.stderr), process.stderr
    assert fake_provider.requests == []


def chain_options(server):
    return ["--models", "openai/gpt-4o-mini,anthropic/claude-haiku-4-5",
            "--base-url", f"openai={server.base_url('primary', 'openai')}",
            "--base-url", f"anthropic={server.base_url('backup', 'anthropic')}"]


def test_run_answers_in_input_order_with_failover(fake_provider, tmp_path):
    fake_provider.script("primary", Reply(text="primary 0"), Fault.overloaded(), Reply(text="primary 2"))
    fake_provider.set_default("backup", Reply(text="from the backup"))
    out = tmp_path / "out.jsonl"
    lines = [{"custom_id": f"q{i}", "request": {"messages": [
        {"role": "user", "content": [{"type": "text", "text": f"question {i}"}]}]}} for i in range(3)]
    cli("run", write_lines(tmp_path / "in.jsonl", lines), "--workers", "1", "-o", str(out),
        *chain_options(fake_provider))
    results = [BatchResult.from_json(line) for line in out.read_text().splitlines()]
    assert [(r.custom_id, r.response.text, r.response.provider) for r in results] == [
        ("q0", "primary 0", "openai"), ("q1", "from the backup", "anthropic"), ("q2", "primary 2", "openai")]
    assert fake_provider.requests_for("backup")[0].body["model"] == "claude-haiku-4-5"


def test_run_exits_1_when_a_request_failed_everywhere(fake_provider, tmp_path):
    fake_provider.script("primary", Fault.overloaded())
    fake_provider.script("backup", Fault.overloaded())
    process = cli("run", write_lines(tmp_path / "in.jsonl", request_lines(2)), "--workers", "1",
                  *chain_options(fake_provider), check=False)
    results = [BatchResult.from_json(line) for line in process.stdout.splitlines()]
    assert process.returncode == 1
    assert [r.status for r in results] == [BatchResultStatus.ERRORED, BatchResultStatus.SUCCEEDED]
    assert type(results[0].error).__name__ == "AllProvidersFailedError"


def test_run_stops_on_ctrl_c_and_a_rerun_finishes_from_the_checkpoint(fake_provider, tmp_path):
    fake_provider.script("primary", Reply(text="early"), Reply(text="early"))
    fake_provider.set_default("primary", Fault.stall_before_headers(60))
    source = write_lines(tmp_path / "in.jsonl", request_lines(6))
    checkpoint, out = tmp_path / "done.jsonl", tmp_path / "out.jsonl"
    options = ["--workers", "2", "--checkpoint", str(checkpoint), "-o", str(out),
               "--models", "openai/gpt-4o-mini", "--base-url", fake_provider.base_url("primary", "openai")]
    child = subprocess.Popen([console_script(), "batch", "run", source, *options], env={**os.environ, **KEYS},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (checkpoint.exists() and checkpoint.read_text().count("\n") == 2
               and len(fake_provider.requests) == 4):
        assert time.monotonic() < deadline and child.poll() is None, "the run did not get going"
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    assert child.wait(30) == 130
    statuses = [BatchResult.from_json(line).status.value for line in out.read_text().splitlines()]
    assert statuses.count("succeeded") == 2 and statuses.count("cancelled") == 4
    fake_provider.set_default("primary", Reply(text="late"))
    sent = len(fake_provider.requests)
    cli("run", source, *options)
    texts = [BatchResult.from_json(line).response.text for line in out.read_text().splitlines()]
    assert texts.count("early") == 2 and texts.count("late") == 4
    assert len(fake_provider.requests) == sent + 4


def read_all(fd):
    chunks = []
    while select.select([fd], [], [], 5)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_run_draws_progress_on_a_terminal_only(fake_provider, tmp_path):
    options = ["run", write_lines(tmp_path / "in.jsonl", request_lines(4)), "-o", str(tmp_path / "out.jsonl"),
               "--models", "openai/gpt-4o-mini", "--base-url", fake_provider.base_url("p", "openai")]
    assert cli(*options).stderr == ""
    main, terminal = pty.openpty()
    child = subprocess.Popen([console_script(), "batch", *options], env={**os.environ, **KEYS}, stderr=terminal)
    os.close(terminal)
    shown = read_all(main)
    os.close(main)
    assert child.wait(30) == 0
    assert "4/4 [" + "#" * 30 + "] 100%" in shown
