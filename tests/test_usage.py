"""UsageTracker: sums under 32 threads, attached by hooks or wrapped around a provider (a
FailoverClient included), billed failures, export, and the budget stop."""

import json
import pickle
import threading

import pytest

from failover_client import (
    AllProvidersFailedError,
    BudgetExceededError,
    EmbeddingRequest,
    FailoverClient,
    FailoverClientError,
    FailoverConfig,
    FallbackProvider,
    InvalidArgumentError,
    StreamInterruptedError,
    Usage,
    UsageTracker,
    collect,
)
from failover_client.testing import Fault, Reply
from tests.support import ask, make_provider

# gpt-4o: $2.50 input, $1.25 cached input, $10 output per million tokens (OpenAI pricing page).
GPT4O_USAGE = {"input": 1_000, "output": 200, "cache_read": 400, "cache_write": 0, "reasoning": 0}
GPT4O_COST = (600 * 2.50 + 400 * 1.25 + 200 * 10) / 1e6  # 0.004
# claude-sonnet-4-5: $3 input, $15 output.
SONNET_USAGE = {"input": 2_000, "output": 100, "cache_read": 0, "cache_write": 0, "reasoning": 0}
SONNET_COST = (2_000 * 3 + 100 * 15) / 1e6  # 0.0075


def test_record_sums_by_provider_and_model_and_exports():
    tracker = UsageTracker()
    assert tracker.record("openai", "gpt-4o", Usage(1_000, 200, cache_read_tokens=400)) == pytest.approx(GPT4O_COST)
    tracker.record("openai", "gpt-4o", Usage(1_000, 200, cache_read_tokens=400))
    tracker.record("openai", "gpt-4o", None, ok=False)
    tracker.record("backup", "my-finetune", Usage(50, 5))  # unknown model: counted, not priced
    data = json.loads(tracker.to_json())
    gpt = data["by_model"]["openai/gpt-4o"]
    assert (gpt["requests"], gpt["failures"], gpt["input_tokens"], gpt["cache_read_tokens"]) == (2, 1, 2_000, 800)
    assert gpt["cost_usd"] == pytest.approx(2 * GPT4O_COST)
    assert data["by_model"]["backup/my-finetune"]["unpriced"] == 1
    assert data["by_provider"]["backup"]["cost_usd"] == 0.0
    assert data["total"]["requests"] == 3 and data["total"]["failures"] == 1
    assert tracker.spent_usd == pytest.approx(2 * GPT4O_COST)
    tracker.reset()
    assert tracker.to_dict()["total"]["requests"] == 0


def test_32_threads_recording_at_once_lose_nothing():
    tracker = UsageTracker()
    start = threading.Barrier(32)

    def work(n):
        start.wait()
        for _ in range(500):
            tracker.record(f"p{n % 4}", "gpt-4o", Usage(1_000, 200, cache_read_tokens=400))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = tracker.totals()
    assert (total.requests, total.input_tokens, total.output_tokens) == (16_000, 16_000_000, 3_200_000)
    assert total.cost_usd == pytest.approx(16_000 * GPT4O_COST)
    assert {name: t.requests for name, t in tracker.by_provider().items()} == {f"p{i}": 4_000 for i in range(4)}


def test_32_threads_through_a_wrapped_provider(fake_provider):
    fake_provider.set_default("primary", Reply(text="ok", usage=GPT4O_USAGE, model="gpt-4o"))
    tracker = UsageTracker()
    provider = tracker.wrap(make_provider(fake_provider, "primary", "openai"))
    errors = []

    def work():
        try:
            for _ in range(4):
                provider.complete(ask())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.close()
    assert errors == []
    row = tracker.by_model()["primary/gpt-4o"]
    assert (row.requests, row.input_tokens, row.output_tokens) == (128, 128_000, 25_600)
    assert row.cost_usd == pytest.approx(128 * GPT4O_COST)
    assert len(fake_provider.requests_for("primary")) == 128


def _chain(server, primary_fault=None):
    if primary_fault is not None:
        server.script("primary", primary_fault)
    server.set_default("primary", Reply(text="from primary", usage=GPT4O_USAGE, model="gpt-4o"))
    server.set_default("backup", Reply(text="from backup", usage=SONNET_USAGE, model="claude-sonnet-4-5"))
    return (FailoverConfig("primary", make_provider(server, "primary", "openai"))
            .add_fallback(FallbackProvider("backup", make_provider(server, "backup", "anthropic"))
                          .with_model_mapping("gpt-4o", "claude-sonnet-4-5")))


def test_attached_by_hooks_counts_every_attempt(fake_provider):
    tracker = UsageTracker()
    with FailoverClient(tracker.attach(_chain(fake_provider, Fault.rate_limit()))) as client:
        assert client.complete(ask()).text == "from backup"
        assert client.complete(ask()).text == "from primary"
    rows = tracker.by_model()
    assert (rows["primary/gpt-4o"].failures, rows["primary/gpt-4o"].requests) == (1, 1)
    assert (rows["backup/claude-sonnet-4-5"].requests, rows["backup/claude-sonnet-4-5"].input_tokens) == (1, 2_000)
    assert tracker.spent_usd == pytest.approx(GPT4O_COST + SONNET_COST)


def test_wrapping_a_failover_client_counts_its_attempts_and_answers(fake_provider):
    tracker = UsageTracker()
    with tracker.wrap(FailoverClient(_chain(fake_provider, Fault.overloaded()))) as client:
        client.complete(ask())
        answer = collect(client.complete_stream(ask()))
    assert answer.text == "from primary"
    rows = tracker.by_model()
    assert (rows["primary/gpt-4o"].failures, rows["primary/gpt-4o"].requests) == (1, 1)
    assert rows["backup/claude-sonnet-4-5"].requests == 1
    assert tracker.spent_usd == pytest.approx(GPT4O_COST + SONNET_COST)


def test_all_providers_failing_counts_each_failed_attempt(fake_provider):
    fake_provider.set_default("primary", Fault.overloaded())
    fake_provider.set_default("backup", Fault.overloaded())
    config = (FailoverConfig("primary", make_provider(fake_provider, "primary", "openai"))
              .add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", "anthropic"))))
    tracker = UsageTracker()
    with tracker.wrap(FailoverClient(config)) as client, pytest.raises(AllProvidersFailedError):
        client.complete(ask())
    assert {name: t.failures for name, t in tracker.by_model().items()} == {"primary/gpt-4o": 1, "backup/gpt-4o": 1}
    assert tracker.spent_usd == 0


def test_an_interrupted_stream_is_a_billed_failure(fake_provider):
    # The usage chunk arrived, then the connection broke before [DONE]: the provider billed the
    # whole answer although the stream failed.
    usage = {"input": 2_000, "output": 100, "cache_read": 0, "cache_write": 0, "reasoning": 0}
    reply = Reply(text="one two three", usage=usage, model="gpt-4o")
    fake_provider.script("primary", Fault.reset_mid_body(after_events=6, reply=reply))
    config = FailoverConfig("primary", make_provider(fake_provider, "primary", "openai"))
    tracker = UsageTracker()
    with tracker.wrap(FailoverClient(config)) as client, pytest.raises(StreamInterruptedError):
        for _ in client.complete_stream(ask()):
            pass
    row = tracker.by_model()["primary/gpt-4o"]
    assert (row.failures, row.requests, row.input_tokens, row.output_tokens) == (1, 0, 2_000, 100)
    assert row.cost_usd == pytest.approx((2_000 * 2.50 + 100 * 10) / 1e6)


def test_the_budget_stops_calls_before_they_are_sent(fake_provider):
    fake_provider.set_default("primary", Reply(text="ok", usage=GPT4O_USAGE, model="gpt-4o"))
    tracker = UsageTracker(budget_usd=0.01)  # each call costs 0.004: the third crosses the budget
    with tracker.wrap(make_provider(fake_provider, "primary", "openai")) as provider:
        for _ in range(3):
            provider.complete(ask())
        with pytest.raises(BudgetExceededError) as caught:
            provider.complete(ask())
        with pytest.raises(BudgetExceededError):
            next(provider.complete_stream(ask()))
    assert len(fake_provider.requests_for("primary")) == 3
    assert caught.value.spent == pytest.approx(3 * GPT4O_COST) and caught.value.budget == 0.01
    assert "budget of $0.0100 is used up" in str(caught.value)
    assert isinstance(caught.value, FailoverClientError)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (type(copy), copy.spent, copy.budget, str(copy)) == (BudgetExceededError, caught.value.spent, 0.01,
                                                                 str(caught.value))


def test_a_guard_enforces_the_budget_of_an_attached_tracker_without_counting_twice(fake_provider):
    tracker = UsageTracker(budget_usd=0.005)
    client = tracker.guard(FailoverClient(tracker.attach(_chain(fake_provider))))
    client.complete(ask())
    client.complete(ask())  # 0.004 spent < 0.005: allowed, and now 0.008
    with pytest.raises(BudgetExceededError):
        client.complete(ask())
    client.close()
    assert tracker.totals().requests == 2
    assert tracker.spent_usd == pytest.approx(2 * GPT4O_COST)


# text-embedding-3-small: $0.02 per million input tokens (OpenAI pricing page); the fake server
# bills a text a token per 4 characters.
EMBEDDING_TEXT = "x" * 400
EMBEDDING_COST = 100 * 0.02 / 1e6


def test_a_wrapped_client_counts_embeddings_and_their_failed_attempts(fake_provider):
    fake_provider.script("primary", Fault.overloaded())
    config = (FailoverConfig("primary", make_provider(fake_provider, "primary", "openai"))
              .add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", "openai"))))
    tracker = UsageTracker()
    with tracker.wrap(FailoverClient(config)) as client:
        assert client.supports_embeddings
        answer = client.embed(EmbeddingRequest("text-embedding-3-small", [EMBEDDING_TEXT, EMBEDDING_TEXT]))
    assert answer.provider == "backup" and len(answer.vectors) == 2
    rows = tracker.by_model()
    assert (rows["primary/text-embedding-3-small"].failures, rows["primary/text-embedding-3-small"].requests) == (1, 0)
    backup = rows["backup/text-embedding-3-small"]
    assert (backup.requests, backup.input_tokens, backup.output_tokens) == (1, 200, 0)
    assert tracker.spent_usd == pytest.approx(2 * EMBEDDING_COST)


def test_the_budget_stops_embedding_calls_before_they_are_sent(fake_provider):
    tracker = UsageTracker(budget_usd=1.5 * EMBEDDING_COST)
    request = EmbeddingRequest("text-embedding-3-small", [EMBEDDING_TEXT])
    with tracker.wrap(make_provider(fake_provider, "primary", "openai")) as provider:
        provider.embed(request)
        provider.embed(request)  # below the budget when it starts; over it once answered
        with pytest.raises(BudgetExceededError):
            provider.embed(request)
    assert len(fake_provider.requests_for("primary")) == 2
    assert tracker.spent_usd == pytest.approx(2 * EMBEDDING_COST)


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="budget_usd"):
        UsageTracker(budget_usd=0)
    with pytest.raises(InvalidArgumentError, match="takes a Provider"):
        UsageTracker().wrap("openai")  # type: ignore[arg-type]
