"""Cohere Chat v2 (``POST {base}/v2/chat``), plain and streamed as SSE with named events.

Wire facts: protocols.md §5, checked against cohere-python (``CO_API_KEY``, with
``COHERE_API_KEY`` also accepted; ``delta.message.content.thinking`` in content deltas;
``delta.error`` on ``message-end``).  Mapping choices:

* ``tool_plan`` (the sentence a model says before calling tools) becomes a TextBlock, as the
  same words are text before a ``tool_use`` block on Anthropic; an assistant turn with tool
  calls sends its text back as ``tool_plan``.
* Usage comes from ``usage.tokens`` (what the model read and wrote, the prompt template
  included), because ``cached_tokens`` is a part of those counts and the Usage rule needs
  the cache inside ``input_tokens``.  ``billed_units`` are smaller (Cohere does not bill its
  template): a price table applied to these counts overstates Cohere's bill.  Billed units are
  used only when ``tokens`` is absent.
* ``finish_reason`` ``ERROR`` (an internal failure during generation, with ``delta.error`` in
  a stream) raises ServerError and ``TIMEOUT`` raises ProviderTimeoutError, rather than
  passing a broken answer off as finished.  An event carrying an ``error`` object (what proxies
  in front of Cohere send) raises it, classified as the same error in an answer would be.
* A stream is complete only at ``message-end``; Cohere may send ``data: [DONE]`` after it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

from ..errors import (
    NetworkError,
    NotSupportedError,
    ProviderError,
    ResponseDecodeError,
    error_for_event,
)
from ..provider import HttpProvider, WireFormat, tool_use_from_function_call
from ..streaming import iter_sse, loads_event
from ..types import (
    CompletionRequest,
    CompletionResponse,
    ContentBlock,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageBlock,
    Message,
    Role,
    StopReason,
    StreamChunk,
    TextBlock,
    ThinkingBlock,
    ToolCallDelta,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

STOP_REASONS = {
    "COMPLETE": StopReason.END_TURN,
    "STOP_SEQUENCE": StopReason.STOP_SEQUENCE,
    "MAX_TOKENS": StopReason.MAX_TOKENS,
    "TOOL_CALL": StopReason.TOOL_USE,
}
TOOL_CHOICES = {"any": "REQUIRED", "none": "NONE"}  # "auto" is the default: nothing is sent
FAILED = frozenset({"ERROR", "TIMEOUT"})
CO_API_KEY, COHERE_API_KEY = "CO_API_KEY", "COHERE_API_KEY"  # the SDK reads both; CO_API_KEY wins


def stop_reason(raw: str | None) -> StopReason:
    return STOP_REASONS.get(raw or "", StopReason.OTHER)


def usage_from(data: dict[str, Any] | None) -> Usage | None:
    if not data:
        return None
    counts = data.get("tokens") or data.get("billed_units") or {}
    return Usage(
        input_tokens=int(counts.get("input_tokens") or 0),
        output_tokens=int(counts.get("output_tokens") or 0),
        cache_read_tokens=int(data.get("cached_tokens") or 0),
    )


def failure(raw: str, message: str | None, provider: str, model: str | None) -> ProviderError:
    """The error for an answer that ended with finish_reason ERROR or TIMEOUT, classified by the
    shared table (TIMEOUT is a timeout; ERROR a server error unless its message says more)."""
    text = message or f"the generation ended with finish_reason {raw}"
    return error_for_event({"message": text, "code": raw}, provider=provider, model=model)


# --- request -------------------------------------------------------------------------------


def _user_part(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        return {"type": "image_url", "image_url": {"url": block.data_url()}}
    raise NotSupportedError(f"a {block.type} block cannot be sent in a Cohere user message", provider="cohere")


def _tool_result(block: ToolResultBlock) -> dict[str, Any]:
    if not isinstance(block.content, str) and any(isinstance(b, ImageBlock) for b in block.content):
        raise NotSupportedError("Cohere tool results hold text only, not images", provider="cohere")
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": block.text}


def _assistant(message: Message) -> dict[str, Any]:
    """Text with tool calls goes out as ``tool_plan``, as Cohere asks; thinking as thinking items."""
    text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
    thinking = [{"type": "thinking", "thinking": b.thinking} for b in message.content
                if isinstance(b, ThinkingBlock) and b.thinking]
    calls = [{"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
             for b in message.content if isinstance(b, ToolUseBlock)]
    out: dict[str, Any] = {"role": "assistant"}
    if calls:
        if text:
            out["tool_plan"] = text
        if thinking:
            out["content"] = thinking
        out["tool_calls"] = calls
    else:
        out["content"] = thinking + [{"type": "text", "text": text}]
    return out


def messages_to_wire(request: CompletionRequest) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = []
    if request.system:
        wire.append({"role": "system", "content": request.system_text})
    for message in request.messages:
        if message.role is Role.ASSISTANT:
            wire.append(_assistant(message))
            continue
        parts = []
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                wire.append(_tool_result(block))
            else:
                parts.append(block)
        if parts:
            first = parts[0]
            content = first.text if len(parts) == 1 and isinstance(first, TextBlock) else list(map(_user_part, parts))
            wire.append({"role": "user", "content": content})
    return wire


def request_to_wire(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": messages_to_wire(request), "stream": stream}
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["p"] = request.top_p
    if request.stop_sequences:
        body["stop_sequences"] = request.stop_sequences
    if request.tools:
        body["tools"] = [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.input_schema}} for t in request.tools]
        if any(t.strict for t in request.tools):
            body["strict_tools"] = True
    choice = request.tool_choice
    if choice is not None and choice.mode != "auto":
        if choice.mode == "tool":
            raise NotSupportedError("Cohere cannot be made to call one named tool; use ToolChoice.any()",
                                    provider="cohere", model=request.model)
        body["tool_choice"] = TOOL_CHOICES[choice.mode]
    fmt = request.response_format
    if fmt is not None:
        body["response_format"] = ({"type": "json_object"} if fmt.type == "json_object" else
                                   {"type": "json_object", "json_schema": fmt.schema})
    thinking = request.thinking
    if thinking is not None:
        wire_thinking: dict[str, Any] = {"type": "enabled" if thinking.enabled else "disabled"}
        if thinking.enabled and thinking.budget_tokens:
            wire_thinking["token_budget"] = thinking.budget_tokens
        body["thinking"] = wire_thinking
    return body


# --- response ------------------------------------------------------------------------------


def _content_from_wire(message: dict[str, Any]) -> list[ContentBlock]:
    content: list[ContentBlock] = []
    if message.get("tool_plan"):
        content.append(TextBlock(message["tool_plan"]))
    for item in message.get("content") or ():
        if item.get("type") == "text" and item.get("text"):
            content.append(TextBlock(item["text"]))
        elif item.get("type") == "thinking" and item.get("thinking"):
            content.append(ThinkingBlock(item["thinking"]))
    content.extend(tool_use_from_function_call(call) for call in message.get("tool_calls") or ())
    return content


def response_from_wire(data: dict[str, Any], provider: str) -> CompletionResponse:
    raw = data.get("finish_reason")
    if not raw:
        raise ResponseDecodeError("the answer has no finish_reason: it never finished", provider=provider)
    if raw in FAILED:
        raise failure(raw, None, provider, None)
    return CompletionResponse(
        id=data.get("id") or "", model="", content=_content_from_wire(data["message"]),
        stop_reason=stop_reason(raw), usage=usage_from(data.get("usage")) or Usage(),
        provider=provider, raw_stop_reason=raw,
    )


def stream_from_wire(events: Iterator[tuple[str, str]], provider: str, model: str) -> Iterator[StreamChunk]:
    """Cohere stream events to StreamChunks, keyed on each payload's ``type`` (as the SDK does,
    so missing ``event:`` lines do not matter).  Ends only at ``message-end``; citations,
    ``content-end``/``tool-call-end`` and ``debug`` events carry nothing of ours."""
    loads = loads_event
    for _event, data in events:
        if data == "[DONE]":
            continue
        obj = loads(data)
        kind = obj.get("type")
        if kind == "content-delta":
            content = obj["delta"]["message"]["content"]
            text = content.get("text")
            if text:
                yield StreamChunk(text=text, provider=provider)
            elif content.get("thinking"):
                yield StreamChunk(thinking=content["thinking"], provider=provider)
        elif kind == "tool-call-delta":
            function = obj["delta"]["message"]["tool_calls"]["function"]
            yield StreamChunk(tool_call=ToolCallDelta(obj["index"], arguments=function.get("arguments") or ""),
                              provider=provider)
        elif kind == "tool-plan-delta":
            plan = obj["delta"]["message"].get("tool_plan")
            if plan:
                yield StreamChunk(text=plan, provider=provider)
        elif kind == "tool-call-start":
            call = obj["delta"]["message"]["tool_calls"]
            function = call.get("function") or {}
            yield StreamChunk(tool_call=ToolCallDelta(obj["index"], id=call.get("id"), name=function.get("name"),
                                                      arguments=function.get("arguments") or ""), provider=provider)
        elif kind == "content-start":
            content = obj["delta"]["message"]["content"]
            if content.get("text"):
                yield StreamChunk(text=content["text"], provider=provider)
            elif content.get("thinking"):
                yield StreamChunk(thinking=content["thinking"], provider=provider)
        elif kind == "message-start":
            yield StreamChunk(id=obj.get("id"), model=model, provider=provider)
        elif kind == "message-end":
            delta = obj.get("delta") or {}
            raw = delta.get("finish_reason")
            if delta.get("error") or raw in FAILED:
                raise failure(raw or "ERROR", delta.get("error"), provider, model)
            yield StreamChunk(stop_reason=stop_reason(raw), raw_stop_reason=raw,
                              usage=usage_from(delta.get("usage")), provider=provider)
            return
        elif obj.get("error"):  # a proxy's error event, in OpenAI's shape
            raise error_for_event(obj["error"], provider=provider, model=model)
    raise NetworkError("the stream ended before message-end", provider=provider, model=model)


WIRE = WireFormat(request_to_wire, response_from_wire, stream_from_wire, iter_sse)


class CohereProvider(HttpProvider):
    """Cohere's Chat v2 API.  The key comes from ``api_key=``, ``CO_API_KEY`` or ``COHERE_API_KEY``."""

    name = "cohere"
    api_key_env = CO_API_KEY
    default_base_url = "https://api.cohere.com"
    chat_path = "/v2/chat"
    wire = WIRE

    def api_key(self) -> str:
        """As HttpProvider's, with ``COHERE_API_KEY`` read when ``CO_API_KEY`` is unset."""
        if not self._api_key and self.api_key_env == CO_API_KEY and not os.environ.get(CO_API_KEY):
            fallback = os.environ.get(COHERE_API_KEY)
            if fallback:
                return fallback
        return super().api_key()

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    supports_embeddings = True

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """``POST /v2/embed`` (embeddings.py holds the mapping)."""
        from . import embeddings

        return embeddings.embed(self, request, "/v2/embed", embeddings.COHERE, timeout=timeout)

    def _parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        """Cohere's answer does not name the model: it is the one asked for."""
        try:
            response = self.wire.response(data, self.name)
        except ProviderError as exc:
            exc.model = request.model
            raise
        response.model = request.model
        return response
