"""Vertex AI's routes, as two protocols sharing one base URL (`{root}/{name}/v1`):

* `vertex`: Gemini models, `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}`,
  the Gemini protocol of `_gemini.py` with Vertex's differences: an OAuth bearer token instead
  of an API key (a missing one is Google's 401 UNAUTHENTICATED), `createTime` on answers,
  `trafficType` in usage, `totalBillableCharacters` in counts, `labels` allowed in requests, and
  Vertex's own wording of a 404 and a 429.
* `vertex-anthropic`: Claude models, `.../publishers/anthropic/models/{m}:rawPredict` and
  `:streamRawPredict` (and `models/count-tokens:rawPredict`), the Anthropic protocol of
  `_anthropic.py` on a Messages body that names no `model` and carries
  `anthropic_version: vertex-2023-10-16`.  Errors from the Google front end (no token) are
  Google-shaped; those of the model itself are Anthropic's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from . import _gemini
from ._anthropic import AnthropicProtocol
from ._gemini import GoogleError, RouteCall, RoutedByURL, google_error
from ._protocol import Call, ErrorSpec, bearer_token, dumps
from ._steps import Fault, Reply

ANTHROPIC_VERSION = "vertex-2023-10-16"
PREFIX = r"^/v1(?:beta1)?/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers"
NO_TOKEN = ("Request is missing required authentication credential. Expected OAuth 2 access token, login "
            "cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.")
RESOURCE_EXHAUSTED = ("Resource exhausted. Please try again later. Please refer to "
                      "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.")
SERVICE = "aiplatform.googleapis.com"


def _missing_token(method: str, sse: bool = False) -> GoogleError:
    info = _gemini.error_info("CREDENTIALS_MISSING", SERVICE)
    info["metadata"]["method"] = f"google.cloud.aiplatform.v1.PredictionService.{method[:1].upper()}{method[1:]}"
    return google_error(401, NO_TOKEN, [info], sse=sse)


class VertexGeminiProtocol(_gemini.GeminiProtocol):
    name = "vertex"
    route_pattern = re.compile(PREFIX + r"/google/models/(?P<model>[^/:]+):(?P<method>\w+)$")
    service = SERVICE
    generate_fields = _gemini.GENERATE_FIELDS | {"labels"}
    count_fields = frozenset({"contents", "systemInstruction", "tools", "generationConfig", "instances", "model"})

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}/v1"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return bearer_token(headers)

    def check_credentials(self, call: RouteCall) -> ErrorSpec | None:
        return _missing_token(call.method, call.stream) if self.api_key(call.headers) is None else None

    def wrong_key(self, key: str) -> ErrorSpec:
        return google_error(401, _gemini.MESSAGES[401])

    def not_found(self, call: RouteCall) -> str:
        route = self.route_pattern.match(call.path)
        where = f"projects/{route['project']}/locations/{route['location']}" if route else ""
        return (f"Publisher Model `{where}/publishers/google/models/{call.model()}` was not found or your "
                "project does not have access "
                "to it. Please ensure you are using a valid model version. For more information, see: "
                "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions")

    def fault_error(self, fault: Fault, call: Call) -> ErrorSpec:
        if fault.kind == "rate_limit" or (fault.kind == "status" and fault.http_status == 429):
            return google_error(429, RESOURCE_EXHAUSTED, sse=call.stream)
        return super().fault_error(fault, call)

    def envelope(self, model: str, response_id: str) -> dict[str, Any]:
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        return {"modelVersion": model, "createTime": created, "responseId": response_id}

    def usage_extra(self) -> dict[str, Any]:
        return {"trafficType": "ON_DEMAND"}

    def count(self, reply: Reply, call: RouteCall) -> dict[str, Any]:
        characters = sum(len(part.get("text", "")) for content in call.body.get("contents") or ()
                         for part in content.get("parts") or ())
        return {**super().count(reply, call), "totalBillableCharacters": characters}


class VertexAnthropicProtocol(RoutedByURL, AnthropicProtocol):
    name = "vertex-anthropic"
    route_pattern = re.compile(PREFIX + r"/anthropic/models/(?P<model>[^/:]+):(?P<method>\w+)$")
    methods = frozenset({"rawPredict", "streamRawPredict"})

    def base_url(self, root: str, name: str) -> str:
        return f"{root}/{name}/v1"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return bearer_token(headers)

    def check(self, call: Call, json_ok: bool) -> ErrorSpec | None:
        assert isinstance(call, RouteCall)
        invalid = "invalid_request_error"
        if self.api_key(call.headers) is None:
            return _missing_token(call.method)
        if call.method not in self.methods:
            return google_error(404, "Method not found.")
        if not json_ok:
            return ErrorSpec(400, invalid, "There was an error parsing the body: invalid JSON")
        body = call.body
        if body.get("anthropic_version") != ANTHROPIC_VERSION:
            return ErrorSpec(400, invalid, f"anthropic_version: Input should be '{ANTHROPIC_VERSION}'")
        counting = self.counts(call)
        if "model" in body and not counting:
            return ErrorSpec(400, invalid, "model: Extra inputs are not permitted")
        for required in ("model", "messages") if counting else ("max_tokens", "messages"):
            if required not in body:
                return ErrorSpec(400, invalid, f"{required}: Field required")
        return None

    @staticmethod
    def counts(call: RouteCall) -> bool:
        return call.model_id == "count-tokens"

    def wrong_key(self, key: str) -> ErrorSpec:
        return google_error(401, _gemini.MESSAGES[401])

    def error_body(self, spec: ErrorSpec, headers: Mapping[str, str]) -> bytes:
        """Google's front end speaks for itself (no token, no such method); the model, Anthropic's way."""
        if isinstance(spec, GoogleError):
            return _gemini.PROTOCOL.error_body(spec, headers)
        return super().error_body(spec, headers)

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        assert isinstance(call, RouteCall)
        if self.counts(call):
            return dumps({"input_tokens": reply.usage["input"]}).encode()
        return super().render(reply, call, finished=finished)


PROTOCOL = VertexGeminiProtocol()
ANTHROPIC_PROTOCOL = VertexAnthropicProtocol()
