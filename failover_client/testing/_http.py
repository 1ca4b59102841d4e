"""The HTTP/1.1 plumbing: a threaded server that can be stopped *completely*, and the
low-level ways of answering that faults need (chunked writes, half bodies, resets, waits).

`http.server` alone leaves daemon threads parked on keep-alive sockets and cannot reset a
connection or interrupt a sleeping handler; this module adds exactly that and nothing about
LLM protocols.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

from ._protocol import HttpResponse


class Aborted(Exception):
    """The server is stopping: drop this connection instead of answering."""


@dataclass(frozen=True)
class Incoming:
    """A request as read off the socket."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class Connection:
    """How one request gets answered: whole responses, streamed chunks, stalls and resets."""

    def __init__(self, handler: _Handler, stopping: threading.Event) -> None:
        self._handler = handler
        self._stopping = stopping
        self._chunked = False

    def pause(self, seconds: float) -> None:
        """Sleep, but give up at once when the server stops."""
        if seconds > 0 and self._stopping.wait(seconds):
            raise Aborted

    def send(self, response: HttpResponse) -> None:
        self.start(response.status, response.headers, length=len(response.body))
        self.write(response.body)

    def start(self, status: int, headers: Mapping[str, str], length: int | None = None) -> None:
        """Send the status line and headers; no `length` means a chunked body follows."""
        handler = self._handler
        handler.send_response_only(status)
        keep_alive = "close" if handler.close_connection else "keep-alive"
        lines = {"date": formatdate(usegmt=True), "connection": keep_alive, **headers}
        for name, value in lines.items():
            handler.send_header(name, value)
        self._chunked = length is None
        framing = ("transfer-encoding", "chunked") if length is None else ("content-length", str(length))
        handler.send_header(*framing)
        handler.end_headers()

    def write(self, data: bytes) -> None:
        """Body bytes; one chunk each when chunked (so one SSE event per flush)."""
        if not data:
            return
        if self._chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self._handler.wfile.write(data)

    def end(self) -> None:
        """Close a chunked body cleanly."""
        self._handler.wfile.write(b"0\r\n\r\n")

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER on, timeout 0)."""
        handler = self._handler
        handler.close_connection = True
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.rfile.close()  # drops the makefile reference, so the descriptor really closes


App = Callable[[Incoming, Connection], None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm-provider"
    sys_version = ""
    disable_nagle_algorithm = True  # each SSE event leaves at once
    server: ProviderHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""

    def _dispatch(self) -> None:
        headers: dict[str, str] = {}
        for name, raw in self.headers.items():
            key, value = name.lower(), str(raw)
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        incoming = Incoming(self.command, self.path, headers, self._read_body(headers))
        try:
            self.server.app(incoming, Connection(self, self.server.stopping))
        except (Aborted, OSError):
            self.close_connection = True

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        return self.rfile.read(int(headers.get("content-length") or 0))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class ProviderHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its connections, so stop() can end and join them all."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: App) -> None:
        self.app = app
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # skip HTTPServer's reverse DNS lookup of the host
        self.server_name, self.server_port = self.socket.getsockname()[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address),
            name="fake-provider-connection", daemon=True,
        )
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # peers hanging up are not errors
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        """Shut every open connection down and wait (up to `timeout`) for its thread."""
        with self._lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed (e.g. reset by a fault)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
