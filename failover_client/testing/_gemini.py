"""The Gemini API (`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
`:countTokens`) as the real API writes it; `_vertex.py` derives Vertex AI's routes from it.

Shapes follow protocols.md §4 and the recordings in the shared corpus:

* The URL decides what is asked (model, method, streaming), so calls are RouteCalls.
* Answers are pretty-printed JSON (indent 2); streams are data-only SSE events separated by
  `\\r\\n\\r\\n`, written with `": "` between key and value and no space after commas, with no
  terminator: the last event is an empty text part carrying `finishReason`.  Every event repeats
  `usageMetadata` (cumulative), `modelVersion` and `responseId`.
* Thought summaries stream first as `thought: true` parts; the thought signature rides on the
  first function call, else on the first answer part, as Gemini 3 sends it.  Function calls
  arrive whole, all in one event, without ids (unless the script gave one).
* Errors are Google RPC errors `{"error": {code, message, status, details}}`; an error during a
  stream is one more data event holding that object.  A bad key is a 400 with ErrorInfo reason
  API_KEY_INVALID, a missing one a 403; a rate limit carries QuotaFailure and RetryInfo details.
  A content-filter fault is not an HTTP error on Gemini: it is a 200 whose `promptFeedback`
  says the prompt was blocked.
* Checks as the real API does them: unknown top-level fields, empty contents, invalid roles,
  and (Gemini 3) function calls of the current turn sent back without their thought signature.
  Streaming requires `alt=sse` here: the JSON-array form is not spoken.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from . import _documents
from ._protocol import ALPHANUMERIC, Call, ErrorSpec, HttpResponse, Protocol, random_id
from ._steps import ERROR_TYPE_STATUS, Fault, Reply

# The google.rpc.Code name each HTTP status stands for; anything else is UNKNOWN.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
FINISH_REASONS = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",  # Gemini does not say which stop it was
    "tool_use": "STOP",  # a function call ends with STOP; the functionCall parts say the rest
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "refusal": "STOP",  # a refusal is said as text
}
STREAM_METHODS = frozenset({"streamGenerateContent", "streamRawPredict"})
GENERATE_METHODS = frozenset({"generateContent", "streamGenerateContent"})
COUNT_METHOD = "countTokens"
GENERATE_FIELDS = frozenset({
    "contents", "systemInstruction", "tools", "toolConfig", "safetySettings", "generationConfig",
    "cachedContent", "model",
})
COUNT_FIELDS = frozenset({"contents", "generateContentRequest", "model"})
ROLES = frozenset({"user", "model"})

MESSAGES = {
    400: "Request contains an invalid argument.",
    401: ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
          "other valid authentication credential. See "
          "https://developers.google.com/identity/sign-in/web/devconsole-project."),
    403: "The caller does not have permission",
    409: "The operation was aborted.",
    500: ("An internal error has occurred. Please retry or report in "
          "https://developers.generativeai.google/guide/troubleshooting"),
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
RATE_LIMITED = (
    "You exceeded your current quota, please check your plan and billing details. For more information "
    "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current "
    "usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: "
    "generativelanguage.googleapis.com/generate_content_paid_tier_requests, limit: 1000, model: {model}\n"
    "Please retry in {delay}s."
)
CONTEXT_TOO_LONG = "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576)."
NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity). Please use "
          "API Key or other form of API consumer identity to call this API.")
BAD_KEY = "API key not valid. Please pass a valid API key."
NEEDS_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
    "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
    "data, function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
DEFAULT_RETRY_DELAY = 37.0  # seconds, when a rate-limit fault names no hint
BLOCK_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"},
]


@dataclass(frozen=True)
class RouteCall(Call):
    """A Call whose URL names the model and the RPC method: `.../models/{model}:{method}`."""

    model_id: str = ""
    method: str = ""

    @property
    def stream(self) -> bool:
        return self.method in STREAM_METHODS

    def model(self, reply: Reply | None = None) -> str:
        return (reply and reply.model) or self.model_id


@dataclass(frozen=True)
class GoogleError(ErrorSpec):
    """A Google RPC error; `sse` when it answers a stream request, whose JSON error body Google
    labels text/event-stream (as recorded)."""

    sse: bool = False


def google_dumps(obj: Any) -> str:
    """One line, the way Google writes stream events: `": "` after keys, no space after commas."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ": "))


def pretty(obj: Any) -> bytes:
    """A whole JSON body as Google writes it: indented by two spaces, with a final newline."""
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode()


def sse_event(obj: Any) -> bytes:
    return f"data: {google_dumps(obj)}\r\n\r\n".encode()


def google_error(status: int, message: str, details: Sequence[Mapping[str, Any]] = (), *,
                 sse: bool = False) -> GoogleError:
    extra = {"details": list(details)} if details else {}
    return GoogleError(status, STATUS_NAMES.get(status, "UNKNOWN"), message, extra=extra, sse=sse)


def error_info(reason: str, service: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com",
            "metadata": {"service": service}}


def _retry_delay(fault: Fault) -> float:
    """The wait a rate-limit fault asks for, said the Google way (RetryInfo) as well."""
    if "retry-after-ms" in fault.headers:
        return float(fault.headers["retry-after-ms"]) / 1000
    if "retry-after" in fault.headers:
        try:
            return float(fault.headers["retry-after"])
        except ValueError:
            pass
    return DEFAULT_RETRY_DELAY


def _seconds(delay: float) -> str:
    return f"{delay:g}s"


def _usage(usage: Mapping[str, int], output: int | None = None, thoughts: int | None = None) -> dict[str, Any]:
    """usageMetadata: Gemini counts thoughts apart from candidates; the prompt includes the cache."""
    thoughts = usage["reasoning"] if thoughts is None else thoughts
    candidates = max(0, usage["output"] - usage["reasoning"]) if output is None else output
    meta: dict[str, Any] = {"promptTokenCount": usage["input"]}
    if candidates:
        meta["candidatesTokenCount"] = candidates
    meta["totalTokenCount"] = usage["input"] + candidates + thoughts
    if usage["cache_read"]:
        meta["cachedContentTokenCount"] = usage["cache_read"]
    meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage["input"]}]
    if usage["cache_read"]:
        meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage["cache_read"]}]
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def _function_calls(reply: Reply, signature: str | None) -> list[dict[str, Any]]:
    parts = []
    for i, call in enumerate(reply.tool_calls):
        function: dict[str, Any] = {"name": call.name, "args": call.arguments}
        if call.id:
            function["id"] = call.id
        part: dict[str, Any] = {"functionCall": function}
        if signature and i == 0:  # only the first of parallel calls is signed
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _signature(reply: Reply) -> str | None:
    return reply.signature if reply.thinking is not None else None


def _answer_parts(reply: Reply, texts: Sequence[str]) -> list[dict[str, Any]]:
    """Text parts then function calls; the signature on the first call, else the first text."""
    signature = _signature(reply)
    calls = _function_calls(reply, signature)
    parts: list[dict[str, Any]] = [{"text": text} for text in texts]
    if signature and not calls:
        if not parts:
            parts.append({"text": ""})
        parts[0]["thoughtSignature"] = signature
    return parts + calls


class RoutedByURL:
    """For protocols whose URL names the model and the RPC method (`.../models/{model}:{method}`):
    `route_pattern` (groups `model` and `method`) both routes requests and makes their RouteCall."""

    route_pattern: re.Pattern[str]

    def matches(self, path: str) -> bool:
        return self.route_pattern.match(path) is not None

    def call(self, name: str, body: Mapping[str, Any], headers: Mapping[str, str], path: str,
             query: Mapping[str, str]) -> RouteCall:
        match = self.route_pattern.match(path)
        model, method = (unquote(match["model"]), match["method"]) if match else ("", "")
        return RouteCall(name, body, headers, path, query, model_id=model, method=method)


def current_turn(contents: Sequence[Any]) -> int:
    """Where the current turn begins: the last user content that is not only function responses."""
    for index in range(len(contents) - 1, -1, -1):
        content = contents[index]
        if content.get("role", "user") == "user" and any(
                "text" in part or "inlineData" in part or "fileData" in part for part in content["parts"]):
            return index
    return 0


class GeminiProtocol(RoutedByURL, Protocol):
    name = "gemini"
    route_pattern = re.compile(r"^/v1(?:beta|alpha)?/(?:models|tunedModels)/(?P<model>[^/:]+):(?P<method>\w+)$")
    json_type = "application/json; charset=UTF-8"
    error_type = "application/json; charset=UTF-8"
    stream_type = "text/event-stream"
    service = "generativelanguage.googleapis.com"
    generate_fields = GENERATE_FIELDS
    count_fields = COUNT_FIELDS

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}/v1beta"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-goog-api-key") or None

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        """Unused: every check needs the route, see `check`."""
        return None

    # --- checks -------------------------------------------------------------------------------

    def check(self, call: Call, json_ok: bool) -> ErrorSpec | None:
        assert isinstance(call, RouteCall)
        return (self.check_credentials(call) or self.check_method(call)
                or self.check_body(call, json_ok))

    def check_credentials(self, call: RouteCall) -> ErrorSpec | None:
        if self.api_key(call.headers) is None and not call.query.get("key"):
            return google_error(403, NO_KEY, sse=call.stream)
        return None

    def check_method(self, call: RouteCall) -> ErrorSpec | None:
        if call.method not in GENERATE_METHODS and call.method != COUNT_METHOD:
            return google_error(404, "Method not found.")
        if call.stream and call.query.get("alt") != "sse":
            return google_error(400, "This fake Gemini server streams only with ?alt=sse (server-sent events).")
        return None

    def check_body(self, call: RouteCall, json_ok: bool) -> ErrorSpec | None:
        sse = call.stream
        if not json_ok:
            return google_error(400, "Invalid JSON payload received. Unexpected token.", sse=sse)
        fields = self.count_fields if call.method == COUNT_METHOD else self.generate_fields
        for key in call.body:
            if key not in fields and _camel(key) not in fields:
                return google_error(400, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.',
                                    sse=sse)
        request = call.body
        if call.method == COUNT_METHOD and "generateContentRequest" in request:
            request = request["generateContentRequest"]
            if not isinstance(request, dict) or not str(request.get("model", "")).startswith("models/"):
                return google_error(400, "* CountTokensRequest.generate_content_request.model: unexpected model "
                                         "name format\n")
        return self.check_contents(call, request.get("contents"), sse)

    def check_contents(self, call: RouteCall, contents: Any, sse: bool) -> ErrorSpec | None:
        if not isinstance(contents, list) or not contents:
            return google_error(400, "* GenerateContentRequest.contents: contents is not specified\n", sse=sse)
        for index, content in enumerate(contents):
            if not isinstance(content, dict) or content.get("role", "user") not in ROLES:
                return google_error(400, "Please use a valid role: user, model.", sse=sse)
            if not content.get("parts"):
                return google_error(400, f"* GenerateContentRequest.contents[{index}].parts: contents.parts must "
                                         "not be empty.\n", sse=sse)
        document_problem = _documents.gemini(contents)
        if document_problem:
            return google_error(400, document_problem, sse=sse)
        if call.model().startswith("gemini-3"):
            return self.check_signatures(contents, sse)
        return None

    def check_signatures(self, contents: Sequence[dict[str, Any]], sse: bool) -> ErrorSpec | None:
        """Gemini 3: in the current turn, each model step's first function call must carry the
        thought signature it was sent with."""
        for index in range(current_turn(contents), len(contents)):
            content = contents[index]
            if content.get("role") != "model":
                continue
            calls = [(i, p) for i, p in enumerate(content["parts"]) if "functionCall" in p or "function_call" in p]
            if calls and not calls[0][1].get("thoughtSignature"):
                position, part = calls[0]
                name = (part.get("functionCall") or part.get("function_call") or {}).get("name")
                return google_error(400, NEEDS_SIGNATURE.format(name=name, position=position + 1), sse=sse)
        return None

    # --- errors -------------------------------------------------------------------------------

    def wrong_key(self, key: str) -> ErrorSpec:
        localized = {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                     "message": BAD_KEY}
        return google_error(400, BAD_KEY, [error_info("API_KEY_INVALID", self.service), localized])

    def not_found(self, call: RouteCall) -> str:
        return (f"models/{call.model()} is not found for API version v1beta, or is not supported for "
                "generateContent. Call ListModels to see the list of available models and their supported methods.")

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        assert isinstance(call, RouteCall)
        sse = call.stream
        if fault.kind == "rate_limit" or (fault.kind == "status" and fault.http_status == 429):
            delay = _retry_delay(fault)
            return google_error(429, RATE_LIMITED.format(model=call.model(), delay=_seconds(delay)), [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                    "quotaDimensions": {"location": "global", "model": call.model()},
                    "quotaValue": "1000"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": _seconds(delay)},
            ], sse=sse)
        if fault.kind == "overloaded":
            return google_error(503, MESSAGES[503], sse=sse)
        if fault.kind == "context_length":
            return google_error(400, CONTEXT_TOO_LONG, sse=sse)
        status = fault.http_status or 500
        if status == 404:
            return google_error(404, self.not_found(call), sse=sse)
        if status == 401:
            return google_error(401, MESSAGES[401], sse=sse)
        return google_error(status, MESSAGES.get(status, "Internal error encountered."), sse=sse)

    def fault_response(self, fault: Fault, call: Call) -> HttpResponse:
        """A content-filter fault is Gemini's 200 with a blocked prompt; the rest are RPC errors."""
        if fault.kind != "content_filter":
            return super().fault_response(fault, call)
        blocked = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": BLOCK_RATINGS},
                   "usageMetadata": _usage({"input": 10, "output": 0, "reasoning": 0, "cache_read": 0}),
                   **self.envelope(call.model(), random_id("", 23, ALPHANUMERIC + "-_"))}
        if call.stream:
            return HttpResponse(200, {**self.response_headers(), "content-type": self.stream_type}, sse_event(blocked))
        return HttpResponse(200, {**self.response_headers(), "content-type": self.json_type}, pretty(blocked))

    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        return pretty({"error": {"code": spec.status, "message": spec.message, "status": spec.type, **spec.extra}})

    def error_response(self, spec: ErrorSpec) -> HttpResponse:
        response = super().error_response(spec)
        if isinstance(spec, GoogleError) and spec.sse:
            return HttpResponse(response.status, {**response.headers, "content-type": self.stream_type}, response.body)
        return response

    def error_event(self, error_type: str, message: str) -> bytes:
        status = ERROR_TYPE_STATUS.get(error_type, 500)
        if status == 529:
            status = 503  # Google's overload is UNAVAILABLE
        return sse_event({"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}})

    def response_headers(self) -> dict[str, str]:
        return {
            "vary": "Origin, X-Origin, Referer",
            "server": "scaffolding on HTTPServer2",
            "x-xss-protection": "0",
            "x-frame-options": "SAMEORIGIN",
            "x-content-type-options": "nosniff",
            "server-timing": f"gfet4t7; dur={random.randint(300, 3000)}",
            "alt-svc": 'h3=":443"; ma=2592000,h3-29=":443"; ma=2592000',
        }

    def stream_headers(self, reply: Reply) -> dict[str, str]:
        return {**super().stream_headers(reply), "content-disposition": "attachment"}

    # --- answers ------------------------------------------------------------------------------

    def envelope(self, model: str, response_id: str) -> dict[str, Any]:
        """The fields that close every answer object."""
        return {"modelVersion": model, "responseId": response_id}

    def usage_extra(self) -> dict[str, Any]:
        """Fields this API adds to usageMetadata."""
        return {}

    def count(self, reply: Reply, call: RouteCall) -> dict[str, Any]:
        tokens = reply.usage["input"]
        return {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}

    def _candidate(self, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
            if finish == "SAFETY":
                candidate["safetyRatings"] = BLOCK_RATINGS
        candidate["index"] = 0
        return candidate

    def _answer(self, call: RouteCall, reply: Reply, candidate: dict[str, Any], usage: dict[str, Any],
                response_id: str) -> dict[str, Any]:
        return {"candidates": [candidate], "usageMetadata": {**usage, **self.usage_extra()},
                **self.envelope(call.model(reply), response_id)}

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        assert isinstance(call, RouteCall)
        if call.method == COUNT_METHOD:
            return pretty(self.count(reply, call))
        parts = [{"text": reply.thinking, "thought": True}] if reply.thinking is not None else []
        texts = ["".join((*reply.chunks, *reply.refusal_chunks))] if reply.text or reply.refusal else []
        parts += _answer_parts(reply, texts)
        finish = FINISH_REASONS[reply.stop_reason] if finished else None
        response_id = random_id("", 23, ALPHANUMERIC + "-_")
        return pretty(self._answer(call, reply, self._candidate(parts, finish), _usage(reply.usage), response_id))

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        assert isinstance(call, RouteCall)
        response_id = random_id("", 23, ALPHANUMERIC + "-_")
        usage = reply.usage
        thoughts = 0
        out: list[bytes] = []

        def event(parts: list[dict[str, Any]], meta: dict[str, Any], finish: str | None = None) -> None:
            out.append(sse_event(self._answer(call, reply, self._candidate(parts, finish), meta, response_id)))

        thinking = reply.thinking_chunks
        for i, text in enumerate(thinking):
            thoughts = usage["reasoning"] * (i + 1) // len(thinking)
            event([{"text": text, "thought": True}], _usage(usage, output=0, thoughts=thoughts))
        answer = _answer_parts(reply, [*reply.chunks, *reply.refusal_chunks])
        texts = [p for p in answer if "functionCall" not in p]
        calls = [p for p in answer if "functionCall" in p]
        final = max(0, usage["output"] - usage["reasoning"])
        for i, part in enumerate(texts):
            event([part], _usage(usage, output=min(final, i + 1), thoughts=thoughts))
        if calls:
            event(calls, _usage(usage, output=final, thoughts=thoughts))
        event([{"text": ""}], _usage(usage), FINISH_REASONS[reply.stop_reason])
        return out


def _camel(name: str) -> str:
    """snake_case to lowerCamelCase: Google accepts both spellings of a field."""
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


PROTOCOL = GeminiProtocol()
