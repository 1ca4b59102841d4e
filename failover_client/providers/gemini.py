"""Google Gemini API (Generative Language ``v1beta``): ``models/{model}:generateContent``,
``:streamGenerateContent?alt=sse`` and ``:countTokens``.

Wire facts: protocols.md §4 and the recordings in the shared corpus.  Where Gemini differs from
the Messages format our types follow, and how this module bridges it:

* Roles are ``user`` and ``model``; the system prompt travels as ``systemInstruction``.
* Function calls carry no id on the Gemini API.  A call without one is named
  ``call_<responseId>_<n>`` (the same in a plain answer and in the stream of that answer), and a
  tool result goes back as a ``functionResponse`` named after the call it answers, found by that
  id in the conversation.
* A thought signature (``thoughtSignature``) sits on the part it belongs to, usually a function
  call or a text part.  It becomes the ``signature`` of a ThinkingBlock placed just before the
  block made from that part (the thought summary before it, when there is one), and it is sent
  back on the part made from the block that follows that ThinkingBlock: where it came from.
  Gemini 3 rejects function-call history whose signatures are missing.
* A stream has no end marker: it is complete only once a candidate carries ``finishReason``.
  Plain answers are decoded by the same code as streams (one object instead of many), so
  ``complete()`` and ``collect(complete_stream())`` cannot drift apart.
"""

from __future__ import annotations

import json
import mimetypes
import os
import uuid
from typing import Any, Callable, Generator, Iterable, Iterator
from urllib.parse import quote, urlsplit

from ..errors import (
    ContentFilteredError,
    InvalidArgumentError,
    MissingCredentialsError,
    NetworkError,
    NotSupportedError,
    ProviderError,
    ResponseDecodeError,
    error_for_event,
)
from ..provider import HttpProvider, WireFormat, dumps
from ..retry import Deadline
from ..streaming import iter_sse, loads_event, raw_decode
from ..types import (
    CompletionRequest,
    CompletionResponse,
    ContentBlock,
    DocumentBlock,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageBlock,
    Role,
    StopReason,
    StreamChunk,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    TokenCountRequest,
    TokenCountResult,
    ToolCallDelta,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    collect,
)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
KEY_ENV = "GEMINI_API_KEY"
FALLBACK_KEY_ENV = "GOOGLE_API_KEY"
GENERATE = ":generateContent"
STREAM = ":streamGenerateContent"
SSE = {"alt": "sse"}  # without it the stream is one JSON array, awkward to read as it arrives
COUNT = ":countTokens"

ROLES = {Role.USER: "user", Role.ASSISTANT: "model"}
TOOL_MODES = {"auto": "AUTO", "any": "ANY", "none": "NONE", "tool": "ANY"}
FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})


def stop_reason(raw: str, called_tools: bool) -> StopReason:
    """Gemini ends a function call with plain ``STOP``: the calls themselves say it was tool use."""
    if raw == "STOP":
        return StopReason.TOOL_USE if called_tools else StopReason.END_TURN
    if raw == "MAX_TOKENS":
        return StopReason.MAX_TOKENS
    if raw in FILTERED:
        return StopReason.CONTENT_FILTER
    return StopReason.OTHER


def usage_from(meta: dict[str, Any] | None) -> Usage:
    """``candidatesTokenCount`` excludes thoughts, ours includes them; tool-use prompt tokens
    (search results fed back to the model) are billed as input.  So input + output equals
    Gemini's ``totalTokenCount``."""
    if not meta:
        return Usage()
    thoughts = meta.get("thoughtsTokenCount") or 0
    return Usage(
        input_tokens=(meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=(meta.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=meta.get("cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
    )


def model_resource(model: str) -> str:
    """``models/{id}``; a ``models/`` (or ``tunedModels/``) prefix given by the caller is kept."""
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def model_path(model: str) -> str:
    """The URL path of a model, its id quoted as one path segment."""
    collection, _, name = model_resource(model).partition("/")
    return f"/{collection}/{quote(name, safe='@')}"


# --- our request -> Gemini --------------------------------------------------------------------


def _image_part(block: ImageBlock) -> dict[str, Any]:
    if block.data is not None:
        if not block.media_type:
            raise InvalidArgumentError("an inline image needs its media_type for Gemini (e.g. 'image/png')")
        return {"inlineData": {"mimeType": block.media_type, "data": block.data}}
    url = block.url or ""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        if not header.endswith(";base64"):
            raise InvalidArgumentError("a data: image URL must be base64-encoded")
        return {"inlineData": {"mimeType": header[5:-7], "data": data}}
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http", "gs") or not parts.netloc:
        raise InvalidArgumentError(f"an image URL for Gemini must be https://, gs:// or data:, got {url[:60]!r}")
    media_type = block.media_type or mimetypes.guess_type(parts.path)[0]
    return {"fileData": {"mimeType": media_type, "fileUri": url} if media_type else {"fileUri": url}}


def _document_part(block: DocumentBlock) -> dict[str, Any]:
    """Inline content as ``inlineData`` (plain text base64-encoded too); a URL or a Files API
    URI (the ``file_id``) as ``fileData``.  The title has no place here (``displayName`` is
    Vertex-only, and the Gemini API refuses it), nor have citations."""
    if block.inline:
        return {"inlineData": {"mimeType": block.media_type, "data": block.base64_data()}}
    if block.url is not None and block.url.startswith("s3://"):
        raise NotSupportedError("Gemini reads documents by https:// or gs:// URL, not from s3://")
    return {"fileData": {"mimeType": block.media_type, "fileUri": block.url or block.file_id}}


def _function_response(block: ToolResultBlock, names: dict[str, str]) -> dict[str, Any]:
    name = names.get(block.tool_use_id)
    if name is None:
        raise InvalidArgumentError(f"tool result {block.tool_use_id!r} answers no tool call in the conversation: "
                                   "Gemini needs the name of the function it answers")
    if not isinstance(block.content, str) and any(not isinstance(b, TextBlock) for b in block.content):
        raise NotSupportedError("Gemini takes only text in a tool result", provider="gemini")
    # The API's convention: "output" holds a function's result, "error" its failure.
    response = {"error" if block.is_error else "output": block.text}
    return {"functionResponse": {"name": name, "response": response, "id": block.tool_use_id}}


def _part(block: ContentBlock, names: dict[str, str]) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"text": block.text}
    if isinstance(block, ImageBlock):
        return _image_part(block)
    if isinstance(block, DocumentBlock):
        return _document_part(block)
    if isinstance(block, ToolUseBlock):
        return {"functionCall": {"name": block.name, "args": block.input, "id": block.id}}
    if isinstance(block, ToolResultBlock):
        return _function_response(block, names)
    raise InvalidArgumentError(f"a {type(block).__name__} cannot be sent to Gemini")


def _parts(blocks: Iterable[ContentBlock], names: dict[str, str]) -> list[dict[str, Any]]:
    """A message's blocks as parts; a ThinkingBlock's signature goes on the next part (see the
    module docstring), or on an empty text part when nothing follows."""
    parts: list[dict[str, Any]] = []
    signature = None
    for block in blocks:
        if isinstance(block, ThinkingBlock):
            if block.redacted_data is None:  # Anthropic's encrypted thinking means nothing to Gemini
                if block.thinking:
                    parts.append({"text": block.thinking, "thought": True})
                signature = block.signature or signature
            continue
        part = _part(block, names)
        if signature:
            part["thoughtSignature"] = signature
            signature = None
        parts.append(part)
    if signature:
        parts.append({"text": "", "thoughtSignature": signature})
    return parts


def contents_to_wire(request: CompletionRequest) -> list[dict[str, Any]]:
    names = {b.id: b.name for m in request.messages for b in m.content if isinstance(b, ToolUseBlock)}
    contents = []
    for message in request.messages:
        parts = _parts(message.content, names)
        if parts:
            contents.append({"role": ROLES[message.role], "parts": parts})
    return contents


def _declaration(tool: ToolDefinition) -> dict[str, Any]:
    # parametersJsonSchema takes full JSON Schema; ``parameters`` only an OpenAPI subset that
    # rejects keys such as additionalProperties.
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    declaration["parametersJsonSchema"] = tool.input_schema
    return declaration


def prompt_to_wire(request: CompletionRequest) -> dict[str, Any]:
    """The prompt side of a request (what countTokens counts): contents, system, tools."""
    body: dict[str, Any] = {"contents": contents_to_wire(request)}
    if request.system:
        texts = [request.system] if isinstance(request.system, str) else [b.text for b in request.system]
        body["systemInstruction"] = {"parts": [{"text": text} for text in texts]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    return body


def _thinking(config: ThinkingConfig) -> dict[str, Any]:
    """A budget drives ``thinkingBudget``, else an effort ``thinkingLevel`` (Gemini 3); the API
    refuses both at once.  Disabled means budget 0, which models that must think reject."""
    if not config.enabled:
        return {"thinkingBudget": 0}
    wire: dict[str, Any] = {"includeThoughts": True}
    if config.budget_tokens is not None:
        wire["thinkingBudget"] = config.budget_tokens
    elif config.effort:
        wire["thinkingLevel"] = config.effort.upper()
    return wire


def _generation_config(request: CompletionRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop_sequences:
        config["stopSequences"] = request.stop_sequences
    fmt = request.response_format
    if fmt is not None:
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema":
            config["responseJsonSchema"] = fmt.schema
    if request.thinking is not None:
        config["thinkingConfig"] = _thinking(request.thinking)
    return config


def request_to_wire(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    """The generateContent body (the same for streams: the URL says ``stream``).  ``metadata``
    has no place on this API and ``ToolChoice.disable_parallel`` no equivalent; both are ignored."""
    body = prompt_to_wire(request)
    choice = request.tool_choice
    if choice is not None:
        calling: dict[str, Any] = {"mode": TOOL_MODES[choice.mode]}
        if choice.mode == "tool":
            calling["allowedFunctionNames"] = [choice.name]
        body["toolConfig"] = {"functionCallingConfig": calling}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


# --- Gemini -> our answer ---------------------------------------------------------------------


def _candidate(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Candidate 0 (a missing ``index`` means 0): only the first choice is ours."""
    first = candidates[0]
    if not first.get("index"):
        return first
    return next((c for c in candidates if not c.get("index")), None)


def _without_candidates(obj: dict[str, Any], provider: str, model: str) -> ProviderError | None:
    """What an object without candidates means: an error (mid-stream), or a blocked prompt."""
    if "error" in obj:
        return error_for_event(obj["error"], provider=provider, model=model)
    reason = (obj.get("promptFeedback") or {}).get("blockReason")
    if reason:
        return ContentFilteredError(f"the prompt was blocked ({reason})", provider=provider, model=model,
                                    code=reason)
    return None


def _part_chunks(part: dict[str, Any], response_id: str, calls: int,
                 provider: str) -> Generator[StreamChunk, None, int]:
    """The chunks of a part that is not plain text; returns the number of function calls so far."""
    signature = part.get("thoughtSignature")
    if part.get("thought"):
        if part.get("text") or signature:
            yield StreamChunk(thinking=part.get("text") or None, signature=signature, provider=provider)
        return calls
    if signature:
        yield StreamChunk(signature=signature, provider=provider)
    call = part.get("functionCall")
    if call is not None:
        call_id = call.get("id") or f"call_{response_id}_{calls}"
        arguments = json.dumps(call.get("args") or {})
        yield StreamChunk(tool_call=ToolCallDelta(calls, call_id, call["name"], arguments), provider=provider)
        return calls + 1
    if part.get("text"):
        yield StreamChunk(text=part["text"], provider=provider)
    return calls  # executableCode, codeExecutionResult, inlineData output...: no neutral form


def _decode(events: Iterable[tuple[str, Any]], loads: Callable[[Any], Any], provider: str, model: str,
            unfinished: type[ProviderError], sparse: bool = False) -> Iterator[StreamChunk]:
    """GenerateContentResponse objects (``loads`` of each event's data) to StreamChunks; ends with
    the stop reason and usage once the events run out, or raises ``unfinished`` when no
    candidate carried a finishReason.  The per-event path is hot: plain text parts come first,
    and with ``sparse`` every event after the first decodes only its candidate's parts when it
    can (:func:`sparse_event`); usage is cumulative, so only the last event's is ever decoded."""
    response_id = ""
    calls = 0
    finish = None
    meta: Any = None  # the latest usageMetadata, or (event text, offset) where a sparse event's starts
    for _event, data in events:
        seen = sparse_event(data) if sparse and response_id else None
        if seen is None:
            obj = loads(data)
            if not response_id:
                response_id = obj.get("responseId") or uuid.uuid4().hex[:16]
                yield StreamChunk(id=obj.get("responseId"), model=obj.get("modelVersion"), provider=provider)
            meta = obj.get("usageMetadata") or meta
            candidates = obj.get("candidates")
            if not candidates:
                error = _without_candidates(obj, provider, model)
                if error is not None:
                    raise error
                continue
            candidate = candidates[0]
            if candidate.get("index") and (candidate := _candidate(candidates)) is None:
                continue
            finish = candidate.get("finishReason") or finish
            content = candidate.get("content")
            parts = content.get("parts") if content else None
        else:
            parts, usage_at = seen
            if usage_at >= 0:
                meta = (data, usage_at)
        for part in parts or ():
            text = part.get("text")
            if text is not None and len(part) == 1:  # the common case: a plain text delta
                if text:
                    yield StreamChunk(text=text, provider=provider)
            else:
                calls = yield from _part_chunks(part, response_id, calls, provider)
    if finish is None:
        raise unfinished("the answer ended before a candidate carried a finishReason", provider=provider,
                         model=model)
    if meta.__class__ is tuple:
        meta = raw_decode(*meta)[0]
    yield StreamChunk(stop_reason=stop_reason(finish, calls > 0), raw_stop_reason=finish, usage=usage_from(meta),
                      provider=provider)


# The layout Google's servers write an event in, around the one thing that changes: the parts.
_PARTS_AT = '{"candidates": [{"content": {"parts": '
_AFTER_PARTS = (',"role": "model"},"index": 0}]', ',"role": "model"}}]')
_USAGE_AT = '"usageMetadata":'


def sparse_event(data: str) -> tuple[list[Any], int] | None:
    """The parts of an event's only candidate, decoded on their own, and the offset of its
    ``usageMetadata`` object (-1 when it has none), for the decoder to decode later if it is
    the last; ``None`` means "decode the whole event".  Each event repeats the response id, the
    model version and the cumulative usage, most of its bytes, and only the parts are news.
    The candidate must be exactly candidate 0 with its content and nothing else (no
    finishReason, no safety ratings), in Google's own layout; anything else, or a usage value
    that is not a non-empty object, goes to the full decoder.  A JSON string cannot hold an
    unescaped quote, so the usage marker only matches the real key."""
    if not data.startswith(_PARTS_AT):
        return None
    try:
        parts, end = raw_decode(data, len(_PARTS_AT))
    except ValueError:
        return None
    if parts.__class__ is not list or not data.startswith(_AFTER_PARTS, end):
        return None
    usage_at = data.find(_USAGE_AT, end)
    if usage_at >= 0:
        usage_at += len(_USAGE_AT)
        if data.startswith(" ", usage_at):
            usage_at += 1
        if not data.startswith('{"', usage_at):
            return None
    return parts, usage_at


def _as_is(data: Any) -> Any:
    return data


def response_from_wire(data: dict[str, Any], provider: str) -> CompletionResponse:
    """A generateContent answer; one without a finishReason never finished."""
    return collect(_decode([("", data)], _as_is, provider, data.get("modelVersion") or "", ResponseDecodeError))


def stream_from_wire(events: Iterator[tuple[str, str]], provider: str, model: str) -> Iterator[StreamChunk]:
    """``alt=sse`` events (data-only, no terminator) to StreamChunks; usage arrives cumulatively
    on every event, so only the last is reported, with the stop reason, when the body ends."""
    return _decode(events, loads_event, provider, model, NetworkError, sparse=True)


def count_from_wire(data: Any, provider: str, model: str) -> TokenCountResult:
    total = data.get("totalTokens") if isinstance(data, dict) else None
    if not isinstance(total, int):
        raise ResponseDecodeError("the countTokens answer has no totalTokens", provider=provider, model=model)
    return TokenCountResult(total, exact=True, model=model, provider=provider)


def token_count_request(request: TokenCountRequest | CompletionRequest) -> CompletionRequest:
    """The prompt to count, as a validated CompletionRequest."""
    prompt = request if isinstance(request, CompletionRequest) else request.as_request()
    prompt.validate()
    return prompt


WIRE = WireFormat(request_to_wire, response_from_wire, stream_from_wire, iter_sse)


class GeminiProvider(HttpProvider):
    """The Gemini API with an API key (``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``), sent only in
    the ``x-goog-api-key`` header: never in the URL, where proxies and logs would keep it."""

    name = "gemini"
    api_key_env = KEY_ENV
    default_base_url = DEFAULT_BASE_URL
    wire = WIRE
    supports_token_counting = True

    def api_key(self) -> str:
        key = self._api_key or os.environ.get(KEY_ENV) or os.environ.get(FALLBACK_KEY_ENV)
        if not key:
            raise MissingCredentialsError(
                f"no API key for {self.name}: pass api_key= or set {KEY_ENV} (or {FALLBACK_KEY_ENV})",
                provider=self.name)
        return key

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def _path(self, request: CompletionRequest, stream: bool) -> str:
        return model_path(request.model) + (STREAM if stream else GENERATE)

    def _params(self, request: CompletionRequest, stream: bool) -> dict[str, str] | None:
        return SSE if stream else None

    supports_embeddings = True

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """``:batchEmbedContents``, as the official SDK calls it even for one text."""
        from . import embeddings

        path = model_path(request.model) + embeddings.GEMINI_BATCH
        return embeddings.embed(self, request, path, embeddings.GEMINI, timeout=timeout)

    def count_tokens(self, request: TokenCountRequest | CompletionRequest, *,
                     timeout: float | None = None) -> TokenCountResult:
        """Gemini's own count (``countTokens``), system instruction and tools included."""
        prompt = token_count_request(request)
        body = {"generateContentRequest": {"model": model_resource(prompt.model), **prompt_to_wire(prompt)}}
        response = self.transport().request("POST", model_path(prompt.model) + COUNT, body=dumps(body),
                                            deadline=Deadline(timeout), model=prompt.model)
        return count_from_wire(response.json(), self.name, prompt.model)
