"""Usage a provider did not report is estimated here and flagged (issue 13, part 5).

An answer or stream that carries no usage gets counts from failover_client.tokens (the model's
tokenizer where available, the heuristic otherwise), ``Usage.estimated`` is True, cost is
computed from them, and UsageTracker says how many requests were estimated.
"""

import json

import pytest
from test_stream_json_answer import complete_answer

from failover_client import FailoverClient, FailoverConfig, UsageTracker, collect
from failover_client.testing import Reply
from failover_client.tokens import estimate_usage

from raw_server import RawServer
from support import PROTOCOLS, ask, make_provider

REPLY = Reply(text="The capital of France is Paris.")
# Where each protocol's answer reports usage: removed to make a server that reports none.
USAGE_KEYS = {"usage", "usageMetadata", "prompt_eval_count", "eval_count", "prompt_eval_duration", "eval_duration"}
QUESTION = ask("What is the capital of France? Answer in one sentence.", model="gpt-4o")


def without_usage(body):
    data = json.loads(body)
    for key in USAGE_KEYS & set(data):
        del data[key]
    return json.dumps(data)


def answer_without_usage(raw, protocol, stream):
    provider = make_provider(raw, "p", protocol)
    raw.answer(200, "{}")
    try:
        provider.complete(QUESTION)
    except Exception:
        pass  # only the request was wanted, to render the answer to it
    raw.answer(200, without_usage(complete_answer(raw, protocol, REPLY)), "application/json")
    if stream:
        return collect(provider.complete_stream(QUESTION))
    return provider.complete(QUESTION)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_an_answer_without_usage_gets_estimated_usage(protocol, stream):
    with RawServer() as raw:
        answer = answer_without_usage(raw, protocol, stream)
    assert answer.text == REPLY.text
    expected = estimate_usage(QUESTION, REPLY.text)
    assert answer.usage == expected and answer.usage.estimated
    assert expected.input_tokens >= 12 and expected.output_tokens >= 7  # the words, at the very least
    assert answer.cost is not None and answer.cost > 0  # priced from the estimate


def test_reported_usage_is_not_estimated(fake_provider):
    answer = make_provider(fake_provider, "p", "openai").complete(ask())
    assert answer.usage.input_tokens == 10 and not answer.usage.estimated


def test_an_openai_stream_without_a_usage_chunk_ends_with_an_estimate():
    """A compatible server that ignores stream_options: text, a finish reason, [DONE], no usage."""
    events = [{"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "Paris"}}]},
              {"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    with RawServer() as raw:
        raw.answer(200, body, "text/event-stream")
        chunks = list(make_provider(raw, "p", "openai").complete_stream(QUESTION))
        sent = json.loads(raw.requests[-1][2])
    assert sent["stream_options"] == {"include_usage": True}  # asked for, all the same
    assert chunks[-1].usage == estimate_usage(QUESTION, "Paris") and chunks[-1].usage.estimated
    assert collect(chunks).usage.estimated


@pytest.mark.parametrize("api_version, asks_for_usage", [("2024-06-01", False), ("2024-08-01-preview", False),
                                                         ("2024-10-21", True), ("2025-04-01-preview", True)])
def test_azure_asks_for_stream_usage_where_its_api_version_takes_it(fake_provider, api_version, asks_for_usage):
    provider = make_provider(fake_provider, "p", "azure", api_version=api_version)
    answer = collect(provider.complete_stream(ask(stream=True)))
    sent = fake_provider.requests[-1].body
    assert ("stream_options" in sent) is asks_for_usage
    assert answer.usage.estimated is not asks_for_usage  # without it, the fake sends no usage either


def test_the_tracker_counts_estimated_requests(fake_provider):
    tracker = UsageTracker()
    with RawServer() as raw:
        answer_without_usage(raw, "openai", stream=False)  # renders the answer the provider gets
        tracked = tracker.wrap(make_provider(raw, "p", "openai"))
        tracked.complete(QUESTION)
        collect(tracked.complete_stream(QUESTION))
    tracker.wrap(make_provider(fake_provider, "q", "openai")).complete(QUESTION)
    totals = tracker.totals()
    assert (totals.requests, totals.estimated) == (3, 2)
    assert totals.cost_usd > 0 and totals.unpriced == 0
    assert tracker.to_dict()["by_provider"]["p"]["estimated"] == 2


def test_the_attempt_hook_sees_the_estimate():
    with RawServer() as raw:
        answer_without_usage(raw, "openai", stream=False)
        tracker = UsageTracker()
        config = tracker.attach(FailoverConfig("p", make_provider(raw, "p", "openai")))
        collect(FailoverClient(config).complete_stream(QUESTION))
    assert tracker.totals().estimated == 1 and tracker.totals().output_tokens > 0
