"""The batch endpoints of the fake server, in memory: OpenAI Files + Batches (`/v1/files`,
`/v1/batches`) and Anthropic Message Batches (`/v1/messages/batches`), under the same optional
"/{name}" prefix as the chat routes, with the same key checks and request log.

A batch is in progress when created and ends on its Nth retrieve (`complete_after(polls=N)`,
default 1) or once `seconds` have passed, whichever is configured.  When it ends, each request
is answered by the next step of its name's script, exactly as a chat request would be: a Reply
becomes a succeeded result, an error Fault an errored one (any other fault a 500), so faults
can be scripted per request.  A cancelled batch ends at the next retrieve with every request
cancelled; `expire(id)` ends one with every request expired.  Results files list the requests
in a shuffled order (the real APIs promise no order).  Wire shapes: protocols.md §2.8 and §3.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import _anthropic, _openai
from ._http import Connection, Incoming
from ._protocol import Call, ErrorSpec, HttpResponse, Protocol, RecordedRequest, dumps, encode_body, random_id
from ._steps import Fault, Reply, Step

HEX = "0123456789abcdef"
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
ENDPOINT = "/v1/chat/completions"
DAY = 24 * 3600
FINAL_STATUSES = ("completed", "failed", "expired", "cancelled")
# Passes the chat routes' body checks, so only their header checks speak.
_HEADERS_ONLY = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}


class Refused(Exception):
    """Answer the request with this protocol error."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.spec = ErrorSpec(status, error_type, message)


@dataclass
class Batch:
    id: str
    name: str
    protocol: str  # "openai" or "anthropic"
    requests: list[tuple[str, dict[str, Any]]]  # (custom_id, request body)
    headers: dict[str, str]
    created: float = field(default_factory=time.time)
    polls: int = 0
    cancel_at: float | None = None
    ended_at: float | None = None
    outcome: dict[str, int] = field(default_factory=dict)  # result type -> count, once ended
    results: dict[str, bytes] = field(default_factory=dict)  # "output"/"error"/"results" -> JSONL
    file_ids: dict[str, str] = field(default_factory=dict)  # OpenAI: "input"/"output"/"error" -> file id
    metadata: dict[str, str] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)  # OpenAI validation errors (status failed)
    expired: bool = False

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created: int = field(default_factory=lambda: int(time.time()))

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created,
                "expires_at": None, "filename": self.filename, "purpose": self.purpose, "status": "processed",
                "status_details": None}


Handler = Callable[["BatchEndpoints", "Request"], HttpResponse]


@dataclass
class Request:
    name: str
    protocol: Protocol
    incoming: Incoming
    path: str
    query: dict[str, str]
    ident: str | None  # the id in the path, if the route has one
    body: Any = None  # the parsed JSON body, if it is JSON

    def json(self) -> Any:
        if self.body is None:
            raise Refused(400, "invalid_request_error", "the body is not valid JSON")
        return self.body


class ScriptHost(typing.Protocol):
    """What the batch routes share with the FakeProviderServer that mounts them: its lock, request
    log, required keys and scripts, and its base URLs."""

    _lock: threading.Lock
    _log: list[RecordedRequest]
    _keys: dict[str, str]

    def _next_step(self, name: str) -> Step: ...

    def base_url(self, name: str, protocol: str) -> str: ...


class BatchEndpoints:
    """The batch routes of one FakeProviderServer (reached as `server.batches`)."""

    def __init__(self, server: ScriptHost) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._batches: dict[str, Batch] = {}
        self._files: dict[str, StoredFile] = {}
        self._polls = 1
        self._seconds: float | None = None

    # test controls ---------------------------------------------------------------------------

    def complete_after(self, *, polls: int | None = None, seconds: float | None = None) -> None:
        """When batches end: on their `polls`-th retrieve, or once `seconds` have passed."""
        if (polls is None) == (seconds is None):
            raise ValueError("give exactly one of polls= or seconds=")
        with self._lock:
            self._polls, self._seconds = (polls or 1), seconds

    def expire(self, batch_id: str) -> None:
        """End a batch now with every request expired (as after 24 hours)."""
        with self._lock:
            batch = self._batches[batch_id]
            batch.expired = True
            self._end(batch)

    def fail(self, batch_id: str, message: str) -> None:
        """Make an OpenAI batch fail validation (status ``failed``) with this error."""
        with self._lock:
            batch = self._batches[batch_id]
            batch.errors.append({"code": "invalid_request", "message": message, "param": None, "line": None})
            batch.ended_at = time.time()

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._batches)

    # routing ---------------------------------------------------------------------------------

    def serve(self, incoming: Incoming, conn: Connection) -> bool:
        """Answer `incoming` if it is a batch route; False leaves it to the chat routes."""
        target = urlsplit(incoming.target)
        found = self._match(incoming.method, target.path)
        if found is None:
            return False
        name, protocol, handler, ident = found
        try:
            body = json.loads(incoming.body) if incoming.body[:1] == b"{" else None
        except ValueError:
            body = None
        request = Request(name, protocol, incoming, target.path, dict(parse_qsl(target.query, keep_blank_values=True)),
                          ident, body)
        try:
            self._authorize(request)
            with self._lock:
                response = handler(self, request)
            step = f"batch:{handler.__name__.strip('_')}"
        except Refused as exc:
            response = protocol.error_response(exc.spec)
            step = exc.spec.label
        self._record(request, step)
        conn.send(response)
        return True

    def _record(self, request: Request, step: str) -> None:
        """Log the request in the server's request log, like the chat routes do."""
        incoming = request.incoming
        recorded = RecordedRequest(name=request.name, protocol=request.protocol.name, method=incoming.method,
                                   path=request.path, query=request.query, headers=dict(incoming.headers),
                                   body=request.body, raw_body=incoming.body, step=step, stream=False)
        with self._server._lock:
            self._server._log.append(recorded)

    def _match(self, method: str, path: str) -> tuple[str, Protocol, Handler, str | None] | None:
        name, _, rest = path[1:].partition("/")
        for candidate, route in [("default", path), (name, f"/{rest}")]:
            for protocol, verb, pattern, handler in ROUTES:
                match = pattern.fullmatch(route)
                if match and verb == method:
                    return candidate, protocol, handler, match.group(1) if match.groups() else None
        return None

    def _authorize(self, request: Request) -> None:
        headers = request.incoming.headers
        spec = request.protocol.reject(headers, _HEADERS_ONLY, True)
        presented = request.protocol.api_key(headers) or ""
        with self._server._lock:
            required = self._server._keys.get(request.name)
        if spec is None and required not in (None, presented):
            spec = request.protocol.wrong_key(presented)
        if spec is not None:
            raise Refused(spec.status, spec.type or "invalid_request_error", spec.message)

    def _batch(self, request: Request) -> Batch:
        batch = self._batches.get(request.ident or "")
        protocol = request.protocol.name
        if batch is None or batch.protocol != protocol or batch.name != request.name:
            kind = "not_found_error" if protocol == "anthropic" else "invalid_request_error"
            raise Refused(404, kind, f"No batch found with id '{request.ident}'.")
        return batch

    # the life of a batch ---------------------------------------------------------------------

    def _poll(self, batch: Batch) -> None:
        if batch.ended:
            return
        batch.polls += 1
        due = (time.time() - batch.created >= self._seconds if self._seconds is not None
               else batch.polls >= self._polls)
        if batch.cancel_at is not None or due:
            self._end(batch)

    def _end(self, batch: Batch) -> None:
        if batch.ended:
            return
        render = _openai_result if batch.protocol == "openai" else _anthropic_result
        lines: dict[str, list[bytes]] = {}
        for custom_id, body in batch.requests:
            kind, payload = self._answer(batch, body)
            batch.outcome[kind] = batch.outcome.get(kind, 0) + 1
            where, line = render(custom_id, kind, payload)
            lines.setdefault(where, []).append(line)
        for where, entries in lines.items():
            random.Random(f"{batch.id}:{where}").shuffle(entries)
            batch.results[where] = b"".join(entries)
            if batch.protocol == "openai":
                stored = self._store(f"batch_{batch.id}_{where}.jsonl", "batch_output", batch.results[where])
                batch.file_ids[where] = stored.id
        batch.ended_at = time.time()

    def _answer(self, batch: Batch, body: dict[str, Any]) -> tuple[str, Any]:
        """(result type, payload) for one request: the next scripted step, unless the batch was
        cancelled or expired before it ran."""
        if batch.expired:
            return "expired", None
        if batch.cancel_at is not None:
            return "canceled", None
        with self._server._lock:
            step = self._server._next_step(batch.name)
        protocol = PROTOCOLS[batch.protocol]
        call = Call(batch.name, body, batch.headers)
        if isinstance(step, Reply):
            return "succeeded", protocol.render(step, call)
        response = protocol.fault_response(step if step.is_error else Fault.status(500), call)
        try:
            error = json.loads(response.body)
        except ValueError:
            error = response.body.decode("utf-8", "replace")
        return "errored", (response.status, error)

    def _store(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(random_id("file-", 22), filename, purpose, data)
        self._files[stored.id] = stored
        return stored

    def _new(self, request: Request, protocol: str, ident: str, items: list[tuple[str, dict[str, Any]]]) -> Batch:
        batch = Batch(ident, request.name, protocol, items, dict(request.incoming.headers))
        self._batches[batch.id] = batch
        return batch

    # the routes both APIs share: retrieve (one poll), cancel, list ---------------------------

    def _retrieve(self, request: Request) -> HttpResponse:
        batch = self._batch(request)
        self._poll(batch)
        return _json(self._wire(batch))

    def _cancel(self, request: Request) -> HttpResponse:
        batch = self._batch(request)
        if batch.ended:
            raise Refused(400, "invalid_request_error", f"Batch {batch.id} has ended and cannot be cancelled.")
        batch.cancel_at = time.time()
        return _json(self._wire(batch))

    def _list(self, request: Request) -> HttpResponse:
        protocol = request.protocol.name
        mine = [b for b in reversed(self._batches.values()) if b.protocol == protocol and b.name == request.name]
        after = request.query.get("after" if protocol == "openai" else "after_id")
        if after:
            ids = [b.id for b in mine]
            mine = mine[ids.index(after) + 1:] if after in ids else []
        limit = int(request.query.get("limit") or 20)
        page = mine[:limit]
        return _json({**({"object": "list"} if protocol == "openai" else {}), "data": [self._wire(b) for b in page],
                      "has_more": len(mine) > limit, "first_id": page[0].id if page else None,
                      "last_id": page[-1].id if page else None})

    def _wire(self, batch: Batch) -> dict[str, Any]:
        return self._openai_wire(batch) if batch.protocol == "openai" else self._anthropic_wire(batch)

    # OpenAI Files + Batches ------------------------------------------------------------------

    def _upload(self, request: Request) -> HttpResponse:
        fields, files = _multipart(request.incoming)
        if fields.get("purpose") != "batch":
            raise Refused(400, "invalid_request_error", f"Invalid value for 'purpose': {fields.get('purpose')!r}.")
        if "file" not in files:
            raise Refused(400, "invalid_request_error", "Missing required parameter: 'file'.")
        filename, data = files["file"]
        return _json(self._store(filename, "batch", data).wire())

    def _file(self, request: Request) -> HttpResponse:
        return _json(self._stored(request).wire())

    def _content(self, request: Request) -> HttpResponse:
        return HttpResponse(200, {"content-type": "application/octet-stream"}, self._stored(request).data)

    def _stored(self, request: Request) -> StoredFile:
        stored = self._files.get(request.ident or "")
        if stored is None:
            raise Refused(404, "invalid_request_error", f"No such File object: {request.ident}")
        return stored

    def _openai_create(self, request: Request) -> HttpResponse:
        body = request.json()
        stored = self._files.get(str(body.get("input_file_id")))
        if stored is None:
            raise Refused(404, "invalid_request_error", f"No such File object: {body.get('input_file_id')}")
        if body.get("endpoint") != ENDPOINT or body.get("completion_window") != "24h":
            raise Refused(400, "invalid_request_error", "endpoint must be /v1/chat/completions and "
                                                        "completion_window 24h")
        items, errors = _openai_lines(stored.data)
        batch = self._new(request, "openai", random_id("batch_", 32, HEX), items)
        batch.file_ids["input"], batch.metadata, batch.errors = stored.id, body.get("metadata"), errors
        if errors:
            batch.ended_at = batch.created
        return _json(self._openai_wire(batch))

    def _openai_wire(self, batch: Batch) -> dict[str, Any]:
        status = _openai_status(batch)
        ended = int(batch.ended_at) if batch.ended_at else None
        out = batch.outcome
        return {
            "id": batch.id, "object": "batch", "endpoint": ENDPOINT,
            "model": batch.requests[0][1].get("model") if batch.requests else None,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.file_ids.get("input"), "completion_window": "24h", "status": status,
            "output_file_id": batch.file_ids.get("output"), "error_file_id": batch.file_ids.get("error"),
            "created_at": int(batch.created), "in_progress_at": int(batch.created) if batch.polls else None,
            "expires_at": int(batch.created) + DAY, "finalizing_at": None,
            **{f"{final}_at": ended if status == final else None for final in FINAL_STATUSES},
            "cancelling_at": int(batch.cancel_at) if batch.cancel_at else None,
            "request_counts": {"total": len(batch.requests), "completed": out.get("succeeded", 0),
                               "failed": out.get("errored", 0)},
            "metadata": batch.metadata,
        }

    # Anthropic Message Batches ---------------------------------------------------------------

    def _anthropic_create(self, request: Request) -> HttpResponse:
        body = request.json()
        entries = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            raise Refused(400, "invalid_request_error", "requests: List should have at least 1 item")
        items: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            custom_id, params = entry.get("custom_id"), entry.get("params")
            if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
                raise Refused(400, "invalid_request_error", f"requests.{i}.custom_id: String should match pattern "
                                                            "'^[a-zA-Z0-9_-]{1,64}$'")
            if custom_id in seen:
                raise Refused(400, "invalid_request_error", f"Duplicate custom_id: {custom_id}")
            seen.add(custom_id)
            spec = _anthropic.PROTOCOL.reject({"x-api-key": "k", "anthropic-version": "v"}, params,
                                              isinstance(params, dict))
            if spec is not None or params.get("stream"):
                message = spec.message if spec else "stream: streaming is not supported in batches"
                raise Refused(400, "invalid_request_error", f"requests.{i}.params.{message}")
            items.append((custom_id, params))
        batch = self._new(request, "anthropic", random_id("msgbatch_01", 22), items)
        return _json(self._anthropic_wire(batch))

    def _anthropic_results(self, request: Request) -> HttpResponse:
        batch = self._batch(request)
        if not batch.ended:
            raise Refused(404, "not_found_error", f"Results for message batch {batch.id} are not available yet.")
        return HttpResponse(200, {"content-type": "application/binary"}, batch.results.get("results", b""))

    def _anthropic_wire(self, batch: Batch) -> dict[str, Any]:
        out = batch.outcome
        status = "ended" if batch.ended else "canceling" if batch.cancel_at is not None else "in_progress"
        base = self._server.base_url(batch.name, "anthropic")
        return {
            "id": batch.id, "type": "message_batch", "processing_status": status,
            "request_counts": {"processing": 0 if batch.ended else len(batch.requests),
                               "succeeded": out.get("succeeded", 0), "errored": out.get("errored", 0),
                               "canceled": out.get("canceled", 0), "expired": out.get("expired", 0)},
            "created_at": _rfc3339(batch.created), "expires_at": _rfc3339(batch.created + DAY),
            "ended_at": _rfc3339(batch.ended_at), "cancel_initiated_at": _rfc3339(batch.cancel_at),
            "archived_at": None,
            "results_url": f"{base}/v1/messages/batches/{batch.id}/results" if batch.ended else None,
        }


def _openai_status(batch: Batch) -> str:
    if batch.errors:
        return "failed"
    if batch.ended:
        return "expired" if batch.expired else "cancelled" if batch.cancel_at is not None else "completed"
    if batch.cancel_at is not None:
        return "cancelling"
    return "in_progress" if batch.polls else "validating"


def _openai_lines(data: bytes) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """The requests of an input file, and the validation errors the real service would report."""
    items: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    models: set[str] = set()
    seen: set[str] = set()
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            custom_id, body = str(entry["custom_id"]), entry["body"]
            problem = ("method must be POST" if entry.get("method") != "POST" else
                       f"url must be {ENDPOINT}" if entry.get("url") != ENDPOINT else
                       "duplicate custom_id" if custom_id in seen else
                       "stream is not supported" if body.get("stream") else None)
            models.add(str(body.get("model")))
        except (ValueError, KeyError, TypeError, AttributeError):
            problem = "the line is not a valid request"
        if problem:
            errors.append({"code": "invalid_request", "message": problem, "param": None, "line": number})
        else:
            seen.add(custom_id)
            items.append((custom_id, body))
    if len(models) > 1:
        errors.append({"code": "mixed_models", "message": "all requests must use the same model", "param": "model",
                       "line": None})
    return items, errors


def _openai_result(custom_id: str, kind: str, payload: Any) -> tuple[str, bytes]:
    line: dict[str, Any] = {"id": random_id("batch_req_", 32, HEX), "custom_id": custom_id}
    if kind == "succeeded":
        status, body = 200, json.loads(payload)  # OpenAI's answer is pretty-printed: one line here
    elif kind == "errored":
        status, body = payload
    else:
        code = "batch_expired" if kind == "expired" else "batch_cancelled"
        line.update(response=None, error={"code": code, "message": f"This request was not run: the batch {kind}."})
        return "error", (dumps(line) + "\n").encode()
    line.update(response={"status_code": status, "request_id": random_id("req_", 32, HEX), "body": body}, error=None)
    return ("output" if kind == "succeeded" else "error"), (dumps(line) + "\n").encode()


def _anthropic_result(custom_id: str, kind: str, payload: Any) -> tuple[str, bytes]:
    if kind == "succeeded":  # Anthropic's answer is compact JSON already: it goes in as it is
        return "results", b'{"custom_id":%s,"result":{"type":"succeeded","message":%s}}\n' % (
            dumps(custom_id).encode(), payload.strip())
    result: dict[str, Any] = {"type": kind}
    if kind == "errored":
        result["error"] = payload[1]
    return "results", (dumps({"custom_id": custom_id, "result": result}) + "\n").encode()



def _multipart(incoming: Incoming) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """(form fields, files as (filename, bytes)) of a multipart/form-data body."""
    match = re.search(r'boundary="?([^";]+)"?', incoming.headers.get("content-type", ""))
    if not incoming.headers.get("content-type", "").startswith("multipart/form-data") or match is None:
        raise Refused(400, "invalid_request_error", "Expected a multipart/form-data body.")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in incoming.body.split(b"--" + match.group(1).encode())[1:-1]:
        head, _, data = part.partition(b"\r\n\r\n")
        data = data[:-2] if data.endswith(b"\r\n") else data
        disposition = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is None:
            continue
        if filename is not None:
            files[name.group(1)] = (filename.group(1), data)
        else:
            fields[name.group(1)] = data.decode("utf-8", "replace")
    return fields, files


def _rfc3339(moment: float | None) -> str | None:
    if moment is None:
        return None
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
    return f"{whole}.{int(moment % 1 * 1_000_000):06d}Z"


def _json(body: Mapping[str, Any]) -> HttpResponse:
    return HttpResponse(200, {"content-type": "application/json"}, encode_body(body))


PROTOCOLS: dict[str, Protocol] = {"openai": _openai.PROTOCOL, "anthropic": _anthropic.PROTOCOL}
ROUTES: list[tuple[Protocol, str, re.Pattern[str], Handler]] = [
    (_openai.PROTOCOL, "POST", re.compile(r"/v1/files"), BatchEndpoints._upload),
    (_openai.PROTOCOL, "GET", re.compile(r"/v1/files/([^/]+)"), BatchEndpoints._file),
    (_openai.PROTOCOL, "GET", re.compile(r"/v1/files/([^/]+)/content"), BatchEndpoints._content),
    (_openai.PROTOCOL, "POST", re.compile(r"/v1/batches"), BatchEndpoints._openai_create),
    (_openai.PROTOCOL, "GET", re.compile(r"/v1/batches"), BatchEndpoints._list),
    (_openai.PROTOCOL, "GET", re.compile(r"/v1/batches/([^/]+)"), BatchEndpoints._retrieve),
    (_openai.PROTOCOL, "POST", re.compile(r"/v1/batches/([^/]+)/cancel"), BatchEndpoints._cancel),
    (_anthropic.PROTOCOL, "POST", re.compile(r"/v1/messages/batches"), BatchEndpoints._anthropic_create),
    (_anthropic.PROTOCOL, "GET", re.compile(r"/v1/messages/batches"), BatchEndpoints._list),
    (_anthropic.PROTOCOL, "GET", re.compile(r"/v1/messages/batches/([^/]+)"), BatchEndpoints._retrieve),
    (_anthropic.PROTOCOL, "POST", re.compile(r"/v1/messages/batches/([^/]+)/cancel"),
     BatchEndpoints._cancel),
    (_anthropic.PROTOCOL, "GET", re.compile(r"/v1/messages/batches/([^/]+)/results"),
     BatchEndpoints._anthropic_results),
]
