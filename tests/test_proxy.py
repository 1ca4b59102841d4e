"""Proxies and CA bundles from the environment are honoured as requests honours them (issue 12,
item 7), through a real forward proxy written here: it tunnels CONNECT (https targets) and
forwards absolute-form requests (http targets), recording every byte it is given.  The https
target is a TLS front, with a certificate made for the test, to the fake provider server."""

import select
import socket
import ssl
import subprocess

import pytest

from failover_client import NetworkError
from failover_client.providers import OpenAIProvider

from hostile_server import Listener
from support import ask, make_provider

KEY = "sk-proxy-test-key-0123456789"


class ForwardProxy(Listener):
    """A small CONNECT-capable HTTP forward proxy on 127.0.0.1."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []  # the request head of every connection it served
        self.traffic = bytearray()  # every byte a client sent through it
        super().__init__()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                piece = client.recv(65536)
                if not piece:
                    return
                head += piece
            self.seen.append(head.split(b"\r\n\r\n")[0])
            self.traffic += head
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            if method == b"CONNECT":
                host, port = target.decode().rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = b""
            else:  # absolute form: forward to the origin in origin form
                origin = target.decode().split("/", 3)
                host, port = origin[2].rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                rest = head.replace(target, b"/" + origin[3].encode(), 1)
            with upstream:
                upstream.sendall(rest)
                self._relay(client, upstream)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        while True:
            ready, _, _ = select.select([client, upstream], [], [], 5)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is client:
                    self.traffic += data
                (upstream if sock is client else client).sendall(data)


class TlsFront(Listener):
    """https://127.0.0.1:port in front of an http server: TLS terminated here, bytes relayed."""

    def __init__(self, cert: str, key: str, backend_port: int) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._backend_port = backend_port
        super().__init__()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self._context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with client, socket.create_connection(("127.0.0.1", self._backend_port)) as backend:
            while True:
                if not client.pending():
                    ready, _, _ = select.select([client, backend], [], [], 5)
                    if not ready:
                        return
                else:
                    ready = [client]
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                    except (OSError, ssl.SSLError):
                        return
                    if not data:
                        return
                    (backend if sock is client else client).sendall(data)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture
def proxy():
    forward = ForwardProxy()
    yield forward
    forward.close()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy"])
def test_an_http_target_goes_through_the_proxy_the_environment_names(fake_provider, proxy, clean_env, variable):
    clean_env.setenv(variable, proxy.url)
    provider = make_provider(fake_provider, "p", "openai", api_key=KEY)
    assert provider.complete(ask()).text == "Hello!"
    assert proxy.seen and proxy.seen[0].startswith(b"POST http://127.0.0.1:")
    assert len(fake_provider.requests_for("p")) == 1


@pytest.mark.parametrize("ca_variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_an_https_target_is_tunnelled_with_the_ca_bundle_the_environment_names(fake_provider, proxy, clean_env,
                                                                               certificate, ca_variable):
    cert, key = certificate
    front = TlsFront(cert, key, fake_provider.port)
    try:
        clean_env.setenv("HTTPS_PROXY", proxy.url)
        clean_env.setenv(ca_variable, cert)  # the only way this client can trust the test's certificate
        base_url = fake_provider.base_url("p", "openai").replace(f"http://127.0.0.1:{fake_provider.port}",
                                                                 f"https://127.0.0.1:{front.port}")
        assert OpenAIProvider(api_key=KEY, base_url=base_url, name="p").complete(ask()).text == "Hello!"
        assert proxy.seen == [proxy.seen[0]] and proxy.seen[0].startswith(f"CONNECT 127.0.0.1:{front.port}".encode())
        assert KEY.encode() not in proxy.traffic  # the key travelled inside the tunnel only
        clean_env.delenv(ca_variable)
        with pytest.raises(NetworkError, match="TLS"):  # without the bundle the certificate is refused
            OpenAIProvider(api_key=KEY, base_url=base_url, name="q").complete(ask())
    finally:
        front.close()


def test_no_proxy_bypasses_environment_and_given_proxies(fake_provider, proxy, clean_env):
    clean_env.setenv("HTTP_PROXY", proxy.url)
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    assert make_provider(fake_provider, "p", "openai", api_key=KEY).complete(ask()).text == "Hello!"
    given = make_provider(fake_provider, "q", "openai", api_key=KEY, proxies={"http": proxy.url})
    assert given.complete(ask()).text == "Hello!"
    assert proxy.seen == []


def test_trust_env_false_ignores_the_environment_but_not_given_proxies(fake_provider, proxy, clean_env):
    clean_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would refuse every connection
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    provider = make_provider(fake_provider, "p", "openai", api_key=KEY, trust_env=False)
    assert provider.complete(ask()).text == "Hello!"
    given = make_provider(fake_provider, "q", "openai", api_key=KEY, trust_env=False, proxies={"http": proxy.url})
    assert given.complete(ask()).text == "Hello!"
    assert len(proxy.seen) == 1  # NO_PROXY is part of the environment, so it was ignored too


def test_proxy_credentials_are_sent_to_the_proxy_and_redacted_from_errors(fake_provider, proxy, clean_env):
    secret = "proxy-pass-0123456789"
    clean_env.setenv("HTTP_PROXY", proxy.url.replace("://", f"://user:{secret}@"))
    assert make_provider(fake_provider, "p", "openai", api_key=KEY).complete(ask()).text == "Hello!"
    assert b"Proxy-Authorization: Basic " in proxy.seen[0]
    clean_env.setenv("HTTP_PROXY", f"http://user:{secret}@127.0.0.1:9")
    with pytest.raises(NetworkError) as caught:
        make_provider(fake_provider, "q", "openai", api_key=KEY).complete(ask())
    assert secret not in str(caught.value) and secret not in repr(caught.value)
