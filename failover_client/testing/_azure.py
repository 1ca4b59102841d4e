"""Azure OpenAI Chat Completions as the real service writes it: OpenAI's bodies and events
(rendered by `_openai`) with Azure's additions, at Azure's URLs.

* Routes: `/openai/deployments/{deployment}/chat/completions` (classic) and
  `/openai/v1/chat/completions` (the v1 API), under a base URL that plays the resource endpoint
  (`.../{name}/azure`).
* Credentials: the `api-key` header or an Entra ID bearer token.
* Answers carry `prompt_filter_results` and per-choice `content_filter_results`; a stream opens
  with a chunk whose `choices` is empty and whose `id`/`model` are empty (recorded traffic).
* Errors are `{"error": {"code": "<string>", "message": ...}}` (codes such as "429", "401",
  "DeploymentNotFound"); a blocked prompt is the 400 `content_filter` error with its
  `innererror`, as `_openai` renders it; a 5xx passes OpenAI's own error through.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._openai import BAD_JSON, FILTER_RESULT, OpenAIProtocol
from ._protocol import Call, ErrorSpec, bearer_token, dumps, sse
from ._steps import Fault, Reply

# The resource endpoint a client is given is `{root}/{name}/azure`: without that last segment a fake
# provider named "openai" speaking OpenAI (`/openai/v1/chat/completions`) would be taken for Azure.
RESOURCE = "/azure"
ROUTES = re.compile(RESOURCE + r"/openai/(?:deployments/(?P<deployment>[^/]+)|v1)/chat/completions")
ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)
RATE_LIMITED = (
    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
    "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. "
    "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
)
NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again."
)
SAFE = {category: {"filtered": False, "severity": "safe"} for category in FILTER_RESULT}
PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": {
    **SAFE, "jailbreak": {"filtered": False, "detected": False}}}]


def _deployment(path: str) -> str | None:
    """The deployment a classic route names; None on the v1 route."""
    match = ROUTES.fullmatch(path)
    return match.group("deployment") if match else None


@dataclass(frozen=True)
class AzureCall(Call):
    """A classic-route call may leave `model` out of the body: the deployment stands in."""

    def model(self, reply: Reply | None = None) -> str:
        return (reply and reply.model) or str(self.body.get("model") or _deployment(self.path))


def _choice_filter(reply: Reply) -> dict[str, Any]:
    return FILTER_RESULT if reply.stop_reason == "content_filter" else SAFE


class AzureProtocol(OpenAIProtocol):
    name = "azure"
    route = RESOURCE + "/openai/v1/chat/completions"

    def matches(self, path: str) -> bool:
        return ROUTES.fullmatch(path) is not None

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}{RESOURCE}"  # the resource endpoint; clients append /openai/...

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("api-key") or bearer_token(headers)

    def call(self, name: str, body: Mapping[str, Any], headers: Mapping[str, str], path: str,
             query: Mapping[str, str]) -> Call:
        return AzureCall(name, body, headers, path, query)

    def check(self, call: Call, json_ok: bool) -> ErrorSpec | None:
        """The classic route needs `api-version` (Azure answers 404 without it); the v1 route
        finds the deployment by the body's `model`."""
        rejected = super().check(call, json_ok)
        if rejected is not None:
            return rejected
        if _deployment(call.path) is not None:
            if not call.query.get("api-version"):
                return ErrorSpec(404, None, "Resource not found", code="404")
        elif not call.body.get("model"):
            return ErrorSpec(400, "invalid_request_error", "you must provide a model parameter")
        return None

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        """Like OpenAI's checks, except that `model` may be left out (the URL names the deployment)."""
        if self.api_key(headers) is None:
            return ErrorSpec(401, None, ACCESS_DENIED, code="401")
        if not json_ok:
            return ErrorSpec(400, "invalid_request_error", BAD_JSON)
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return ErrorSpec(400, "invalid_request_error", "'messages' is a required property", param="messages")
        return None

    def wrong_key(self, key: str) -> ErrorSpec:
        return ErrorSpec(401, None, ACCESS_DENIED, code="401")

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        status = {"rate_limit": 429, "status": fault.http_status}.get(fault.kind)
        if status == 429:
            return ErrorSpec(429, None, RATE_LIMITED, code="429")
        if status == 401:
            return self.wrong_key("")
        if status == 404:
            return ErrorSpec(404, None, NO_DEPLOYMENT, code="DeploymentNotFound")
        return super().fault_error(fault, call)

    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        if spec.type is not None or spec.extra:  # OpenAI's own error, passed through
            return super().error_body(spec, headers)
        return dumps({"error": {"code": spec.code or str(spec.status), "message": spec.message}}).encode()

    def response_headers(self) -> dict[str, str]:
        return {
            **super().response_headers(),
            "apim-request-id": str(uuid.uuid4()),
            "x-ms-region": "Sweden Central",
            "x-ms-rai-invoked": "true",
            "azureml-model-session": f"d{random.randint(100, 999)}-20260101000000",
        }

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        body = json.loads(super().render(reply, call, finished=finished))
        body["prompt_filter_results"] = PROMPT_FILTER
        body["choices"][0]["content_filter_results"] = _choice_filter(reply)
        return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        opening = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                   "prompt_filter_results": PROMPT_FILTER}
        return [sse(opening)] + [_with_filter_results(event, reply) for event in super().events(reply, call)]


def _with_filter_results(event: bytes, reply: Reply) -> bytes:
    """An OpenAI chunk event with Azure's per-choice content_filter_results added, its keys
    sorted at every level as Azure writes them (``{"choices":[{"content_filter_results":...,
    "delta":...,"finish_reason":null,"index":0,...}],"created":...``, recorded traffic)."""
    payload = event.decode()[len("data: "):].rstrip("\n")
    if payload == "[DONE]":
        return event
    chunk = json.loads(payload)
    for choice in chunk["choices"]:
        delta = choice.get("delta") or {}
        choice["content_filter_results"] = _choice_filter(reply) if delta.get("content") else {}
    return sse(json.dumps(chunk, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


PROTOCOL = AzureProtocol()
