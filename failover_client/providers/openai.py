"""OpenAI Chat Completions (``POST {base}/chat/completions``), also the protocol of most
OpenAI-compatible hosts (pass their ``base_url``).

Wire facts: protocols.md §1.  The stream decoder below is the hottest code in the library, so it
maps each event's JSON to a StreamChunk directly, with the common text delta checked first.
"""

from __future__ import annotations

import json
import re
from typing import Any, Generator, Iterator

from ..batch.api import BatchMethods
from ..errors import NetworkError, NotSupportedError, ResponseDecodeError, error_for_event
from ..provider import HttpProvider, WireFormat, tool_use_from_function_call
from ..streaming import iter_sse, loads_event, raw_decode
from ..types import (
    CompletionRequest,
    CompletionResponse,
    ContentBlock,
    DocumentBlock,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageBlock,
    Message,
    Role,
    StopReason,
    StreamChunk,
    TextBlock,
    ThinkingBlock,
    TokenCountRequest,
    TokenCountResult,
    ToolCallDelta,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

STOP_REASONS = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "content_filter": StopReason.CONTENT_FILTER,
}
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# Hosts whose Chat Completions take ``file`` parts (PDFs); others get NotSupportedError before
# sending unless made with file_parts=True.  Plain-text documents go as text parts everywhere.
FILE_PART_HOSTS = frozenset({"openai", "azure", "openrouter", "litellm", "vercel"})
PERPLEXITY_DONE = "chat.completion.done"  # the ``object`` of Perplexity's last chunk (it sends no [DONE])

# Reasoning models reject ``max_tokens`` and take ``max_completion_tokens``.
_REASONING_MODEL = re.compile(r"^(?:.*/)?(o\d|gpt-5)")


def stop_reason(raw: str | None) -> StopReason:
    return STOP_REASONS.get(raw or "", StopReason.OTHER)


def usage_from(data: dict[str, Any] | None) -> Usage | None:
    if not data:
        return None
    prompt = data.get("prompt_tokens_details") or {}
    completion = data.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=data.get("prompt_tokens") or 0,
        output_tokens=data.get("completion_tokens") or 0,
        cache_read_tokens=prompt.get("cached_tokens") or 0,
        cache_write_tokens=prompt.get("cache_write_tokens") or 0,
        reasoning_tokens=completion.get("reasoning_tokens") or 0,
    )


def _user_part(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        return {"type": "image_url", "image_url": {"url": block.data_url()}}
    if isinstance(block, DocumentBlock):
        return _document_part(block)
    raise NotSupportedError(f"a {block.type} block cannot be sent in an OpenAI user message")


def _document_part(block: DocumentBlock) -> dict[str, Any]:
    """A ``file`` part: a PDF as a data URL (with the file name the API requires beside it) or a
    Files API id.  The protocol takes no URLs and no non-PDF data: plain text goes as its text."""
    if block.file_id is not None:
        return {"type": "file", "file": {"file_id": block.file_id}}
    if block.url is not None:
        raise NotSupportedError("Chat Completions takes no document URLs (OpenAI's Responses API does)")
    if block.media_type == "text/plain":
        return {"type": "text", "text": block.plain_text()}
    return {"type": "file", "file": {"filename": block.filename, "file_data": block.data_url()}}


def needs_file_parts(request: CompletionRequest) -> bool:
    """Whether the request holds a document that travels as a ``file`` part (not as text)."""
    return any(isinstance(block, DocumentBlock) and not (block.media_type == "text/plain" and block.inline)
               for message in request.messages for block in message.content)


def _content(blocks: list[Any]) -> str | list[dict[str, Any]]:
    if len(blocks) == 1 and isinstance(blocks[0], TextBlock):
        return blocks[0].text
    return [_user_part(b) for b in blocks]


def messages_to_wire(request: CompletionRequest) -> list[dict[str, Any]]:
    """Our messages as Chat Completions messages: tool results become ``tool`` messages, tool
    uses become ``tool_calls``; thinking blocks are not sent (the protocol has no place for them)."""
    wire: list[dict[str, Any]] = []
    if request.system:
        wire.append({"role": "system", "content": request.system_text})
    for message in request.messages:
        if message.role is Role.ASSISTANT:
            wire.append(_assistant_to_wire(message))
            continue
        others = []
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                wire.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": block.text})
            else:
                others.append(block)
        if others:
            wire.append({"role": "user", "content": _content(others)})
    return wire


def _assistant_to_wire(message: Message) -> dict[str, Any]:
    text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
    out: dict[str, Any] = {"role": "assistant", "content": text or None}
    calls = [
        {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
        for b in message.content if isinstance(b, ToolUseBlock)
    ]
    if calls:
        out["tool_calls"] = calls
    return out


def request_to_wire(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": messages_to_wire(request)}
    if request.max_tokens is not None:
        field = "max_completion_tokens" if _REASONING_MODEL.match(request.model) else "max_tokens"
        body[field] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.input_schema,
                **({"strict": t.strict} if t.strict is not None else {})}}
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = (TOOL_CHOICES[choice.mode] if choice.mode != "tool"
                               else {"type": "function", "function": {"name": choice.name}})
        if choice.disable_parallel and request.tools:
            body["parallel_tool_calls"] = False
    fmt = request.response_format
    if fmt is not None:
        body["response_format"] = ({"type": "json_object"} if fmt.type == "json_object" else
                                   {"type": "json_schema", "json_schema": {
                                       "name": fmt.name, "schema": fmt.schema, "strict": fmt.strict}})
    if request.thinking is not None and request.thinking.enabled:
        body["reasoning_effort"] = request.thinking.effort_level()
    if request.metadata:
        body["metadata"] = request.metadata
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def response_from_wire(data: dict[str, Any], provider: str) -> CompletionResponse:
    choices = data.get("choices")
    if not choices:
        raise ResponseDecodeError("the response has no choices", provider=provider, model=data.get("model"))
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[ContentBlock] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append(ThinkingBlock(reasoning))
    text = message.get("content")
    if isinstance(text, list):
        content += [ThinkingBlock(value) if kind == "thinking" else TextBlock(value)
                    for kind, value in content_parts(text) if value]
    elif text:
        content.append(TextBlock(text))
    for call in message.get("tool_calls") or ():
        content.append(tool_use_from_function_call(call))
    raw = choice.get("finish_reason")
    if not raw:
        raise ResponseDecodeError("the answer has no finish_reason: it never finished", provider=provider,
                                  model=data.get("model"))
    refusal = message.get("refusal")
    return CompletionResponse(
        id=data.get("id") or "", model=data.get("model") or "", content=content,
        stop_reason=StopReason.REFUSAL if refusal else stop_reason(raw),
        usage=usage_from(data.get("usage")) or Usage(), provider=provider,
        raw_stop_reason=raw, refusal=refusal,
    )


def stream_from_wire(events: Iterator[tuple[str, str]], provider: str, model: str) -> Iterator[StreamChunk]:
    """Chat-completion chunks to StreamChunks.  Ends at ``data: [DONE]`` (or at Perplexity's
    ``chat.completion.done`` chunk, its only end marker); an error object inside the stream
    (OpenRouter sends one with ``choices``, after output), or an end without either, raises.
    Only choice 0 is read (with ``n > 1`` each chunk carries one choice, by ``index``); Azure
    opens with a chunk that has empty ``id``/``model`` and no choices, so the identity comes
    from the first chunk that has it.  After that, a chunk whose only news is choice 0's delta
    has just the delta decoded (see :func:`lone_delta`)."""
    loads = loads_event
    identified = False
    refused = False
    for _event, data in events:
        delta = lone_delta(data) if identified else None
        choice = obj = None
        if delta is None:
            if data == "[DONE]":
                return
            obj = loads(data)
            if "error" in obj and obj["error"]:
                raise error_for_event(obj["error"], provider=provider, model=model)
            if not identified and (obj.get("id") or obj.get("model")):
                identified = True
                yield StreamChunk(id=obj.get("id"), model=obj.get("model"), provider=provider)
            choice = first_choice(obj)
            if choice is not None:
                delta = choice.get("delta")
        if delta:
            text = delta.get("content")
            if text:
                if text.__class__ is str:
                    yield StreamChunk(text=text, provider=provider)
                else:  # Mistral's typed parts
                    yield from _part_chunks(text, provider)
            if (len(delta) > 1 or text is None) and (yield from _rare_delta(delta, provider)):
                refused = True
        if obj is None:
            continue
        raw = choice.get("finish_reason") if choice is not None else None
        if raw:
            reason = StopReason.REFUSAL if refused else stop_reason(raw)
            yield StreamChunk(stop_reason=reason, raw_stop_reason=raw, provider=provider)
            groq = obj.get("x_groq")  # Groq's usage, when the request did not ask for include_usage
            if groq and groq.get("usage") and not obj.get("usage"):
                yield StreamChunk(usage=usage_from(groq["usage"]), provider=provider)
        usage = obj.get("usage")
        if usage:
            yield StreamChunk(usage=usage_from(usage), provider=provider)
        if raw and obj.get("object") == PERPLEXITY_DONE:
            return
    raise NetworkError("the stream ended before data: [DONE]", provider=provider, model=model)


def first_choice(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """Choice 0 of a chunk: the first, unless an ``n > 1`` stream put another one first."""
    choices = chunk.get("choices")
    if not choices:
        return None
    choice = choices[0]
    if choice.get("index", 0) != 0:
        return next((c for c in choices if c.get("index", 0) == 0), None)
    return choice


# Where choice 0's delta starts and what must follow it, in the two layouts hosts write: OpenAI's
# field order, and keys sorted at every level (Azure: content_filter_results, delta,
# finish_reason, index, logprobs).
_OPENAI_DELTA = '"choices":[{"index":0,"delta":'
_OPENAI_UNFINISHED = (',"logprobs":null,"finish_reason":null', ',"finish_reason":null')
_SORTED_START = '{"choices":[{'
_SORTED_DELTA = '"delta":'
_SORTED_UNFINISHED = (',"finish_reason":null,"index":0,', ',"finish_reason":null,"index":0}')
_NULL_USAGE = '"usage":null'


def lone_delta(data: str) -> dict[str, Any] | None:
    """Choice 0's delta, decoded on its own, when the chunk can carry nothing else we read;
    ``None`` means "decode the whole chunk".  Most chunks of a stream are such text deltas,
    and hosts wrap them in fields we never read (Azure repeats its content-filter verdicts in
    every one, OpenAI adds ids, fingerprints and padding), so skipping the rest roughly halves
    the decoding.  Conservative by construction: an ``"error"`` anywhere, a ``"usage"`` other
    than one null, a finish reason, another choice, or a layout other than the two compact
    ones above sends the chunk to the full decoder.  Inside a JSON string every quote is escaped,
    so a marker that ends in a quote or a colon after one never matches inside content."""
    opens_with_choices = data.startswith(_SORTED_START) and not data.startswith(_OPENAI_DELTA, 1)
    if opens_with_choices:
        at = data.find(_SORTED_DELTA, len(_SORTED_START))
        start, unfinished = at + len(_SORTED_DELTA), _SORTED_UNFINISHED
    else:
        at = data.find(_OPENAI_DELTA)
        start, unfinished = at + len(_OPENAI_DELTA), _OPENAI_UNFINISHED
    if at < 0:
        return None
    try:
        delta, end = raw_decode(data, start)
    except ValueError:
        return None
    if delta.__class__ is not dict or not data.startswith(unfinished, end):
        return None
    # A chunk that opens with "choices" has every other top-level key after choice 0's delta,
    # so only what follows the delta can hold an error or usage; in OpenAI's order they may
    # come first.
    rest = end if opens_with_choices else 0
    if data.find('"error"', rest) >= 0:
        return None
    usage = data.find('"usage"', rest)  # allowed once, as null
    if usage >= 0 and (not data.startswith(_NULL_USAGE, usage)
                       or data.find('"usage"', usage + len(_NULL_USAGE)) >= 0):
        return None
    return delta


def content_parts(parts: list[Any]) -> Iterator[tuple[str, str]]:
    """Mistral's typed content parts as ``(kind, text)``: ``text`` parts, and ``thinking``
    parts whose text is itself a list of text chunks.  Other kinds are not text."""
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            yield "text", part.get("text") or ""
        elif kind == "thinking":
            yield "thinking", "".join(chunk.get("text") or "" for chunk in part.get("thinking") or ()
                                      if chunk.get("type") == "text")


def _part_chunks(parts: list[Any], provider: str) -> Iterator[StreamChunk]:
    for kind, value in content_parts(parts):
        if value:
            yield (StreamChunk(thinking=value, provider=provider) if kind == "thinking"
                   else StreamChunk(text=value, provider=provider))


def _rare_delta(delta: dict[str, Any], provider: str) -> Generator[StreamChunk, None, bool]:
    """Tool-call fragments, refusals and reasoning text; returns whether a refusal was seen."""
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        yield StreamChunk(thinking=reasoning, provider=provider)
    for call in delta.get("tool_calls") or ():
        function = call.get("function") or {}
        yield StreamChunk(tool_call=ToolCallDelta(
            index=call.get("index", 0), id=call.get("id"), name=function.get("name"),
            arguments=function.get("arguments") or ""), provider=provider)
    refusal = delta.get("refusal")
    if refusal:
        yield StreamChunk(refusal=refusal, provider=provider)
        return True
    return False


WIRE = WireFormat(request_to_wire, response_from_wire, stream_from_wire, iter_sse)


class OpenAIProvider(BatchMethods, HttpProvider):
    """OpenAI, or any host that speaks Chat Completions (``base_url`` ends in ``/v1``).
    Batches: OpenAI's Files + Batches API (failover_client.providers.openai_batch)."""

    name = "openai"
    api_key_env = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"
    chat_path = "/chat/completions"
    wire = WIRE
    batch_module = "failover_client.providers.openai_batch"
    supports_token_counting = True  # always answers: exact with tiktoken, else a labelled estimate

    def __init__(self, api_key: str | None = None, *, organization: str | None = None,
                 project: str | None = None, batch_api: bool | None = None, file_parts: bool | None = None,
                 **options: Any) -> None:
        """``batch_api``: whether the host serves OpenAI's Files + Batches API; by default only
        the provider named "openai" does (OpenAI itself, also behind a proxy or test server):
        most OpenAI-compatible hosts, created under their own names, have no batch API.
        ``file_parts``: whether the host takes PDF documents as ``file`` parts; by default the
        hosts of FILE_PART_HOSTS do."""
        headers = dict(options.pop("headers", None) or {})
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        super().__init__(api_key, headers=headers, **options)
        self.supports_batch = self.name == OpenAIProvider.name if batch_api is None else batch_api
        self.file_parts = self.name in FILE_PART_HOSTS if file_parts is None else file_parts

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        if not self.file_parts and needs_file_parts(request):
            raise NotSupportedError(f"{self.name} is not known to take documents as file parts (pass "
                                    "file_parts=True if it does)", provider=self.name, model=request.model)
        return super()._body(request, stream)

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @property
    def supports_embeddings(self) -> bool:  # type: ignore[override]
        from .catalog import serves_embeddings

        return serves_embeddings(self.name)

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """``POST {base}/embeddings`` beside the chat path, in the host's dialect (embeddings.py)."""
        from . import embeddings
        from .catalog import EMBEDDINGS

        path = self._path(request, False)[: -len(self.chat_path)] + "/embeddings"  # type: ignore[arg-type]
        wire = embeddings.OPENAI_DIALECTS[EMBEDDINGS.get(self.name, "openai")]
        return embeddings.embed(self, request, path, wire, timeout=timeout,
                                params=self._params(request, False))  # type: ignore[arg-type]

    def count_tokens(self, request: TokenCountRequest | CompletionRequest, *,
                     timeout: float | None = None) -> TokenCountResult:
        """Counted locally, as the protocol has no counting endpoint (see failover_client.tokens):
        ``exact`` is False when it is an estimate."""
        from ..tokens import count_chat_body, prompt_request

        return count_chat_body(self._body(prompt_request(request), False), provider=self.name)
