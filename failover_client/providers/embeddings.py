"""Text embeddings on every protocol family: our EmbeddingRequest to each wire body, each wire
answer back to vectors in input order, and the one call that sends it.

Wire facts: protocols-embeddings.md.  The provider classes keep only a method that names the
path and the family here (``embed``), so the chat modules stay as they were.  The rules every
family follows (§0.3 there):

* vectors are matched to inputs by ``index`` where the protocol gives one (OpenAI's docs do
  not promise the order), else by position; a duplicate or out-of-range index, a missing
  vector, or a vector whose length differs from ``dimensions`` (or from its siblings) is a
  ResponseDecodeError rather than a silently misattached or shortened result;
* OpenAI-style hosts are asked for ``encoding_format: "base64"`` (a quarter of the JSON size)
  and every vector is decoded by the JSON type that arrived, since some servers ignore the
  field: a string is standard base64 of little-endian float32 values, decoded exactly;
* protocols that take one text per call (Titan, Vertex ``:embedContent``) are called once per
  input, in order, under the one deadline.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import quote

from ..errors import ResponseDecodeError
from ..provider import _MALFORMED, dumps
from ..retry import Deadline
from ..types import EmbeddingRequest, EmbeddingResponse, Usage

if TYPE_CHECKING:
    from ..provider import HttpProvider

Vectors = list[list[float]]
# A family's answer: the vectors in input order and the tokens billed.
Parsed = tuple[Vectors, Usage]


@dataclass(frozen=True)
class EmbeddingWire:
    """One protocol family: ``body`` maps the request (for ``per_input`` families: one text of
    it) to the wire; ``parse`` reads the answer (with the response headers, where Bedrock
    reports tokens)."""

    body: Callable[[EmbeddingRequest], dict[str, Any]]
    parse: Callable[[Any, EmbeddingRequest, Mapping[str, str]], Parsed]
    per_input: bool = False


def embed(provider: HttpProvider, request: EmbeddingRequest, path: str, wire: EmbeddingWire, *,
          timeout: float | None = None, params: Mapping[str, str] | None = None) -> EmbeddingResponse:
    """Send ``request`` to ``provider`` at ``path`` in ``wire``'s shape; the checked answer."""
    request.validate()
    deadline = Deadline(timeout)
    parts = [replace(request, inputs=[text]) for text in request.inputs] if wire.per_input else [request]
    vectors: Vectors = []
    usage = Usage()
    for part in parts:
        body = wire.body(part)
        if request.extra:
            body.update(request.extra)
        payload = dumps(body)
        response = provider.transport().request(
            "POST", path, body=payload, params=params, headers=provider._request_headers(path, payload, False),
            deadline=deadline, model=request.model)
        data = response.json()
        try:
            got, used = wire.parse(data, part, response.headers)
        except _MALFORMED as exc:
            raise provider._malformed(exc, part) from None
        vectors.extend(got)
        usage.input_tokens += used.input_tokens
    check_shape(vectors, request, provider.name)
    return EmbeddingResponse(vectors, request.model, provider=provider.name, usage=usage)


def check_shape(vectors: Vectors, request: EmbeddingRequest, provider: str) -> None:
    """One vector per input, every one of the asked (or else the same) length."""
    where = dict(provider=provider, model=request.model)
    if len(vectors) != len(request.inputs):
        raise ResponseDecodeError(f"{provider} returned {len(vectors)} vectors for {len(request.inputs)} inputs",
                                  **where)
    expected = request.dimensions or len(vectors[0])
    for i, vector in enumerate(vectors):
        if len(vector) != expected or not vector:
            raise ResponseDecodeError(f"{provider} returned a vector of {len(vector)} dimensions at input {i}, "
                                      f"expected {expected}", **where)


def decode_vector(value: Any) -> list[float]:
    """A vector as it arrived: a list of numbers, or base64 of little-endian float32 values."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a vector is a list or a base64 string, not {type(value).__name__}")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"a vector is not valid base64 ({exc})") from None
    if len(raw) % 4:
        raise ValueError(f"a base64 vector of {len(raw)} bytes is not a whole number of float32 values")
    floats = array("f")
    floats.frombytes(raw)
    if sys.byteorder == "big":
        floats.byteswap()
    return floats.tolist()


def _in_order(items: list[Any], count: int, vector_of: Callable[[Any], Any]) -> Vectors:
    """Items carrying ``index`` placed at it (each index once, within range); else by position."""
    if not items or not isinstance(items[0], dict) or "index" not in items[0]:
        return [decode_vector(vector_of(item)) for item in items]
    placed: list[list[float] | None] = [None] * max(count, len(items))
    for item in items:
        index = item["index"]
        if not isinstance(index, int) or not 0 <= index < len(placed) or placed[index] is not None:
            raise ValueError(f"embedding index {index!r} is out of range or repeated")
        placed[index] = decode_vector(vector_of(item))
    return [vector for vector in placed if vector is not None]


def _put(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    if value is not None:
        body[key] = value
    return body


# --- OpenAI and the hosts that copy it (Azure, Mistral, Voyage, Jina, vLLM, Ollama's /v1) -------

VOYAGE_INPUT_TYPES = {"query": "query", "document": "document"}
JINA_TASKS = {"query": "retrieval.query", "document": "retrieval.passage", "classification": "classification",
              "clustering": "separation", "similarity": "text-matching"}


def openai_body(request: EmbeddingRequest) -> dict[str, Any]:
    body = {"model": request.model, "input": request.inputs, "encoding_format": "base64"}
    return _put(body, "dimensions", request.dimensions)


def mistral_body(request: EmbeddingRequest) -> dict[str, Any]:
    body = {"model": request.model, "input": request.inputs, "encoding_format": "base64"}
    return _put(body, "output_dimension", request.dimensions)


def voyage_body(request: EmbeddingRequest) -> dict[str, Any]:
    body = {"model": request.model, "input": request.inputs, "encoding_format": "base64"}
    _put(body, "input_type", VOYAGE_INPUT_TYPES.get(request.input_type or ""))
    _put(body, "truncation", request.truncate)
    return _put(body, "output_dimension", request.dimensions)


def jina_body(request: EmbeddingRequest) -> dict[str, Any]:
    """Floats: Jina does not document the byte order of its base64 vectors."""
    body: dict[str, Any] = {"model": request.model, "input": request.inputs}
    _put(body, "task", JINA_TASKS.get(request.input_type or ""))
    _put(body, "truncate", request.truncate)
    return _put(body, "dimensions", request.dimensions)


def openai_parse(data: Any, request: EmbeddingRequest, headers: Mapping[str, str]) -> Parsed:
    vectors = _in_order(data["data"], len(request.inputs), lambda item: item["embedding"])
    usage = data.get("usage") or {}
    return vectors, Usage(input_tokens=usage.get("prompt_tokens") or usage.get("total_tokens") or 0)


OPENAI = EmbeddingWire(openai_body, openai_parse)
# OpenAI-compatible hosts whose parameters differ, by catalog name (catalog.EMBEDDINGS).
OPENAI_DIALECTS = {
    "openai": OPENAI,
    "mistral": EmbeddingWire(mistral_body, openai_parse),
    "voyage": EmbeddingWire(voyage_body, openai_parse),
    "jina": EmbeddingWire(jina_body, openai_parse),
}


# --- Google: the Gemini API's batchEmbedContents, Vertex's :predict and :embedContent ----------

GOOGLE_TASK_TYPES = {"query": "RETRIEVAL_QUERY", "document": "RETRIEVAL_DOCUMENT",
                     "classification": "CLASSIFICATION", "clustering": "CLUSTERING",
                     "similarity": "SEMANTIC_SIMILARITY"}
GEMINI_BATCH = ":batchEmbedContents"
VERTEX_PREDICT = ":predict"
VERTEX_EMBED_CONTENT = ":embedContent"


def gemini_resource(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def gemini_body(request: EmbeddingRequest) -> dict[str, Any]:
    """Each request repeats the model, as the URL names it (the SDK does the same)."""
    model = gemini_resource(request.model)
    task = GOOGLE_TASK_TYPES.get(request.input_type or "")
    requests = []
    for text in request.inputs:
        item: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}], "role": "user"}}
        _put(item, "taskType", task)
        requests.append(_put(item, "outputDimensionality", request.dimensions))
    return {"requests": requests}


def gemini_parse(data: Any, request: EmbeddingRequest, headers: Mapping[str, str]) -> Parsed:
    """Vectors in request order; the API reports no token counts for embeddings."""
    return [decode_vector(item["values"]) for item in data["embeddings"]], Usage()


def vertex_predict_body(request: EmbeddingRequest) -> dict[str, Any]:
    """``task_type`` is snake_case inside instances while ``parameters`` are camelCase."""
    task = GOOGLE_TASK_TYPES.get(request.input_type or "")
    instances = [_put({"content": text}, "task_type", task) for text in request.inputs]
    parameters = _put({}, "outputDimensionality", request.dimensions)
    _put(parameters, "autoTruncate", request.truncate)
    return {"instances": instances, "parameters": parameters} if parameters else {"instances": instances}


def vertex_predict_parse(data: Any, request: EmbeddingRequest, headers: Mapping[str, str]) -> Parsed:
    vectors, tokens = [], 0
    for prediction in data["predictions"]:
        embeddings = prediction["embeddings"]
        vectors.append(decode_vector(embeddings["values"]))
        tokens += (embeddings.get("statistics") or {}).get("token_count") or 0
    return vectors, Usage(input_tokens=int(tokens))


def vertex_content_body(request: EmbeddingRequest) -> dict[str, Any]:
    config = _put({}, "taskType", GOOGLE_TASK_TYPES.get(request.input_type or ""))
    _put(config, "outputDimensionality", request.dimensions)
    _put(config, "autoTruncate", request.truncate)
    body: dict[str, Any] = {"content": {"role": "user", "parts": [{"text": request.inputs[0]}]}}
    return _put(body, "embedContentConfig", config or None)


def vertex_content_parse(data: Any, request: EmbeddingRequest, headers: Mapping[str, str]) -> Parsed:
    usage = data.get("usageMetadata") or {}
    return [decode_vector(data["embedding"]["values"])], Usage(input_tokens=usage.get("promptTokenCount") or 0)


GEMINI = EmbeddingWire(gemini_body, gemini_parse)
VERTEX_PREDICT_WIRE = EmbeddingWire(vertex_predict_body, vertex_predict_parse)
VERTEX_CONTENT_WIRE = EmbeddingWire(vertex_content_body, vertex_content_parse, per_input=True)


def vertex_route(model: str) -> tuple[str, EmbeddingWire]:
    """As the google-genai SDK decides: Gemini models other than gemini-embedding-001, and
    model-as-a-service models, take ``:embedContent`` (one text a call); the rest ``:predict``."""
    if ("gemini" in model and model != "gemini-embedding-001") or "maas" in model:
        return VERTEX_EMBED_CONTENT, VERTEX_CONTENT_WIRE
    return VERTEX_PREDICT, VERTEX_PREDICT_WIRE


# --- Cohere v2 /v2/embed, and Cohere Embed and Titan on Bedrock ----------------------------

COHERE_INPUT_TYPES = {"query": "search_query", "document": "search_document",
                      "classification": "classification", "clustering": "clustering"}
COHERE_TRUNCATE = {True: "END", False: "NONE"}
BEDROCK_INPUT_TOKENS = "X-Amzn-Bedrock-Input-Token-Count"


def _cohere_fields(request: EmbeddingRequest, body: dict[str, Any]) -> dict[str, Any]:
    _put(body, "input_type", COHERE_INPUT_TYPES.get(request.input_type or ""))
    body["embedding_types"] = ["float"]
    _put(body, "output_dimension", request.dimensions)
    return _put(body, "truncate", COHERE_TRUNCATE.get(request.truncate))  # type: ignore[call-overload]


def cohere_body(request: EmbeddingRequest) -> dict[str, Any]:
    return _cohere_fields(request, {"model": request.model, "texts": request.inputs})


def _cohere_vectors(data: Any) -> Vectors:
    """``embeddings_by_type`` (``{"float": [...]}``) or the older bare list of float vectors."""
    embeddings = data["embeddings"]
    items = embeddings["float"] if isinstance(embeddings, dict) else embeddings
    return [decode_vector(vector) for vector in items]


def cohere_parse(data: Any, request: EmbeddingRequest, headers: Mapping[str, str]) -> Parsed:
    billed = (data.get("meta") or {}).get("billed_units") or {}
    return _cohere_vectors(data), Usage(input_tokens=int(billed.get("input_tokens") or 0))


def bedrock_cohere_body(request: EmbeddingRequest) -> dict[str, Any]:
    """Cohere's body without ``model`` (the path names it)."""
    return _cohere_fields(request, {"texts": request.inputs})


def bedrock_cohere_parse(data: Any, request: EmbeddingRequest, headers: Mapping[str, str]) -> Parsed:
    return _cohere_vectors(data), Usage(input_tokens=int(headers.get(BEDROCK_INPUT_TOKENS) or 0))


def titan_body(request: EmbeddingRequest) -> dict[str, Any]:
    return _put({"inputText": request.inputs[0]}, "dimensions", request.dimensions)


def titan_parse(data: Any, request: EmbeddingRequest, headers: Mapping[str, str]) -> Parsed:
    return [decode_vector(data["embedding"])], Usage(input_tokens=int(data.get("inputTextTokenCount") or 0))


COHERE = EmbeddingWire(cohere_body, cohere_parse)
BEDROCK_COHERE = EmbeddingWire(bedrock_cohere_body, bedrock_cohere_parse)
TITAN = EmbeddingWire(titan_body, titan_parse, per_input=True)


def bedrock_route(model: str) -> tuple[str, EmbeddingWire]:
    """InvokeModel's path and the model family's body: Titan takes one ``inputText`` a call,
    Cohere Embed a list of ``texts`` (a Titan body to a Cohere model is refused, and back)."""
    wire = BEDROCK_COHERE if "cohere." in model else TITAN
    return f"/model/{quote(model, safe='')}/invoke", wire


# --- Ollama's native /api/embed ----------------------------------------------------------------

def ollama_body(request: EmbeddingRequest) -> dict[str, Any]:
    body = _put({"model": request.model, "input": request.inputs}, "truncate", request.truncate)
    return _put(body, "dimensions", request.dimensions)


def ollama_parse(data: Any, request: EmbeddingRequest, headers: Mapping[str, str]) -> Parsed:
    return [decode_vector(vector) for vector in data["embeddings"]], Usage(
        input_tokens=int(data.get("prompt_eval_count") or 0))


OLLAMA = EmbeddingWire(ollama_body, ollama_parse)
OLLAMA_PATH = "/api/embed"
