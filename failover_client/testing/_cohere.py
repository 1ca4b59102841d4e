"""Cohere Chat v2 (`POST /v2/chat`) as the real API writes it.

Shapes follow protocols.md §5 and recorded traffic: compact JSON answers with `message`,
`finish_reason` and `usage` (`billed_units`, `tokens`, `cached_tokens`); streams of named SSE
events (`message-start`, `content-*`, `tool-plan-delta`, `tool-call-*`, `message-end`) whose
`data:` carries the same `type`, closed by `message-end` and then `data: [DONE]` as recent
servers send; errors as `{"id": ..., "message": ...}`.

Cohere has no content-policy finish reason or error: a `content_filter` reply ends with
finish_reason `ERROR` (protocols.md §0.4), and a `content_filter` fault is a 400 whose message
says the prompt was blocked.  A refusal is said as text.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._protocol import Call, ErrorSpec, Protocol, arguments_json, bearer_token, dumps, fragments, random_id, sse
from ._steps import Fault, Reply

FINISH_REASONS = {
    "end_turn": "COMPLETE",
    "stop_sequence": "STOP_SEQUENCE",
    "max_tokens": "MAX_TOKENS",
    "tool_use": "TOOL_CALL",
    "content_filter": "ERROR",
    "refusal": "COMPLETE",
}
NO_KEY = "no api key supplied"
BAD_KEY = "Incorrect API key provided: {key}. You can find your API key at https://dashboard.cohere.com/api-keys."
RATE_LIMITED = (
    "You are using a Trial key, which is limited to 20 API calls / minute. You can continue to use the "
    "Trial key for free or upgrade to a Production key with higher rate limits at "
    "'https://dashboard.cohere.com/api-keys'."
)
TOO_MANY_TOKENS = (
    "too many tokens: size limit exceeded by 25836 tokens. Try using shorter or fewer inputs. "
    "The limit for this model is 288000 tokens."
)
BLOCKED = "invalid request: the prompt was blocked by the safety filter of this model"
OVERLOADED = "The server is temporarily overloaded. Please try again later."
SERVER_ERROR = "internal server error, this has been reported to our developers"
GENERATION_ERROR = "an internal error occurred during generation"
# Faults whose status does not come from Fault.http_status: (status, message, error_type).
NAMED_FAULTS = {
    "rate_limit": (429, RATE_LIMITED, None),
    "overloaded": (503, OVERLOADED, None),
    "context_length": (400, TOO_MANY_TOKENS, "TOO_MANY_TOKENS"),
    "content_filter": (400, BLOCKED, None),
}


def _usage(usage: Mapping[str, int]) -> dict[str, Any]:
    """`tokens` count the whole prompt; the billed part leaves out what the cache served."""
    return {
        "billed_units": {"input_tokens": usage["input"] - usage["cache_read"], "output_tokens": usage["output"]},
        "tokens": {"input_tokens": usage["input"], "output_tokens": usage["output"]},
        "cached_tokens": usage["cache_read"],
    }


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {"id": call.id or f"{call.name}_{random_id('', 12, 'abcdefghijklmnopqrstuvwxyz0123456789')}",
         "type": "function", "function": {"name": call.name, "arguments": arguments_json(call.arguments)}}
        for call in reply.tool_calls
    ]


def _texts(reply: Reply) -> list[str]:
    return [*reply.chunks, *reply.refusal_chunks]  # a refusal is said as text


class CohereProtocol(Protocol):
    name = "cohere"
    route = "/v2/chat"
    stream_type = "text/event-stream"

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return bearer_token(headers)

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        if self.api_key(headers) is None:
            return ErrorSpec(401, None, NO_KEY)
        if not json_ok:
            return ErrorSpec(400, None, "invalid request: the request body is not valid JSON")
        for required in ("model", "messages"):
            if not body.get(required):
                return ErrorSpec(400, None, f"invalid request: {required} must be specified")
        return None

    def wrong_key(self, key: str) -> ErrorSpec:
        return ErrorSpec(401, None, BAD_KEY.format(key="*" * len(key)))

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        if fault.kind in NAMED_FAULTS:
            status, message, error_type = NAMED_FAULTS[fault.kind]
            return ErrorSpec(status, error_type, message)
        status = fault.http_status or 500
        if status == 401:
            return self.wrong_key("fake-key")
        if status == 404:
            return ErrorSpec(404, None, f"model '{call.model()}' not found, make sure the correct model ID was used "
                                        "and that you have access to the model.")
        if status >= 500:
            return ErrorSpec(status, None, SERVER_ERROR)
        return ErrorSpec(status, None, f"invalid request: the request failed with status {status}")

    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        body = {"id": str(uuid.uuid4()), "message": spec.message}
        if spec.type:
            body = {"error_type": spec.type, **body}
        return dumps(body).encode()

    def error_event(self, error_type: str, message: str) -> bytes:
        delta = {"error": message, "finish_reason": "ERROR",
                 "usage": {"billed_units": {}, "tokens": {}, "cached_tokens": 0}}
        return sse({"type": "message-end", "delta": delta}, "message-end")

    def response_headers(self) -> dict[str, str]:
        return {
            "x-debug-trace-id": random_id("", 32, "0123456789abcdef"),
            "x-envoy-upstream-service-time": str(random.randint(5, 400)),
            "via": "1.1 google",
        }

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        message: dict[str, Any] = {"role": "assistant"}
        calls = _tool_calls(reply)
        text = "".join(_texts(reply))
        content = [{"type": "thinking", "thinking": reply.thinking}] if reply.thinking is not None else []
        if calls:
            if text:
                message["tool_plan"] = text
            message["tool_calls"] = calls
        elif text:
            content.append({"type": "text", "text": text})
        if content:
            message["content"] = content
        body = {
            "id": str(uuid.uuid4()),
            "message": message,
            "finish_reason": FINISH_REASONS[reply.stop_reason] if finished else None,
            "usage": _usage(reply.usage),
        }
        return dumps(body).encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        out: list[bytes] = []

        def event(data: dict[str, Any]) -> None:
            out.append(sse(data, data["type"]))

        event({"id": str(uuid.uuid4()), "type": "message-start", "delta": {"message": {
            "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}})
        index = 0
        if reply.thinking is not None:
            _content_events(event, index, "thinking", reply.thinking_chunks)
            index += 1
        calls = _tool_calls(reply)
        if calls:
            for piece in _texts(reply):
                event({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": piece}}})
            for i, tool in enumerate(calls):
                start = {**tool, "function": {"name": tool["function"]["name"], "arguments": ""}}
                event({"type": "tool-call-start", "index": i, "delta": {"message": {"tool_calls": start}}})
                for piece in fragments(tool["function"]["arguments"]):
                    event({"type": "tool-call-delta", "index": i,
                           "delta": {"message": {"tool_calls": {"function": {"arguments": piece}}}}})
                event({"type": "tool-call-end", "index": i})
        elif _texts(reply):
            _content_events(event, index, "text", _texts(reply))
        end = {"type": "message-end", "delta": {"finish_reason": FINISH_REASONS[reply.stop_reason],
                                                "usage": _usage(reply.usage)}}
        out.append(sse(end, "message-end") + sse("[DONE]"))  # one piece: the terminal event
        return out


def _content_events(event: Callable[[dict[str, Any]], None], index: int, kind: str, pieces: Sequence[str]) -> None:
    event({"type": "content-start", "index": index, "delta": {"message": {"content": {"type": kind, kind: ""}}}})
    for piece in pieces:
        event({"type": "content-delta", "index": index, "delta": {"message": {"content": {kind: piece}}}})
    event({"type": "content-end", "index": index})


PROTOCOL = CohereProtocol()
