"""Client-side rate limits: requests and tokens per minute, in memory and through Redis."""

import pytest

from failover_client import FailoverClient, InvalidArgumentError
from failover_client.health import MemoryHealthStore, RedisHealthStore
from failover_client.resilience.ratelimit import RateLimit, estimate_tokens
from failover_client.testing import Reply

from chains import FakeClock, chain, outcomes, served
from support import ask

WINDOW_START = 1200.0  # a whole number of minutes on the fake clock


def limited(server, clock, **limit):
    config = chain(server, "primary", "backup").with_health_store(MemoryHealthStore(clock=clock))
    config.sleep = clock.advance  # waiting moves the fake clock
    return config.with_rate_limit("primary", **limit)


def providers(client, n, **fields):
    return [client.complete(ask(**fields)).provider for _ in range(n)]


def test_over_the_rpm_limit_calls_go_to_the_next_provider_without_a_request(fake_provider):
    client = FailoverClient(limited(fake_provider, FakeClock(WINDOW_START), rpm=3))
    assert providers(client, 5) == ["primary"] * 3 + ["backup"] * 2
    assert outcomes(client.complete(ask()).attempts) == [("primary", "skipped", "RateLimited"), ("backup", "ok", None)]
    assert served(fake_provider).count("primary") == 3


def test_the_minute_slides(fake_provider):
    clock = FakeClock(WINDOW_START)
    client = FailoverClient(limited(fake_provider, clock, rpm=2))
    assert providers(client, 2) == ["primary"] * 2
    clock.advance(30)
    assert providers(client, 1) == ["backup"]  # both requests are in the last minute
    clock.advance(30)
    assert providers(client, 1) == ["backup"]  # a new minute, but the last one still weighs in fully
    clock.advance(30)
    assert providers(client, 2) == ["primary", "backup"]  # half of the last minute's two has slid out


def test_waiting_instead_of_moving_on(fake_provider):
    clock = FakeClock(WINDOW_START)
    config = limited(fake_provider, clock, rpm=2, wait=True)
    client = FailoverClient(config)
    assert providers(client, 3) == ["primary"] * 3
    assert clock.now > WINDOW_START + 30  # the third call waited for room


def test_waiting_never_outlasts_the_deadline(fake_provider):
    clock = FakeClock(WINDOW_START)
    client = FailoverClient(limited(fake_provider, clock, rpm=1, wait=True).with_deadline(5))
    assert providers(client, 2) == ["primary", "backup"]
    assert clock.now == WINDOW_START  # the wait would have been far longer than 5 s: no wait at all


def test_tokens_are_reserved_then_corrected_by_the_reported_usage(fake_provider):
    fake_provider.set_default("primary", Reply(text="ok", usage={"input": 100, "output": 10}))
    client = FailoverClient(limited(fake_provider, FakeClock(WINDOW_START), tpm=1000))
    prompt = "x" * 1600  # 400 tokens at four characters a token, plus max_tokens 200
    assert estimate_tokens(ask(prompt, max_tokens=200)) == 600
    # each call reserves 600 but uses 110: without the correction the second call would not fit;
    # with it the fifth does not (4 * 110 + 600 > 1000)
    assert providers(client, 5, text=prompt, max_tokens=200) == ["primary"] * 4 + ["backup"]


def test_a_request_bigger_than_the_whole_budget_never_waits(fake_provider):
    clock = FakeClock(WINDOW_START)
    client = FailoverClient(limited(fake_provider, clock, tpm=100, wait=True))
    assert providers(client, 1, text="y" * 2000) == ["backup"]
    assert clock.now == WINDOW_START


def test_processes_sharing_redis_share_the_limit(fake_provider, redis_server):
    clients = [FailoverClient(chain(fake_provider, "primary", "backup")
                              .with_health_store(RedisHealthStore(redis_server.url))
                              .with_rate_limit("primary", rpm=4))
               for _ in range(2)]  # as if in two processes: nothing shared but Redis
    served_by = [client.complete(ask()).provider for _ in range(3) for client in clients]
    assert served_by == ["primary"] * 4 + ["backup"] * 2
    assert served(fake_provider).count("primary") == 4


def test_token_counts_in_redis_are_corrected_too(fake_provider, redis_server):
    fake_provider.set_default("primary", Reply(text="ok", usage={"input": 100, "output": 10}))
    client = FailoverClient(chain(fake_provider, "primary", "backup")
                            .with_health_store(RedisHealthStore(redis_server.url))
                            .with_rate_limit("primary", tpm=1000))
    assert providers(client, 5, text="x" * 1600, max_tokens=200) == ["primary"] * 4 + ["backup"]


@pytest.mark.parametrize("limit, named", [({"rpm": 0}, "rpm"), ({"tpm": 1.5}, "tpm"), ({}, "rpm, tpm")])
def test_bad_limits_are_named(limit, named):
    with pytest.raises(InvalidArgumentError, match=named):
        RateLimit(**limit)


def test_a_limit_needs_a_provider_of_the_chain(fake_provider):
    with pytest.raises(InvalidArgumentError, match="'nobody'"):
        chain(fake_provider, "primary", "backup").with_rate_limit("nobody", rpm=5)
