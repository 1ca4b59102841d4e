"""Anthropic Messages (`POST /v1/messages`) as the real API writes it.

Shapes follow protocols.md §2 and recorded traffic: compact JSON with `model` first, usage with
cache counts and the `cache_creation` breakdown, named SSE events whose `data:` lines carry the
trailing space padding recent servers add, a `ping` after the first block opens, and errors as
`{"type":"error","error":{...},"request_id":...}`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from . import _documents
from ._protocol import (
    Call,
    ErrorSpec,
    Protocol,
    arguments_json,
    bearer_token,
    dumps,
    fragments,
    random_id,
    sse,
)
from ._steps import ERROR_TYPE_STATUS, Fault, Reply

STOP_REASONS = {"content_filter": "refusal"}  # every other neutral reason is spelled the same
TYPE_BY_STATUS = {status: error_type for error_type, status in ERROR_TYPE_STATUS.items()}
MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": (
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing "
        "to upgrade or purchase credits."
    ),
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": (
        "This request would exceed the rate limit for your organization (fake-org) of 50 requests "
        "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can "
        "see the response headers for current usage. Please reduce the prompt length or the "
        "maximum tokens requested, or try again later."
    ),
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}
# Faults whose status does not come from Fault.http_status: (status, message or None).
NAMED_FAULTS = {
    "rate_limit": (429, None),
    "overloaded": (529, None),
    "context_length": (400, "prompt is too long: 210000 tokens > 200000 maximum"),
    "content_filter": (400, "Output blocked by content filtering policy"),
}
ORGANIZATION_ID = "f4ke0000-0000-4000-8000-000000000000"


def _usage(usage: Mapping[str, int]) -> dict[str, int]:
    """Counts shared by every usage object; Anthropic's input excludes cache reads and writes."""
    return {
        "input_tokens": usage["input"] - usage["cache_read"] - usage["cache_write"],
        "cache_creation_input_tokens": usage["cache_write"],
        "cache_read_input_tokens": usage["cache_read"],
    }


def _full_usage(usage: Mapping[str, int], output: int) -> dict[str, Any]:
    return {
        **_usage(usage),
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage["cache_write"],
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def _stop(reply: Reply, call: Call, finished: bool) -> tuple[str | None, str | None]:
    """(stop_reason, stop_sequence) on the wire."""
    if not finished:
        return None, None
    reason = STOP_REASONS.get(reply.stop_reason, reply.stop_reason)
    if reason != "stop_sequence":
        return reason, None
    return reason, (call.body.get("stop_sequences") or ["\n\nHuman:"])[0]


Block = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]


def _blocks(reply: Reply) -> list[Block]:
    """Each content block as (complete block, block as opened in a stream, its stream deltas)."""
    blocks: list[Block] = []
    if reply.thinking is not None:
        blocks.append((
            {"type": "thinking", "thinking": reply.thinking, "signature": reply.signature},
            {"type": "thinking", "thinking": "", "signature": ""},
            [{"type": "thinking_delta", "thinking": text} for text in reply.thinking_chunks]
            + [{"type": "signature_delta", "signature": reply.signature}],
        ))
    texts = [*reply.chunks, *reply.refusal_chunks]  # a refusal is said as text
    if texts:
        blocks.append((
            {"type": "text", "text": "".join(texts)},
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": text} for text in texts],
        ))
    for call in reply.tool_calls:
        head: dict[str, Any] = {"type": "tool_use", "id": call.id or random_id("toolu_01", 22), "name": call.name}
        pieces = ["", *fragments(arguments_json(call.arguments))]
        blocks.append((
            {**head, "input": call.arguments},
            {**head, "input": {}, "caller": {"type": "direct"}},
            [{"type": "input_json_delta", "partial_json": piece} for piece in pieces],
        ))
    return blocks


class AnthropicProtocol(Protocol):
    name = "anthropic"
    route = "/v1/messages"

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-api-key") or bearer_token(headers)

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        invalid = "invalid_request_error"
        if self.api_key(headers) is None:
            return ErrorSpec(401, "authentication_error", "x-api-key header is required")
        if not headers.get("anthropic-version"):
            return ErrorSpec(400, invalid, "anthropic-version: header is required")
        if not json_ok:
            return ErrorSpec(400, invalid, "There was an error parsing the body: invalid JSON")
        for required in ("model", "max_tokens", "messages"):
            if required not in body:
                return ErrorSpec(400, invalid, f"{required}: Field required")
        return _documents.anthropic(body)

    def wrong_key(self, key: str) -> ErrorSpec:
        return ErrorSpec(401, "authentication_error", MESSAGES["authentication_error"])

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        status, message = NAMED_FAULTS.get(fault.kind, (fault.http_status or 500, None))
        error_type = TYPE_BY_STATUS.get(
            status, "invalid_request_error" if status < 500 else "api_error"
        )
        default = f"model: {call.model()}" if status == 404 else MESSAGES.get(error_type, "Error")
        return ErrorSpec(status, error_type, message or default)

    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        error = {"type": spec.type, "message": spec.message}
        return dumps({"type": "error", "error": error, "request_id": headers["request-id"]}).encode()

    def error_event(self, error_type: str, message: str) -> bytes:
        error = {"type": error_type, "message": message}
        return sse({"type": "error", "error": error, "request_id": random_id("req_011C", 20)}, "error")

    def response_headers(self) -> dict[str, str]:
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
        return {
            "request-id": random_id("req_011C", 20),
            "anthropic-organization-id": ORGANIZATION_ID,
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-limit": "2400000",
            "anthropic-ratelimit-tokens-remaining": "2400000",
            "anthropic-ratelimit-tokens-reset": reset,
        }

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        reason, sequence = _stop(reply, call, finished)
        body = {
            "model": call.model(reply),
            "id": random_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "content": [block for block, _, _ in _blocks(reply)],
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": _full_usage(reply.usage, reply.usage["output"]),
        }
        return dumps(body).encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        out: list[bytes] = []

        def event(name: str, data: dict[str, Any]) -> None:
            out.append(sse(data, name, pad=" " * (len(out) * 5 % 14)))

        output = reply.usage["output"]
        event("message_start", {"type": "message_start", "message": {
            "model": call.model(reply),
            "id": random_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _full_usage(reply.usage, min(output, 1)),
        }})
        blocks = _blocks(reply)
        for index, (_, opened, deltas) in enumerate(blocks):
            event("content_block_start", {"type": "content_block_start", "index": index, "content_block": opened})
            for delta in deltas:
                event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            event("content_block_stop", {"type": "content_block_stop", "index": index})
        out.insert(2 if blocks else 1, sse('{"type": "ping"}', "ping"))
        reason, sequence = _stop(reply, call, True)
        event("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": {**_usage(reply.usage), "output_tokens": output},
        })
        event("message_stop", {"type": "message_stop"})
        return out


PROTOCOL = AnthropicProtocol()
