"""Ollama's native chat API (``POST {base}/api/chat``), streamed as NDJSON.

Wire facts: protocols.md §6.  What differs from the SSE protocols:

* No key is needed for a local server; ``api_key=`` or ``OLLAMA_API_KEY`` (ollama.com cloud)
  is sent as a bearer token when given.
* Sampling options and the output limit live in ``options`` (``num_predict`` is max_tokens),
  JSON mode and schemas in ``format``, reasoning in ``think``; ``keep_alive`` and any other
  top-level option pass through ``CompletionRequest.extra``.
* Images travel as bare base64 in ``message.images``.  An image given by URL raises
  NotSupportedError before anything is sent: this client never fetches URLs itself.
* Tool-call arguments are JSON objects, not strings; a tool result is a ``tool`` message
  naming the tool (found from the matching tool call earlier in the conversation).  Calls
  without an ``id`` (older servers) get ``call_<n>``, numbered in the order they arrive.
* A stream is complete only at a line with ``done: true``; a line ``{"error": ...}`` inside a
  200 stream raises, classified like an HTTP error.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Iterator

from ..errors import NetworkError, NotSupportedError, ResponseDecodeError, error_for_event
from ..provider import HttpProvider, WireFormat, tool_arguments
from ..streaming import iter_ndjson, loads_event
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
    ToolCallDelta,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

STOP_REASONS = {"stop": StopReason.END_TURN, "length": StopReason.MAX_TOKENS}


def stop_reason(raw: str | None, tool_calls: bool) -> StopReason:
    """Ollama has no tool-call reason: a finished answer with tool calls is a tool use."""
    reason = STOP_REASONS.get(raw or "stop", StopReason.OTHER)
    return StopReason.TOOL_USE if tool_calls and reason is StopReason.END_TURN else reason


def usage_from(data: dict[str, Any]) -> Usage:
    return Usage(input_tokens=data.get("prompt_eval_count") or 0, output_tokens=data.get("eval_count") or 0)


# --- request -------------------------------------------------------------------------------


def _images(blocks: Iterable[Any]) -> list[str]:
    images = []
    for block in blocks:
        if isinstance(block, ImageBlock):
            if block.url:
                raise NotSupportedError("Ollama takes images as base64 data, not URLs; pass ImageBlock.from_base64",
                                        provider="ollama")
            images.append(block.data or "")
    return images


def _text(blocks: list[Any]) -> str:
    return "".join(b.text for b in blocks if isinstance(b, TextBlock))


def _assistant(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": _text(message.content)}
    thinking = "".join(b.thinking for b in message.content if isinstance(b, ThinkingBlock))
    if thinking:
        out["thinking"] = thinking
    calls = [{**({"id": b.id} if b.id else {}), "function": {"name": b.name, "arguments": b.input}}
             for b in message.content if isinstance(b, ToolUseBlock)]
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_result(block: ToolResultBlock, tool_names: dict[str, str]) -> dict[str, Any]:
    if not isinstance(block.content, str) and _images(block.content):
        raise NotSupportedError("Ollama tool results hold text only, not images", provider="ollama")
    out = {"role": "tool", "content": block.text}
    if block.tool_use_id in tool_names:
        out["tool_name"] = tool_names[block.tool_use_id]
    if block.tool_use_id:
        out["tool_call_id"] = block.tool_use_id
    return out


def messages_to_wire(request: CompletionRequest) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = []
    if request.system:
        wire.append({"role": "system", "content": request.system_text})
    tool_names: dict[str, str] = {}
    for message in request.messages:
        if message.role is Role.ASSISTANT:
            tool_names.update((b.id, b.name) for b in message.content if isinstance(b, ToolUseBlock))
            wire.append(_assistant(message))
            continue
        others = []
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                wire.append(_tool_result(block, tool_names))
            elif isinstance(block, DocumentBlock):
                raise NotSupportedError("Ollama takes no documents (put the text in a TextBlock)", provider="ollama")
            else:
                others.append(block)
        if others:
            user: dict[str, Any] = {"role": "user", "content": _text(others)}
            images = _images(others)
            if images:
                user["images"] = images
            wire.append(user)
    return wire


def _think(request: CompletionRequest) -> bool | str | None:
    thinking = request.thinking
    if thinking is None:
        return None
    if not thinking.enabled:
        return False
    return thinking.effort or True


def request_to_wire(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": messages_to_wire(request), "stream": stream}
    choice = request.tool_choice
    if choice is not None and choice.mode in ("any", "tool"):
        raise NotSupportedError("Ollama cannot be made to call a tool (it has no tool_choice)",
                                provider="ollama", model=request.model)
    if request.tools and not (choice is not None and choice.mode == "none"):
        body["tools"] = [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.input_schema}} for t in request.tools]
    fmt = request.response_format
    if fmt is not None:
        body["format"] = "json" if fmt.type == "json_object" else fmt.schema
    think = _think(request)
    if think is not None:
        body["think"] = think
    options: dict[str, Any] = {}
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.top_p is not None:
        options["top_p"] = request.top_p
    if request.stop_sequences:
        options["stop"] = request.stop_sequences
    if options:
        body["options"] = options
    return body


# --- response ------------------------------------------------------------------------------


def response_from_wire(data: dict[str, Any], provider: str) -> CompletionResponse:
    if data.get("done") is not True:
        raise ResponseDecodeError("the answer is not done: it never finished", provider=provider,
                                  model=data.get("model"))
    message = data["message"]
    content: list[ContentBlock] = []
    if message.get("thinking"):
        content.append(ThinkingBlock(message["thinking"]))
    if message.get("content"):
        content.append(TextBlock(message["content"]))
    calls = message.get("tool_calls") or ()
    for n, call in enumerate(calls):
        function = call["function"]
        arguments = tool_arguments(function.get("name"), function.get("arguments"))
        content.append(ToolUseBlock(call.get("id") or f"call_{n}", function["name"], arguments))
    raw = data.get("done_reason")
    return CompletionResponse(
        id="", model=data.get("model") or "", content=content, stop_reason=stop_reason(raw, bool(calls)),
        usage=usage_from(data), provider=provider, raw_stop_reason=raw,
    )


def stream_from_wire(lines: Iterator[str], provider: str, model: str) -> Iterator[StreamChunk]:
    """NDJSON chat chunks to StreamChunks: text and thinking fragments, tool calls arriving whole.
    Ends only at ``done: true``; an ``error`` line, or an end without ``done``, raises."""
    loads = loads_event
    calls = 0
    for line in lines:
        obj = loads(line)
        message = obj.get("message")
        if message:
            text = message.get("content")
            if text:
                yield StreamChunk(text=text, provider=provider)
            if message.get("thinking"):
                yield StreamChunk(thinking=message["thinking"], provider=provider)
            for call in message.get("tool_calls") or ():
                function = call["function"]
                arguments = tool_arguments(function.get("name"), function.get("arguments"))
                yield StreamChunk(tool_call=ToolCallDelta(
                    calls, id=call.get("id") or f"call_{calls}", name=function["name"],
                    arguments=json.dumps(arguments)), provider=provider)
                calls += 1
        if obj.get("done"):
            raw = obj.get("done_reason")
            yield StreamChunk(stop_reason=stop_reason(raw, calls > 0), raw_stop_reason=raw, usage=usage_from(obj),
                              model=obj.get("model"), provider=provider)
            return
        if "error" in obj:
            raise error_for_event(obj["error"], provider=provider, model=model)
    raise NetworkError("the stream ended before a line with done: true", provider=provider, model=model)


WIRE = WireFormat(request_to_wire, response_from_wire, stream_from_wire, iter_ndjson)


class OllamaProvider(HttpProvider):
    """A local Ollama server (``http://localhost:11434``), or ollama.com with an API key."""

    name = "ollama"
    api_key_env = "OLLAMA_API_KEY"
    default_base_url = "http://localhost:11434"
    chat_path = "/api/chat"
    wire = WIRE
    _stream_headers = {"Accept": "application/x-ndjson", "Accept-Encoding": "identity"}

    def api_key(self) -> str:
        """The optional bearer token; empty when none is configured (a local server needs none)."""
        return self._api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None) or ""

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    supports_embeddings = True

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """The native ``POST /api/embed`` (embeddings.py holds the mapping)."""
        from . import embeddings

        return embeddings.embed(self, request, embeddings.OLLAMA_PATH, embeddings.OLLAMA, timeout=timeout)
