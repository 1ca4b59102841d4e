"""``failover-client fake-server`` as a process: its printed base URLs work for every protocol,
a script file plays per provider name (replies, faults, random faults, trickle, keys), it
stops cleanly on SIGTERM and SIGINT, and a bad script is refused with where the mistake is."""

import signal
import subprocess

import pytest

from failover_client import CompletionRequest, Message, collect
from failover_client.errors import AuthenticationError, OverloadedError, RateLimitError

from cli_support import FakeServerProcess, cli
from support import OPTIONS, PROTOCOLS


def ask(text="Hello", model="gpt-4o"):
    return CompletionRequest(model=model, messages=[Message.user(text)])


def provider(server, name, protocol, **options):
    options = {**OPTIONS.get(protocol, {}), **options}
    options.setdefault("api_key", "sk-test-key-0123456789")
    return PROTOCOLS[protocol](base_url=server.base_url(name, protocol), name=name, **options)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_with_no_script_every_protocol_answers_and_a_signal_stops_it(tmp_path, signum):
    server = FakeServerProcess(tmp_path)
    try:
        assert server.banner.startswith("fake provider server listening on http://127.0.0.1:")
        for protocol in sorted(PROTOCOLS):
            with provider(server, "anyone", protocol) as client:
                assert client.complete(ask()).text == "Hello!", protocol
    finally:
        assert server.stop(signum) == 0
    logged = server.requests(len(PROTOCOLS))
    assert sorted(r["protocol"] for r in logged) == sorted(PROTOCOLS)
    assert all("sk-test" not in str(r) for r in logged)  # the log never holds a key


def test_a_script_plays_per_name(tmp_path):
    server = FakeServerProcess(tmp_path, {
        "primary": ["first", {"fault": "rate_limit", "retry_after": 7},
                    {"reply": {"text": "third", "usage": {"input": 12, "output": 3}}}],
        "slow": {"default": {"fault": "trickle", "interval": 0.01, "reply": "one two three"}},
        "flaky": {"default": {"random_faults": {"rate": 1.0, "faults": [{"fault": "overloaded"}]}}},
        "locked": {"key": "sk-the-only-key-0123", "script": ["for the right key"]},
    })
    try:
        with provider(server, "primary", "openai") as primary:
            assert primary.complete(ask()).text == "first"
            with pytest.raises(RateLimitError) as limited:
                primary.complete(ask())
            assert limited.value.retry_after == 7
            third = primary.complete(ask())
            assert (third.text, third.usage.input_tokens, third.usage.output_tokens) == ("third", 12, 3)
            assert primary.complete(ask()).text == "Hello!"  # the script is spent: the default reply
        with provider(server, "slow", "anthropic") as slow:
            chunks = [chunk.text for chunk in slow.complete_stream(ask()) if chunk.text]
            assert chunks == ["one", " two", " three"]
        with provider(server, "flaky", "openai") as flaky, pytest.raises(OverloadedError):
            flaky.complete(ask())
        with provider(server, "locked", "anthropic") as wrong, pytest.raises(AuthenticationError):
            wrong.complete(ask())
        with provider(server, "locked", "anthropic", api_key="sk-the-only-key-0123") as right:
            assert collect(right.complete_stream(ask())).text == "for the right key"
    finally:
        assert server.stop() == 0
    assert [r["step"] for r in server.requests(8) if r["name"] == "primary"] == [
        "reply", "rate_limit", "reply", "reply"]


@pytest.mark.parametrize("script, message", [
    ('{"p": [{"fault": "nope"}]}', "p[0]: unknown fault 'nope' (known: content_filter,"),
    ('{"p": [{"fault": "trickle", "intervl": 1}]}', "p[0]: Fault.trickle() got an unexpected keyword argument"),
    ('{"p": {"default": {"reply": {"text": "a", "usage": {"tokens": 1}}}}}', "p.default.reply: unknown usage keys"),
    ('{"p": [{"random_faults": {"rate": 1, "faults": []}}]}', "p[0]: random_faults can only be a name's default"),
    ('{"p": {"scirpt": []}}', "p: unknown field 'scirpt'"),
    ('{"a/b": []}', "'a/b' cannot be a provider name"),
    ('[1, 2]', "the script is an object mapping provider names"),
    ('{"p": ', "is not JSON"),
])
def test_a_bad_script_is_refused_saying_where(tmp_path, script, message):
    path = tmp_path / "script.json"
    path.write_text(script)
    process = cli(tmp_path, "fake-server", "--script", str(path))
    assert process.returncode == 2 and process.stdout == ""
    assert process.stderr.startswith("failover-client fake-server: ") and message in process.stderr, process.stderr


def test_it_binds_only_the_loopback_by_default(tmp_path):
    server = FakeServerProcess(tmp_path)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.split()[3] == f"127.0.0.1:{port}"
    finally:
        server.stop()
