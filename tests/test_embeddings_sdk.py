"""Our embedding requests equal what the official SDKs send for the same call: each SDK is
pointed at the fake server on 127.0.0.1 and the body it sent is compared with ours (and the SDK
reads the fake's answer back to the same vectors)."""

import json

import botocore.session
import cohere
import openai
import pytest
from google import genai

from failover_client import EmbeddingRequest
from failover_client.testing._bedrock import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from failover_client.testing._embeddings import fake_vector

from support import make_provider

TEXTS = ["the first text", "the second text"]


def sent_by_us(server, protocol, request):
    answer = make_provider(server, "ours", protocol).embed(request)
    return server.requests_for("ours")[-1], answer


def test_openai_sdk_sends_the_same_body(fake_provider):
    client = openai.OpenAI(api_key="sk-test", base_url=fake_provider.base_url("sdk", "openai"), max_retries=0)
    result = client.embeddings.create(model="text-embedding-3-small", input=TEXTS, dimensions=64)
    ours, answer = sent_by_us(fake_provider, "openai", EmbeddingRequest("text-embedding-3-small", TEXTS, 64))
    theirs = fake_provider.requests_for("sdk")[-1]
    assert ours.body == theirs.body  # encoding_format base64 included: the SDK's default
    assert ours.path.replace("/ours/", "/sdk/") == theirs.path
    assert [list(item.embedding) for item in result.data] == answer.vectors == [fake_vector(t, 64) for t in TEXTS]


def test_cohere_sdk_sends_the_same_body(fake_provider):
    client = cohere.ClientV2(api_key="co-test", base_url=fake_provider.base_url("sdk", "cohere"))
    result = client.embed(model="embed-v4.0", texts=TEXTS, input_type="search_query", embedding_types=["float"],
                          output_dimension=256, truncate="NONE")
    request = EmbeddingRequest("embed-v4.0", TEXTS, 256, input_type="query", truncate=False)
    ours, answer = sent_by_us(fake_provider, "cohere", request)
    theirs = fake_provider.requests_for("sdk")[-1]
    assert ours.body == theirs.body and ours.path.replace("/ours/", "/sdk/") == theirs.path
    assert result.embeddings.float_ == answer.vectors


def test_google_genai_sdk_sends_the_same_body(fake_provider):
    root = fake_provider.base_url("sdk", "gemini").removesuffix("/v1beta")
    client = genai.Client(api_key="AIza-test", http_options={"base_url": root, "api_version": "v1beta"})
    result = client.models.embed_content(model="gemini-embedding-001", contents=TEXTS,
                                         config={"task_type": "RETRIEVAL_DOCUMENT", "output_dimensionality": 32})
    request = EmbeddingRequest("gemini-embedding-001", TEXTS, 32, input_type="document")
    ours, answer = sent_by_us(fake_provider, "gemini", request)
    theirs = fake_provider.requests_for("sdk")[-1]
    assert ours.body == theirs.body and ours.path.replace("/ours/", "/sdk/") == theirs.path
    assert [e.values for e in result.embeddings] == answer.vectors


@pytest.mark.parametrize("model, request_", [
    ("amazon.titan-embed-text-v2:0", EmbeddingRequest("amazon.titan-embed-text-v2:0", TEXTS[:1], 256)),
    ("cohere.embed-english-v3", EmbeddingRequest("cohere.embed-english-v3", TEXTS, input_type="document")),
])
def test_botocore_invoke_model_goes_where_ours_goes_and_both_signatures_pass(fake_provider, model, request_):
    ours, answer = sent_by_us(fake_provider, "bedrock", request_)
    session = botocore.session.get_session()
    client = session.create_client("bedrock-runtime", region_name="us-east-1",
                                   endpoint_url=fake_provider.base_url("sdk", "bedrock"),
                                   aws_access_key_id=TEST_ACCESS_KEY_ID, aws_secret_access_key=TEST_SECRET_ACCESS_KEY)
    result = client.invoke_model(modelId=model, body=json.dumps(ours.body), contentType="application/json",
                                 accept="application/json")
    theirs = fake_provider.requests_for("sdk")[-1]
    assert theirs.step == ours.step == "reply"  # the fake checked both SigV4 signatures
    assert ours.path.replace("/ours/", "/sdk/") == theirs.path
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/json"
    body = json.loads(result["body"].read())
    vectors = [body["embedding"]] if "embedding" in body else body["embeddings"]["float"]
    assert vectors == answer.vectors
