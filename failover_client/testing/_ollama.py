"""Ollama's native chat API (`POST /api/chat`) as a real server writes it.

Shapes follow protocols.md §6 and recorded traffic: one JSON object per answer, or NDJSON lines
(`application/x-ndjson`) each carrying a fragment of `message.content` or `message.thinking`,
tool calls arriving whole with object arguments, and a last line with `done: true`,
`done_reason` and the token counts and nanosecond durations.  Errors are `{"error": "..."}`,
as a body with an HTTP status or as a line inside a 200 stream.

Ollama has no content-policy error; a `content_filter` fault is a 400 whose message says the
prompt was blocked, and a `content_filter` or refusal reply ends with `done_reason: stop`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._protocol import Call, ErrorSpec, Protocol, bearer_token, dumps, random_id
from ._steps import Fault, Reply

DONE_REASONS = {"max_tokens": "length"}  # every other neutral reason ends with "stop"
OVERLOADED = "server busy, please try again.  maximum pending requests exceeded"
# Faults whose status does not come from Fault.http_status: (status, message).
NAMED_FAULTS = {
    "rate_limit": (429, "too many requests, please try again later"),
    "overloaded": (503, OVERLOADED),
    "context_length": (400, "the input length exceeds the context length"),
    "content_filter": (400, "the prompt was blocked by a content policy"),
}


@dataclass(frozen=True)
class OllamaCall(Call):
    """Ollama streams unless the body says `"stream": false`."""

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is not False


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime()) + f"{random.randint(0, 999999):06d}Z"


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [{"id": call.id or random_id("call_", 8, "abcdefghijklmnopqrstuvwxyz0123456789"),
             "function": {"index": i, "name": call.name, "arguments": dict(call.arguments)}}
            for i, call in enumerate(reply.tool_calls)]


def _line(obj: Mapping[str, Any]) -> bytes:
    return dumps(obj).encode() + b"\n"


def _finish(reply: Reply) -> dict[str, Any]:
    """The fields of the last object: why it stopped, token counts, durations in nanoseconds."""
    return {
        "done": True,
        "done_reason": DONE_REASONS.get(reply.stop_reason, "stop"),
        "total_duration": random.randint(10**8, 10**10),
        "load_duration": random.randint(10**5, 10**8),
        "prompt_eval_count": reply.usage["input"],
        "prompt_eval_duration": random.randint(10**6, 10**9),
        "eval_count": reply.usage["output"],
        "eval_duration": random.randint(10**7, 10**10),
    }


class OllamaProtocol(Protocol):
    name = "ollama"
    route = "/api/chat"
    json_type = "application/json; charset=utf-8"
    error_type = "application/json; charset=utf-8"
    stream_type = "application/x-ndjson"

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return bearer_token(headers)

    def call(self, name: str, body: Mapping[str, Any], headers: Mapping[str, str], path: str,
             query: Mapping[str, str]) -> Call:
        return OllamaCall(name, body, headers, path, query)

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        """A local server asks for no key; it checks only the body."""
        if not json_ok:
            return ErrorSpec(400, None, "invalid character 'x' looking for beginning of value")
        if not body.get("model"):
            return ErrorSpec(400, None, "model is required")
        return None

    def wrong_key(self, key: str) -> ErrorSpec:
        return ErrorSpec(401, None, "unauthorized")

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        if fault.kind in NAMED_FAULTS:
            status, message = NAMED_FAULTS[fault.kind]
            return ErrorSpec(status, None, message)
        status = fault.http_status or 500
        if status == 404:
            return ErrorSpec(404, None, f"model '{call.model()}' not found")
        if status == 401:
            return self.wrong_key("")
        if status == 503:
            return ErrorSpec(503, None, OVERLOADED)
        return ErrorSpec(status, None, f"request failed with status {status}")

    def corrupt(self, event: bytes) -> bytes:
        """An NDJSON line cut in half (and still ended, so the client reads it as a line)."""
        return event[: len(event) // 2] + b"\n"

    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        return dumps({"error": spec.message}).encode()

    def error_event(self, error_type: str, message: str) -> bytes:
        return _line({"error": message})

    def response_headers(self) -> dict[str, str]:
        return {}

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text + (reply.refusal or "")}
        if reply.thinking is not None:
            message["thinking"] = reply.thinking
        if reply.tool_calls:
            message["tool_calls"] = _tool_calls(reply)
        body: dict[str, Any] = {"model": call.model(reply), "created_at": _now(), "message": message}
        body.update(_finish(reply) if finished else {"done": False})
        return dumps(body).encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        model = call.model(reply)

        def line(**message: Any) -> bytes:
            return _line({"model": model, "created_at": _now(), "message": {"role": "assistant", **message},
                          "done": False})

        out = [line(content="", thinking=piece) for piece in reply.thinking_chunks]
        out += [line(content=piece) for piece in (*reply.chunks, *reply.refusal_chunks)]
        if reply.tool_calls:
            out.append(line(content="", tool_calls=_tool_calls(reply)))
        out.append(_line({"model": model, "created_at": _now(), "message": {"role": "assistant", "content": ""},
                          **_finish(reply)}))
        return out


PROTOCOL = OllamaProtocol()
