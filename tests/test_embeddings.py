"""Provider.embed on every protocol family against the fake server's embedding routes: vectors in
input order and exactly as sent (base64 float32 decoded bit for bit), the wire fields each
protocol takes, the faults of each route as our typed errors, and answers of the wrong shape
(a vector missing, a wrong dimension, a repeated index) refused as ResponseDecodeError."""

import base64
import struct

import pytest
from test_faults import FAULTS, PATIENT

from failover_client import EmbeddingRequest, EmbeddingResponse
from failover_client.errors import InvalidArgumentError, NotSupportedError, ResponseDecodeError
from failover_client.providers import AnthropicProvider, OpenAIProvider
from failover_client.providers.embeddings import decode_vector
from failover_client.testing import Fault
from failover_client.testing._embeddings import fake_vector

from support import make_provider

TEXTS = ["first text", "second text", "third text"]
# (protocol, model, path the request must reach after the provider name)
CASES = {
    "openai": ("openai", "text-embedding-3-small", "/v1/embeddings"),
    "azure": ("azure", "embedder", "/azure/openai/deployments/embedder/embeddings"),
    "gemini": ("gemini", "gemini-embedding-001", "/v1beta/models/gemini-embedding-001:batchEmbedContents"),
    "vertex predict": ("vertex", "text-embedding-005", "/google/models/text-embedding-005:predict"),
    "vertex embedContent": ("vertex", "gemini-embedding-2", "/google/models/gemini-embedding-2:embedContent"),
    "cohere": ("cohere", "embed-v4.0", "/v2/embed"),
    "bedrock titan": ("bedrock", "amazon.titan-embed-text-v2:0", "/model/amazon.titan-embed-text-v2%3A0/invoke"),
    "bedrock cohere": ("bedrock", "cohere.embed-english-v3", "/model/cohere.embed-english-v3/invoke"),
    "ollama": ("ollama", "all-minilm", "/api/embed"),
}
# one text a call: these protocols take several requests for several texts
PER_INPUT = {"vertex embedContent", "bedrock titan"}


def embedder(server, case, **options):
    protocol, model, _ = CASES[case]
    return make_provider(server, "p", protocol, **options), model


@pytest.mark.parametrize("case", CASES)
def test_vectors_arrive_in_input_order_exactly(fake_provider, case):
    provider, model = embedder(fake_provider, case)
    answer = provider.embed(EmbeddingRequest(model, TEXTS, dimensions=16))
    assert isinstance(answer, EmbeddingResponse)
    assert answer.vectors == [fake_vector(text, 16) for text in TEXTS]
    assert answer.provider == "p" and answer.model == model and answer.dimensions == 16
    requests = fake_provider.requests_for("p")
    assert len(requests) == (len(TEXTS) if case in PER_INPUT else 1)
    assert all(r.path.endswith(CASES[case][2]) for r in requests)
    assert provider.supports_embeddings


def test_usage_is_read_where_the_protocol_reports_it(fake_provider):
    provider, model = embedder(fake_provider, "openai")
    assert provider.embed(EmbeddingRequest(model, ["a" * 40, "b" * 8])).usage.input_tokens == 12
    titan, model = embedder(fake_provider, "bedrock titan")
    assert titan.embed(EmbeddingRequest(model, ["a" * 40, "b" * 8])).usage.input_tokens == 12  # summed over calls


def body_of(server, case, request):
    provider, _ = embedder(server, case)
    provider.embed(request)
    return server.requests[-1].body


def test_each_protocol_gets_the_hints_in_its_own_words(fake_provider):
    def ask(model):
        return EmbeddingRequest(model, ["q"], dimensions=256, input_type="query", truncate=False)

    assert body_of(fake_provider, "openai", ask("text-embedding-3-large")) == {
        "model": "text-embedding-3-large", "input": ["q"], "encoding_format": "base64", "dimensions": 256}
    assert body_of(fake_provider, "gemini", ask("gemini-embedding-001")) == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "q"}], "role": "user"},
         "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 256}]}
    assert body_of(fake_provider, "vertex predict", ask("text-embedding-005")) == {
        "instances": [{"content": "q", "task_type": "RETRIEVAL_QUERY"}],
        "parameters": {"outputDimensionality": 256, "autoTruncate": False}}
    assert body_of(fake_provider, "vertex embedContent", ask("gemini-embedding-2")) == {
        "content": {"role": "user", "parts": [{"text": "q"}]},
        "embedContentConfig": {"taskType": "RETRIEVAL_QUERY", "outputDimensionality": 256, "autoTruncate": False}}
    assert body_of(fake_provider, "cohere", ask("embed-v4.0")) == {
        "model": "embed-v4.0", "texts": ["q"], "input_type": "search_query", "embedding_types": ["float"],
        "output_dimension": 256, "truncate": "NONE"}
    assert body_of(fake_provider, "bedrock cohere", ask("cohere.embed-v4:0")) == {
        "texts": ["q"], "input_type": "search_query", "embedding_types": ["float"], "output_dimension": 256,
        "truncate": "NONE"}
    assert body_of(fake_provider, "bedrock titan", ask("amazon.titan-embed-text-v2:0")) == {
        "inputText": "q", "dimensions": 256}
    assert body_of(fake_provider, "ollama", ask("all-minilm")) == {
        "model": "all-minilm", "input": ["q"], "truncate": False, "dimensions": 256}


@pytest.mark.parametrize("name, expected", [
    ("mistral", {"model": "m", "input": ["q"], "encoding_format": "base64", "output_dimension": 64}),
    ("voyage", {"model": "m", "input": ["q"], "encoding_format": "base64", "input_type": "query",
                "truncation": True, "output_dimension": 64}),
    ("jina", {"model": "m", "input": ["q"], "task": "retrieval.query", "truncate": True, "dimensions": 64}),
])
def test_openai_compatible_hosts_get_their_dialect(fake_provider, name, expected):
    provider = OpenAIProvider(api_key="k", base_url=fake_provider.base_url(name, "openai"), name=name)
    answer = provider.embed(EmbeddingRequest("m", ["q"], dimensions=64, input_type="query", truncate=True))
    assert fake_provider.requests[-1].body == expected
    assert answer.vectors == [fake_vector("q", 64)]


def test_the_catalog_says_which_openai_hosts_serve_embeddings():
    assert OpenAIProvider(api_key="k", name="voyage").supports_embeddings
    assert not OpenAIProvider(api_key="k", name="groq").supports_embeddings
    assert OpenAIProvider(api_key="k", name="my-proxy").supports_embeddings  # a name of its own: maybe
    assert not AnthropicProvider(api_key="k").supports_embeddings
    with pytest.raises(NotSupportedError):
        AnthropicProvider(api_key="k").embed(EmbeddingRequest("m", ["x"]))


def test_azure_v1_api_sends_the_deployment_as_model(fake_provider):
    provider = make_provider(fake_provider, "p", "azure", api_version=None, deployment="my-embedder")
    provider.embed(EmbeddingRequest("text-embedding-3-small", ["x"]))
    assert fake_provider.requests[-1].path == "/p/azure/openai/v1/embeddings"
    assert fake_provider.requests[-1].body["model"] == "my-embedder"


# --- base64 ------------------------------------------------------------------------------------

def test_base64_vectors_decode_as_little_endian_float32():
    assert decode_vector("AAAAPgAAIMAAAHBA") == [0.125, -2.5, 3.75]  # protocols-embeddings.md §0.2
    values = [1e-38, -3.4028234663852886e38, 0.1]
    packed = struct.pack("<3f", *values)
    assert decode_vector(base64.b64encode(packed).decode()) == list(struct.unpack("<3f", packed))
    assert decode_vector([0.5, 1]) == [0.5, 1]  # servers that ignore encoding_format send floats


@pytest.mark.parametrize("bad", ["AAAAPgAAIMAAAHB", "not base64!", "AAAAPgA="])
def test_bad_base64_is_a_decode_error(fake_provider, bad):
    body = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": bad}], "model": "m"}
    fake_provider.script("p", Fault.status(200, body=body))
    provider, _ = embedder(fake_provider, "openai")
    with pytest.raises(ResponseDecodeError):
        provider.embed(EmbeddingRequest("m", ["x"]))


# --- answers of the wrong shape ------------------------------------------------------------------

def openai_answer(*items):
    return {"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": index, "embedding": vector} for index, vector in items]}


def test_vectors_are_placed_by_index(fake_provider):
    fake_provider.script("p", Fault.status(200, body=openai_answer((1, [2.0, 2.0]), (0, [1.0, 1.0]))))
    provider, _ = embedder(fake_provider, "openai")
    assert provider.embed(EmbeddingRequest("m", ["a", "b"])).vectors == [[1.0, 1.0], [2.0, 2.0]]


@pytest.mark.parametrize("answer, words", [
    (openai_answer((0, [1.0, 1.0])), "1 vectors for 2 inputs"),
    (openai_answer((0, [1.0, 1.0]), (0, [2.0, 2.0])), "index"),
    (openai_answer((0, [1.0, 1.0]), (5, [2.0, 2.0])), "index"),
    (openai_answer((0, [1.0, 1.0]), (1, [2.0])), "1 dimensions at input 1"),
    (openai_answer((0, []), (1, [])), "0 dimensions"),
    ({"object": "list", "model": "m"}, "unexpected response shape"),
])
def test_answers_of_the_wrong_shape_are_refused(fake_provider, answer, words):
    fake_provider.script("p", Fault.status(200, body=answer))
    provider, _ = embedder(fake_provider, "openai")
    with pytest.raises(ResponseDecodeError, match=words) as info:
        provider.embed(EmbeddingRequest("m", ["a", "b"]))
    assert info.value.provider == "p"


def test_a_dimension_other_than_asked_is_refused(fake_provider):
    fake_provider.script("p", Fault.status(200, body=openai_answer((0, [1.0] * 8))))
    provider, _ = embedder(fake_provider, "openai")
    with pytest.raises(ResponseDecodeError, match="8 dimensions at input 0, expected 4"):
        provider.embed(EmbeddingRequest("m", ["a"], dimensions=4))


# --- faults on every route -----------------------------------------------------------------------

FAULT_CELLS = ("429", "500", "503", "html 502 from a proxy", "reset before headers", "reset mid-body",
               "truncated", "malformed json", "empty 200")


@pytest.mark.parametrize("fault_name", FAULT_CELLS)
@pytest.mark.parametrize("case", CASES)
def test_faults_raise_our_typed_errors(fake_provider, case, fault_name):
    fault, expected, _ = FAULTS[fault_name]
    fake_provider.script("p", fault)
    provider, model = embedder(fake_provider, case, read_timeout=PATIENT)
    with pytest.raises(expected) as info:
        provider.embed(EmbeddingRequest(model, TEXTS))
    assert type(info.value) is expected and info.value.provider == "p"
    assert provider.embed(EmbeddingRequest(model, TEXTS)).vectors[0] == fake_vector(TEXTS[0], len(
        provider.embed(EmbeddingRequest(model, TEXTS[:1])).vectors[0]))


# --- arguments ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, words", [
    ({"inputs": []}, "non-empty list"),
    ({"inputs": "one string"}, "non-empty list"),
    ({"inputs": ["ok", 3]}, r"inputs\[1\] is int"),
    ({"inputs": ["ok", "  "]}, r"inputs\[1\] is empty"),
    ({"dimensions": 0}, "dimensions"),
    ({"dimensions": True}, "dimensions"),
    ({"input_type": "search_query"}, "input_type"),
    ({"truncate": "END"}, "truncate"),
    ({"model": ""}, "model"),
])
def test_bad_requests_fail_before_sending(fake_provider, fields, words):
    provider, model = embedder(fake_provider, "openai")
    request = EmbeddingRequest(**{"model": model, "inputs": ["x"], **fields})
    with pytest.raises(InvalidArgumentError, match=words):
        provider.embed(request)
    assert fake_provider.requests == []


def test_requests_and_answers_round_trip_as_json():
    request = EmbeddingRequest("m", ["a", "b"], dimensions=3, input_type="document", truncate=True)
    assert EmbeddingRequest.from_json(request.to_json()) == request
    answer = EmbeddingResponse([[0.5, -1.0]], "m", provider="p")
    assert EmbeddingResponse.from_json(answer.to_json()) == answer
