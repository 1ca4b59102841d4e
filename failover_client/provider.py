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

from .errors import (
    FailoverClientError,
    InvalidArgumentError,
    MissingCredentialsError,
    NotSupportedError,
    ResponseDecodeError,
    ResponseTooLargeError,
    error_for_event,
    parse_error_body,
    redact,
    register_secrets,
)
from .retry import Deadline
from .streaming import MAX_EVENT_BYTES, MAX_RESPONSE_BYTES, StreamDecodeError, StreamTooLargeError
from .types import (
    CompletionRequest,
    CompletionResponse,
    DocumentBlock,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamChunk,
    TextBlock,
    ThinkingBlock,
    TokenCountRequest,
    TokenCountResult,
    ToolCallDelta,
    ToolUseBlock,
    Usage,
    malformed_usage_field,
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

    def can_carry(self, request: CompletionRequest) -> str | None:
        """Why this provider's protocol cannot carry ``request`` (None when it can): asked before
        sending, so that a FailoverClient passes the provider over instead of sending a request
        it must refuse.  Every request can go, unless a subclass knows otherwise."""
        return None

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
        except (ValueError, RecursionError):
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
        trust_env: bool = True,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
        session: requests.Session | None = None,
    ) -> None:
        """``trust_env``: take proxies and CA bundles from the environment as requests does
        (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``...; never
        ``~/.netrc``).  ``max_response_bytes`` bounds a plain answer's body (and what a
        compressed one expands to), ``max_event_bytes`` one event, line or frame of a stream:
        past them the answer is refused with ResponseTooLargeError."""
        self.name = name or self.name
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self._api_key = api_key
        register_secrets(api_key.strip() if isinstance(api_key, str) else None)
        self._extra_headers = dict(headers or {})
        if isinstance(verify, str) and not os.path.exists(verify):
            raise InvalidArgumentError(f"{self.name}: verify={verify!r} names no CA bundle file or directory")
        for option, limit in (("max_response_bytes", max_response_bytes), ("max_event_bytes", max_event_bytes)):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidArgumentError(f"{self.name}: {option} takes a positive number of bytes, got {limit!r}")
        self._transport_options: dict[str, Any] = dict(
            connect_timeout=connect_timeout, read_timeout=read_timeout, pool_maxsize=pool_maxsize,
            verify=verify, proxies=proxies, trust_env=trust_env, max_response_bytes=max_response_bytes,
            max_event_bytes=max_event_bytes, session=session)
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
        frames = self.wire.frames(response.iter_bytes(), response.max_event_bytes)
        return self.wire.stream(frames, self.name, request.model)

    # --- the calls ------------------------------------------------------------------------

    def _send(self, request: CompletionRequest, stream: bool, deadline: Deadline) -> HttpResponse:
        request.validate()
        from .models.deprecation import check  # here: importing a provider needs no registry

        check(request.model, type(self).name)
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
        return self._answer(response, request)

    def _answer(self, response: HttpResponse, request: CompletionRequest) -> CompletionResponse:
        """A complete JSON answer, with usage estimated here when the provider reported none."""
        answer = self._answer_from(response.json(), request)
        answer.response_format = request.response_format  # what .parsed checks the answer against
        if not answer.usage.total_tokens:
            answer.usage = stream_usage(request, list(answer_chunks(answer)))
        return answer

    def complete_stream(self, request: CompletionRequest, *,
                        timeout: float | None = None) -> Generator[StreamChunk, None, None]:
        response = self._send(request, True, Deadline(timeout))
        completed = False
        try:
            media_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type == "application/json":  # a server that ignored stream: true (LiteLLM's proxy)
                chunks = answer_chunks(self._stream_answer(response, request))
            elif media_type and media_type not in STREAM_MEDIA_TYPES:
                raise self._not_a_stream(response, request, media_type)
            else:
                chunks = self._parse_stream(response, request)
            seen: list[StreamChunk] = []
            for chunk in chunks:
                if (malformed := malformed_chunk_field(chunk)) is not None:
                    raise self._bad_field(malformed, request)
                seen.append(chunk)
                yield chunk
            usage = stream_usage(request, seen)
            if usage.estimated:  # the provider reported none: ours ends the stream
                yield StreamChunk(usage=usage, provider=self.name)
            completed = True
            if request.response_format is not None:  # for collect(): what .parsed checks
                yield StreamChunk(provider=self.name, response_format=request.response_format)
        except FailoverClientError:
            raise
        except StreamTooLargeError as exc:
            raise ResponseTooLargeError(f"{exc}", provider=self.name, model=request.model) from None
        except _MALFORMED as exc:
            raise self._malformed(exc, request) from None
        finally:
            if completed:
                response.finish()  # the terminal event arrived: keep the connection for reuse
            else:
                response.close()

    def _stream_answer(self, response: HttpResponse, request: CompletionRequest) -> CompletionResponse:
        """The complete answer a server sent instead of a stream, or the error it holds."""
        data = response.json()
        error = data.get("error") if isinstance(data, dict) else None
        if error:
            raise error_for_event(error, provider=self.name, model=request.model)
        return self._answer_from(data, request)

    def _answer_from(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        """The wire mapping's answer to ``data``, checked: any malformed field is our error."""
        try:
            answer = self._parse(data, request)
        except _MALFORMED as exc:
            raise self._malformed(exc, request) from None
        malformed = malformed_response_field(answer)
        if malformed is not None:
            raise self._bad_field(malformed, request)
        return answer

    def _not_a_stream(self, response: HttpResponse, request: CompletionRequest, media_type: str) -> ResponseDecodeError:
        """A 200 that is neither a stream nor an answer: a captive portal's or a proxy's page."""
        excerpt = b""
        for piece in response.iter_bytes():
            excerpt += piece
            if len(excerpt) >= _EXCERPT_BYTES:
                break
        text = excerpt[:_EXCERPT_BYTES].decode("utf-8", "replace")
        what = parse_error_body(text)[0]  # an HTML page's title, else the start of the body
        return ResponseDecodeError(f"{self.name} answered a stream request with {media_type}, not a stream: {what}",
                                   provider=self.name, model=request.model, body=text)

    def can_carry(self, request: CompletionRequest) -> str | None:
        """A request holding a document is mapped to the wire as a trial: whatever the mapping
        refuses (a protocol without documents, a source kind it cannot take) is the reason.
        Other requests are not mapped twice; what they lack shows when they are sent."""
        if not any(isinstance(block, DocumentBlock) for message in request.messages for block in message.content):
            return None
        try:
            self._body(request, request.stream)
        except NotSupportedError as exc:
            return exc.message
        return None

    def _malformed(self, exc: Exception, request: CompletionRequest) -> ResponseDecodeError:
        """A body that parsed but does not have the protocol's shape (or an event that is not JSON)."""
        detail = f"{type(exc).__name__}: {exc}"
        return ResponseDecodeError(f"unexpected response shape from {self.name} ({redact(detail)[:200]})",
                                   provider=self.name, model=request.model)

    def _bad_field(self, field: str, request: CompletionRequest) -> ResponseDecodeError:
        """The error for an answer whose wire mapping filled ``field`` with a wrong value."""
        return ResponseDecodeError(f"{self.name} sent a malformed {field}", provider=self.name, model=request.model)


# What hand-written wire mapping raises on a body that is not what the protocol promises
# (RecursionError: JSON nested thousands deep; OverflowError: a count of Infinity made an int).
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, RecursionError,
              StreamDecodeError)
# The content types a stream of ours comes in: SSE, NDJSON (Ollama), AWS event stream (Bedrock).
STREAM_MEDIA_TYPES = frozenset({"text/event-stream", "application/x-ndjson", "application/vnd.amazon.eventstream"})
_EXCERPT_BYTES = 2048


# --- what a wire mapping produced, checked once for every protocol --------------------------
# The mappings read JSON by hand; a hostile or broken endpoint can put a number where text
# belongs, or a NaN where a count does.  These checks run on what reaches the caller, so no
# TypeError surfaces later in ``.text``, and no malformed count reaches cost, trackers or logs.

_CHUNK_STRINGS = ("text", "thinking", "signature", "redacted_thinking", "refusal", "id", "model", "raw_stop_reason")
_ANSWER_STRINGS = ("id", "model", "refusal", "raw_stop_reason")


def _not_text(value: Any) -> bool:
    return value is not None and value.__class__ is not str


def malformed_chunk_field(chunk: StreamChunk) -> str | None:
    """The first field of a stream chunk holding a value of the wrong type, or None.  Runs on
    every chunk, so the common one (text and nothing else) is recognised in one expression."""
    if (chunk.text.__class__ is str and chunk.thinking is None and chunk.tool_call is None and chunk.usage is None
            and chunk.id is None and chunk.model is None and chunk.refusal is None and chunk.raw_stop_reason is None
            and chunk.signature is None and chunk.redacted_thinking is None):
        return None
    for name in _CHUNK_STRINGS:
        if _not_text(getattr(chunk, name)):
            return name
    call = chunk.tool_call
    if call is not None and (call.index.__class__ is not int or _not_text(call.id) or _not_text(call.name)
                             or call.arguments.__class__ is not str):
        return "tool call delta"
    if chunk.usage is not None:
        return malformed_usage_field(chunk.usage)
    return None


def malformed_response_field(answer: CompletionResponse) -> str | None:
    """The first field of an answer holding a value of the wrong type, or None."""
    for name in _ANSWER_STRINGS:
        if _not_text(getattr(answer, name)):
            return name
    for i, block in enumerate(answer.content):
        if isinstance(block, TextBlock) and block.text.__class__ is not str:
            return f"content[{i}].text"
        if isinstance(block, ThinkingBlock) and (block.thinking.__class__ is not str or _not_text(block.signature)):
            return f"content[{i}].thinking"
        if isinstance(block, ToolUseBlock) and (block.id.__class__ is not str or block.name.__class__ is not str
                                                or block.input.__class__ is not dict):
            return f"content[{i}] (a tool call)"
    return malformed_usage_field(answer.usage)


def answer_chunks(answer: CompletionResponse) -> Iterator[StreamChunk]:
    """A complete answer as the stream that would have carried it: identity, each block's
    content in order, then one chunk with the stop reason and usage."""
    provider = answer.provider
    yield StreamChunk(id=answer.id or None, model=answer.model or None, provider=provider)
    for index, block in enumerate(answer.content):
        if isinstance(block, TextBlock):
            yield StreamChunk(text=block.text, provider=provider)
        elif isinstance(block, ToolUseBlock):
            call = ToolCallDelta(index, block.id, block.name, json.dumps(block.input))
            yield StreamChunk(tool_call=call, provider=provider)
        elif isinstance(block, ThinkingBlock):
            if block.redacted_data is not None:
                yield StreamChunk(redacted_thinking=block.redacted_data, provider=provider)
            else:
                yield StreamChunk(thinking=block.thinking, signature=block.signature, provider=provider)
    if answer.refusal:
        yield StreamChunk(refusal=answer.refusal, provider=provider)
    yield StreamChunk(stop_reason=answer.stop_reason, raw_stop_reason=answer.raw_stop_reason, usage=answer.usage,
                      provider=provider)


def stream_usage(request: CompletionRequest, chunks: list[StreamChunk]) -> Usage:
    """The usage a stream reported (its last report is the total) or, when it reported none (yet:
    an abandoned stream), our estimate from the request and the output so far."""
    reported = next((c.usage for c in reversed(chunks) if c.usage is not None and c.usage.total_tokens), None)
    if reported is not None:
        return reported
    from .tokens import estimate_usage

    output = "".join((chunk.text or "") + (chunk.thinking or "") + (chunk.refusal or "")
                     + (chunk.tool_call.arguments if chunk.tool_call is not None else "") for chunk in chunks)
    return estimate_usage(request, output)
