"""The Provider contract, and the shared machinery of providers that speak HTTP.

``Provider`` is what every provider class and the FailoverClient fulfil.  ``HttpProvider``
holds what every wire protocol needs the same way — the API key (from the constructor or the
customary environment variable, resolved at first use so a missing key fails with a message
naming the variable), one :class:`~failover_client.transport.Transport`, the deadline for each
call — and leaves to each protocol module only the mapping of requests and answers.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator, Mapping

from .errors import FailoverClientError, MissingCredentialsError, NotSupportedError, ResponseDecodeError, redact
from .models import deprecation
from .retry import Deadline
from .streaming import StreamDecodeError
from .types import (
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamChunk,
    TokenCountRequest,
    TokenCountResult,
    ToolUseBlock,
)

if TYPE_CHECKING:
    import requests

    from .transport import HttpResponse, Transport


class Provider:
    """A source of completions.  Unsupported operations raise NotSupportedError."""

    name: str = "provider"
    supports_tools = True
    supports_vision = True
    supports_streaming = True
    supports_token_counting = False
    supports_batch = False
    supports_embeddings = False

    def complete(self, request: CompletionRequest, *, timeout: float | None = None) -> CompletionResponse:
        """One answer.  ``timeout`` bounds the whole call, reading included."""
        raise NotImplementedError

    def complete_stream(self, request: CompletionRequest, *,
                        timeout: float | None = None) -> Generator[StreamChunk, None, None]:
        """The answer as it is generated: a generator of StreamChunk."""
        raise NotImplementedError

    def _unsupported(self, operation: str) -> NotSupportedError:
        return NotSupportedError(f"{operation} is not supported by {type(self).__name__}", provider=self.name)

    def count_tokens(self, request: TokenCountRequest | CompletionRequest, *,
                     timeout: float | None = None) -> TokenCountResult:
        """Input tokens the prompt would use (see ``supports_token_counting``)."""
        raise self._unsupported("count_tokens")

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """One vector per input (see ``supports_embeddings``)."""
        raise self._unsupported("embed")

    def create_batch(self, requests: Any) -> Any:
        raise self._unsupported("create_batch")

    def get_batch(self, batch_id: str) -> Any:
        raise self._unsupported("get_batch")

    def get_batch_results(self, batch_id: str) -> Any:
        raise self._unsupported("get_batch_results")

    def cancel_batch(self, batch_id: str) -> Any:
        raise self._unsupported("cancel_batch")

    def list_batches(self) -> Any:
        raise self._unsupported("list_batches")

    def close(self) -> None:
        """Release connections.  Safe to call more than once."""

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def tool_arguments(name: str | None, arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as a dict.  Chat-completion style protocols send a JSON string
    (which the model may have got wrong: a clear ResponseDecodeError then), others an object."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise ResponseDecodeError(
                f"tool call {name!r} has arguments that are not JSON: {arguments[:80]!r}") from None
    return arguments or {}


def tool_use_from_function_call(call: Mapping[str, Any]) -> ToolUseBlock:
    """``{"id", "function": {"name", "arguments"}}`` (OpenAI and Cohere v2) as a ToolUseBlock."""
    function = call["function"]
    name = function.get("name") or ""
    return ToolUseBlock(call.get("id") or "", name, tool_arguments(name, function.get("arguments")))


@dataclass(frozen=True)
class WireFormat:
    """One protocol's mapping, as plain functions: our request to its body, its body to our
    response, its stream (as ``frames`` yields them from the raw bytes) to our chunks."""

    request: Callable[[CompletionRequest, bool], dict[str, Any]]
    response: Callable[[Any, str], CompletionResponse]
    stream: Callable[[Iterator[Any], str, str], Iterator[StreamChunk]]
    frames: Callable[[Iterator[bytes]], Iterator[Any]]


class HttpProvider(Provider):
    """A provider reached over HTTP with one API key.  Subclasses set ``wire``, ``chat_path``,
    the key's environment variable and the default base URL, and implement ``_auth_headers``;
    a protocol whose URL depends on the request (the model in the path) overrides ``_path``."""

    api_key_env: str = ""
    default_base_url: str = ""
    chat_path: str = ""
    wire: WireFormat

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 600.0,
        pool_maxsize: int = 128,
        verify: bool | str = True,
        proxies: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name or self.name
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self._api_key = api_key
        self._extra_headers = dict(headers or {})
        self._transport_options: dict[str, Any] = dict(
            connect_timeout=connect_timeout, read_timeout=read_timeout, pool_maxsize=pool_maxsize,
            verify=verify, proxies=proxies, session=session)
        self._transport_lock = threading.Lock()
        self._transport: Transport | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={redact(self.base_url)!r})"

    def api_key(self) -> str:
        key = self._api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)
        if not key:
            where = f" or set {self.api_key_env}" if self.api_key_env else ""
            raise MissingCredentialsError(f"no API key for {self.name}: pass api_key={where}", provider=self.name)
        return key

    def transport(self) -> Transport:
        transport = self._transport
        if transport is None:
            from .transport import Transport

            with self._transport_lock:
                if self._transport is None:
                    auth_headers, secrets = self._credentials()
                    self._transport = Transport(
                        self.base_url, provider=self.name, headers={**auth_headers, **self._extra_headers},
                        secrets=secrets, **self._transport_options)
                transport = self._transport
        return transport

    def close(self) -> None:
        with self._transport_lock:
            transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    # --- what a wire protocol fills in --------------------------------------------------

    def _credentials(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """(headers that authenticate every request, secrets to redact from error text), resolved
        once, at first use.  A protocol with other credentials than one API key overrides this."""
        key = self.api_key()
        return self._auth_headers(key), (key,)

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    def _request_headers(self, path: str, body: bytes, stream: bool) -> Mapping[str, str] | None:
        """Headers made for one request: a stream's Accept headers here; a protocol that signs
        every request (AWS SigV4: the signature covers the time, path and body) adds them."""
        return self._stream_headers if stream else None

    def _path(self, request: CompletionRequest, stream: bool) -> str:
        return self.chat_path

    def _params(self, request: CompletionRequest, stream: bool) -> Mapping[str, str] | None:
        """Query parameters of one call (Azure's ``api-version``); none by default."""
        return None

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        return self.wire.request(request, stream)

    def _parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        return self.wire.response(data, self.name)

    def _parse_stream(self, response: HttpResponse, request: CompletionRequest) -> Iterator[StreamChunk]:
        return self.wire.stream(self.wire.frames(response.iter_bytes()), self.name, request.model)

    # --- the calls ------------------------------------------------------------------------

    def _send(self, request: CompletionRequest, stream: bool, deadline: Deadline) -> HttpResponse:
        request.validate()
        deprecation.check(request.model, type(self).name)
        body = self._body(request, stream)
        if request.extra:
            body.update(request.extra)
        transport = self.transport()
        path, payload = self._path(request, stream), dumps(body)
        return transport.request("POST", path, body=payload, params=self._params(request, stream),
                                 headers=self._request_headers(path, payload, stream),
                                 deadline=deadline, model=request.model)

    _stream_headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}

    def complete(self, request: CompletionRequest, *, timeout: float | None = None) -> CompletionResponse:
        response = self._send(request, False, Deadline(timeout))
        data = response.json()
        try:
            return self._parse(data, request)
        except _MALFORMED as exc:
            raise self._malformed(exc, request) from None

    def complete_stream(self, request: CompletionRequest, *,
                        timeout: float | None = None) -> Generator[StreamChunk, None, None]:
        response = self._send(request, True, Deadline(timeout))
        completed = False
        try:
            yield from self._parse_stream(response, request)
            completed = True
        except FailoverClientError:
            raise
        except _MALFORMED as exc:
            raise self._malformed(exc, request) from None
        finally:
            if completed:
                response.finish()  # the terminal event arrived: keep the connection for reuse
            else:
                response.close()

    def _malformed(self, exc: Exception, request: CompletionRequest) -> ResponseDecodeError:
        """A body that parsed but does not have the protocol's shape (or an event that is not JSON)."""
        detail = f"{type(exc).__name__}: {exc}"
        return ResponseDecodeError(f"unexpected response shape from {self.name} ({redact(detail)[:200]})",
                                   provider=self.name, model=request.model)


# What hand-written wire mapping raises on a body that is not what the protocol promises.
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, StreamDecodeError)
