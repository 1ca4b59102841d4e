"""The contract a protocol module fulfils, and the wire helpers the protocol modules share.

The HTTP machinery (`_http`, `_play`) only ever talks to a `Protocol`: it asks it to validate a
request, to render a Reply as a JSON body or as a list of SSE events, and to shape errors. Adding
Gemini or Bedrock later means one new module implementing this class, nothing else.
"""

from __future__ import annotations

import json
import random
import string
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ._steps import Fault, Reply

ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class HttpResponse:
    """A complete (non-streaming) HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class ErrorSpec:
    """A protocol error before it is shaped into that protocol's JSON."""

    status: int
    type: str | None
    message: str
    code: str | None = None
    param: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How the request log names a request the protocol rejected."""
        return f"rejected:{self.status}"


@dataclass(frozen=True)
class Call:
    """A validated request as the renderers see it; `path` is the route after the provider-name
    prefix and `query` its query string, for protocols whose URL says what is asked."""

    name: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    raw_body: bytes = b""  # the body as received, for a protocol that checks a signature over it

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    def model(self, reply: Reply | None = None) -> str:
        return (reply and reply.model) or str(self.body.get("model"))


def dumps(obj: Any) -> str:
    """Compact single-line JSON, the way the APIs write stream events."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def sse(data: Any, event: str | None = None, pad: str = "") -> bytes:
    """One SSE event: optional `event:` line, one `data:` line, blank line."""
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}{pad}\n\n".encode()


def random_id(prefix: str, length: int, alphabet: str = ALPHANUMERIC) -> str:
    return prefix + "".join(random.choices(alphabet, k=length))


def arguments_json(arguments: Mapping[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False)


def fragments(text: str, parts: int = 3) -> list[str]:
    """Cut text into about `parts` consecutive pieces (never empty pieces)."""
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if there is a non-empty one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def encode_body(body: str | bytes | Mapping[str, Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return dumps(body).encode()


class Protocol(ABC):
    """One wire protocol: routing, validation, rendering of replies and errors."""

    name: ClassVar[str]
    route: ClassVar[str]  # path after the optional "/{name}" prefix
    json_type: ClassVar[str] = "application/json"
    error_type: ClassVar[str] = "application/json"
    stream_type: ClassVar[str] = "text/event-stream; charset=utf-8"

    def matches(self, path: str) -> bool:
        """Whether a request path (without the "/{name}" prefix) is this protocol's route."""
        return path == self.route

    @abstractmethod
    def base_url(self, root: str, name: str) -> str:
        """The base URL a client of this protocol is configured with."""

    @abstractmethod
    def api_key(self, headers: Mapping[str, str]) -> str | None:
        """The credential the request presents, if any."""

    @abstractmethod
    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        """The error a real server gives this request (auth, headers, body), or None."""

    def call(self, name: str, body: Mapping[str, Any], headers: Mapping[str, str], path: str,
             query: Mapping[str, str]) -> Call:
        """The Call a request makes.  A protocol whose URL decides the model or whether to stream
        (Gemini's `:streamGenerateContent`) returns a Call subclass that reads it from `path`."""
        return Call(name, body, headers, path, query)

    def check(self, call: Call, json_ok: bool) -> ErrorSpec | None:
        """The real API's checks of a request: by default `reject`'s (headers and body); a
        protocol whose route matters (model, method, query) checks that here as well."""
        return self.reject(call.headers, call.body, json_ok)

    @abstractmethod
    def wrong_key(self, key: str) -> ErrorSpec:
        """The 401 for a well-formed but unknown API key."""

    @abstractmethod
    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        """The error a status-like fault stands for on this protocol."""

    @abstractmethod
    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        """The JSON error body as the real server writes it (`headers`: the response's)."""

    @abstractmethod
    def error_event(self, error_type: str, message: str) -> bytes:
        """An error delivered inside a 200 event stream."""

    @abstractmethod
    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        """The non-streaming 200 body; unfinished means no stop reason (a cut-off answer)."""

    @abstractmethod
    def events(self, reply: Reply, call: Call) -> list[bytes]:
        """The stream as encoded SSE events; the last one is the terminal event."""

    @abstractmethod
    def response_headers(self) -> dict[str, str]:
        """Headers the real API puts on every response (request id, rate limits...)."""

    def corrupt(self, event: bytes) -> bytes:
        """The event made unparseable (Fault.malformed_json): an SSE event with its JSON cut in half."""
        head, marker, payload = event.partition(b"data: ")
        return head + marker + payload[: len(payload) // 2].rstrip(b"\r\n") + b"\n\n"

    def error_response(self, spec: ErrorSpec) -> HttpResponse:
        headers = {**self.response_headers(), "content-type": self.error_type}
        return HttpResponse(spec.status, headers, self.error_body(spec, headers))

    def fault_response(self, fault: Fault, call: Call) -> HttpResponse:
        spec = self.fault_error(fault, call)
        spec = replace(
            spec,
            type=fault.error_type or spec.type,
            message=fault.message or spec.message,
            code=fault.error_code or spec.code,
        )
        response = self.error_response(spec)
        body = response.body if fault.body is None else encode_body(fault.body)
        return HttpResponse(response.status, {**response.headers, **fault.headers}, body)

    def ok(self, reply: Reply, body: bytes) -> HttpResponse:
        headers = {**self.response_headers(), "content-type": self.json_type, **reply.headers}
        return HttpResponse(200, headers, body)

    def stream_headers(self, reply: Reply) -> dict[str, str]:
        return {**self.response_headers(), "content-type": self.stream_type, **reply.headers}


@dataclass(frozen=True)
class RecordedRequest:
    """One request that reached a protocol route, and what answered it."""

    name: str
    protocol: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when the body was not JSON
    raw_body: bytes
    step: str  # "reply", a fault kind such as "rate_limit" or "status:500", or "rejected:401"
    stream: bool
