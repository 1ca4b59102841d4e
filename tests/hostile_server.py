"""A raw-socket HTTP server that answers what no provider sends on purpose, but proxies, captive
portals, broken gateways and compromised hosts do: endless or enormous bodies, compression bombs,
bytes trickled one at a time, keys echoed back.  Each test scripts one answer as a function of
the connection; the server reads the request first and records it."""

from __future__ import annotations

import socket
import threading
import time
import zlib
from typing import Callable, Iterator

Script = Callable[[socket.socket], None]


class Listener:
    """A 127.0.0.1 listener serving each connection in a thread of its own (``_serve``)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._listener.close()


class HostileServer(Listener):
    def __init__(self) -> None:
        self.script: Script = lambda conn: None
        self.routes: dict[str, Script] = {}  # first path segment -> its answer, else ``script``
        self.requests: list[bytes] = []
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = read_request(conn)
                self.requests.append(request)
                path = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
                self.routes.get(path.split("/")[1], self.script)(conn)
            except OSError:
                pass  # the client gave up: what these answers are for


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


# --- answers ---------------------------------------------------------------------------------

def answer(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> Script:
    """One whole answer with a Content-Length."""
    def script(conn: socket.socket) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return script


def chunked(pieces: Iterator[bytes], headers: dict[str, str] | None = None, status: int = 200) -> Script:
    """A chunked answer sending ``pieces`` until they end (or the client leaves)."""
    def script(conn: socket.socket) -> None:
        lines = [f"HTTP/1.1 {status} OK", "Transfer-Encoding: chunked",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for piece in pieces:
            if piece:
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.sendall(b"0\r\n\r\n")
    return script


def close_delimited(pieces: Iterator[bytes], headers: dict[str, str] | None = None) -> Script:
    """An answer with neither length nor chunking: the body ends when the connection does."""
    def script(conn: socket.socket) -> None:
        lines = ["HTTP/1.1 200 OK", "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for piece in pieces:
            conn.sendall(piece)
    return script


def endless(piece: bytes, prefix: bytes = b"") -> Iterator[bytes]:
    yield prefix
    while True:
        yield piece


def gzip_bomb(total: int, prefix: bytes = b"") -> Iterator[bytes]:
    """``prefix`` then ``total`` bytes of "a", gzip-compressed as it goes (about 1000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    yield packer.compress(prefix)
    block = b"a" * (1 << 20)
    for _ in range(total >> 20):
        yield packer.compress(block)
    yield packer.flush()


class Trickle:
    """Send ``data`` one byte every ``interval`` seconds; ``finished`` tells whether it got
    through all of it (the client should have given up long before)."""

    def __init__(self, data: bytes, interval: float = 0.1) -> None:
        self.data = data
        self.interval = interval
        self.finished = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        for i in range(len(self.data)):
            conn.sendall(self.data[i : i + 1])
            time.sleep(self.interval)
        self.finished.set()
