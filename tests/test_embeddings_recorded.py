"""A real embedding exchange, recorded by another client's test suite, replayed through our
OpenAIProvider over HTTP on 127.0.0.1.

tests/data/openai_embedding_recorded.json holds ruby-openai's VCR cassette of one
text-embedding-ada-002 call (MIT licence, its notice kept in the file): the request it sent and
the answer api.openai.com gave, byte for byte.  That client asked for floats (no
``encoding_format``), so the answer carries JSON numbers where ours asks for base64: the
replay proves a server that answers floats anyway is read exactly, and that a vector of the
wrong length (a ``dimensions`` the server ignored) is refused."""

import json
from pathlib import Path

import pytest

from failover_client import EmbeddingRequest, ResponseDecodeError
from failover_client.providers import OpenAIProvider

from raw_server import RawServer

RECORDED = json.loads((Path(__file__).parent / "data" / "openai_embedding_recorded.json").read_text())
ANSWER = RECORDED["response"]
SENT = RECORDED["request"]["body"]


@pytest.fixture
def openai_replay():
    with RawServer() as server:
        server.answer(ANSWER["status"], ANSWER["body"], ANSWER["headers"]["Content-Type"])
        yield server, OpenAIProvider(api_key="sk-test-0123456789", base_url=server.base_url("p", "openai"))


def test_the_recorded_answer_gives_its_vector_exactly(openai_replay):
    server, provider = openai_replay
    answer = provider.embed(EmbeddingRequest(SENT["model"], [SENT["input"]]))
    recorded = json.loads(ANSWER["body"])
    assert answer.vectors == [recorded["data"][0]["embedding"]]
    assert answer.dimensions == 1536
    assert answer.usage.input_tokens == recorded["usage"]["prompt_tokens"] == 8
    [(path, _headers, body)] = server.requests
    assert path == "/p/v1/embeddings"
    assert json.loads(body) == {"model": SENT["model"], "input": [SENT["input"]], "encoding_format": "base64"}


def test_a_dimension_the_server_ignored_is_a_decode_error(openai_replay):
    _server, provider = openai_replay
    with pytest.raises(ResponseDecodeError, match="vector of 1536 dimensions at input 0, expected 256"):
        provider.embed(EmbeddingRequest(SENT["model"], [SENT["input"]], dimensions=256))
