"""FakeProviderServer: lifecycle, routing by path, per-name scripts, keys and the request log.

One server plays any number of named fake providers at once: the first path segment names the
provider ("/primary/v1/chat/completions"), the rest of the path picks the protocol. Each name has
its own FIFO script of steps and a default step for when the script runs out.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

from . import _anthropic, _azure, _bedrock, _cohere, _embeddings, _gemini, _ollama, _openai, _responses, _vertex
from ._batches import BatchEndpoints
from ._count_tokens import PROTOCOL as ANTHROPIC_COUNT_TOKENS
from ._http import Connection, Incoming, ProviderHTTPServer
from ._play import play
from ._protocol import ErrorSpec, HttpResponse, Protocol, RecordedRequest, encode_body
from ._steps import Fault, RandomFaults, Reply, Step

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (  # one line per protocol module
    *_embeddings.PROTOCOLS,  # first: their routes are more specific than Gemini's and Vertex's chat routes
    _openai.PROTOCOL,
    _anthropic.PROTOCOL,
    ANTHROPIC_COUNT_TOKENS,
    _gemini.PROTOCOL,
    _vertex.PROTOCOL,
    _vertex.ANTHROPIC_PROTOCOL,
    _cohere.PROTOCOL,
    _ollama.PROTOCOL,
    _azure.PROTOCOL,
    _bedrock.PROTOCOL,
    _responses.PROTOCOL,
)}
DEFAULT_NAME = "default"
DEFAULT_REPLY = Reply()
STOP_TIMEOUT = 1.0  # seconds stop() waits for connection threads


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"provider name must be a non-empty string without '/', got {name!r}")


def _check_step(step: object) -> Step:
    if not isinstance(step, (Reply, Fault)):
        raise TypeError(f"a script step is a Reply or a Fault, got {step!r}")
    return step


def _not_found(method: str, path: str) -> HttpResponse:
    error = {
        "message": f"Unknown request URL: {method} {path}. Please check the URL for typos.",
        "type": "invalid_request_error",
        "param": None,
        "code": "unknown_url",
    }
    return HttpResponse(404, {"content-type": "application/json"}, encode_body({"error": error}))


class FakeProviderServer:
    """A local HTTP/1.1 server that speaks real provider protocols, with scripted faults.

    Use it as a context manager (or start()/stop()); point clients at `base_url(name, protocol)`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Step]] = {}
        self._defaults: dict[str, Step | RandomFaults] = {}
        self._keys: dict[str, str] = {}
        self._log: list[RecordedRequest] = []
        self._httpd: ProviderHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.batches = BatchEndpoints(self)  # OpenAI Files + Batches, Anthropic Message Batches

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        if self._httpd is not None:
            raise RuntimeError("a FakeProviderServer can be started only once")
        self._httpd = ProviderHTTPServer(*self._address, app=self._handle)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-provider-server", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end stalls, close every open connection and join their threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None or httpd.stopping.is_set():
            return
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections(STOP_TIMEOUT)
        thread.join(STOP_TIMEOUT)

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    def base_url(self, name: str, protocol: str) -> str:
        """The base URL a client of `protocol` uses to reach the fake provider `name`."""
        _check_name(name)
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
        return PROTOCOLS[protocol].base_url(self.url, name)

    # scripting -------------------------------------------------------------------------------

    def script(self, name: str, *steps: Step) -> None:
        """Queue steps for `name`; each answers exactly one request, in order."""
        _check_name(name)
        checked = [_check_step(step) for step in steps]
        with self._lock:
            self._scripts.setdefault(name, deque()).extend(checked)

    def set_default(self, name: str, step: Step | RandomFaults) -> None:
        """What `name` answers once its script is empty (initially Reply()); a RandomFaults
        draws a fault or its reply for each request."""
        _check_name(name)
        with self._lock:
            self._defaults[name] = step if isinstance(step, RandomFaults) else _check_step(step)

    def require_key(self, name: str, key: str) -> None:
        """Answer requests to `name` presenting any other API key with the protocol's 401."""
        _check_name(name)
        with self._lock:
            self._keys[name] = key

    def reset(self) -> None:
        """Forget scripts, defaults, required keys and the request log."""
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._keys.clear()
            self._log.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def requests_for(self, name: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.name == name]

    # serving ---------------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, Protocol, str] | None:
        """(provider name, protocol, the route: the path after the name prefix), or None."""
        if method != "POST":
            return None
        name, _, rest = path[1:].partition("/")
        candidates = [(DEFAULT_NAME, path)] + ([(name, f"/{rest}")] if name else [])
        for candidate, route in candidates:  # an unprefixed route wins over a name prefix
            for protocol in PROTOCOLS.values():
                if protocol.matches(route):
                    return candidate, protocol, route
        return None

    def _handle(self, incoming: Incoming, conn: Connection) -> None:
        if self.batches.serve(incoming, conn):
            return
        target = urlsplit(incoming.target)
        route = self._route(incoming.method, target.path)
        if route is None:
            conn.send(_not_found(incoming.method, target.path))
            return
        name, protocol, path = route
        try:
            body = json.loads(incoming.body)
        except ValueError:
            body = None
        json_ok = isinstance(body, dict)
        query = dict(parse_qsl(target.query, keep_blank_values=True))
        call = replace(protocol.call(name, body if json_ok else {}, incoming.headers, path, query),
                       raw_body=incoming.body)
        presented = protocol.api_key(incoming.headers) or ""
        with self._lock:
            required = self._keys.get(name)
            answer: Step | ErrorSpec = (  # the real API's checks, then the scripted key, then the script
                protocol.check(call, json_ok)
                or (protocol.wrong_key(presented) if required not in (None, presented) else None)
                or self._next_step(name)
            )
            default = self._defaults.get(name, DEFAULT_REPLY)
            self._log.append(RecordedRequest(
                name=name,
                protocol=protocol.name,
                method=incoming.method,
                path=target.path,
                query=query,
                headers=dict(incoming.headers),
                body=body,
                raw_body=incoming.body,
                step=answer.label,
                stream=call.stream,
            ))
        if isinstance(answer, ErrorSpec):
            conn.send(protocol.error_response(answer))
            return
        fallback = default.reply if isinstance(default, RandomFaults) else (
            default if isinstance(default, Reply) else DEFAULT_REPLY)
        play(answer, call, protocol, conn, fallback)

    def _next_step(self, name: str) -> Step:
        queue = self._scripts.get(name)
        step = queue.popleft() if queue else self._defaults.get(name, DEFAULT_REPLY)
        return step.draw() if isinstance(step, RandomFaults) else step
