"""Anthropic Messages (``POST {base}/v1/messages``, ``anthropic-version: 2023-06-01``).

Wire facts: protocols.md §2.  Our types follow the Messages format closely (tool results in user
turns, thinking blocks with signatures), so the mapping is nearly one to one; the stream decoder
handles every event type, including ``error`` events that arrive after a 200.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from ..batch.api import BatchMethods
from ..errors import InvalidArgumentError, NetworkError, NotSupportedError, ResponseDecodeError, error_for_event
from ..provider import HttpProvider, WireFormat, dumps
from ..retry import Deadline
from ..streaming import iter_sse, loads_event
from ..types import (
    CompletionRequest,
    CompletionResponse,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
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

API_VERSION = "2023-06-01"
# The Messages fields count_tokens takes (it refuses max_tokens, sampling and streaming options).
COUNT_TOKENS_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config"})
DEFAULT_MAX_TOKENS = 4096
FILES_BETA = "files-api-2025-04-14"  # a document by file_id needs AnthropicProvider(betas=[FILES_BETA])
_CACHE = {"type": "ephemeral"}
STOP_REASONS = {r.value: r for r in StopReason if r is not StopReason.OTHER and r is not StopReason.CONTENT_FILTER}


def stop_reason(raw: str | None) -> StopReason:
    return STOP_REASONS.get(raw or "", StopReason.OTHER)


def usage_from(data: dict[str, Any]) -> Usage:
    """Anthropic's ``input_tokens`` excludes cache reads and writes; ours includes them."""
    cache_read = data.get("cache_read_input_tokens") or 0
    cache_write = data.get("cache_creation_input_tokens") or 0
    details = data.get("output_tokens_details") or {}
    return Usage(
        input_tokens=(data.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=data.get("output_tokens") or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=details.get("thinking_tokens") or 0,
    )


def _cached(wire: dict[str, Any], cache: bool) -> dict[str, Any]:
    if cache:
        wire["cache_control"] = _CACHE
    return wire


def _document(block: DocumentBlock) -> dict[str, Any]:
    """A document block: a PDF as base64, by URL or by Files API id; plain text as a text source
    (its raw text, not base64).  Anthropic fetches only PDFs by URL."""
    if block.file_id is not None:
        source: dict[str, Any] = {"type": "file", "file_id": block.file_id}
    elif block.url is not None:
        if block.media_type != "application/pdf" or not block.url.startswith(("https://", "http://")):
            raise NotSupportedError("Anthropic reads only PDFs by URL, and only http(s) URLs", provider="anthropic")
        source = {"type": "url", "url": block.url}
    elif block.media_type == "text/plain":
        source = {"type": "text", "media_type": "text/plain", "data": block.plain_text()}
    else:
        source = {"type": "base64", "media_type": block.media_type, "data": block.data}
    wire: dict[str, Any] = {"type": "document", "source": source}
    if block.title:
        wire["title"] = block.title
    if block.citations:
        wire["citations"] = {"enabled": True}
    return _cached(wire, block.cache)


def block_to_wire(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return _cached({"type": "text", "text": block.text}, block.cache)
    if isinstance(block, ImageBlock):
        source = ({"type": "url", "url": block.url} if block.url else
                  {"type": "base64", "media_type": block.media_type, "data": block.data})
        return _cached({"type": "image", "source": source}, block.cache)
    if isinstance(block, DocumentBlock):
        return _document(block)
    if isinstance(block, ToolUseBlock):
        return _cached({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}, block.cache)
    if isinstance(block, ToolResultBlock):
        content = block.content if isinstance(block.content, str) else [block_to_wire(b) for b in block.content]
        wire: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.tool_use_id, "content": content}
        if block.is_error:
            wire["is_error"] = True
        return _cached(wire, block.cache)
    if block.redacted_data is not None:
        return {"type": "redacted_thinking", "data": block.redacted_data}
    return {"type": "thinking", "thinking": block.thinking, "signature": block.signature or ""}


def _system(system: str | Sequence[TextBlock]) -> str | list[dict[str, Any]]:
    return system if isinstance(system, str) else [block_to_wire(b) for b in system]


def request_to_wire(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    max_tokens = request.max_tokens
    thinking = request.thinking
    budget = thinking.budget_tokens if thinking is not None and thinking.enabled else None
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS + (budget or 0)
    elif budget is not None and budget >= max_tokens:
        raise InvalidArgumentError(
            f"thinking budget_tokens ({budget}) must be below max_tokens ({max_tokens}) for Anthropic")
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": max_tokens,
        "messages": [{"role": m.role.value, "content": [block_to_wire(b) for b in m.content]}
                     for m in request.messages],
    }
    if request.system:
        body["system"] = _system(request.system)
    if request.temperature is not None:
        if request.temperature > 1:
            raise InvalidArgumentError(f"temperature {request.temperature} is above Anthropic's maximum of 1")
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_sequences:
        body["stop_sequences"] = request.stop_sequences
    if request.tools:
        body["tools"] = [
            _cached({"name": t.name, "description": t.description, "input_schema": t.input_schema,
                     **({"strict": t.strict} if t.strict is not None else {})}, t.cache)
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        wire_choice: dict[str, Any] = {"type": choice.mode}
        if choice.mode == "tool":
            wire_choice["name"] = choice.name
        if choice.disable_parallel:
            wire_choice["disable_parallel_tool_use"] = True
        body["tool_choice"] = wire_choice
    output_config: dict[str, Any] = {}
    if thinking is not None:
        if not thinking.enabled:
            body["thinking"] = {"type": "disabled"}
        elif budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        else:
            body["thinking"] = {"type": "adaptive"}
        if thinking.effort:
            output_config["effort"] = thinking.effort
    fmt = request.response_format
    if fmt is not None:
        if fmt.type != "json_schema":
            raise NotSupportedError("Anthropic has no free-form JSON mode; use ResponseFormat.json_schema(schema)",
                                    provider="anthropic", model=request.model)
        output_config["format"] = {"type": "json_schema", "schema": fmt.schema}
    if output_config:
        body["output_config"] = output_config
    if request.metadata and "user_id" in request.metadata:
        body["metadata"] = {"user_id": request.metadata["user_id"]}
    if stream:
        body["stream"] = True
    return body


def _block_from_wire(block: dict[str, Any]) -> ContentBlock | None:
    kind = block.get("type")
    if kind == "text":
        return TextBlock(block["text"])
    if kind == "tool_use":
        return ToolUseBlock(block["id"], block["name"], block.get("input") or {})
    if kind == "thinking":
        return ThinkingBlock(block.get("thinking") or "", block.get("signature"))
    if kind == "redacted_thinking":
        return ThinkingBlock("", None, redacted_data=block.get("data") or "")
    return None  # server-tool blocks (web search results, code execution…) have no neutral form


def response_from_wire(data: dict[str, Any], provider: str) -> CompletionResponse:
    content = [b for b in map(_block_from_wire, data["content"]) if b is not None]
    raw = data.get("stop_reason")
    if not raw:
        raise ResponseDecodeError("the message has no stop_reason: it never finished", provider=provider,
                                  model=data.get("model"))
    return CompletionResponse(
        id=data.get("id") or "", model=data.get("model") or "", content=content,
        stop_reason=stop_reason(raw), usage=usage_from(data.get("usage") or {}),
        provider=provider, raw_stop_reason=raw,
    )


def stream_from_wire(events: Iterator[tuple[str, str]], provider: str, model: str) -> Iterator[StreamChunk]:
    """Messages stream events to StreamChunks.  Ends only at ``message_stop``; an ``error``
    event (Anthropic reports overload that way after a 200), or an end without it, raises.
    Server-tool blocks (web search, code execution) also stream ``input_json_delta``; only the
    blocks opened as ``tool_use`` become tool calls."""
    loads = loads_event
    start_usage: dict[str, Any] = {}
    tool_blocks: set[int] = set()
    for event, data in events:
        if event == "content_block_delta":
            obj = loads(data)
            delta = obj["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                yield StreamChunk(text=delta["text"], provider=provider)
            elif kind == "input_json_delta" and obj["index"] in tool_blocks:
                yield StreamChunk(tool_call=ToolCallDelta(obj["index"], arguments=delta["partial_json"]),
                                  provider=provider)
            elif kind == "thinking_delta":
                yield StreamChunk(thinking=delta["thinking"], provider=provider)
            elif kind == "signature_delta":
                yield StreamChunk(signature=delta["signature"], provider=provider)
        elif event == "content_block_start":
            obj = loads(data)
            block = obj["content_block"]
            if block["type"] == "tool_use":
                tool_blocks.add(obj["index"])
                yield StreamChunk(tool_call=ToolCallDelta(obj["index"], id=block["id"], name=block["name"]),
                                  provider=provider)
            elif block["type"] == "redacted_thinking":
                yield StreamChunk(redacted_thinking=block.get("data") or "", provider=provider)
            elif block["type"] == "text" and block.get("text"):
                yield StreamChunk(text=block["text"], provider=provider)
        elif event == "message_start":
            message = loads(data)["message"]
            start_usage = message.get("usage") or {}
            yield StreamChunk(id=message.get("id"), model=message.get("model"), provider=provider)
        elif event == "message_delta":
            obj = loads(data)
            raw = (obj.get("delta") or {}).get("stop_reason")
            usage = usage_from({**start_usage, **(obj.get("usage") or {})})
            yield StreamChunk(stop_reason=stop_reason(raw) if raw else None, raw_stop_reason=raw,
                              usage=usage, provider=provider)
        elif event == "message_stop":
            return
        elif event == "error":
            raise error_for_event(loads(data).get("error") or {}, provider=provider, model=model)
    raise NetworkError("the stream ended before message_stop", provider=provider, model=model)


WIRE = WireFormat(request_to_wire, response_from_wire, stream_from_wire, iter_sse)


class AnthropicProvider(BatchMethods, HttpProvider):
    """Anthropic's Messages API.  ``betas`` become the ``anthropic-beta`` header.  Batches:
    Message Batches (failover_client.providers.anthropic_batch)."""

    name = "anthropic"
    api_key_env = "ANTHROPIC_API_KEY"
    default_base_url = "https://api.anthropic.com"
    chat_path = "/v1/messages"
    wire = WIRE
    batch_module = "failover_client.providers.anthropic_batch"
    supports_token_counting = True

    def __init__(self, api_key: str | None = None, *, betas: Sequence[str] = (), **options: Any) -> None:
        headers = {"anthropic-version": API_VERSION, **(options.pop("headers", None) or {})}
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        super().__init__(api_key, headers=headers, **options)

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def count_tokens(self, request: TokenCountRequest | CompletionRequest, *,
                     timeout: float | None = None) -> TokenCountResult:
        """Anthropic's own count, ``POST /v1/messages/count_tokens``: exact."""
        from ..tokens import prompt_request

        prompt = prompt_request(request)
        body = {key: value for key, value in self._body(prompt, False).items() if key in COUNT_TOKENS_FIELDS}
        data = self.transport().request("POST", "/v1/messages/count_tokens", body=dumps(body),
                                        deadline=Deadline(timeout), model=prompt.model).json()
        try:
            tokens = int(data["input_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self._malformed(exc, prompt) from None
        return TokenCountResult(tokens, exact=True, model=prompt.model, provider=self.name)
