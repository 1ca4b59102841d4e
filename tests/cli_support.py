"""What the CLI tests share: ``failover-client fake-server`` run as a process of its own (as a
person or a gunicorn test would run it), and the console script run against it with keys in
a clean environment (no key of the machine's own, a private HOME)."""

import json
import os
import signal
import subprocess
import time

import pytest

from support import PROTOCOLS, console_script

KEYS = {"OPENAI_API_KEY": "sk-test-openai-0123456789", "ANTHROPIC_API_KEY": "sk-ant-test-0123456789"}
WAIT = 30  # seconds for a process to start or to end


def clean_env(home, **variables):
    """Only what a shell needs, plus ``variables``: no provider key leaks in from the machine."""
    keep = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT") if name in os.environ}
    return {**keep, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "PYTHONUNBUFFERED": "1", **variables}


class FakeServerProcess:
    """``failover-client fake-server`` on a free port of 127.0.0.1, scripted by ``script`` (a
    dict written as the JSON file), logging its requests to a file; its base URLs are read from
    what it prints."""

    def __init__(self, directory, script=None, *extra):
        self.log_path = directory / "fake-requests.jsonl"
        args = [console_script(), "fake-server", "--port", "0", "--log", str(self.log_path), *extra]
        if script is not None:
            path = directory / "fake-script.json"
            path.write_text(json.dumps(script))
            args += ["--script", str(path)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=clean_env(directory))
        self.banner = self.process.stdout.readline()
        assert self.banner.startswith("fake provider server listening on http://127.0.0.1:"), (
            self.banner + self.process.stderr.read())
        self.url = self.banner.split()[5]
        self.process.stdout.readline()  # "any name is a provider..."
        self.urls = {}  # (name, protocol) -> base URL, as printed: each protocol for each scripted name
        for _ in range(len(script or ["NAME"]) * len(PROTOCOLS)):
            name, protocol, url = self.process.stdout.readline().split()
            self.urls[name, protocol] = url

    def base_url(self, name, protocol):
        """A name it printed, or any other: its URLs differ from a printed name's by the name."""
        printed, url = next((n, u) for (n, p), u in self.urls.items() if p == protocol)
        return url.replace(f"{self.url}/{printed}", f"{self.url}/{name}", 1)

    def requests(self, count):
        """The first ``count`` requests it logged (waiting for its next write of the log)."""
        deadline = time.monotonic() + WAIT
        while True:
            lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
            if len(lines) >= count or time.monotonic() > deadline:
                return [json.loads(line) for line in lines]
            time.sleep(0.05)

    def stop(self, signum=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(WAIT)
        finally:
            self.process.stdout.close()
            self.process.stderr.close()


def chain_args(server, primary="openai/gpt-4o", fallback="anthropic/claude-haiku-4-5"):
    """``--model``/``--fallback`` with the primary on the fake name ``primary`` and the
    fallback on ``backup``."""
    args = ["--model", primary, "--base-url", f"openai={server.base_url('primary', 'openai')}"]
    if fallback:
        args += ["--fallback", fallback, "--base-url", f"anthropic={server.base_url('backup', 'anthropic')}"]
    return args


def cli(home, *args, input=None, env=None):
    """Run the console script to its end; the CompletedProcess (text)."""
    return subprocess.run([console_script(), *args], capture_output=True, text=True, timeout=WAIT, input=input,
                          env=env if env is not None else clean_env(home, **KEYS))


@pytest.fixture(name="fake_server")
def fake_server_fixture(tmp_path):
    """``fake_server(script=None)`` starts a FakeServerProcess; all are stopped after the test."""
    servers = []

    def start(script=None):
        servers.append(FakeServerProcess(tmp_path, script))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()
