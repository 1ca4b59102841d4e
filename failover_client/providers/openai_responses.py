"""OpenAI Responses (``POST {base}/responses``): OpenAI's newer protocol, the only one that serves
its ``-pro``, codex and deep-research models; Azure's v1 API and xAI speak it too.

Wire facts: protocols-responses.md.  Stateless by default: every call sends ``store: false`` and
the whole conversation as ``input`` items, so a conversation can move to any other protocol at
the next turn.  Reasoning survives a tool loop as the items' ``encrypted_content``, which is our
ThinkingBlock's signature; a reasoning item goes back without its ``rs_`` id, as an id the server
never stored is looked up and refused under ``store: false`` (the blob is self-contained).

As in :mod:`.openai`, the stream decoder maps each event's JSON to StreamChunks by hand, with the
text delta checked first (and its text decoded alone, :func:`lone_text`): it is most of a stream.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from ..errors import NetworkError, NotSupportedError, ResponseDecodeError, error_for_event
from ..provider import HttpProvider, WireFormat, tool_arguments
from ..streaming import iter_sse, loads_event, raw_decode
from ..types import (
    CompletionRequest,
    CompletionResponse,
    ContentBlock,
    DocumentBlock,
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

TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
INCOMPLETE_REASONS = {"max_output_tokens": StopReason.MAX_TOKENS, "content_filter": StopReason.CONTENT_FILTER}
ENCRYPTED_REASONING = "reasoning.encrypted_content"
SUMMARY_SEPARATOR = "\n\n"  # between the parts of one reasoning summary
# Server-tool and state items (web search, MCP, compaction...) have no neutral form and are skipped.

TEXT_DELTA = "response.output_text.delta"
_TEXT_DELTA_TYPE = '"type":"response.output_text.delta"'
_DELTA_KEY = '"delta":'


def usage_from(data: dict[str, Any] | None) -> Usage:
    """Responses usage already follows our rule: ``input_tokens`` includes cached tokens and
    ``output_tokens`` includes reasoning; ``cache_write_tokens`` is absent from older answers."""
    if not data:
        return Usage()
    details = data.get("input_tokens_details") or {}
    return Usage(
        input_tokens=data.get("input_tokens") or 0,
        output_tokens=data.get("output_tokens") or 0,
        cache_read_tokens=details.get("cached_tokens") or 0,
        cache_write_tokens=details.get("cache_write_tokens") or 0,
        reasoning_tokens=(data.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
    )


# --- request ------------------------------------------------------------------------------------


def _user_part(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "input_text", "text": block.text}
    if isinstance(block, ImageBlock):
        return {"type": "input_image", "image_url": block.data_url(), "detail": "auto"}
    if isinstance(block, DocumentBlock):
        return _input_file(block)
    raise NotSupportedError(f"a {block.type} block cannot be sent in a Responses user message")


def _input_file(block: DocumentBlock) -> dict[str, Any]:
    """An ``input_file``: inline content as a data URL with its file name, or a Files API id, or
    a URL the API fetches (http(s) only)."""
    if block.file_id is not None:
        return {"type": "input_file", "file_id": block.file_id}
    if block.url is not None:
        if not block.url.startswith(("https://", "http://")):
            raise NotSupportedError("the Responses API fetches documents by http(s) URL only")
        return {"type": "input_file", "file_url": block.url}
    return {"type": "input_file", "filename": block.filename, "file_data": block.data_url()}


def _tool_output(block: ToolResultBlock) -> str | list[dict[str, Any]]:
    return block.content if isinstance(block.content, str) else [_user_part(b) for b in block.content]


def _reasoning_item(block: ThinkingBlock) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": block.thinking}] if block.thinking else []
    return {"type": "reasoning", "summary": summary, "encrypted_content": block.signature}


def _user_items(message: Message) -> Iterator[dict[str, Any]]:
    """Tool results become ``function_call_output`` items, the other blocks user messages, in order."""
    parts: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            if parts:
                yield {"role": "user", "content": parts}
                parts = []
            yield {"type": "function_call_output", "call_id": block.tool_use_id, "output": _tool_output(block)}
        else:
            parts.append(_user_part(block))
    if parts:
        yield {"role": "user", "content": parts}


def _assistant_items(message: Message, replay_reasoning: bool) -> Iterator[dict[str, Any]]:
    """Text as assistant messages, tool uses as ``function_call`` items and, when asked, thinking
    with its encrypted content as ``reasoning`` items, in order.  Thinking without a signature (or
    from another provider's redaction) cannot be replayed and is left out."""
    texts: list[str] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
            continue
        if texts:
            yield {"role": "assistant", "content": "".join(texts)}
            texts = []
        if isinstance(block, ToolUseBlock):
            yield {"type": "function_call", "call_id": block.id, "name": block.name,
                   "arguments": json.dumps(block.input)}
        elif isinstance(block, ThinkingBlock) and replay_reasoning and block.signature:
            yield _reasoning_item(block)
    if texts:
        yield {"role": "assistant", "content": "".join(texts)}


def input_items(request: CompletionRequest) -> list[dict[str, Any]]:
    replay_reasoning = request.thinking is not None and request.thinking.enabled
    items: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role is Role.ASSISTANT:
            items += _assistant_items(message, replay_reasoning)
        else:
            items += _user_items(message)
    return items


def request_to_wire(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    if request.stop_sequences:
        raise NotSupportedError("the Responses API has no stop sequences", model=request.model)
    body: dict[str, Any] = {"model": request.model, "input": input_items(request), "store": False}
    if request.system:
        body["instructions"] = request.system_text
    if request.max_tokens is not None:
        body["max_output_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.tools:
        body["tools"] = [  # strict always explicit: its server default has changed over time
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.input_schema,
             "strict": bool(t.strict)}
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = (TOOL_CHOICES[choice.mode] if choice.mode != "tool"
                               else {"type": "function", "name": choice.name})
        if choice.disable_parallel and request.tools:
            body["parallel_tool_calls"] = False
    fmt = request.response_format
    if fmt is not None:
        body["text"] = {"format": {"type": "json_object"} if fmt.type == "json_object" else {
            "type": "json_schema", "name": fmt.name, "schema": fmt.schema, "strict": fmt.strict}}
    thinking = request.thinking
    if thinking is not None and thinking.enabled:
        body["reasoning"] = {"effort": thinking.effort_level(), "summary": "auto"}
        body["include"] = [ENCRYPTED_REASONING]
    if request.metadata:
        body["metadata"] = request.metadata
    if stream:
        body["stream"] = True
    return body


# --- answer -------------------------------------------------------------------------------------


def _summary_text(item: dict[str, Any]) -> str:
    """A reasoning item's readable text: its summary parts, else raw ``reasoning_text`` content
    (open-weight models behind compatible servers)."""
    parts = [p.get("text") or "" for p in item.get("summary") or () if p.get("type") == "summary_text"]
    if not parts:
        parts = [p.get("text") or "" for p in item.get("content") or () if p.get("type") == "reasoning_text"]
    return SUMMARY_SEPARATOR.join(parts)


def _failure(response: dict[str, Any], provider: str) -> Exception:
    error = response.get("error")
    return error_for_event(error if isinstance(error, dict) else {"message": "the response failed"},
                           provider=provider, model=response.get("model"))


def stop_reason(response: dict[str, Any], tool_use: bool, refused: bool) -> tuple[StopReason, str | None]:
    """(our stop reason, the raw one) of a finished response, by protocols-responses.md §7.2."""
    status = response.get("status")
    if status == "incomplete":
        raw = (response.get("incomplete_details") or {}).get("reason")
        return INCOMPLETE_REASONS.get(raw or "", StopReason.OTHER), raw
    if status != "completed":
        return StopReason.OTHER, status
    if tool_use:
        return StopReason.TOOL_USE, status
    return (StopReason.REFUSAL if refused else StopReason.END_TURN), status


def response_from_wire(data: dict[str, Any], provider: str) -> CompletionResponse:
    status = data.get("status")
    if status == "failed":
        raise _failure(data, provider)
    if status not in ("completed", "incomplete", "cancelled"):
        raise ResponseDecodeError(f"the response has status {status!r}: it never finished", provider=provider,
                                  model=data.get("model"))
    content: list[ContentBlock] = []
    refusals: list[str] = []
    for item in data["output"]:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    content.append(TextBlock(part["text"]))
                elif part.get("type") == "refusal":
                    refusals.append(part.get("refusal") or "")
        elif kind == "function_call":
            name = item.get("name") or ""
            content.append(ToolUseBlock(item.get("call_id") or "", name, tool_arguments(name, item.get("arguments"))))
        elif kind == "reasoning":
            text, signature = _summary_text(item), item.get("encrypted_content")
            if text or signature:
                content.append(ThinkingBlock(text, signature))
    reason, raw = stop_reason(data, any(isinstance(b, ToolUseBlock) for b in content), bool(refusals))
    return CompletionResponse(
        id=data.get("id") or "", model=data.get("model") or "", content=content, stop_reason=reason,
        usage=usage_from(data.get("usage")), provider=provider, raw_stop_reason=raw,
        refusal="".join(refusals) or None,
    )


# --- stream -------------------------------------------------------------------------------------


def lone_text(data: str) -> str | None:
    """A text delta event's text, decoded on its own; ``None`` means "decode the whole event".
    Such events are most of a stream, and the ids, sequence numbers and padding around the text
    are never read.  Inside a JSON string every quote is escaped, so the two markers (the event's
    type, then the ``delta`` key) cannot match inside a value; a layout with spaces after the
    colons, or a delta that is not a string, goes to the full decoder."""
    if _TEXT_DELTA_TYPE not in data:
        return None
    at = data.find(_DELTA_KEY)
    if at < 0:
        return None
    try:
        text, _end = raw_decode(data, at + len(_DELTA_KEY))
    except ValueError:
        return None
    return text if text.__class__ is str else None


def stream_from_wire(events: Iterator[tuple[str, str]], provider: str, model: str) -> Iterator[StreamChunk]:
    """``response.*`` events to StreamChunks.  Ends at ``response.completed`` or
    ``response.incomplete``; ``response.failed``, an ``error`` event (either of its two shapes),
    or an end before a terminal event raises.  Tool calls are indexed by ``output_index``, opened
    at ``output_item.added`` (name and ``call_id``); arguments that arrive only whole, in
    ``function_call_arguments.done``, are passed on then.  A reasoning item's encrypted content
    is read from ``output_item.done`` only (on ``.added`` it may be incomplete)."""
    loads = loads_event
    argued: set[int] = set()  # function calls whose arguments streamed as deltas
    tool_use = refused = False
    for event, data in events:
        if event == TEXT_DELTA:  # OpenAI and xAI name every event (OpenRouter does not: decoded whole)
            text = lone_text(data)
            if text is not None:
                yield StreamChunk(text=text, provider=provider)
                continue
        obj = loads(data)
        kind = obj.get("type") if obj.__class__ is dict else None
        if kind == TEXT_DELTA:
            yield StreamChunk(text=obj["delta"], provider=provider)
        elif kind == "response.function_call_arguments.delta":
            argued.add(obj["output_index"])
            yield StreamChunk(tool_call=ToolCallDelta(obj["output_index"], arguments=obj["delta"]), provider=provider)
        elif kind == "response.reasoning_summary_text.delta" or kind == "response.reasoning_text.delta":
            yield StreamChunk(thinking=obj["delta"], provider=provider)
        elif kind == "response.output_item.added":
            item = obj["item"]
            if item.get("type") == "function_call":
                tool_use = True
                yield StreamChunk(tool_call=ToolCallDelta(obj["output_index"], id=item.get("call_id"),
                                                          name=item.get("name")), provider=provider)
        elif kind == "response.output_item.done":
            item = obj["item"]
            if item.get("type") == "reasoning" and item.get("encrypted_content"):
                yield StreamChunk(signature=item["encrypted_content"], provider=provider)
        elif kind == "response.function_call_arguments.done":
            index = obj["output_index"]
            if index not in argued and obj.get("arguments"):
                yield StreamChunk(tool_call=ToolCallDelta(index, arguments=obj["arguments"]), provider=provider)
        elif kind == "response.reasoning_summary_part.added":
            if obj.get("summary_index"):
                yield StreamChunk(thinking=SUMMARY_SEPARATOR, provider=provider)
        elif kind == "response.refusal.delta":
            refused = True
            yield StreamChunk(refusal=obj["delta"], provider=provider)
        elif kind == "response.created":
            response = obj["response"]
            yield StreamChunk(id=response.get("id"), model=response.get("model"), provider=provider)
        elif kind == "response.completed" or kind == "response.incomplete":
            response = obj["response"]
            reason, raw = stop_reason(response, tool_use, refused)
            yield StreamChunk(stop_reason=reason, raw_stop_reason=raw, usage=usage_from(response.get("usage")),
                              provider=provider)
            return
        elif kind == "response.failed":
            raise _failure(obj["response"], provider)
        elif kind == "error" or (kind is None and obj.__class__ is dict and obj.get("error")):
            error = obj.get("error")  # nested {"error": {...}}, or the documented flat fields
            raise error_for_event(error if isinstance(error, dict) else
                                  {"code": obj.get("code"), "message": obj.get("message"), "param": obj.get("param")},
                                  provider=provider, model=model)
    raise NetworkError("the stream ended before response.completed", provider=provider, model=model)


WIRE = WireFormat(request_to_wire, response_from_wire, stream_from_wire, iter_sse)


class OpenAIResponsesProvider(HttpProvider):
    """OpenAI's Responses API, or a host that serves it (``base_url`` ends in ``/v1``: Azure's
    ``https://{resource}.openai.azure.com/openai/v1``, ``https://api.x.ai/v1``).  The catalog
    builds it with ``create("openai", api="responses")``, and for ``openai/<model>`` when the
    model registry marks the model Responses-only."""

    name = "openai"
    api_key_env = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"
    chat_path = "/responses"
    wire = WIRE

    def __init__(self, api_key: str | None = None, *, organization: str | None = None,
                 project: str | None = None, **options: Any) -> None:
        headers = dict(options.pop("headers", None) or {})
        for header, value in (("OpenAI-Organization", organization), ("OpenAI-Project", project)):
            if value:
                headers[header] = value
        super().__init__(api_key, headers=headers, **options)

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}
