"""OpenAI Responses (`POST /v1/responses`) as the real API writes it.

Shapes follow protocols-responses.md and recorded traffic (the gpt-4o and gpt-5.4 streams of the
corpus): a `response` object echoing the request's settings, output items (reasoning, message,
function_call) each opened by `response.output_item.added` and closed by `.done`, text deltas
with `obfuscation` padding, `sequence_number` on every event, no `[DONE]`: the stream ends with
`response.completed`, or `response.incomplete` when cut by the token limit or a content filter.
Errors, keys and rate-limit headers are Chat Completions' (same host, same error body).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import Any

from . import _documents
from ._openai import STREAM_ERROR_TYPES, OpenAIProtocol
from ._protocol import Call, ErrorSpec, arguments_json, fragments, random_id, sse
from ._steps import Fault, Reply

INCOMPLETE = {"max_tokens": "max_output_tokens", "content_filter": "content_filter"}
CONTEXT_TOO_LONG = "Your input exceeds the context window of this model. Please adjust your input and try again."
HEX = "0123456789abcdef"


def _usage(usage: Mapping[str, int]) -> dict[str, Any]:
    return {
        "input_tokens": usage["input"],
        "input_tokens_details": {"cache_write_tokens": usage["cache_write"], "cached_tokens": usage["cache_read"]},
        "output_tokens": usage["output"],
        "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
        "total_tokens": usage["input"] + usage["output"],
    }


def _items(reply: Reply) -> list[dict[str, Any]]:
    """The finished output items of a reply, in output order."""
    items: list[dict[str, Any]] = []
    if reply.thinking is not None:
        items.append({"id": random_id("rs_", 48, HEX), "type": "reasoning",
                      "summary": [{"type": "summary_text", "text": reply.thinking}] if reply.thinking else [],
                      "encrypted_content": reply.signature})
    parts: list[dict[str, Any]] = []
    if reply.text or not (reply.tool_calls or reply.refusal is not None):
        parts.append({"type": "output_text", "annotations": [], "logprobs": [], "text": reply.text})
    if reply.refusal is not None:
        parts.append({"type": "refusal", "refusal": reply.refusal})
    if parts:
        items.append({"id": random_id("msg_", 48, HEX), "type": "message", "status": "completed",
                      "content": parts, "role": "assistant"})
    for call in reply.tool_calls:
        items.append({"id": random_id("fc_", 48, HEX), "type": "function_call", "status": "completed",
                      "arguments": arguments_json(call.arguments), "call_id": call.id or random_id("call_", 24),
                      "name": call.name})
    return items


class ResponsesProtocol(OpenAIProtocol):
    name = "responses"
    route = "/v1/responses"

    def check_fields(self, body: Mapping[str, Any]) -> ErrorSpec | None:
        for chat_only in ("messages", "max_tokens", "response_format"):  # a Chat Completions body sent here
            if chat_only in body:
                return ErrorSpec(400, "invalid_request_error", f"Unknown parameter: '{chat_only}'.",
                                 code="unknown_parameter", param=chat_only)
        return _documents.responses(body)

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        if fault.kind == "context_length":
            return ErrorSpec(400, "invalid_request_error", CONTEXT_TOO_LONG, code="context_length_exceeded",
                             param="input")
        return super().fault_error(fault, call)

    def error_event(self, error_type: str, message: str) -> bytes:
        """The documented flat `error` event."""
        code = STREAM_ERROR_TYPES.get(error_type, error_type)
        return sse({"type": "error", "code": code, "message": message, "param": None}, event="error")

    def _response(self, reply: Reply, call: Call, status: str, output: list[Any],
                  usage: dict[str, Any] | None, response_id: str, created: int) -> dict[str, Any]:
        """The `response` object, with the echoes of the request a real one carries."""
        body = call.body
        cut = INCOMPLETE.get(reply.stop_reason) if status == "incomplete" else None
        return {
            "id": response_id, "object": "response", "created_at": created, "status": status,
            "background": False, "error": None,
            "incomplete_details": {"reason": cut} if cut else None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": call.model(reply), "output": output, "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"),
                                                        "summary": None},
            "service_tier": "default" if usage else "auto", "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0), "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": usage, "metadata": {},
        }

    def _final_status(self, reply: Reply) -> str:
        return "incomplete" if reply.stop_reason in INCOMPLETE else "completed"

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        status = self._final_status(reply) if finished else "in_progress"
        body = self._response(reply, call, status, _items(reply), _usage(reply.usage) if finished else None,
                              random_id("resp_", 50, HEX), int(time.time()))
        return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        obfuscate = (call.body.get("stream_options") or {}).get("include_obfuscation") is not False
        response_id, created = random_id("resp_", 50, HEX), int(time.time())
        out: list[bytes] = []

        def event(kind: str, **fields: Any) -> None:
            out.append(sse({"type": kind, "sequence_number": len(out), **fields}, event=kind))

        def delta(kind: str, **fields: Any) -> None:
            if obfuscate:
                fields["obfuscation"] = random_id("", random.randint(3, 15))
            event(kind, **fields)

        opening = self._response(reply, call, "in_progress", [], None, response_id, created)
        event("response.created", response=opening)
        event("response.in_progress", response=opening)
        items = _items(reply)
        for index, item in enumerate(items):
            ids = {"item_id": item["id"], "output_index": index}
            kind = item["type"]
            if kind == "reasoning":
                event("response.output_item.added", output_index=index,
                      item={"id": item["id"], "type": "reasoning", "summary": []})
                if reply.thinking:
                    part = {"type": "summary_text", "text": ""}
                    event("response.reasoning_summary_part.added", **ids, summary_index=0, part=part)
                    for text in reply.thinking_chunks:
                        delta("response.reasoning_summary_text.delta", **ids, summary_index=0, delta=text)
                    event("response.reasoning_summary_text.done", **ids, summary_index=0, text=reply.thinking)
                    event("response.reasoning_summary_part.done", **ids, summary_index=0,
                          part={**part, "text": reply.thinking})
            elif kind == "message":
                event("response.output_item.added", output_index=index,
                      item={**item, "status": "in_progress", "content": []})
                for content_index, part in enumerate(item["content"]):
                    at = {**ids, "content_index": content_index}
                    if part["type"] == "output_text":
                        event("response.content_part.added", **at, part={**part, "text": ""})
                        for text in reply.chunks:
                            delta("response.output_text.delta", **at, delta=text, logprobs=[])
                        event("response.output_text.done", **at, text=reply.text, logprobs=[])
                    else:
                        event("response.content_part.added", **at, part={"type": "refusal", "refusal": ""})
                        for text in reply.refusal_chunks:
                            event("response.refusal.delta", **at, delta=text)
                        event("response.refusal.done", **at, refusal=reply.refusal)
                    event("response.content_part.done", **at, part=part)
            else:
                event("response.output_item.added", output_index=index,
                      item={**item, "status": "in_progress", "arguments": ""})
                for piece in fragments(item["arguments"]):
                    delta("response.function_call_arguments.delta", **ids, delta=piece)
                event("response.function_call_arguments.done", **ids, arguments=item["arguments"])
            event("response.output_item.done", output_index=index, item=item)
        status = self._final_status(reply)
        final = self._response(reply, call, status, items, _usage(reply.usage), response_id, created)
        event(f"response.{status}", response=final)
        return out


PROTOCOL = ResponsesProtocol()
