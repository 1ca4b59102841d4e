"""Load balancing across deployments of the same model, combined with failover."""

import random

import pytest

from failover_client import AllProvidersFailedError, FailoverClient, InvalidArgumentError
from failover_client.resilience.balance import LowestLatency, Weighted
from failover_client.testing import Fault, Reply

from chains import FakeClock, chain, outcomes, served
from support import ask


def calls(config, n):
    client = FailoverClient(config)
    return [client.complete(ask()) for _ in range(n)]


def test_round_robin_takes_turns(fake_provider):
    config = chain(fake_provider, "east", "west", "openai").load_balance("east", "west", "openai")
    assert [r.provider for r in calls(config, 7)] == ["east", "west", "openai"] * 2 + ["east"]


def test_a_failing_deployment_fails_over_inside_the_group_then_down_the_chain(fake_provider):
    fake_provider.set_default("west", Fault.status(500))
    config = chain(fake_provider, "east", "west", "anthropic").load_balance("east", "west")
    config.without_circuit_breaker()
    responses = calls(config, 4)
    assert [outcomes(r.attempts) for r in responses] == [
        [("east", "ok", None)],
        [("west", "error", "ServerError"), ("east", "ok", None)],
    ] * 2
    fake_provider.set_default("east", Fault.status(500))
    response = calls(config, 1)[0]
    assert [a.provider for a in response.attempts] == ["east", "west", "anthropic"]
    assert response.provider == "anthropic"


def test_the_group_stands_where_its_first_member_is(fake_provider):
    fake_provider.set_default("first", Fault.status(500))
    fake_provider.set_default("b", Fault.status(500))
    fake_provider.set_default("a", Fault.status(500))
    config = chain(fake_provider, "first", "a", "middle", "b").load_balance("b", "a").without_circuit_breaker()
    response = calls(config, 1)[0]
    assert [a.provider for a in response.attempts] == ["first", "b", "a", "middle"]


def test_each_deployment_has_its_own_circuit(fake_provider):
    fake_provider.set_default("west", Fault.status(500))
    config = chain(fake_provider, "east", "west").load_balance("east", "west").with_circuit_breaker(
        failure_threshold=2)
    responses = calls(config, 8)
    assert {r.provider for r in responses} == {"east"}
    assert served(fake_provider).count("west") == 2  # then its circuit opened
    assert outcomes(responses[-1].attempts) == [("west", "skipped", "CircuitOpen"), ("east", "ok", None)]


def test_weighted_spreads_calls_by_weight(fake_provider):
    config = chain(fake_provider, "big", "small").load_balance(
        "big", "small", strategy=Weighted({"big": 3, "small": 1}, rng=random.Random(7)))
    providers = [r.provider for r in calls(config, 400)]
    assert 260 <= providers.count("big") <= 340  # 300 expected; a seeded draw, so always the same count


def test_weighted_by_name_checks_its_weights(fake_provider):
    config = chain(fake_provider, "a", "b", "c")
    with pytest.raises(InvalidArgumentError, match="exactly the balanced providers"):
        config.load_balance("a", "b", strategy="weighted", weights={"a": 1})
    with pytest.raises(InvalidArgumentError, match="positive number"):
        config.load_balance("a", "b", strategy="weighted", weights={"a": 1, "b": 0})
    with pytest.raises(InvalidArgumentError, match="only apply"):
        config.load_balance("a", "b", weights={"a": 1, "b": 2})
    config.load_balance("a", "b", strategy="weighted", weights={"a": 1, "b": 2})
    assert {r.provider for r in calls(config, 30)} == {"a", "b"}


def test_lowest_latency_measures_each_then_prefers_the_fastest(fake_provider):
    fake_provider.set_default("slow", Reply(text="slow", delay=0.05))
    clock = FakeClock()
    strategy = LowestLatency(max_age=60.0, clock=clock)
    config = chain(fake_provider, "slow", "fast").load_balance("slow", "fast", strategy=strategy)
    assert [r.provider for r in calls(config, 6)] == ["slow", "fast", "fast", "fast", "fast", "fast"]
    assert strategy.latency("slow") > strategy.latency("fast")
    clock.advance(61)  # old samples no longer count: both are measured again
    assert [r.provider for r in calls(config, 3)] == ["slow", "fast", "fast"]


def test_lowest_latency_of_streams_is_the_time_to_first_output(fake_provider):
    fake_provider.set_default("late", Fault.stall_mid_stream(after_events=1, seconds=0.05))
    strategy = LowestLatency()
    config = chain(fake_provider, "late", "prompt").load_balance("late", "prompt", strategy=strategy)
    client = FailoverClient(config)
    for _ in range(4):
        list(client.complete_stream(ask(stream=True)))
    assert strategy.latency("late") >= 0.05  # the stall before the first output counts
    assert strategy.latency("late") > strategy.latency("prompt")


def test_max_attempts_counts_after_balancing(fake_provider):
    for name in ("a", "b", "c"):
        fake_provider.set_default(name, Fault.status(500))
    config = chain(fake_provider, "a", "b", "c").load_balance("a", "b", "c").with_max_attempts(1)
    config.without_circuit_breaker()
    attempts = []
    for _ in range(3):
        with pytest.raises(AllProvidersFailedError) as info:
            FailoverClient(config).complete(ask())
        attempts.append([a.provider for a in info.value.attempts])
    assert attempts == [["a", "b"], ["b", "c"], ["c", "a"]]


@pytest.mark.parametrize("names, options, message", [
    (("a",), {}, "at least two"),
    (("a", "zz"), {}, "not in the chain"),
    (("a", "a"), {}, "once"),
    (("a", "b"), {"strategy": "fastest"}, "unknown balancing strategy"),
])
def test_bad_groups_are_named(fake_provider, names, options, message):
    with pytest.raises(InvalidArgumentError, match=message):
        chain(fake_provider, "a", "b").load_balance(*names, **options)


def test_a_provider_belongs_to_one_group(fake_provider):
    config = chain(fake_provider, "a", "b", "c").load_balance("a", "b")
    with pytest.raises(InvalidArgumentError, match="once"):
        config.load_balance("b", "c")
