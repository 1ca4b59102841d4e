"""The embedding endpoints of each protocol, as the real APIs write them (protocols-embeddings.md).

Each protocol here is its chat protocol's subclass: the same base URL, credentials, error bodies
and faults, with the embedding route, the body checks a real server makes, and an answer of one
vector per input.  Vectors are made from a hash of each text, so the same text always gets the
same vector, and every value (a multiple of 1/128) survives float32 exactly.  Their length is the
requested dimension, else ``DEFAULT_DIMENSIONS``.  An unfinished answer (``Fault.truncated_stream``
on a plain request) leaves out the last vector (a one-text answer: its values), as a broken
proxy might.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from typing import Any, Mapping, Sequence

from . import _azure, _bedrock, _cohere, _gemini, _ollama, _openai, _vertex
from ._protocol import Call, ErrorSpec, dumps, random_id
from ._steps import Reply

DEFAULT_DIMENSIONS = 8
OPENAI_MAX_INPUTS = 2048
GEMINI_MAX_REQUESTS = 100
COHERE_MAX_TEXTS = 96


def fake_vector(text: str, dimensions: int) -> list[float]:
    """``dimensions`` values in [-1, 1) drawn from the text's SHA-256, repeated as needed."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % 32] - 128) / 128 for i in range(dimensions)]


def base64_vector(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def tokens(texts: Sequence[str]) -> int:
    return sum(max(1, len(text) // 4) for text in texts)


def _vectors(texts: Sequence[str], dimensions: Any, finished: bool) -> list[list[float]]:
    size = dimensions if isinstance(dimensions, int) and dimensions > 0 else DEFAULT_DIMENSIONS
    vectors = [fake_vector(text, size) for text in texts]
    return vectors if finished else vectors[:-1]


def _texts(value: Any) -> list[str] | None:
    """A string or a non-empty list of non-empty strings, as a list; None when it is not one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(t, str) and t for t in items):
        return None
    return items


# --- OpenAI ----------------------------------------------------------------------------------

class _OpenAIShape:
    """The body checks and the answer of ``/embeddings``, for OpenAI and Azure alike."""

    def check_input(self, body: Any) -> ErrorSpec | None:
        invalid = "invalid_request_error"
        if not body.get("model"):
            return ErrorSpec(400, invalid, "you must provide a model parameter")
        texts = _texts(body.get("input"))
        if texts is None:
            return ErrorSpec(400, invalid, "'$.input' is invalid. Please check the API reference: "
                                           "https://platform.openai.com/docs/api-reference.")
        if len(texts) > OPENAI_MAX_INPUTS:
            return ErrorSpec(400, invalid, f"'$.input' is invalid: at most {OPENAI_MAX_INPUTS} inputs")
        if body.get("encoding_format", "float") not in ("float", "base64"):
            return ErrorSpec(400, invalid, "'encoding_format' must be 'float' or 'base64'",
                             param="encoding_format")
        return None

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        texts = _texts(call.body.get("input")) or []
        encode = base64_vector if call.body.get("encoding_format") == "base64" else list
        vectors = _vectors(texts, call.body.get("dimensions") or call.body.get("output_dimension"), finished)
        used = tokens(texts)
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
            "model": call.model(reply),
            "usage": {"prompt_tokens": used, "total_tokens": used},
        }
        return dumps(body).encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        return [self.render(reply, call)]


class OpenAIEmbeddings(_OpenAIShape, _openai.OpenAIProtocol):
    name = "openai-embeddings"
    route = "/v1/embeddings"

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        if self.api_key(headers) is None or not json_ok:
            return super().reject(headers, body, json_ok)  # the chat route's 401 and bad-JSON answers
        return self.check_input(body)


_AZURE_ROUTES = re.compile(_azure.RESOURCE + r"/openai/(?:deployments/(?P<deployment>[^/]+)|v1)/embeddings")


class AzureEmbeddingCall(Call):
    def model(self, reply: Reply | None = None) -> str:
        match = _AZURE_ROUTES.fullmatch(self.path)
        return (reply and reply.model) or str(self.body.get("model") or (match and match.group("deployment")))


class AzureEmbeddings(_OpenAIShape, _azure.AzureProtocol):
    """Azure's two URL styles for embeddings; the classic one needs ``api-version``."""

    name = "azure-embeddings"
    route = _azure.RESOURCE + "/openai/v1/embeddings"

    def matches(self, path: str) -> bool:
        return _AZURE_ROUTES.fullmatch(path) is not None

    def call(self, name: str, body: Mapping[str, Any], headers: Mapping[str, str], path: str,
             query: Mapping[str, str]) -> Call:
        return AzureEmbeddingCall(name, body, headers, path, query)

    def check(self, call: Call, json_ok: bool) -> ErrorSpec | None:
        rejected = self.reject(call.headers, call.body, json_ok)
        if rejected is not None:
            return rejected
        deployment = _AZURE_ROUTES.fullmatch(call.path)
        if deployment is not None and deployment.group("deployment") and not call.query.get("api-version"):
            return ErrorSpec(404, None, "Resource not found", code="404")
        return None

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        if self.api_key(headers) is None:
            return ErrorSpec(401, None, _azure.ACCESS_DENIED, code="401")
        if not json_ok:
            return ErrorSpec(400, "invalid_request_error", _openai.BAD_JSON)
        return self.check_input({"model": "deployment", **body})


# --- Google ----------------------------------------------------------------------------------

GEMINI_EMBED_FIELDS = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})


class _GoogleEmbeddings:
    """The embedding methods of a Google route: the chat protocol's credentials check, then the
    method's own body check (``check_embedding``)."""

    methods: frozenset[str] = frozenset()

    def matches(self, path: str) -> bool:
        match = self.route_pattern.match(path)  # type: ignore[attr-defined]
        return match is not None and match["method"] in self.methods

    def check(self, call: Call, json_ok: bool) -> ErrorSpec | None:
        assert isinstance(call, _gemini.RouteCall)
        rejected = self.check_credentials(call)  # type: ignore[attr-defined]
        if rejected is not None:
            return rejected
        if not json_ok:
            return _gemini.google_error(400, "Invalid JSON payload received. Unexpected token.")
        return self.check_embedding(call)

    def check_embedding(self, call: _gemini.RouteCall) -> ErrorSpec | None:
        raise NotImplementedError


class GeminiEmbeddings(_GoogleEmbeddings, _gemini.GeminiProtocol):
    """``models/{model}:batchEmbedContents`` (the route of the SDK's embed_content)."""

    name = "gemini-embeddings"
    methods = frozenset({"batchEmbedContents"})

    def check_embedding(self, call: _gemini.RouteCall) -> ErrorSpec | None:
        requests = call.body.get("requests")
        if not isinstance(requests, list) or not requests:
            return _gemini.google_error(400, "* BatchEmbedContentsRequest.requests: requests must not be empty\n")
        if len(requests) > GEMINI_MAX_REQUESTS:
            return _gemini.google_error(400, "* BatchEmbedContentsRequest.requests: at most 100 requests can be in "
                                             "one batch\n")
        for i, request in enumerate(requests):
            unknown = set(request) - GEMINI_EMBED_FIELDS if isinstance(request, dict) else {"?"}
            if unknown:
                return _gemini.google_error(400, f'Invalid JSON payload received. Unknown name "{min(unknown)}" '
                                                 f"at 'requests[{i}]': Cannot find field.")
            if request.get("model") != f"models/{call.model_id}":
                return _gemini.google_error(400, f"* BatchEmbedContentsRequest.requests[{i}].model: the model must "
                                                 "match the URL\n")
            if not _content_text(request.get("content")):
                return _gemini.google_error(400, f"* BatchEmbedContentsRequest.requests[{i}].content: contents "
                                                 "must not be empty\n")
        return None

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        requests = call.body["requests"]
        texts = [_content_text(request["content"]) for request in requests]
        vectors = _vectors(texts, requests[0].get("outputDimensionality"), finished)
        return _gemini.pretty({"embeddings": [{"values": vector} for vector in vectors]})

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        return [self.render(reply, call)]


def _content_text(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return ""
    return "".join(part.get("text", "") for part in parts if isinstance(part, dict))


class VertexEmbeddings(_GoogleEmbeddings, _vertex.VertexGeminiProtocol):
    """Vertex's ``:predict`` (text-embedding-*, gemini-embedding-001) and ``:embedContent``."""

    name = "vertex-embeddings"
    methods = frozenset({"predict", "embedContent"})

    def check_embedding(self, call: _gemini.RouteCall) -> ErrorSpec | None:
        if call.method == "embedContent":
            if not _content_text(call.body.get("content")):
                return _gemini.google_error(400, "content must not be empty")
            return None
        instances = call.body.get("instances")
        if not isinstance(instances, list) or not instances or not all(
                isinstance(item, dict) and isinstance(item.get("content"), str) for item in instances):
            return _gemini.google_error(400, "instances must be a non-empty list of {content: string}")
        if call.model_id == "gemini-embedding-001" and len(instances) > 1:
            return _gemini.google_error(400, "Unable to submit request because the model supports only 1 instance "
                                             "per request.")
        return None

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        assert isinstance(call, _gemini.RouteCall)
        if call.method == "embedContent":
            text = _content_text(call.body["content"])
            config = call.body.get("embedContentConfig") or {}
            vector = _vectors([text], config.get("outputDimensionality"), True)[0] if finished else []
            return _gemini.pretty({"embedding": {"values": vector},
                                   "usageMetadata": {"promptTokenCount": tokens([text])}})
        texts = [item["content"] for item in call.body["instances"]]
        vectors = _vectors(texts, (call.body.get("parameters") or {}).get("outputDimensionality"), finished)
        predictions = [{"embeddings": {"values": vector, "statistics": {"truncated": False,
                                                                        "token_count": tokens([text])}}}
                       for text, vector in zip(texts, vectors, strict=False)]
        return _gemini.pretty({"predictions": predictions,
                               "metadata": {"billableCharacterCount": sum(len(t) for t in texts)}})

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        return [self.render(reply, call)]


# --- Cohere and Bedrock ------------------------------------------------------------------------

COHERE_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering", "image"})
COHERE_TRUNCATE = frozenset({"NONE", "START", "END"})


def _cohere_problem(body: Any) -> str | None:
    """What Cohere's embed endpoint (v2, or v1-style on Bedrock) says about a body, or None."""
    texts = body.get("texts")
    if _texts(texts) is None or isinstance(texts, str):
        return "invalid request: texts must be a non-empty list of strings"
    if len(texts) > COHERE_MAX_TEXTS:
        return f"invalid request: total number of texts must be at most {COHERE_MAX_TEXTS} - received {len(texts)}"
    if "input_type" in body and body["input_type"] not in COHERE_INPUT_TYPES:
        return f"invalid request: input_type must be one of {sorted(COHERE_INPUT_TYPES)}"
    if "truncate" in body and body["truncate"] not in COHERE_TRUNCATE:
        return "invalid request: truncate must be one of NONE, START, END"
    return None


def _cohere_answer(body: Mapping[str, Any], finished: bool, meta: bool) -> dict[str, Any]:
    texts = body["texts"]
    vectors = _vectors(texts, body.get("output_dimension"), finished)
    answer: dict[str, Any] = {"id": random_id("", 8, "0123456789abcdef") + "-fake",
                              "texts": texts}
    if body.get("embedding_types"):
        answer.update(response_type="embeddings_by_type", embeddings={"float": vectors})
    else:
        answer.update(response_type="embeddings_floats", embeddings=vectors)
    if meta:
        answer["meta"] = {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens(texts)}}
    return answer


class CohereEmbeddings(_cohere.CohereProtocol):
    name = "cohere-embeddings"
    route = "/v2/embed"

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        if self.api_key(headers) is None or not json_ok:
            return super().reject(headers, body, json_ok)
        if not body.get("model"):
            return ErrorSpec(400, None, "invalid request: model must be specified")
        problem = _cohere_problem(body)
        return None if problem is None else ErrorSpec(400, None, problem)

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        return dumps(_cohere_answer(call.body, finished, meta=True)).encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        return [self.render(reply, call)]


class BedrockEmbeddings(_bedrock.BedrockProtocol):
    """InvokeModel for Titan Text Embeddings (``inputText``) and Cohere Embed (``texts``)."""

    name = "bedrock-embeddings"
    route = "/model/{modelId}/invoke"

    def matches(self, path: str) -> bool:
        parts = path.split("/")
        return len(parts) == 4 and parts[1] == "model" and bool(parts[2]) and parts[3] == "invoke"

    def call(self, name: str, body: Mapping[str, Any], headers: Mapping[str, str], path: str,
             query: Mapping[str, str]) -> Call:
        return _BedrockInvoke(name, body, headers, path, query)

    def check(self, call: Call, json_ok: bool) -> ErrorSpec | None:
        rejected = self._authenticate(call)
        if rejected is not None:
            return rejected
        if not json_ok:
            return _bedrock._error("ValidationException", 400)
        if "cohere." in call.model():
            problem = _cohere_problem(call.body)
            if problem is None and "model" in call.body:
                problem = "#: extraneous key [model] is not permitted"
        elif not isinstance(call.body.get("inputText"), str) or not call.body["inputText"]:
            problem = "#: required key [inputText] not found"
        else:
            unknown = set(call.body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}
            problem = f"#: extraneous key [{min(unknown)}] is not permitted" if unknown else None
        if problem is not None:
            return _bedrock._error("ValidationException", 400, f"Malformed input request: {problem}, please "
                                   "reformat your input and try again.")
        return None

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        if "cohere." in call.model():
            return dumps(_cohere_answer(call.body, finished, meta=False)).encode()
        text = call.body["inputText"]
        vector = _vectors([text], call.body.get("dimensions") or 1024, True)[0] if finished else []
        return dumps({"embedding": vector, "embeddingsByType": {"float": vector},
                      "inputTextTokenCount": tokens([text])}).encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        return [self.render(reply, call)]


class _BedrockInvoke(_bedrock.BedrockCall):
    @property
    def stream(self) -> bool:
        return False


# --- Ollama -------------------------------------------------------------------------------------

class OllamaEmbeddings(_ollama.OllamaProtocol):
    name = "ollama-embeddings"
    route = "/api/embed"

    def call(self, name: str, body: Mapping[str, Any], headers: Mapping[str, str], path: str,
             query: Mapping[str, str]) -> Call:
        return Call(name, body, headers, path, query)  # /api/embed never streams

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        rejected = super().reject(headers, body, json_ok)
        if rejected is not None:
            return rejected
        if _texts(body.get("input")) is None:
            return ErrorSpec(400, None, "invalid input type")
        return None

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        texts = _texts(call.body["input"]) or []
        vectors = _vectors(texts, call.body.get("dimensions"), finished)
        return dumps({"model": call.model(reply), "embeddings": vectors, "total_duration": 14143917,
                      "load_duration": 1019500, "prompt_eval_count": tokens(texts)}).encode()

    def events(self, reply: Reply, call: Call) -> list[bytes]:
        return [self.render(reply, call)]


# Registered before the chat protocols: Gemini's and Vertex's chat routes match any method.
PROTOCOLS = (OpenAIEmbeddings(), AzureEmbeddings(), GeminiEmbeddings(), VertexEmbeddings(), CohereEmbeddings(),
             BedrockEmbeddings(), OllamaEmbeddings())
