"""HTTP for providers: the only module that imports requests.

What it guarantees, and why:

* One ``requests.Session`` per process, made lazily: a session created before ``fork()``
  (Celery prefork, gunicorn) would share its sockets with the child, so a child always builds
  its own.  The pool holds ``pool_maxsize`` connections (default 128), so 64 threads sharing a
  provider never see "Connection pool is full".
* Requests go straight to the session's adapter: no cookie jar (no mutable state shared between
  threads), no redirect handling (requests would forward ``x-api-key`` and friends to another
  host; a 3xx is our error), no ``~/.netrc`` (it cannot replace the configured credentials).
  Proxies and CA bundles come from the environment as requests reads them (``HTTPS_PROXY``,
  ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, and
  ``SSL_CERT_FILE`` as well), once per session, unless ``trust_env=False``.
* Every request has a connect and a read timeout; the read timeout only bounds silence, so the
  caller's overall :class:`~failover_client.retry.Deadline` is enforced at the socket: before
  every ``recv`` of the exchange (status line, headers, chunk-size lines, body) the socket's
  timeout is cut to the time left, so nothing trickled a byte at a time can outlive it.
* What one answer may cost in memory is bounded: a plain body past ``max_response_bytes`` (by
  its Content-Length at once, or as it arrives) raises ResponseTooLargeError before it is held,
  and a compressed body (which we never ask for) is inflated here, a read at a time, so a
  "zip bomb" meets the same limit; one stream event is bounded by the framers in
  :mod:`~failover_client.streaming`.
* :func:`translate` is the single place where requests/urllib3/socket exceptions become ours,
  around sending and around reading the body alike.
* ``close()`` closes every pooled connection explicitly (urllib3 2 no longer does on clear).
* A response is read through a 64 KiB buffer, not http.client's 8 KiB: a chunked stream is
  read a line and a chunk at a time, so with the small buffer every 8 KiB of a fast stream
  cost a ``recv`` (and a ``poll``, the socket having a timeout), a cost per byte that made
  streams of large events (Azure's) dearer per event than the decoding itself.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import threading
import zlib
from typing import Any, Iterator, Mapping
from urllib.parse import unquote, urlencode, urlsplit

import requests
import urllib3.exceptions as u3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import __version__
from .errors import (
    FailoverClientError,
    InvalidArgumentError,
    InvalidRequestError,
    NetworkError,
    ProviderError,
    ProviderTimeoutError,
    ResponseDecodeError,
    ResponseTooLargeError,
    error_for_status,
    redact,
    register_secrets,
)
from .resilience import cancel
from .retry import NO_DEADLINE, Deadline, parse_retry_after
from .streaming import MAX_EVENT_BYTES, MAX_RESPONSE_BYTES

USER_AGENT = f"failover-client/{__version__}"
_MAX_ERROR_BODY = 64 * 1024
_READ_SIZE = 64 * 1024
_DRAIN_SECONDS = 1.0
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "apim-request-id", "cf-ray")


class _Budget:
    """The time one exchange may still take: its overall deadline, and the socket's own read
    timeout (the longest silence allowed).  Mutable so that draining a finished stream can
    shorten it."""

    __slots__ = ("deadline", "read_timeout")

    def __init__(self, deadline: Deadline, read_timeout: float) -> None:
        self.deadline = deadline
        self.read_timeout = read_timeout


# The budget of the exchange this thread is sending: the response made for it (inside
# urllib3, in the same thread) reads its socket under it from the status line on.
_exchange = threading.local()


class _DeadlineSocketIO(socket.SocketIO):
    """A socket reader that, before every ``recv``, cuts the socket's timeout to what is left
    of the overall deadline: the one place the deadline bounds every byte of an exchange."""

    def __init__(self, sock: socket.socket, budget: _Budget) -> None:
        super().__init__(sock, "rb")
        sock._io_refs += 1  # type: ignore[attr-defined]  # as socket.makefile counts its readers
        self._budget = budget

    def readinto(self, b: Any) -> int | None:
        budget = self._budget
        if budget.deadline.at is not None:
            left = budget.deadline.remaining()
            if left <= budget.read_timeout:  # type: ignore[operator]  # far from it, the timeout stands
                if left <= 0:  # type: ignore[operator]
                    raise TimeoutError("the deadline passed")
                self._sock.settimeout(left)  # type: ignore[attr-defined]
        return super().readinto(b)


class _WideBufferResponse(http.client.HTTPResponse):
    """http.client's response, reading its socket through a ``_READ_SIZE`` buffer, under the
    deadline of the exchange that made it."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp.close()  # nothing read yet; closing it keeps the socket's reference count right
        budget = getattr(_exchange, "budget", None)
        if budget is None:
            self.fp = sock.makefile("rb", buffering=_READ_SIZE)  # type: ignore[assignment]
        else:
            self.fp = io.BufferedReader(_DeadlineSocketIO(sock, budget), _READ_SIZE)  # type: ignore[assignment]


class _Connection(cancel.TrackedConnection, HTTPConnection):
    response_class = _WideBufferResponse


class _TLSConnection(cancel.TrackedConnection, HTTPSConnection):
    response_class = _WideBufferResponse


class _Pool(cancel.TrackingPool, HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(cancel.TrackingPool, HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


# What Transport mounts in its PoolManager: hedged attempts can be cut off (cancel), and bodies
# are read through the wide buffer.
_POOL_CLASSES = {"http": _Pool, "https": _TLSPool}


def translate(exc: BaseException, **fields: Any) -> ProviderError:
    """Map a requests, urllib3 or socket exception to ours.  Order matters: a connect timeout is
    also a ConnectionError, an SSL error is a ConnectionError, and a read timeout in the middle
    of a body arrives as a ConnectionError wrapping urllib3's ReadTimeoutError."""
    if isinstance(exc, ProviderError):
        return exc
    reason: BaseException = exc
    while isinstance(reason, (requests.ConnectionError, u3.MaxRetryError)) and reason.args:
        inner = getattr(reason, "reason", None) or reason.args[0]
        if not isinstance(inner, BaseException):
            break
        reason = inner
    text = redact(f"{type(reason).__name__}: {reason}")
    if isinstance(reason, (u3.NewConnectionError, ConnectionRefusedError)):  # before ConnectTimeoutError,
        return NetworkError(f"could not connect ({text})", **fields)  # which urllib3 2 makes its base class
    if isinstance(exc, requests.ConnectTimeout) or isinstance(reason, u3.ConnectTimeoutError):
        return ProviderTimeoutError(f"connect timed out ({text})", **fields)
    if isinstance(reason, (requests.ReadTimeout, u3.ReadTimeoutError, socket.timeout)):
        return ProviderTimeoutError(f"read timed out ({text})", **fields)
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(reason, u3.SSLError):
        return NetworkError(f"TLS failure ({text})", **fields)
    if isinstance(reason, (requests.exceptions.ContentDecodingError, u3.DecodeError)):
        return ResponseDecodeError(f"body could not be decoded ({text})", **fields)
    if isinstance(reason, (requests.exceptions.ChunkedEncodingError, u3.ProtocolError, u3.IncompleteRead)):
        return NetworkError(f"connection broken while reading ({text})", **fields)
    if isinstance(reason, (requests.RequestException, u3.HTTPError, OSError)):
        return NetworkError(text, **fields)
    raise exc  # not a transport failure: a bug, let it surface unchanged


class _Adapter(HTTPAdapter):
    """requests' adapter whose proxy managers build our pools too, so a proxied exchange is
    bounded by the deadline and can be cancelled like a direct one."""

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def _header_value(name: str, value: str, provider: str) -> str:
    """A configured header (the credentials among them) as it can be sent: the whitespace around
    it dropped (the newline a key read from a file or secret mount ends with), and anything
    HTTP cannot carry refused by name, never showing the value."""
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{provider}: header {name!r} must be a string, not {type(value).__name__}")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise InvalidArgumentError(f"{provider}: header {name!r} (the API key or another credential) holds a "
                                   "control character")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{provider}: header {name!r} (the API key or another credential) holds a "
                                   "character outside latin-1, which HTTP headers cannot carry") from None
    return value


def _check_path(path: str, provider: str) -> None:
    """Refuse a path with a ``.`` or ``..`` segment (a model or deployment named so, even
    percent-encoded): a normalising server or proxy would send it to another endpoint."""
    for segment in path.split("/"):
        if unquote(segment) in (".", ".."):
            raise InvalidArgumentError(
                f"{provider}: the request path would hold the segment {segment!r} (from the model or "
                "deployment name), which reaches another endpoint; refused before sending")


def _header_error_code(headers: Mapping[str, str]) -> str | None:
    """The error code a header names: AWS sends ``x-amzn-errortype: ThrottlingException:http://...``
    (the type is what precedes the first ``:``, after any ``namespace#``)."""
    value = headers.get("x-amzn-errortype")
    return value.split(":", 1)[0].rpartition("#")[2] or None if value else None


class HttpResponse:
    """A 2xx response whose body is read under the deadline, within the size limit, with
    exceptions translated."""

    __slots__ = ("_resp", "_budget", "_fields", "_chunks", "status", "headers", "max_response_bytes",
                 "max_event_bytes")

    def __init__(self, resp: requests.Response, budget: _Budget, fields: dict[str, Any],
                 max_response_bytes: int = MAX_RESPONSE_BYTES, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._resp = resp
        self._budget = budget
        self._fields = fields
        self._chunks: Iterator[bytes] | None = None
        self.status = resp.status_code
        self.headers = resp.headers
        self.max_response_bytes = max_response_bytes
        self.max_event_bytes = max_event_bytes

    def read(self) -> bytes:
        """The whole body, refused with ResponseTooLargeError as soon as it is known to exceed
        ``max_response_bytes`` (by its Content-Length, or as it arrives)."""
        limit = self.max_response_bytes
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit and "content-encoding" not in self.headers:
            self.close()
            raise self._too_large(f"the body is {declared} bytes")
        chunks = []
        size = 0
        for chunk in self.iter_bytes():
            size += len(chunk)
            if size > limit:
                self.close()
                raise self._too_large("the body")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(f"{what} exceeds the limit of {self.max_response_bytes} bytes "
                                     "(max_response_bytes)", status=self.status, **self._fields)

    def iter_bytes(self) -> Iterator[bytes]:
        """The body as it arrives, chunk by chunk (one iterator per response)."""
        if self._chunks is None:
            self._chunks = self._read_chunks()
        return self._chunks

    def _read_chunks(self) -> Iterator[bytes]:
        raw = self._resp.raw
        finished = False
        try:
            if raw.chunked and raw.supports_chunked_reads():
                chunks = raw.stream(_READ_SIZE, decode_content=False)
            else:
                chunks = iter(lambda: raw.read1(_READ_SIZE, decode_content=False), b"")
            encoding = self.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                chunks = self._inflate(chunks, encoding)
            for chunk in chunks:
                if chunk:
                    yield chunk
            finished = True
        except FailoverClientError:
            raise
        except Exception as exc:
            if self._budget.deadline.expired():
                raise ProviderTimeoutError("deadline exceeded while reading the response", **self._fields) from None
            raise translate(exc, **self._fields) from None
        finally:
            if finished:
                raw.release_conn()  # read to the end: the connection goes back to the pool
            else:
                self._resp.close()  # abandoned or broken mid-body: the socket cannot be reused

    def _inflate(self, chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
        """A gzip or deflate body inflated a read at a time, at most ``_READ_SIZE`` bytes per
        step, and no more than ``max_response_bytes`` in all: a small body that expands to
        gigabytes is refused when the limit is crossed, not after.  We never ask for a
        compressed body, so other encodings are refused."""
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise ResponseDecodeError(f"unsupported Content-Encoding {encoding[:40]!r} (identity was asked for)",
                                      status=self.status, **self._fields)
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        limit = self.max_response_bytes
        size = 0
        for chunk in chunks:
            while chunk:
                out = inflater.decompress(chunk, _READ_SIZE)
                chunk = inflater.unconsumed_tail
                size += len(out)
                if size > limit:
                    raise self._too_large("the decompressed body")
                yield out
        yield inflater.flush()

    def json(self) -> Any:
        import json

        body = self.read()
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise ResponseDecodeError(f"response is not JSON: {redact(body[:120].decode('utf-8', 'replace'))!r}",
                                      status=self.status, body=body[:500].decode("utf-8", "replace"),
                                      **self._fields) from None

    def finish(self) -> None:
        """The protocol's last event has arrived: read what little is left of the body (the
        chunked terminator, usually already buffered), briefly, so the connection can be reused;
        give up and close it if more keeps coming."""
        left = self._budget.deadline.remaining()
        self._budget.deadline = Deadline(_DRAIN_SECONDS if left is None else min(left, _DRAIN_SECONDS))
        self._budget.read_timeout = _DRAIN_SECONDS
        drained = 0
        try:
            for chunk in self.iter_bytes():
                drained += len(chunk)
                if drained > _READ_SIZE:
                    break
        except ProviderError:
            pass
        self.close()

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()  # type: ignore[attr-defined]
        self._resp.close()


class Transport:
    """Sends requests for one provider endpoint.  Safe to share between threads and forks."""

    def __init__(
        self,
        base_url: str,
        *,
        provider: str,
        headers: Mapping[str, str] | None = None,
        secrets: tuple[str | None, ...] = (),
        connect_timeout: float = 5.0,
        read_timeout: float = 600.0,
        pool_maxsize: int = 128,
        verify: bool | str = True,
        proxies: Mapping[str, str] | None = None,
        trust_env: bool = True,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgumentError(f"base_url must be an http(s) URL, got {redact(base_url)!r}")
        if parts.query or parts.fragment:
            raise InvalidArgumentError("base_url must not carry a query or fragment (keys never go in URLs)")
        register_secrets(*(secret.strip() for secret in secrets if secret), parts.password,
                         *(urlsplit(url).password for url in (proxies or {}).values()))
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Content-Type": "application/json",
                         **{name: _header_value(name, value, provider) for name, value in (headers or {}).items()}}
        self._secrets = secrets
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._pool_maxsize = pool_maxsize
        self._verify = verify
        self._proxies = dict(proxies or {})
        self._trust_env = trust_env
        self.max_response_bytes = max_response_bytes
        self.max_event_bytes = max_event_bytes
        self._given_session = session
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._proxies_and_verify: tuple[dict[str, str], bool | str] = ({}, verify)
        self._pid = 0

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r}, provider={self.provider!r})"

    def session(self) -> requests.Session:
        """This process's session, created on first use (and anew in a forked child)."""
        session = self._session
        if session is not None and self._pid == os.getpid():
            return session
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                self._proxies_and_verify = self._environment()
                self._session = self._given_session or self._new_session()
                self._pid = os.getpid()
            return self._session

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = _Adapter(pool_connections=4, pool_maxsize=self._pool_maxsize, max_retries=0)
        adapter.poolmanager.pool_classes_by_scheme = _POOL_CLASSES
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _environment(self) -> tuple[dict[str, str], bool | str]:
        """(proxies, verify) for this endpoint: the given ones, completed from the environment
        as requests does unless ``trust_env`` is off.  ``NO_PROXY`` (or a ``no_proxy`` entry of
        ``proxies``) matching the host bypasses every proxy, given ones included; a CA bundle
        named by ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` or ``SSL_CERT_FILE`` replaces the
        default one (an explicit ``verify`` wins).  Read once per session, when it is made."""
        from requests.utils import get_environ_proxies, should_bypass_proxies

        proxies = dict(self._proxies)
        no_proxy = proxies.pop("no_proxy", None)
        if not self._trust_env:
            return proxies, self._verify
        if should_bypass_proxies(self.base_url, no_proxy=no_proxy):
            return {}, self._verify
        for scheme, url in get_environ_proxies(self.base_url, no_proxy=no_proxy).items():
            proxies.setdefault(scheme, url)
        register_secrets(*(urlsplit(url).password for url in proxies.values()))
        verify = self._verify
        if verify is True:
            verify = next((os.environ[name] for name in _CA_BUNDLE_VARIABLES if os.environ.get(name)), True)
        return proxies, verify

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: Deadline = NO_DEADLINE,
        model: str | None = None,
    ) -> HttpResponse:
        """Send one request; return the 2xx response with its body unread, or raise our error."""
        fields: dict[str, Any] = {"provider": self.provider, "model": model}
        _check_path(path, self.provider)
        if deadline.expired():
            raise ProviderTimeoutError("deadline exceeded before the request was sent", **fields)
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        prepared.headers = CaseInsensitiveDict(self._headers)
        if headers:
            prepared.headers.update(headers)
            bearer = headers.get("Authorization", "")
            if bearer.startswith("Bearer "):  # a token fetched per request (Azure AD, Vertex)
                register_secrets(bearer[7:])
        prepared.body = body
        prepared.headers["Content-Length"] = str(len(body)) if body is not None else "0"
        prepared.hooks = {"response": []}
        read_timeout = deadline.cap(self.read_timeout)
        timeout = (deadline.cap(self.connect_timeout), read_timeout)
        budget = _Budget(deadline, read_timeout)
        try:
            adapter = self.session().get_adapter(prepared.url)
            proxies, verify = self._proxies_and_verify
            _exchange.budget = budget
            resp = adapter.send(prepared, stream=True, timeout=timeout, verify=verify, proxies=proxies, cert=None)
        except Exception as exc:
            if deadline.expired():
                raise ProviderTimeoutError("deadline exceeded waiting for the response", **fields) from None
            raise translate(exc, **fields) from None
        finally:
            _exchange.budget = None
        if resp.status_code >= 300:
            raise self._error(resp, budget, fields)
        return HttpResponse(resp, budget, fields, self.max_response_bytes, self.max_event_bytes)

    def _error(self, resp: requests.Response, budget: _Budget, fields: dict[str, Any]) -> ProviderError:
        status = resp.status_code
        headers = resp.headers
        request_id = next((headers[h] for h in _REQUEST_ID_HEADERS if h in headers), None)
        if 300 <= status < 400:
            resp.close()
            return InvalidRequestError(
                f"unexpected redirect to {redact(headers.get('location', '?'))!r}; redirects are not followed "
                "so credentials cannot leak to another host", status=status, request_id=request_id, **fields)
        try:
            chunks = []
            size = 0
            for chunk in HttpResponse(resp, budget, fields, self.max_response_bytes).iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= _MAX_ERROR_BODY:
                    break
            text = b"".join(chunks).decode("utf-8", "replace")
        except ProviderError:
            text = ""
        finally:
            resp.close()
        exc = error_for_status(status, redact(text, self._secrets), request_id=request_id,
                               retry_after=parse_retry_after(headers), code=_header_error_code(headers), **fields)
        should_retry = headers.get("x-should-retry")
        if should_retry in ("true", "false"):
            exc.retryable = should_retry == "true"
        return exc

    def close(self) -> None:
        """Close every pooled connection of this process's session."""
        with self._lock:
            session, self._session = self._session, None
        if session is None or session is self._given_session:
            return
        for adapter in session.adapters.values():
            manager = getattr(adapter, "poolmanager", None)
            if manager is not None:
                for pool in list(manager.pools._container.values()):
                    pool.close()
        session.close()
