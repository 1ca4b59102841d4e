"""RedisHealthStore against a real redis-server (started per test by the ``redis_server``
fixture): the breaker's state shared by processes, atomic counts, keys that expire, and calls
that keep working when Redis dies."""

import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import redis

from failover_client import FailoverClient, FailoverConfig, FallbackProvider, InvalidArgumentError
from failover_client.health import CircuitBreaker, Permit, RedisHealthStore
from failover_client.providers import OpenAIProvider
from failover_client.testing import Fault

from chains import chain, outcomes, served
from support import ask

SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing shared but Redis


def redis_chain(server, redis_url, **breaker):
    config = chain(server, "primary", "backup").with_health_store(RedisHealthStore(redis_url))
    return config.with_circuit_breaker(**{"failure_threshold": 3, **breaker})


def client_in_another_process(redis_url, primary_url, backup_url, calls):
    """Runs in a spawned process: its own client, the same Redis; the outcomes of ``calls`` calls."""
    config = FailoverConfig("primary", OpenAIProvider(api_key="sk-test-key-0123456789", base_url=primary_url))
    config.add_fallback(FallbackProvider("backup", OpenAIProvider(api_key="sk-test-key-0123456789",
                                                                  base_url=backup_url)))
    config.with_health_store(RedisHealthStore(redis_url)).with_circuit_breaker(failure_threshold=3)
    client = FailoverClient(config)
    return [outcomes(client.complete(ask()).attempts) for _ in range(calls)]


def count_failures_in_threads(redis_url, threads, failures_each):
    """Runs in a spawned process: ``threads`` threads each record ``failures_each`` failures."""
    store = RedisHealthStore(redis_url)
    breaker = CircuitBreaker(failure_threshold=10**9, window=600.0)
    start = threading.Barrier(threads)

    def fail_many(_):
        start.wait()
        for _ in range(failures_each):
            store.record_failure("shared", store.acquire("shared", breaker), breaker)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fail_many, range(threads)))


def test_a_circuit_opened_in_one_process_is_skipped_in_another(fake_provider, redis_server):
    fake_provider.set_default("primary", Fault.status(500))
    urls = (fake_provider.base_url("primary", "openai"), fake_provider.base_url("backup", "openai"))
    with ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
        elsewhere = pool.submit(client_in_another_process, redis_server.url, *urls, 3).result(timeout=60)
    assert elsewhere == [[("primary", "error", "ServerError"), ("backup", "ok", None)]] * 3
    config = redis_chain(fake_provider, redis_server.url)
    circuit = []
    config.on("circuit", lambda **payload: circuit.append(payload))
    response = FailoverClient(config).complete(ask())  # this process never saw primary fail
    assert outcomes(response.attempts) == [("primary", "skipped", "CircuitOpen"), ("backup", "ok", None)]
    assert served(fake_provider).count("primary") == 3
    assert config.health.state("primary") == "open"
    assert circuit == []  # the transition happened in the other process


def test_failure_counts_from_many_threads_in_many_processes_are_exact(redis_server):
    processes, threads, failures_each = 3, 8, 150
    with ProcessPoolExecutor(processes, mp_context=SPAWN) as pool:
        jobs = [pool.submit(count_failures_in_threads, redis_server.url, threads, failures_each)
                for _ in range(processes)]
        for job in jobs:
            job.result(timeout=120)
    store = RedisHealthStore(redis_server.url)
    assert store.failure_count("shared", CircuitBreaker(window=600.0)) == processes * threads * failures_each


def test_half_open_lets_exactly_one_probe_out_across_clients(redis_server):
    breaker = CircuitBreaker(failure_threshold=1, cooldown=0.2, probe_timeout=0.3)
    stores = [RedisHealthStore(redis_server.url) for _ in range(4)]  # as if four processes
    assert stores[0].record_failure("p", stores[0].acquire("p", breaker), breaker) == "open"
    assert stores[1].acquire("p", breaker).kind == "open"
    time.sleep(0.25)  # past the cooldown
    start = threading.Barrier(16)

    def ask_for_permit(i):
        start.wait()
        return stores[i % 4].acquire("p", breaker)

    with ThreadPoolExecutor(16) as pool:
        permits = list(pool.map(ask_for_permit, range(16)))
    assert sorted(p.kind for p in permits) == ["probe"] + ["probing"] * 15
    probe = next(p for p in permits if p.kind == "probe")
    stray = Permit("probe", "not-the-probe-token")
    assert stores[2].record_success("p", stray) is None and stores[2].state("p") == "half_open"
    assert stores[3].record_success("p", probe) == "closed"  # the probe may report through any client
    assert stores[0].state("p") == "closed"


def test_a_failed_probe_reopens_and_a_silent_probe_frees_its_slot(redis_server):
    breaker = CircuitBreaker(failure_threshold=1, cooldown=0.2, probe_timeout=0.3)
    store = RedisHealthStore(redis_server.url)
    store.record_failure("p", store.acquire("p", breaker), breaker)
    time.sleep(0.25)
    probe = store.acquire("p", breaker)
    assert probe.kind == "probe" and store.acquire("p", breaker).kind == "probing"
    assert store.record_failure("p", probe, breaker) == "open"
    assert store.acquire("p", breaker).kind == "open"
    time.sleep(0.25)
    assert store.acquire("p", breaker).kind == "probe"  # never reports back...
    time.sleep(0.35)
    assert store.acquire("p", breaker).kind == "probe"  # ...so after probe_timeout another may probe


def test_a_hold_is_seen_by_every_client_and_expires(redis_server):
    breaker = CircuitBreaker()
    mine, theirs = RedisHealthStore(redis_server.url), RedisHealthStore(redis_server.url)
    mine.hold("p", 0.3)
    permit = theirs.acquire("p", breaker)
    assert permit.kind == "held" and 0 < permit.retry_in <= 0.3
    time.sleep(0.35)
    assert theirs.acquire("p", breaker).kind == "closed"
    mine.hold("p", 30)
    theirs.record_success("p", theirs.acquire("q", breaker))  # the provider answered: the hold ends
    assert mine.acquire("p", breaker).kind == "closed"


def test_every_key_expires_on_its_own(redis_server, fake_provider):
    fake_provider.set_default("primary", Fault.status(500))
    config = redis_chain(fake_provider, redis_server.url, window=60.0, cooldown=30.0, probe_timeout=30.0)
    config.with_rate_limit("backup", rpm=1000, tpm=100_000)
    client = FailoverClient(config)
    for _ in range(2):
        client.complete(ask())
    connection = redis.Redis.from_url(redis_server.url)
    keys = sorted(key.decode() for key in connection.keys("*"))
    assert keys == ["failover_client:{backup}:rate", "failover_client:{primary}:failures"]
    for _ in range(2):
        client.complete(ask())
    ttls = {key.decode(): connection.pttl(key) for key in connection.keys("*")}
    assert set(ttls) == {"failover_client:{backup}:rate", "failover_client:{primary}:open"}
    assert 0 < ttls["failover_client:{primary}:open"] <= (30 + 60) * 1000  # cooldown + window
    assert 0 < ttls["failover_client:{backup}:rate"] <= 120 * 1000


def test_a_redis_that_dies_mid_run_does_not_break_calls(fake_provider, redis_server, caplog):
    fake_provider.set_default("primary", Fault.status(500))
    config = redis_chain(fake_provider, redis_server.url)
    client = FailoverClient(config)
    assert client.complete(ask()).provider == "backup"
    assert config.health.failure_count("primary", config.breaker) == 1
    redis_server.kill()
    with caplog.at_level(logging.INFO, logger="failover_client"):
        responses = [client.complete(ask()) for _ in range(12)]
    assert {r.provider for r in responses} == {"backup"}
    # the local state took over: three local failures opened the circuit there
    assert [outcomes(r.attempts)[0][1] for r in responses] == ["error"] * 3 + ["skipped"] * 9
    lines = [r.getMessage() for r in caplog.records if r.name == "failover_client"]
    assert len(lines) == 1 and "unreachable" in lines[0] and redis_server.url.rsplit("/", 1)[0] in lines[0]


def test_the_store_url_is_checked_and_never_shows_a_password():
    with pytest.raises(InvalidArgumentError, match="redis://"):
        RedisHealthStore("http://localhost:6379")
    store = RedisHealthStore("redis://:s3cret-pass@127.0.0.1:1/0")
    assert "s3cret" not in repr(store) and "127.0.0.1:1" in repr(store)
