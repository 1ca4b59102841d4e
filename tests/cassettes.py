"""Read the shared cassette corpus (real recorded provider HTTP exchanges) and replay it.

The corpus lives outside the repository, at ``../shared/corpus`` relative to the repo root, or
wherever ``FAILOVER_CORPUS`` points; it is never copied in.  Its README describes the formats;
:func:`load_cassette` reads every one of them into a flat list of :class:`Interaction`:

* F-VCR   vcrpy ``interactions:`` (``body: {string: str | !!binary}``, gzip bodies with
          ``Content-Encoding: gzip`` are gunzipped),
* F-PAI   the same with ``parsed_body:`` mappings (re-serialised with ``json.dumps``),
* F-OTEL  the same with pretty-printed JSON bodies and scalar header values,
* F-RUBY  Ruby VCR ``http_interactions:`` with its local ``!binary`` tag,
* F-LCGZ  gzipped langchain YAML with parallel ``requests:`` / ``responses:`` lists.

:class:`ReplayServer` serves a list of interactions over real HTTP on 127.0.0.1, in order, and
records what the client sent, so a provider is exercised through its whole HTTP stack.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = [
    "CORPUS_ENV",
    "DEFAULT_CHUNK_SIZES",
    "STREAMING_CONTENT_TYPES",
    "Interaction",
    "RecordedRequest",
    "ReplayServer",
    "cassette_id",
    "corpus_dir",
    "detect_format",
    "list_cassettes",
    "load_cassette",
    "split_chunks",
]

CORPUS_ENV = "FAILOVER_CORPUS"

# Content types whose bodies a client decodes incrementally: ReplayServer sends them chunked.
STREAMING_CONTENT_TYPES = (
    "text/event-stream",
    "application/x-ndjson",
    "application/stream+json",
    "application/jsonl",
    "application/vnd.amazon.eventstream",
)

_GZIP_MAGIC = b"\x1f\x8b"


def corpus_dir() -> Path:
    """The corpus root: ``$FAILOVER_CORPUS`` if set, else ``<repo>/../shared/corpus``."""
    override = os.environ.get(CORPUS_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "shared" / "corpus"


def list_cassettes(provider: str) -> list[Path]:
    """Every cassette file under ``<corpus>/<provider>/``, sorted by name (empty if absent)."""
    root = corpus_dir() / provider
    if not root.is_dir():
        return []
    suffixes = (".yaml", ".yml", ".yaml.gz", ".yml.gz")
    return sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(suffixes))


def cassette_id(path: Path) -> str:
    """``<provider>/<file name>``: the name used in MANIFEST.md and in test ids."""
    return f"{path.parent.name}/{path.name}"


# --- data model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interaction:
    """One recorded request/response pair, bodies as bytes on the wire (after gunzip)."""

    method: str
    uri: str
    request_body: bytes | None
    status: int
    response_headers: dict[str, str]  # lower-case names; repeated values joined with ", "
    response_body: bytes
    request_headers: dict[str, str] = field(default_factory=dict, compare=False)
    # F-VCR / F-PAI / F-OTEL / F-RUBY / F-LCGZ, best effort: a pydantic-ai file without any
    # parsed_body reads as F-VCR, and F-OTEL is told apart by its placeholders.  Informational.
    format: str = field(default="", compare=False)

    @property
    def path(self) -> str:
        """The URI path without query or fragment (``/v1/chat/completions``)."""
        return urlsplit(self.uri).path

    @property
    def query(self) -> str:
        return urlsplit(self.uri).query

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def request_json(self) -> Any:
        """The request body as JSON, or None when there is none or it is not JSON."""
        if not self.request_body:
            return None
        try:
            return json.loads(self.request_body)
        except ValueError:
            return None

    def response_json(self) -> Any:
        return json.loads(self.response_body)

    @property
    def content_type(self) -> str:
        """The recorded media type (lower-case, without parameters), or one inferred from the
        URI and body when the header was dropped or scrubbed (``headers: {}``, ``**REDACTED**``,
        crewAI's ``*-XXX`` tokens)."""
        value = self.response_headers.get("content-type", "")
        media = value.split(";", 1)[0].strip().lower()
        if "/" in media and "redacted" not in media and not media.endswith("-xxx"):
            return media
        return _sniff_content_type(self.path, self.response_body)

    @property
    def is_streaming(self) -> bool:
        return self.content_type in STREAMING_CONTENT_TYPES


@dataclass(frozen=True)
class CassetteCase:
    """One recorded interaction to replay, named for pytest ids as ``<cassette>#<index>``; each
    corpus test module subclasses it with what its protocol needs to know."""

    cassette: str
    index: int
    interaction: Interaction = field(repr=False)

    @property
    def id(self) -> str:
        return f"{self.cassette}#{self.index}"


def _sniff_content_type(path: str, body: bytes) -> str:
    if path.endswith(("/converse-stream", "/invoke-with-response-stream")) and not body.lstrip().startswith(b"{"):
        return "application/vnd.amazon.eventstream"
    head = body.lstrip()[:64]
    if head.startswith((b"data:", b"event:", b":", b"id:")):
        return "text/event-stream"
    if head.startswith((b"{", b"[")):
        try:
            json.loads(body)
            return "application/json"
        except ValueError:
            lines = [line for line in body.splitlines() if line.strip()]
            try:
                for line in lines:
                    json.loads(line)
                return "application/x-ndjson"
            except ValueError:
                return "application/json"
    return "application/octet-stream"


# --- YAML ------------------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """(C)SafeLoader plus Ruby's local ``!binary`` tag (base64, one ``!``)."""


def _ruby_binary(loader: Any, node: yaml.Node) -> bytes:
    return base64.b64decode(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("!binary", _ruby_binary)


def _read_yaml(path: Path) -> Any:
    raw = path.read_bytes()
    if path.name.endswith(".gz") or raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return yaml.load(raw.decode("utf-8"), Loader=_Loader)


def detect_format(data: Any) -> str:
    """The README's format code for a loaded cassette document."""
    if not isinstance(data, dict):
        raise ValueError(f"not a cassette: top level is {type(data).__name__}")
    if "http_interactions" in data:
        return "F-RUBY"
    if "requests" in data and "responses" in data:
        return "F-LCGZ"
    if "interactions" in data:
        for item in data["interactions"] or ():
            for side in ("request", "response"):
                if "parsed_body" in (item.get(side) or {}):
                    return "F-PAI"
        return "F-VCR"  # F-OTEL is F-VCR on disk; see _is_otel
    raise ValueError(f"unknown cassette layout, keys: {sorted(data)}")


def _is_otel(interactions: Sequence[dict[str, Any]]) -> bool:
    """OTel's serializer leaves scalar header values and its ``test_*`` placeholders."""
    for item in interactions:
        for side in ("request", "response"):
            for name, value in ((item.get(side) or {}).get("headers") or {}).items():
                if isinstance(value, str) and value.startswith("test_"):
                    return True
                if name.lower() == "authorization" and value in (["Bearer test_openai_api_key"],
                                                                   ["Bearer test_aws_authorization"]):
                    return True
    return False


def load_cassette(path: str | os.PathLike[str]) -> list[Interaction]:
    """Every interaction of one cassette file, in recorded order."""
    path = Path(path)
    data = _read_yaml(path)
    fmt = detect_format(data)
    if fmt == "F-RUBY":
        pairs = [(i["request"], i["response"]) for i in data["http_interactions"] or ()]
    elif fmt == "F-LCGZ":
        requests, responses = data["requests"] or [], data["responses"] or []
        if len(requests) != len(responses):
            raise ValueError(f"{path.name}: {len(requests)} requests but {len(responses)} responses")
        pairs = list(zip(requests, responses, strict=True))
    else:
        items = data["interactions"] or []
        pairs = [(i["request"], i["response"]) for i in items]
        if fmt == "F-VCR" and _is_otel(items):
            fmt = "F-OTEL"
    return [_interaction(req, resp, fmt) for req, resp in pairs]


def _headers(raw: Any) -> dict[str, str]:
    """Lower-case names; list values joined with ", "; bytes decoded (botocore sends bytes)."""
    out: dict[str, str] = {}
    for name, value in (raw or {}).items():
        values = value if isinstance(value, list) else [value]
        text = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in values if v is not None]
        key = str(name).lower()
        out[key] = ", ".join([out[key], *text]) if key in out else ", ".join(text)
    return out


def _body_bytes(side: dict[str, Any]) -> bytes | None:
    """A request/response body as bytes: ``parsed_body`` re-serialised as pydantic-ai replays it,
    ``body`` as a str/bytes or a ``{string: ...}`` / Ruby ``{encoding, string}`` mapping."""
    if "parsed_body" in side:
        return json.dumps(side["parsed_body"]).encode("utf-8")
    body = side.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    return str(body).encode("utf-8")


def _decode_content(body: bytes, headers: dict[str, str]) -> bytes:
    """Undo a Content-Encoding that is still on the recorded bytes; drop stale framing headers."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip") and body[:2] == _GZIP_MAGIC:
        body = gzip.decompress(body)
        del headers["content-encoding"]
    elif encoding == "deflate" and body:
        try:
            body = zlib.decompress(body)
        except zlib.error:
            body = zlib.decompress(body, -zlib.MAX_WBITS)
        del headers["content-encoding"]
    elif body[:2] == _GZIP_MAGIC and not encoding:
        pass  # a gzip *payload* (e.g. a downloaded file) without Content-Encoding stays as it is
    elif encoding in ("gzip", "x-gzip", "br", "deflate", "zstd"):
        # The recorder already decoded the body (decode_compressed_response, parsed_body):
        # the header is stale and would make a client try to decode it again.
        del headers["content-encoding"]
    length = headers.get("content-length")
    if length is not None and length.strip() != str(len(body)):
        del headers["content-length"]  # re-serialised or gunzipped bodies change length
    return body


def _status(raw: Any) -> int:
    if isinstance(raw, dict):
        raw = raw.get("code")
    return int(raw)


def _interaction(request: dict[str, Any], response: dict[str, Any], fmt: str) -> Interaction:
    headers = _headers(response.get("headers"))
    body = _decode_content(_body_bytes(response) or b"", headers)
    return Interaction(
        method=str(request.get("method") or "GET").upper(),
        uri=str(request["uri"]),
        request_body=_body_bytes(request),
        status=_status(response["status"]),
        response_headers=headers,
        response_body=body,
        request_headers=_headers(request.get("headers")),
        format=fmt,
    )


# --- replay over HTTP ------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """What the client sent to the ReplayServer."""

    method: str
    path: str  # path and query, as on the request line
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# Mixed, mostly small piece sizes: cuts land inside lines, inside multi-byte UTF-8 sequences
# and between a CR and its LF, so a decoder that assumes whole lines per read fails.
DEFAULT_CHUNK_SIZES = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987)


def split_chunks(body: bytes, sizes: Sequence[int] = DEFAULT_CHUNK_SIZES) -> Iterator[bytes]:
    """The body cut into pieces whose sizes cycle through ``sizes``."""
    pos = 0
    i = 0
    while pos < len(body):
        step = sizes[i % len(sizes)]
        yield body[pos : pos + step]
        pos += step
        i += 1


class ReplayServer:
    """Answers the i-th request with the i-th interaction (status, content type and body).

    Streaming bodies (see STREAMING_CONTENT_TYPES, or ``chunked=`` to decide per interaction) go
    out with ``Transfer-Encoding: chunked`` in many small chunks; others with a Content-Length.
    ``forward_headers`` names recorded response headers to send as well (e.g. ``retry-after``).
    A request beyond the recording gets a 599 and is listed in ``unexpected``.

        with ReplayServer(load_cassette(path)) as server:
            provider = OpenAIProvider(api_key="k", base_url=server.url + "/v1")
            ...
            assert server.requests[0].json()["model"] == "gpt-4o"
    """

    def __init__(
        self,
        interactions: Iterable[Interaction],
        *,
        chunk_sizes: Sequence[int] = DEFAULT_CHUNK_SIZES,
        chunked: Callable[[Interaction], bool] | None = None,
        forward_headers: Iterable[str] = (),
    ) -> None:
        self.interactions = list(interactions)
        self.chunk_sizes = tuple(chunk_sizes)
        self._chunked = chunked or (lambda interaction: interaction.is_streaming)
        self.forward_headers = tuple(h.lower() for h in forward_headers)
        self.requests: list[RecordedRequest] = []
        self.unexpected: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("ReplayServer is not running")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def served(self) -> int:
        return len(self.requests)

    def _next(self, request: RecordedRequest) -> Interaction | None:
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
            if index < len(self.interactions):
                return self.interactions[index]
            self.unexpected.append(request)
            return None

    def start(self) -> ReplayServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer encoding

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = RecordedRequest(
                    method=self.command, path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()}, body=body)
                interaction = server._next(recorded)
                if interaction is None:
                    self._send_plain(599, b'{"error": {"message": "ReplayServer: no recorded interaction left"}}',
                                     "application/json", {})
                    return
                extra = {name: interaction.response_headers[name] for name in server.forward_headers
                         if name in interaction.response_headers}
                # The recorded header (charset included) unless it was dropped or scrubbed.
                content_type = interaction.response_headers.get("content-type", "")
                if content_type.split(";", 1)[0].strip().lower() != interaction.content_type:
                    content_type = interaction.content_type
                if server._chunked(interaction):
                    self._send_chunked(interaction.status, interaction.response_body, content_type, extra)
                else:
                    self._send_plain(interaction.status, interaction.response_body, content_type, extra)

            def _start(self, status: int, content_type: str, extra: dict[str, str]) -> None:
                self.send_response_only(status)  # no Server/Date headers: only what was recorded
                self.send_header("Content-Type", content_type)
                for name, value in extra.items():
                    self.send_header(name, value)

            def _send_plain(self, status: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
                self._start(status, content_type, extra)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                self.wfile.flush()

            def _send_chunked(self, status: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
                self._start(status, content_type, extra)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in split_chunks(body, server.chunk_sizes):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="ReplayServer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
