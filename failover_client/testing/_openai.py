"""OpenAI Chat Completions (`POST /v1/chat/completions`) as the real API writes it.

Shapes follow protocols.md §1 and recorded traffic: pretty-printed JSON bodies (indent 2 for
answers, 4 for errors), `chat.completion.chunk` events with `service_tier`,
`system_fingerprint` and `obfuscation` padding, an optional usage chunk with `choices: []`,
and the literal `data: [DONE]` terminator.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import Any

from . import _documents
from ._protocol import Call, ErrorSpec, Protocol, arguments_json, bearer_token, fragments, random_id, sse
from ._steps import Fault, Reply

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "stop",  # a refusal is `message.refusal` with finish_reason "stop"
}
SYSTEM_FINGERPRINT = "fp_f4ke5e7v3r"
STREAM_ERROR_TYPES = {"overloaded_error": "server_error", "api_error": "server_error"}

NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
    "username) if you're accessing the API from your browser and are prompted for a username and "
    "password. You can obtain an API key from https://platform.openai.com/account/api-keys."
)
BAD_KEY = (
    "Incorrect API key provided: {key}. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)
BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
    "help center at help.openai.com.)"
)
RATE_LIMITED = (
    "Rate limit reached for {model} in organization org-fakeprovider on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1. Please try again in {wait}s. Visit "
    "https://platform.openai.com/account/rate-limits to learn more."
)
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
OVERLOADED = "The server is overloaded or not ready yet."
CONTEXT_TOO_LONG = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "130012 tokens. Please reduce the length of the messages."
)
FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
FILTER_RESULT = {
    "hate": {"filtered": True, "severity": "medium"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def _mask(key: str) -> str:
    return f"{key[:3]}*****{key[-4:]}" if len(key) > 8 else "*****"


def _usage(usage: Mapping[str, int]) -> dict[str, Any]:
    prompt_details = {"cached_tokens": usage["cache_read"], "audio_tokens": 0}
    if usage["cache_write"]:
        prompt_details["cache_write_tokens"] = usage["cache_write"]
    return {
        "prompt_tokens": usage["input"],
        "completion_tokens": usage["output"],
        "total_tokens": usage["input"] + usage["output"],
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": usage["reasoning"],
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _content(reply: Reply) -> str | None:
    """`content` is null when the answer is only tool calls or a refusal."""
    if reply.text or not (reply.tool_calls or reply.refusal is not None):
        return reply.text
    return None


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id or random_id("call_", 24),
            "type": "function",
            "function": {"name": call.name, "arguments": arguments_json(call.arguments)},
        }
        for call in reply.tool_calls
    ]


class OpenAIProtocol(Protocol):
    name = "openai"
    route = "/v1/chat/completions"
    error_type = "application/json; charset=utf-8"

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}/v1"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return bearer_token(headers)

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        invalid = "invalid_request_error"
        if self.api_key(headers) is None:
            return ErrorSpec(401, invalid, NO_KEY)
        if not json_ok:
            return ErrorSpec(400, invalid, BAD_JSON)
        if not body.get("model"):
            return ErrorSpec(400, invalid, "you must provide a model parameter")
        return self.check_fields(body)

    def check_fields(self, body: Mapping[str, Any]) -> ErrorSpec | None:
        """The route's own checks of a JSON body that names a model."""
        invalid = "invalid_request_error"
        if "messages" not in body:
            return ErrorSpec(
                400, invalid, "Missing required parameter: 'messages'.",
                code="missing_required_parameter", param="messages",
            )
        if not isinstance(body["messages"], list) or not body["messages"]:
            return ErrorSpec(
                400, invalid,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                code="empty_array", param="messages",
            )
        return _documents.openai_chat(body)

    def wrong_key(self, key: str) -> ErrorSpec:
        return ErrorSpec(
            401, "invalid_request_error", BAD_KEY.format(key=_mask(key)), code="invalid_api_key"
        )

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        if fault.kind == "rate_limit":
            wait = fault.headers.get("retry-after", "20")
            message = RATE_LIMITED.format(model=call.model(), wait=wait)
            return ErrorSpec(429, "requests", message, code="rate_limit_exceeded")
        if fault.kind == "overloaded":
            return ErrorSpec(503, "server_error", OVERLOADED)
        if fault.kind == "context_length":
            return ErrorSpec(
                400, "invalid_request_error", CONTEXT_TOO_LONG,
                code="context_length_exceeded", param="messages",
            )
        if fault.kind == "content_filter":
            innererror = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": FILTER_RESULT}
            return ErrorSpec(
                400, None, FILTERED, code="content_filter", param="prompt",
                extra={"status": 400, "innererror": innererror},
            )
        return self._status_error(fault.http_status or 500, call)

    def _status_error(self, status: int, call: Call) -> ErrorSpec:
        invalid = "invalid_request_error"
        if status == 401:
            return self.wrong_key("sk-fake-key-0000")
        if status == 404:
            message = f"The model `{call.model()}` does not exist or you do not have access to it."
            return ErrorSpec(404, invalid, message, code="model_not_found")
        if status == 429:
            message = RATE_LIMITED.format(model=call.model(), wait="20")
            return ErrorSpec(429, "requests", message, code="rate_limit_exceeded")
        if status == 503:
            return ErrorSpec(503, "server_error", OVERLOADED)
        if status >= 500:
            return ErrorSpec(status, "server_error", SERVER_ERROR)
        return ErrorSpec(status, invalid, f"Request failed with status code {status}.")

    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        error = {"message": spec.message, "type": spec.type, "param": spec.param, "code": spec.code}
        return (json.dumps({"error": {**error, **spec.extra}}, indent=4) + "\n").encode()

    def error_event(self, error_type: str, message: str) -> bytes:
        kind = STREAM_ERROR_TYPES.get(error_type, error_type)
        return sse({"error": {"message": message, "type": kind, "param": None, "code": None}})

    def response_headers(self) -> dict[str, str]:
        return {
            "x-request-id": random_id("req_", 32, "0123456789abcdef"),
            "openai-version": "2020-10-01",
            "openai-processing-ms": str(random.randint(80, 400)),
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-tokens": "199990",
            "x-ratelimit-reset-tokens": "3ms",
        }

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        calls = _tool_calls(reply)
        message: dict[str, Any] = {"role": "assistant", "content": _content(reply)}
        if calls:
            message["tool_calls"] = calls
        message["refusal"] = reply.refusal
        message["annotations"] = []
        body = {
            "id": random_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model(reply),
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS[reply.stop_reason] if finished else None,
            }],
            "usage": _usage(reply.usage),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        options = call.body.get("stream_options") or {}
        include_usage = options.get("include_usage") is True
        obfuscate = options.get("include_obfuscation") is not False
        head = {
            "id": random_id("chatcmpl-", 29),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.model(reply),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

        def chunk(choices: list[Any], usage: dict[str, Any] | None = None) -> bytes:
            data = {**head, "choices": choices}
            if include_usage:
                data["usage"] = usage
            if obfuscate:
                data["obfuscation"] = random_id("", random.randint(3, 15))
            return sse(data)

        def delta(fields: dict[str, Any], finish: str | None = None) -> bytes:
            return chunk([{"index": 0, "delta": fields, "logprobs": None, "finish_reason": finish}])

        calls = _tool_calls(reply)
        starts = [
            {"index": i, "id": tool["id"], "type": "function",
             "function": {"name": tool["function"]["name"], "arguments": ""}}
            for i, tool in enumerate(calls)
        ]
        content = _content(reply)
        role: dict[str, Any] = {"role": "assistant", "content": None if content is None else ""}
        merged = bool(starts) and content is None and reply.refusal is None
        if merged:
            role["tool_calls"] = [starts[0]]
        role["refusal"] = None if reply.refusal is None else ""
        out = [delta(role)]
        out += [delta({"content": text}) for text in reply.chunks]
        out += [delta({"refusal": text}) for text in reply.refusal_chunks]
        for start, tool in zip(starts, calls, strict=True):
            if not (merged and start["index"] == 0):
                out.append(delta({"tool_calls": [start]}))
            for piece in fragments(tool["function"]["arguments"]):
                out.append(delta({"tool_calls": [{"index": start["index"], "function": {"arguments": piece}}]}))
        out.append(delta({}, FINISH_REASONS[reply.stop_reason]))
        if include_usage:
            out.append(chunk([], _usage(reply.usage)))
        out.append(sse("[DONE]"))
        return out


PROTOCOL = OpenAIProtocol()
