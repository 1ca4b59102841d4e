"""The HTTP layer: sharing between threads and forks, timeouts, redirects, credentials, closing."""

import json
import os
import socket
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import urllib3

from failover_client import NetworkError, ProviderTimeoutError, ResponseDecodeError
from failover_client.errors import InvalidArgumentError, InvalidRequestError, MissingCredentialsError
from failover_client.retry import Deadline
from failover_client.testing import Fault, Reply
from failover_client.transport import Transport, translate

from support import ask, assert_cut_by_deadline, make_provider


def test_64_threads_share_one_provider_without_pool_warnings(fake_provider, protocol):
    provider = make_provider(fake_provider, "p", protocol)
    with warnings.catch_warnings(record=True) as caught, ThreadPoolExecutor(64) as pool:
        warnings.simplefilter("always")
        logger_records = []
        handler = _ListHandler(logger_records)
        urllib3_logger = __import__("logging").getLogger("urllib3.connectionpool")
        urllib3_logger.addHandler(handler)
        try:
            texts = list(pool.map(lambda i: provider.complete(ask(f"q{i}")).text, range(640)))
        finally:
            urllib3_logger.removeHandler(handler)
    assert texts == ["Hello!"] * 640
    assert not [r for r in logger_records if "pool is full" in r.getMessage()]
    assert not caught
    assert len(fake_provider.requests_for("p")) == 640
    provider.close()


class _ListHandler(__import__("logging").Handler):
    def __init__(self, sink):
        super().__init__()
        self.sink = sink

    def emit(self, record):
        self.sink.append(record)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_uses_its_own_connections(fake_provider):
    provider = make_provider(fake_provider, "p", "openai")
    assert provider.complete(ask()).text == "Hello!"
    parent_session = provider.transport().session()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the inherited provider, report, and leave at once
        try:
            ok = provider.complete(ask("from child")).text == "Hello!"
            fresh = provider.transport().session() is not parent_session
            os.write(write_end, json.dumps({"ok": ok, "fresh": fresh}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    report = json.loads(os.read(read_end, 1000))
    os.close(read_end)
    assert report == {"ok": True, "fresh": True}
    assert provider.complete(ask("parent again")).text == "Hello!"  # the parent's pool still works
    assert provider.transport().session() is parent_session


class _RedirectHandler(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        self.seen.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(307)
        self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_redirects_are_not_followed_with_credentials():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RedirectHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from failover_client.providers import AnthropicProvider

        provider = AnthropicProvider(api_key="sk-ant-secret-value-123", base_url=f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(InvalidRequestError, match="redirect") as info:
            provider.complete(ask())
        assert len(_RedirectHandler.seen) == 1  # the redirect target was never asked
        assert info.value.status == 307
    finally:
        server.shutdown()
        server.server_close()


def test_netrc_cannot_replace_the_key_and_trust_env_false_ignores_proxy_variables(fake_provider, tmp_path,
                                                                                  monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login intruder password stolen\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy that would refuse
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    provider = make_provider(fake_provider, "p", "openai", api_key="sk-configured-key-42", trust_env=False)
    assert provider.complete(ask()).text == "Hello!"
    assert fake_provider.requests_for("p")[0].headers["authorization"] == "Bearer sk-configured-key-42"
    with pytest.raises(NetworkError, match="proxy"):  # trusted by default: the refusing proxy is used
        make_provider(fake_provider, "q", "openai", api_key="sk-configured-key-42").complete(ask())


def test_missing_key_names_the_environment_variable(monkeypatch):
    from failover_client.providers import AnthropicProvider, OpenAIProvider

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY"):
        OpenAIProvider().complete(ask())
    with pytest.raises(MissingCredentialsError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider().complete(ask())


def test_key_from_the_environment_is_used(fake_provider, monkeypatch):
    from failover_client.providers import OpenAIProvider

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456")
    OpenAIProvider(base_url=fake_provider.base_url("p", "openai")).complete(ask())
    assert fake_provider.requests_for("p")[0].headers["authorization"] == "Bearer sk-from-env-123456"


def test_repr_never_shows_the_key(fake_provider):
    provider = make_provider(fake_provider, "p", "openai", api_key="sk-very-secret-000111")
    provider.complete(ask())
    assert "sk-very-secret" not in repr(provider) and "sk-very-secret" not in repr(provider.transport())


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "https://h/v1?key=abc"])
def test_bad_base_url_is_a_clear_error(url):
    with pytest.raises(InvalidArgumentError, match="base_url"):
        Transport(url, provider="p")


def test_connection_refused_is_a_network_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = Transport(f"http://127.0.0.1:{port}", provider="p")
    with pytest.raises(NetworkError, match="could not connect"):
        transport.request("POST", "/x", body=b"{}")


def test_stall_before_headers_is_a_timeout_bounded_by_the_read_timeout(fake_provider):
    fake_provider.script("p", Fault.stall_before_headers(5))
    provider = make_provider(fake_provider, "p", "openai", read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        provider.complete(ask())
    assert time.monotonic() - started < 2


def test_trickling_body_cannot_outlive_the_deadline(fake_provider):
    fake_provider.script("p", Fault.trickle(0.05, Reply(text="word " * 400)))
    provider = make_provider(fake_provider, "p", "openai")
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match="deadline"):
        provider.complete(ask(), timeout=0.5)
    assert_cut_by_deadline(started, 0.5)


def test_close_releases_every_pooled_connection(fake_provider):
    provider = make_provider(fake_provider, "p", "openai")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: provider.complete(ask()), range(32)))
    port = int(fake_provider.url.rsplit(":", 1)[1])
    assert _open_connections_to(port) > 0
    provider.close()
    deadline = time.monotonic() + 2
    while _open_connections_to(port) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _open_connections_to(port) == 0


def _open_connections_to(port):
    """ESTABLISHED TCP connections from this process to 127.0.0.1:port, read from /proc."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def test_providers_are_context_managers(fake_provider):
    with make_provider(fake_provider, "p", "anthropic") as provider:
        assert provider.complete(ask()).text == "Hello!"
    assert provider._transport is None


@pytest.mark.parametrize("exc, cls, words", [
    (requests.ConnectTimeout("x"), ProviderTimeoutError, "connect"),
    (requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out")),
     ProviderTimeoutError, "read"),
    (requests.exceptions.SSLError("bad cert"), NetworkError, "TLS"),
    (requests.exceptions.ChunkedEncodingError("cut"), NetworkError, "broken"),
    (urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError()), NetworkError, "broken"),
    (requests.exceptions.ContentDecodingError("gzip"), ResponseDecodeError, "decoded"),
    (TimeoutError("timed out"), ProviderTimeoutError, "read"),
    (ConnectionResetError("reset"), NetworkError, "reset"),
])
def test_translate_maps_foreign_exceptions_in_order(exc, cls, words):
    mapped = translate(exc, provider="p", model="m")
    assert type(mapped) is cls and words.lower() in str(mapped).lower()
    assert mapped.provider == "p" and mapped.model == "m"


def test_translate_lets_programming_errors_through():
    with pytest.raises(KeyError):
        translate(KeyError("bug"))


def test_request_after_the_deadline_sends_nothing(fake_provider):
    transport = Transport(fake_provider.url, provider="p")
    expired = Deadline(0.0)
    with pytest.raises(ProviderTimeoutError, match="before the request was sent"):
        transport.request("POST", "/v1/chat/completions", body=b"{}", deadline=expired)
    assert fake_provider.requests == []


def test_a_fast_stream_of_small_chunks_is_read_in_wide_reads(monkeypatch):
    """A chunked body is read a size line and a chunk at a time; through http.client's own
    8 KiB buffer, 1 MiB would take at least 128 socket reads."""
    chunk = b"x" * 500
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2048)) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    listener = socket.create_server(("127.0.0.1", 0))
    written = threading.Event()

    def answer():
        connection, _ = listener.accept()
        with connection:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * len(body))
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            connection.sendall(head + body)
            written.set()
            while connection.recv(65536):  # the request's body, then the client hanging up
                pass

    threading.Thread(target=answer, daemon=True).start()
    reads = []
    real_readinto = socket.SocketIO.readinto
    monkeypatch.setattr(socket.SocketIO, "readinto", lambda self, b: reads.append(1) or real_readinto(self, b))
    transport = Transport(f"http://127.0.0.1:{listener.getsockname()[1]}", provider="p")
    try:
        response = transport.request("POST", "/stream", body=b"{}")
        assert written.wait(5)
        reads.clear()  # count the body's reads only
        assert sum(len(part) for part in response.iter_bytes()) == 2048 * len(chunk)
        assert len(reads) < 64
    finally:
        transport.close()
        listener.close()
