"""batch.embed: texts cut into requests that fit the model's caps (from the registry, lowered by
the caller), run on threads, vectors back in input order, and a checkpoint that lets a run that
failed part-way finish without sending the finished requests again."""

import json

import pytest

from failover_client import FailoverClient, FailoverConfig, FallbackProvider, InvalidRequestError, ServerError, batch
from failover_client.batch.embedding import limits, plan
from failover_client.errors import InvalidArgumentError
from failover_client.testing import Fault
from failover_client.testing._embeddings import fake_vector

from support import make_provider

TEXTS = [f"text number {i}" for i in range(250)]


def test_the_plan_respects_count_and_tokens():
    assert plan(["a"] * 5, 2, None) == [(0, 2), (2, 4), (4, 5)]
    # 1 + 2 tokens fit in 3; a text over the cap goes alone
    assert plan(["abc", "abcdef", "abc", "a" * 30], 10, 3) == [(0, 2), (2, 3), (3, 4)]
    assert plan(["abc", "abc", "abc"], 10, 2) == [(0, 2), (2, 3)]


def test_the_caps_come_from_the_registry():
    assert limits("text-embedding-3-small", None, None) == (2048, None)
    assert limits("embed-v4.0", 500, 1000) == (96, 1000)  # the registry's cap wins over a bigger batch_size
    assert limits("amazon.titan-embed-text-v2:0", None, None) == (1, None)
    assert limits("voyage-4", None, None) == (1000, None)
    assert limits("not-in-the-registry", None, None) == (96, None)
    with pytest.raises(InvalidArgumentError):
        limits("m", 0, None)


def test_vectors_come_back_in_input_order_from_requests_within_the_caps(fake_provider):
    client = make_provider(fake_provider, "p", "cohere")
    answer = batch.embed(TEXTS, client, model="embed-v4.0", dimensions=4, workers=4, progress=False)
    assert answer.vectors == [fake_vector(text, 4) for text in TEXTS]
    sizes = sorted(len(r.body["texts"]) for r in fake_provider.requests)
    assert sizes == [58, 96, 96]
    assert answer.usage.input_tokens == sum(max(1, len(t) // 4) for t in TEXTS)


def test_a_failed_request_is_raised_after_the_rest_finish_and_a_rerun_sends_only_it(fake_provider, tmp_path):
    checkpoint = tmp_path / "vectors.jsonl"
    fake_provider.script("p", Fault.status(400))  # one request fails, whichever comes first
    client = make_provider(fake_provider, "p", "openai")
    with pytest.raises(InvalidRequestError):
        batch.embed(TEXTS, client, model="m", batch_size=50, workers=2, checkpoint=checkpoint, progress=False)
    assert len(checkpoint.read_text().splitlines()) == 4
    before = len(fake_provider.requests)
    answer = batch.embed(TEXTS, client, model="m", batch_size=50, workers=2, checkpoint=checkpoint, progress=False)
    assert len(fake_provider.requests) == before + 1
    assert answer.vectors == [fake_vector(text, 8) for text in TEXTS]


def test_changed_texts_are_embedded_again_and_a_torn_line_is_skipped(fake_provider, tmp_path):
    checkpoint = tmp_path / "vectors.jsonl"
    client = make_provider(fake_provider, "p", "openai")
    batch.embed(TEXTS[:100], client, model="m", batch_size=50, checkpoint=checkpoint, progress=False)
    with checkpoint.open("a") as f:
        f.write('{"start": 0, "end"')
    changed = ["changed"] + TEXTS[1:100]
    answer = batch.embed(changed, client, model="m", batch_size=50, checkpoint=checkpoint, progress=False)
    assert answer.vectors[0] == fake_vector("changed", 8)
    assert len(fake_provider.requests) == 3
    assert all(json.loads(line) for line in checkpoint.read_text().splitlines()[-1:])


def test_it_runs_through_a_failover_client(fake_provider):
    fake_provider.script("primary", Fault.status(500))
    config = FailoverConfig("primary", make_provider(fake_provider, "primary", "openai"))
    config.add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", "openai")))
    answer = batch.embed(TEXTS[:10], FailoverClient(config), model="m", batch_size=5, workers=1, progress=False)
    assert len(answer.vectors) == 10 and {a.outcome for a in answer.attempts} == {"ok", "error"}


def test_bad_arguments(fake_provider):
    client = make_provider(fake_provider, "p", "openai")
    with pytest.raises(InvalidArgumentError):
        batch.embed(["a"], object(), model="m")
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        batch.embed([], client, model="m")
    with pytest.raises(InvalidArgumentError, match="workers"):
        batch.embed(["a"], client, model="m", workers=0)
    assert fake_provider.requests == []


def test_server_errors_keep_their_type(fake_provider):
    fake_provider.set_default("p", Fault.status(500))
    with pytest.raises(ServerError):
        batch.embed(["a"], make_provider(fake_provider, "p", "openai"), model="m", progress=False)
