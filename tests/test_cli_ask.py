"""``failover-client ask`` as a person runs it, against ``failover-client fake-server`` in its
own process: the answer streamed to stdout (and nothing else there), the attempts on stderr
with ``-v``, ``--json``, the prompt from stdin, and exit statuses 0 / 1 / 2."""

import json
import subprocess

import pytest

from failover_client import CompletionResponse

from cli_support import KEYS, chain_args, clean_env, cli, fake_server_fixture  # noqa: F401  (the fixture)
from support import console_script


def test_the_answer_streams_to_stdout_and_the_attempts_go_to_stderr(fake_server, tmp_path):
    server = fake_server({"primary": [{"fault": "overloaded"}], "backup": ["from the backup"]})
    process = cli(tmp_path, "ask", "What is failover?", *chain_args(server), "-v")
    assert (process.returncode, process.stdout) == (0, "from the backup\n"), process.stderr
    lines = process.stderr.splitlines()
    assert lines[0] == "attempts:"
    assert lines[1].split()[:5] == ["openai", "gpt-4o", "error", "OverloadedError", "503"]
    assert lines[2].split()[:3] == ["anthropic", "claude-haiku-4-5", "ok"]
    sent = server.requests(2)
    assert [(r["name"], r["stream"], r["body"]["model"]) for r in sent] == [
        ("primary", True, "gpt-4o"), ("backup", True, "claude-haiku-4-5")]
    assert "What is failover?" in json.dumps(sent[1]["body"]["messages"])


def test_without_v_stderr_stays_empty(fake_server, tmp_path):
    server = fake_server()
    process = cli(tmp_path, "ask", "hi", *chain_args(server, fallback=None))
    assert (process.returncode, process.stdout, process.stderr) == (0, "Hello!\n", "")


def test_text_reaches_stdout_while_the_answer_is_still_coming(fake_server, tmp_path):
    slowly = {"fault": "trickle", "interval": 0.3, "reply": {"chunks": ["first ", "second"]}}
    server = fake_server({"primary": [slowly]})
    child = subprocess.Popen([console_script(), "ask", "slowly", *chain_args(server, fallback=None)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(tmp_path, **KEYS))
    assert child.stdout.read(6) == b"first "
    assert child.poll() is None  # the second word is 0.3 s away: printed as it came, not at the end
    out, err = child.communicate(timeout=30)
    assert (child.returncode, out) == (0, b"second\n"), err


def test_the_prompt_and_options_come_from_stdin_and_flags(fake_server, tmp_path):
    server = fake_server()
    process = cli(tmp_path, "ask", *chain_args(server, fallback=None), "--system", "Be brief.", "--max-tokens", "50",
                  "--temperature", "0.5", input="a question\nin two lines\n")
    assert process.returncode == 0, process.stderr
    body = server.requests(1)[0]["body"]
    assert body["messages"][-1]["content"] in ("a question\nin two lines\n",
                                               [{"type": "text", "text": "a question\nin two lines\n"}])
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (body["max_tokens"], body["temperature"]) == (50, 0.5)


def test_json_prints_the_whole_response(fake_server, tmp_path):
    server = fake_server({"primary": [{"fault": "rate_limit"}],
                          "backup": [{"reply": {"text": "in JSON", "usage": {"input": 21, "output": 2}}}]})
    process = cli(tmp_path, "ask", "hi", *chain_args(server), "--json")
    assert process.returncode == 0, process.stderr
    response = CompletionResponse.from_json(process.stdout)
    assert (response.text, response.provider, response.usage.input_tokens) == ("in JSON", "anthropic", 21)
    assert [(a.provider, a.outcome, a.error_type) for a in response.attempts] == [
        ("openai", "error", "RateLimitError"), ("anthropic", "ok", None)]
    assert server.requests(2)[1]["stream"] is False


def test_every_provider_failing_exits_1_with_the_attempts(fake_server, tmp_path):
    server = fake_server({"primary": [{"fault": "overloaded"}], "backup": [{"fault": "status", "code": 500}]})
    process = cli(tmp_path, "ask", "hi", *chain_args(server), "-v")
    assert process.returncode == 1 and process.stdout == ""
    assert "failover-client ask: AllProvidersFailedError: all providers failed" in process.stderr
    assert "OverloadedError" in process.stderr and "ServerError 500" in process.stderr


def test_a_rejected_key_is_a_failure_that_never_shows_the_key(fake_server, tmp_path):
    server = fake_server({"primary": {"key": "sk-the-right-key-0123"}})
    process = cli(tmp_path, "ask", "hi", *chain_args(server, fallback=None), "-v")
    assert process.returncode == 1 and "AuthenticationError" in process.stderr
    assert KEYS["OPENAI_API_KEY"] not in process.stderr + process.stdout


@pytest.mark.parametrize("args, env, message", [
    (["hi", "--model", "openai/gpt-4o"], {}, "missing environment variables: OPENAI_API_KEY (openai)"),
    (["hi", "--model", "opnai/gpt-4o"], KEYS, "unknown provider 'opnai': did you mean 'openai'?"),
    (["hi", "--model", "gpt-4o"], KEYS, "'gpt-4o' is not of the form 'provider/model'"),
    (["  ", "--model", "openai/gpt-4o"], KEYS, "the prompt is empty"),
    (["hi", "--model", "openai/gpt-4o", "--base-url", "groq=http://127.0.0.1:9/v1"], KEYS,
     "--base-url names 'groq', which is not among the models"),
    (["hi", "--model", "openai/gpt-4o", "--temperature", "9"], KEYS, "temperature"),
])
def test_a_wrong_command_exits_2_before_sending_anything(fake_server, tmp_path, args, env, message):
    server = fake_server()
    process = cli(tmp_path, "ask", *args, "--base-url", server.base_url("primary", "openai"),
                  env=clean_env(tmp_path, **env))
    assert process.returncode == 2 and process.stdout == ""
    assert process.stderr.startswith("failover-client ask: ") and message in process.stderr, process.stderr
    server.stop()
    assert server.requests(0) == []
