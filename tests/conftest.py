"""Shared fixtures."""

import shutil
import signal
import socket
import subprocess
import time

import pytest

from failover_client import collect

from support import PROTOCOLS


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_raises_keyboard_interrupt():
    """Tests deliver real SIGINTs (to this process and to children) and expect Ctrl-C's
    KeyboardInterrupt.  A suite started in the background (``cmd &`` in a script, some CI
    runners) inherits SIGINT as ignored, and Python then installs no handler: put Python's own
    back, which children started from here also get (an exec resets a handled signal)."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


@pytest.fixture(params=sorted(PROTOCOLS))
def protocol(request):
    return request.param


@pytest.fixture(params=["plain", "stream"])
def call(request):
    """complete(), or complete_stream() folded with collect(): both must give the same answer."""
    if request.param == "plain":
        return lambda provider, req: provider.complete(req)
    return lambda provider, req: collect(provider.complete_stream(req))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server on a free 127.0.0.1 port, keeping its files in ``directory``."""

    def __init__(self, directory):
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("redis-server is not installed; the Redis tests need a real one "
                        "(Debian/Ubuntu: apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
             "--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_ready(directory)

    def _wait_until_ready(self, directory):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (directory / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server exited with {self.process.returncode}:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        pytest.fail(f"redis-server did not answer on port {self.port} within 10 s")

    def kill(self):
        """Kill it on the spot (SIGKILL), as a crash would."""
        self.process.kill()
        self.process.wait(5)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def redis_server(tmp_path):
    """A fresh, empty redis-server for one test; stopped afterwards."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()
