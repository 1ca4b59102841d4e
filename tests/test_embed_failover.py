"""FailoverClient.embed: the rules of complete (triggers, retries, breaker, deadline, hedging,
events, usage) for embeddings, and the one rule of its own — a fallback takes part only when
its vectors would come from the same model, else it is skipped with the reason."""

import pytest

from failover_client import (
    AllProvidersFailedError,
    EmbeddingRequest,
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    InvalidRequestError,
    RateLimitError,
    UsageTracker,
)
from failover_client.providers import AnthropicProvider
from failover_client.testing import Fault, Reply
from failover_client.testing._embeddings import fake_vector

from support import make_provider

MODEL = "text-embedding-3-small"


def ask(*texts, model=MODEL, **fields):
    return EmbeddingRequest(model, list(texts or ["one", "two"]), **fields)


def chain(server, *fallbacks, **config):
    primary = make_provider(server, "primary", "openai")
    built = FailoverConfig("primary", primary)
    for fallback in fallbacks:
        built.add_fallback(fallback)
    return FailoverClient(built)


def test_a_rate_limited_primary_fails_over_to_another_deployment_of_the_model(fake_provider):
    fake_provider.script("primary", Fault.rate_limit())
    client = chain(fake_provider, FallbackProvider("azure", make_provider(fake_provider, "azure", "azure")))
    answer = client.embed(ask())
    assert answer.provider == "azure"
    assert answer.vectors == [fake_vector("one", 8), fake_vector("two", 8)]
    assert [(a.provider, a.outcome, a.error_type) for a in answer.attempts] == [
        ("primary", "error", "RateLimitError"), ("azure", "ok", None)]
    assert fake_provider.requests_for("azure")[0].path == f"/azure/azure/openai/deployments/{MODEL}/embeddings"


def test_a_fallback_of_another_model_is_skipped_with_the_reason(fake_provider):
    fake_provider.script("primary", Fault.status(500))
    chat_only = FallbackProvider("claude", AnthropicProvider(api_key="k", base_url=fake_provider.url))
    other_model = FallbackProvider("cohere", make_provider(fake_provider, "cohere", "cohere"),
                                   default_model="command-a-03-2025")
    mapped = FallbackProvider("gemini", make_provider(fake_provider, "gemini", "gemini")).with_model_mapping(
        MODEL, "gemini-embedding-001")
    answer = chain(fake_provider, chat_only, other_model, mapped).embed(ask())
    assert answer.provider == "gemini"
    assert [(a.provider, a.outcome) for a in answer.attempts] == [
        ("primary", "error"), ("claude", "skipped"), ("cohere", "skipped"), ("gemini", "ok")]
    assert answer.attempts[1].error == "serves no embeddings"
    assert "no embedding model mapping for 'text-embedding-3-small'" in answer.attempts[2].error
    assert fake_provider.requests_for("cohere") == []
    assert fake_provider.requests_for("gemini")[0].body["requests"][0]["model"] == "models/gemini-embedding-001"


def test_when_nothing_can_serve_the_model_every_attempt_is_listed(fake_provider):
    fake_provider.script("primary", Fault.status(503))
    other = FallbackProvider("cohere", make_provider(fake_provider, "cohere", "cohere"), default_model="embed-v4.0")
    with pytest.raises(AllProvidersFailedError) as info:
        chain(fake_provider, other).embed(ask())
    assert [(a.provider, a.outcome) for a in info.value.attempts] == [("primary", "error"), ("cohere", "skipped")]


def test_an_error_that_matches_no_trigger_is_raised_at_once(fake_provider):
    fake_provider.script("primary", Fault.status(400))
    backup = FallbackProvider("backup", make_provider(fake_provider, "backup", "openai"))
    with pytest.raises(InvalidRequestError) as info:
        chain(fake_provider, backup).embed(ask())
    assert [a.provider for a in info.value.attempts] == ["primary"]
    assert fake_provider.requests_for("backup") == []


def test_retries_hedging_and_events_apply(fake_provider):
    fake_provider.script("primary", Fault.rate_limit(), Reply())
    client = chain(fake_provider)
    client.config.retry_primary(1).with_retry_policy(client.config.retry_policy).sleep = lambda seconds: None
    events = []
    client.config.on("attempt_end", lambda **e: events.append((e["provider"], e["outcome"])))
    assert client.embed(ask()).provider == "primary"
    assert events == [("primary", "error"), ("primary", "ok")]

    fake_provider.script("primary", Fault.stall_before_headers(5))
    hedged = chain(fake_provider, FallbackProvider("backup", make_provider(fake_provider, "backup", "openai")))
    hedged.config.with_hedging(0.05)
    answer = hedged.embed(ask())
    assert answer.provider == "backup"
    assert {a.outcome for a in answer.attempts} == {"ok", "cancelled"}


def test_the_breaker_skips_a_provider_whose_circuit_is_open(fake_provider):
    fake_provider.set_default("primary", Fault.status(500))
    client = chain(fake_provider, FallbackProvider("backup", make_provider(fake_provider, "backup", "openai")))
    client.config.with_circuit_breaker(failure_threshold=2)
    for _ in range(2):
        client.embed(ask())
    answer = client.embed(ask())
    assert [(a.provider, a.outcome) for a in answer.attempts] == [("primary", "skipped"), ("backup", "ok")]


def test_usage_and_cost_are_counted(fake_provider):
    tracker = UsageTracker()
    client = chain(fake_provider)
    tracker.attach(client.config)
    answer = client.embed(ask("a" * 400))
    assert answer.usage.input_tokens == 100
    assert answer.cost == pytest.approx(100 * 0.02 / 1e6)  # text-embedding-3-small: $0.02 per million
    totals = tracker.by_model()[f"primary/{MODEL}"]
    assert (totals.requests, totals.input_tokens) == (1, 100)
    assert totals.cost_usd == pytest.approx(100 * 0.02 / 1e6)


def test_a_client_side_rate_limit_counts_embedding_tokens(fake_provider):
    client = chain(fake_provider, FallbackProvider("backup", make_provider(fake_provider, "backup", "openai")))
    client.config.with_rate_limit("primary", tpm=150)
    assert client.embed(ask("a" * 400)).provider == "primary"  # 100 tokens
    answer = client.embed(ask("a" * 400))  # 100 more do not fit in 150
    assert [(a.provider, a.outcome) for a in answer.attempts] == [("primary", "skipped"), ("backup", "ok")]


def test_supports_embeddings_when_any_link_does(fake_provider):
    assert chain(fake_provider).supports_embeddings
    only_chat = FailoverClient(FailoverConfig("c", AnthropicProvider(api_key="k")))
    assert not only_chat.supports_embeddings


def test_a_rate_limit_everywhere_names_the_last_error(fake_provider):
    fake_provider.set_default("primary", Fault.rate_limit())
    with pytest.raises(AllProvidersFailedError) as info:
        chain(fake_provider).embed(ask())
    assert isinstance(info.value.__cause__, RateLimitError)
