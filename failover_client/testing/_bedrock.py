"""AWS Bedrock Runtime Converse / ConverseStream (`POST /model/{modelId}/converse[-stream]`) as
the real service writes it.

Shapes follow protocols.md §7, botocore's service model and recorded traffic: compact JSON with
sorted keys, `metrics.latencyMs`, usage whose `inputTokens` excludes cache reads and writes,
binary event-stream messages with correct CRCs and the random `"p"` padding real payloads
carry, `messageStop` then `metadata` (usage) at the end, exception messages mid-stream, and
errors as `{"message": ...}` with the exception type in `x-amzn-errortype`.

The server checks SigV4 signatures the way AWS does: it knows the key pairs below
(TEST_CREDENTIALS), recomputes the signature over the request it received, and answers 403
InvalidSignatureException when it differs (UnrecognizedClientException for an unknown key or a
wrong session token).  A Bedrock API key (`Authorization: Bearer ...`) is accepted as it is;
`FakeProviderServer.require_key(name, key)` pins either the bearer key or the access key id.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import random
import struct
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from ..providers.sigv4 import ALGORITHM, canonical_request, signature, signing_key, string_to_sign
from . import _documents
from ._protocol import (
    Call,
    ErrorSpec,
    HttpResponse,
    Protocol,
    arguments_json,
    bearer_token,
    dumps,
    fragments,
    random_id,
)
from ._steps import Fault, Reply

# Key pairs the fake server knows; tests sign with them (tests/support.py OPTIONS).
TEST_ACCESS_KEY_ID = "AKIAFAKEBEDROCKTEST1"
TEST_SECRET_ACCESS_KEY = "fakeSecretForTheFakeBedrock/0123456789+x"
TEMPORARY_ACCESS_KEY_ID = "ASIAFAKEBEDROCKTEMP1"
TEMPORARY_SECRET_ACCESS_KEY = "fakeTemporarySecret/0123456789+ForTests"
TEMPORARY_SESSION_TOKEN = "FwoGZXIvYXdzEFAKE//session+token+for+the+fake+bedrock=="
# access key id -> (secret access key, session token that must come with it, or None)
TEST_CREDENTIALS: dict[str, tuple[str, str | None]] = {
    TEST_ACCESS_KEY_ID: (TEST_SECRET_ACCESS_KEY, None),
    TEMPORARY_ACCESS_KEY_ID: (TEMPORARY_SECRET_ACCESS_KEY, TEMPORARY_SESSION_TOKEN),
}
SIGNING_SERVICE = "bedrock"
REQUIRED_AUTH_FIELDS = frozenset({"Credential", "SignedHeaders", "Signature"})
MAX_CLOCK_SKEW = 300  # seconds, as AWS allows
BEDROCK_ERRORS = "http://internal.amazon.com/coral/com.amazon.bedrock/"
CORAL_ERRORS = "http://internal.amazon.com/coral/com.amazon.coral.service/"  # the front end's auth errors
AUTH_ERRORS = {"UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException",
               "MissingAuthenticationTokenException"}

EXCEPTION_BY_STATUS = {
    400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
    404: "ResourceNotFoundException", 408: "ModelTimeoutException", 409: "ConflictException",
    424: "ModelErrorException", 429: "ThrottlingException", 500: "InternalServerException",
    503: "ServiceUnavailableException",
}
MESSAGES = {
    "ValidationException": "Malformed input request, please reformat your input and try again.",
    "UnrecognizedClientException": "The security token included in the request is invalid.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ResourceNotFoundException": "The provided model identifier is invalid.",
    "ModelTimeoutException": "Model has timed out in processing the request. Try your request again.",
    "ConflictException": "The request could not be completed due to a conflict.",
    "ModelErrorException": "The model returned an error. Try your request again.",
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "InternalServerException": "The server encountered an error processing your request. Try your request again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "InvalidSignatureException": (
        "The request signature we calculated does not match the signature you provided. Check your AWS "
        "Secret Access Key and signing method. Consult the service documentation for details."),
    "MissingAuthenticationTokenException": "Missing Authentication Token",
}
# Faults whose status and type do not come from Fault.http_status: (status, exception type, message).
NAMED_FAULTS = {
    "rate_limit": (429, "ThrottlingException", None),
    "overloaded": (503, "ServiceUnavailableException", None),
    "context_length": (400, "ValidationException", "Input is too long for requested model."),
    "content_filter": (400, "ValidationException", "This request has been blocked by our content filters. "
                                                   "Please adjust your text prompt to submit a new request."),
}
# Fault.stream_error_event speaks Anthropic's error vocabulary; ConverseStream's exception members.
STREAM_EXCEPTIONS = {
    "overloaded_error": "serviceUnavailableException",
    "rate_limit_error": "throttlingException",
    "invalid_request_error": "validationException",
    "api_error": "internalServerException",
    "timeout_error": "modelStreamErrorException",
}
STOP_REASONS = {"content_filter": "content_filtered", "refusal": "guardrail_intervened"}
CONTENT_KEYS = frozenset({"text", "image", "document", "video", "audio", "toolUse", "toolResult", "guardContent",
                          "cachePoint", "reasoningContent", "citationsContent", "searchResult"})
SYSTEM_KEYS = frozenset({"text", "guardContent", "cachePoint"})
INFERENCE_KEYS = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


# --- the event-stream encoding ------------------------------------------------------------------


def _string_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def frame(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with string headers, both CRC32s filled in."""
    raw_headers = b"".join(_string_header(name, value) for name, value in headers)
    prelude = struct.pack(">II", 16 + len(raw_headers) + len(payload), len(raw_headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _json(obj: Mapping[str, Any]) -> bytes:
    return dumps(dict(sorted(obj.items()))).encode()


def event(event_type: str, body: Mapping[str, Any]) -> bytes:
    padded = {**body, "p": PADDING[: random.randint(1, len(PADDING))]}
    headers = ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event"))
    return frame(headers, _json(padded))


def exception(exception_type: str, message: str) -> bytes:
    headers = ((":exception-type", exception_type), (":content-type", "application/json"),
               (":message-type", "exception"))
    return frame(headers, _json({"message": message}))


# --- replies ------------------------------------------------------------------------------------


def _usage(usage: Mapping[str, int]) -> dict[str, int]:
    """AWS's inputTokens leaves out the cached parts; the total counts everything."""
    cached = usage["cache_read"] + usage["cache_write"]
    out = {"inputTokens": usage["input"] - cached, "outputTokens": usage["output"],
           "totalTokens": usage["input"] + usage["output"]}
    if cached:
        out["cacheReadInputTokens"] = usage["cache_read"]
        out["cacheWriteInputTokens"] = usage["cache_write"]
    return out


def _tool_use_id() -> str:
    return random_id("tooluse_", 22)


Block = tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]


def _blocks(reply: Reply) -> list[Block]:
    """Each content block as (complete block, its contentBlockStart `start` or None, its deltas)."""
    blocks: list[Block] = []
    if reply.thinking is not None:
        reasoning = {"reasoningText": {"text": reply.thinking, "signature": reply.signature}}
        deltas = [{"reasoningContent": {"text": text}} for text in reply.thinking_chunks]
        blocks.append(({"reasoningContent": reasoning}, None,
                       deltas + [{"reasoningContent": {"signature": reply.signature}}]))
    texts = [*reply.chunks, *reply.refusal_chunks]  # a refusal is said as text
    if texts:
        blocks.append(({"text": "".join(texts)}, None, [{"text": text} for text in texts]))
    for call in reply.tool_calls:
        head = {"toolUseId": call.id or _tool_use_id(), "name": call.name}
        pieces = fragments(arguments_json(call.arguments))
        blocks.append(({"toolUse": {**head, "input": call.arguments}}, {"toolUse": head},
                       [{"toolUse": {"input": piece}} for piece in pieces]))
    return blocks


def _stop_reason(reply: Reply) -> str:
    return STOP_REASONS.get(reply.stop_reason, reply.stop_reason)


class BedrockCall(Call):
    """Bedrock names the model and the operation in the path: /model/{modelId}/converse[-stream]."""

    @property
    def stream(self) -> bool:
        return self.path.endswith("/converse-stream")

    def model(self, reply: Reply | None = None) -> str:
        return (reply and reply.model) or unquote(self.path.split("/")[2])


class BedrockProtocol(Protocol):
    name = "bedrock"
    route = "/model/{modelId}/converse"
    stream_type = "application/vnd.amazon.eventstream"

    def matches(self, path: str) -> bool:
        parts = path.split("/")
        return len(parts) == 4 and parts[1] == "model" and bool(parts[2]) and parts[3] in ("converse",
                                                                                             "converse-stream")

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}"

    def call(self, name: str, body: Mapping[str, Any], headers: Mapping[str, str], path: str,
             query: Mapping[str, str]) -> Call:
        return BedrockCall(name, body, headers, path, query)

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        """The bearer key, or the access key id a SigV4 signature names."""
        token = bearer_token(headers)
        if token:
            return token
        credential = _auth_fields(headers.get("authorization", "")).get("Credential", "")
        return credential.split("/", 1)[0] or None

    def check(self, call: Call, json_ok: bool) -> ErrorSpec | None:
        return self._authenticate(call) or self.reject(call.headers, call.body, json_ok)

    def _authenticate(self, call: Call) -> ErrorSpec | None:
        authorization = call.headers.get("authorization", "")
        if not authorization:
            return _error("MissingAuthenticationTokenException", 403)
        if bearer_token(call.headers):
            return None
        fields = _auth_fields(authorization)
        if not authorization.startswith(ALGORITHM + " ") or not REQUIRED_AUTH_FIELDS <= set(fields):
            return _error("IncompleteSignatureException", 403, "Authorization header requires 'Credential', "
                          "'SignedHeaders' and 'Signature' parameters (AWS4-HMAC-SHA256).")
        scope = fields["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return _error("IncompleteSignatureException", 403, f"Credential is malformed: {fields['Credential']}")
        access_key, date, region, service, _ = scope
        secret, token = TEST_CREDENTIALS.get(access_key, (None, None))
        if secret is None or (token is not None and call.headers.get("x-amz-security-token") != token):
            return _error("UnrecognizedClientException", 403)
        if service != SIGNING_SERVICE:
            return _error("InvalidSignatureException", 403,
                          f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'.")
        signed = fields["SignedHeaders"].split(";")
        amz_date = call.headers.get("x-amz-date", "")
        if "host" not in signed or "x-amz-date" not in signed or not amz_date:
            return _error("IncompleteSignatureException", 403,
                          "The Host and X-Amz-Date headers must be present and signed.")
        stale = _clock_skew(amz_date)
        if stale:
            return _error("InvalidSignatureException", 403, stale)
        if date != amz_date[:8]:
            return _error("InvalidSignatureException", 403, f"Date in Credential scope does not match YYYYMMDD "
                          f"from ISO-8601 version of date from HTTP: '{date}' != '{amz_date[:8]}'")
        key = signing_key(secret, date, region, service)
        headers = {name: call.headers.get(name, "") for name in signed}
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in call.query.items())
        payload_hash = hashlib.sha256(call.raw_body).hexdigest()
        for path in (f"/{call.name}{call.path}", call.path):  # the name prefix, unless the bare route was used
            request = canonical_request("POST", path, query, headers, payload_hash)
            if hmac.compare_digest(signature(key, string_to_sign(amz_date, "/".join(scope[1:]), request)),
                                   fields["Signature"]):
                return None
        return _error("InvalidSignatureException", 403)

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        """The Converse body checks the real service makes (those our mapping could get wrong)."""
        if not json_ok:
            return _error("ValidationException", 400)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error("ValidationException", 400, "1 validation error detected: Value null at 'messages' "
                          "failed to satisfy constraint: Member must not be null")
        for i, message in enumerate(messages):
            expected = "user" if i % 2 == 0 else "assistant"
            if not isinstance(message, dict) or message.get("role") != expected:
                return _error("ValidationException", 400, "A conversation must start with a user message and "
                              "alternate between user and assistant roles. Try again.")
            blocks = message.get("content")
            if not isinstance(blocks, list) or not blocks or not all(_one_of(b, CONTENT_KEYS) for b in blocks):
                return _error("ValidationException", 400, f"messages.{i}.content: each content block must set "
                              f"exactly one member of {sorted(CONTENT_KEYS)}")
        system = body.get("system", [])
        if not isinstance(system, list) or not all(_one_of(b, SYSTEM_KEYS) for b in system):
            return _error("ValidationException", 400, "system: each block must set exactly one of text, "
                          "guardContent, cachePoint")
        if not set(body.get("inferenceConfig") or {}) <= INFERENCE_KEYS:
            return _error("ValidationException", 400, f"inferenceConfig takes only {sorted(INFERENCE_KEYS)}")
        document_problem = _documents.bedrock(messages)
        if document_problem:
            return _error("ValidationException", 400, document_problem)
        uses_tools = any(_one_of(b, {"toolUse", "toolResult"}) for m in messages for b in m["content"])
        if uses_tools and not body.get("toolConfig"):
            return _error("ValidationException", 400, "The toolConfig field must be defined when using toolUse "
                          "and toolResult content blocks.")
        return None

    def wrong_key(self, key: str) -> ErrorSpec:
        return _error("UnrecognizedClientException", 403)

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        if fault.kind in NAMED_FAULTS:
            status, kind, message = NAMED_FAULTS[fault.kind]
        else:
            status, message = fault.http_status or 500, None
            kind = EXCEPTION_BY_STATUS.get(status, "ValidationException" if status < 500 else "InternalServerException")
        return _error(kind, status, message)

    def error_response(self, spec: ErrorSpec) -> HttpResponse:
        response = super().error_response(spec)
        namespace = CORAL_ERRORS if spec.type in AUTH_ERRORS else BEDROCK_ERRORS
        return HttpResponse(response.status, {**response.headers, "x-amzn-errortype": f"{spec.type}:{namespace}"},
                            response.body)

    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        return dumps({"message": spec.message}).encode()

    def error_event(self, error_type: str, message: str) -> bytes:
        kind = error_type if error_type.endswith("Exception") else STREAM_EXCEPTIONS.get(
            error_type, "internalServerException")
        return exception(kind, message)

    def corrupt(self, event: bytes) -> bytes:
        """The message cut in half: its prelude promises bytes that never come."""
        return event[: len(event) // 2]

    def response_headers(self) -> dict[str, str]:
        return {"x-amzn-requestid": str(uuid.uuid4())}

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        body: dict[str, Any] = {
            "metrics": {"latencyMs": random.randint(200, 2000)},
            "output": {"message": {"content": [block for block, _, _ in _blocks(reply)], "role": "assistant"}},
            "usage": _usage(reply.usage),
        }
        if finished:
            body["stopReason"] = _stop_reason(reply)
        return _json(body)

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        """The messages of the stream; the last item holds messageStop and metadata together, so
        a fault that cuts the stream before the terminal item always cuts it before messageStop."""
        out = [event("messageStart", {"role": "assistant"})]
        for index, (_, start, deltas) in enumerate(_blocks(reply)):
            if start is not None:
                out.append(event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            out.extend(event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}) for delta in deltas)
            out.append(event("contentBlockStop", {"contentBlockIndex": index}))
        metadata = {"metrics": {"latencyMs": random.randint(200, 2000)}, "usage": _usage(reply.usage)}
        out.append(event("messageStop", {"stopReason": _stop_reason(reply)}) + event("metadata", metadata))
        return out


def _error(kind: str, status: int, message: str | None = None) -> ErrorSpec:
    return ErrorSpec(status, kind, message or MESSAGES.get(kind, kind))


def _one_of(block: Any, keys: frozenset[str] | set[str]) -> bool:
    """A union member: a dict that sets exactly one key, one of ``keys``."""
    return isinstance(block, dict) and len(block) == 1 and next(iter(block)) in keys


def _auth_fields(authorization: str) -> dict[str, str]:
    """``AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=x;y, Signature=hex`` as a dict."""
    _, _, rest = authorization.partition(" ")
    fields = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        if value:
            fields[name] = value
    return fields


def _clock_skew(amz_date: str) -> str | None:
    """Why a request's X-Amz-Date is refused (malformed, or more than 5 minutes off), or None."""
    try:
        sent = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return f"Invalid X-Amz-Date: {amz_date!r} is not an ISO-8601 basic date-time"
    now = time.time()
    if sent < now - MAX_CLOCK_SKEW:
        return f"Signature expired: {amz_date} is now earlier than the time allowed (5 min.)"
    if sent > now + MAX_CLOCK_SKEW:
        return f"Signature not yet current: {amz_date} is still later than the time allowed (5 min.)"
    return None


PROTOCOL = BedrockProtocol()
