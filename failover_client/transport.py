"""HTTP for providers: the only module that imports requests.

What it guarantees, and why:

* One ``requests.Session`` per process, made lazily: a session created before ``fork()``
  (Celery prefork, gunicorn) would share its sockets with the child, so a child always builds
  its own.  The pool holds ``pool_maxsize`` connections (default 128), so 64 threads sharing a
  provider never see "Connection pool is full".
* Requests go straight to the session's adapter: no cookie jar (no mutable state shared between
  threads), no redirect handling (requests would forward ``x-api-key`` and friends to another
  host; a 3xx is our error), no environment lookups (``~/.netrc`` and proxy variables can
  neither replace nor reroute the configured credentials).
* Every request has a connect and a read timeout; the read timeout only bounds silence, so the
  caller's overall :class:`~failover_client.retry.Deadline` is also enforced between body reads,
  shrinking the socket timeout as it nears — a trickling body cannot outlive it.
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
import os
import socket
import threading
from typing import Any, Iterator, Mapping
from urllib.parse import urlencode, urlsplit

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
    error_for_status,
    redact,
)
from .resilience import cancel
from .retry import NO_DEADLINE, Deadline, parse_retry_after

USER_AGENT = f"failover-client/{__version__}"
_MAX_ERROR_BODY = 64 * 1024
_READ_SIZE = 64 * 1024
_DRAIN_SECONDS = 1.0
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "apim-request-id", "cf-ray")


class _WideBufferResponse(http.client.HTTPResponse):
    """http.client's response, reading its socket through a ``_READ_SIZE`` buffer."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp.close()  # nothing read yet; closing it keeps the socket's reference count right
        self.fp = sock.makefile("rb", buffering=_READ_SIZE)  # type: ignore[assignment]


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


def _header_error_code(headers: Mapping[str, str]) -> str | None:
    """The error code a header names: AWS sends ``x-amzn-errortype: ThrottlingException:http://...``
    (the type is what precedes the first ``:``, after any ``namespace#``)."""
    value = headers.get("x-amzn-errortype")
    return value.split(":", 1)[0].rpartition("#")[2] or None if value else None


class HttpResponse:
    """A 2xx response whose body is read under the deadline and with exceptions translated."""

    __slots__ = ("_resp", "_deadline", "_read_timeout", "_fields", "_chunks", "status", "headers")

    def __init__(self, resp: requests.Response, deadline: Deadline, read_timeout: float,
                 fields: dict[str, Any]) -> None:
        self._resp = resp
        self._deadline = deadline
        self._read_timeout = read_timeout
        self._fields = fields
        self._chunks: Iterator[bytes] | None = None
        self.status = resp.status_code
        self.headers = resp.headers

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())

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
                chunks = raw.stream(_READ_SIZE, decode_content=True)
            else:
                chunks = iter(lambda: raw.read1(_READ_SIZE, decode_content=True), b"")
            while True:
                if self._deadline.at is not None:
                    self._bound_next_read()
                chunk = next(chunks, None)
                if chunk is None:
                    finished = True
                    return
                if chunk:
                    yield chunk
        except FailoverClientError:
            raise
        except Exception as exc:
            if self._deadline.expired():
                raise ProviderTimeoutError("deadline exceeded while reading the response", **self._fields) from None
            raise translate(exc, **self._fields) from None
        finally:
            if finished:
                raw.release_conn()  # read to the end: the connection goes back to the pool
            else:
                self._resp.close()  # abandoned or broken mid-body: the socket cannot be reused

    def _bound_next_read(self) -> None:
        left = self._deadline.remaining()
        if left is not None and left <= 0:
            raise ProviderTimeoutError("deadline exceeded while reading the response", **self._fields)
        if left is not None and left < self._read_timeout:
            sock = getattr(getattr(self._resp.raw, "_connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)

    def json(self) -> Any:
        import json

        body = self.read()
        try:
            return json.loads(body)
        except ValueError:
            raise ResponseDecodeError(f"response is not JSON: {redact(body[:120].decode('utf-8', 'replace'))!r}",
                                      status=self.status, body=body[:500].decode("utf-8", "replace"),
                                      **self._fields) from None

    def finish(self) -> None:
        """The protocol's last event has arrived: read what little is left of the body (the
        chunked terminator, usually already buffered), briefly, so the connection can be reused;
        give up and close it if more keeps coming."""
        left = self._deadline.remaining()
        self._deadline = Deadline(_DRAIN_SECONDS if left is None else min(left, _DRAIN_SECONDS))
        self._read_timeout = _DRAIN_SECONDS
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
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgumentError(f"base_url must be an http(s) URL, got {redact(base_url)!r}")
        if parts.query or parts.fragment:
            raise InvalidArgumentError("base_url must not carry a query or fragment (keys never go in URLs)")
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json",
                         "Content-Type": "application/json", **(headers or {})}
        self._secrets = secrets
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._pool_maxsize = pool_maxsize
        self._verify = verify
        self._proxies = dict(proxies or {})
        self._given_session = session
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
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
                self._session = self._given_session or self._new_session()
                self._pid = os.getpid()
            return self._session

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_maxsize, max_retries=0)
        adapter.poolmanager.pool_classes_by_scheme = _POOL_CLASSES
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

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
        if deadline.expired():
            raise ProviderTimeoutError("deadline exceeded before the request was sent", **fields)
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        prepared.headers = CaseInsensitiveDict(self._headers)
        if headers:
            prepared.headers.update(headers)
        prepared.body = body
        prepared.headers["Content-Length"] = str(len(body)) if body is not None else "0"
        prepared.hooks = {"response": []}
        read_timeout = deadline.cap(self.read_timeout)
        timeout = (deadline.cap(self.connect_timeout), read_timeout)
        try:
            adapter = self.session().get_adapter(prepared.url)
            resp = adapter.send(prepared, stream=True, timeout=timeout, verify=self._verify,
                                proxies=self._proxies, cert=None)
        except Exception as exc:
            if deadline.expired():
                raise ProviderTimeoutError("deadline exceeded waiting for the response", **fields) from None
            raise translate(exc, **fields) from None
        if resp.status_code >= 300:
            raise self._error(resp, deadline, read_timeout, fields)
        return HttpResponse(resp, deadline, read_timeout, fields)

    def _error(self, resp: requests.Response, deadline: Deadline, read_timeout: float,
               fields: dict[str, Any]) -> ProviderError:
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
            for chunk in HttpResponse(resp, deadline, read_timeout, fields).iter_bytes():
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
