"""The circuit breaker (design.md §4.9) with the in-memory store: a FailoverClient against the
fake server, time moved by hand through the store's clock."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from failover_client import (
    AllProvidersFailedError,
    FailoverClient,
    FailoverTrigger,
    InvalidArgumentError,
    InvalidRequestError,
    collect,
)
from failover_client.health import CircuitBreaker, MemoryHealthStore
from failover_client.testing import Fault, Reply

from chains import FakeClock, chain, outcomes, served
from support import ask


def breaker_chain(server, *names, clock, **settings):
    config = chain(server, *names).with_health_store(MemoryHealthStore(clock=clock))
    config.with_circuit_breaker(**{"failure_threshold": 3, "window": 60.0, "cooldown": 30.0, **settings})
    return config


def tripped(server, clock, *then):
    """A client whose primary's circuit three 500s opened; the primary answers ``then`` next
    (and Reply() after that).  Returns the client and the circuit events heard."""
    server.script("primary", *[Fault.status(500)] * 3, *then)
    config = breaker_chain(server, "primary", "backup", clock=clock)
    circuit = heard(config)
    client = FailoverClient(config)
    for _ in range(3):
        client.complete(ask())
    return client, circuit


def heard(config, event="circuit"):
    events = []
    config.on(event, lambda **payload: events.append(payload))
    return events


def test_defaults_are_five_failures_in_sixty_seconds_open_for_thirty():
    assert CircuitBreaker() == CircuitBreaker(failure_threshold=5, window=60.0, cooldown=30.0, probe_timeout=30.0,
                                              count_auth_errors=False)


def test_threshold_failures_open_the_circuit_and_open_providers_get_nothing(fake_provider):
    clock = FakeClock()
    fake_provider.set_default("primary", Fault.status(500))
    config = breaker_chain(fake_provider, "primary", "backup", clock=clock)
    circuit = heard(config)
    client = FailoverClient(config)
    for _ in range(3):
        assert outcomes(client.complete(ask()).attempts) == [("primary", "error", "ServerError"),
                                                             ("backup", "ok", None)]
    assert circuit == [{"provider": "primary", "state": "open"}]
    assert config.health.state("primary") == "open"
    response = client.complete(ask())
    assert outcomes(response.attempts) == [("primary", "skipped", "CircuitOpen"), ("backup", "ok", None)]
    assert served(fake_provider).count("primary") == 3  # the skipped call sent nothing


def test_failures_spread_wider_than_the_window_do_not_add_up(fake_provider):
    clock = FakeClock()
    fake_provider.set_default("primary", Fault.status(503))
    config = breaker_chain(fake_provider, "primary", "backup", clock=clock, failure_threshold=2, window=60.0)
    client = FailoverClient(config)
    for _ in range(4):
        client.complete(ask())
        clock.advance(61)
    assert config.health.state("primary") == "closed"
    assert served(fake_provider).count("primary") == 4


def test_a_success_clears_the_failure_count(fake_provider):
    clock = FakeClock()
    fake_provider.script("primary", Fault.status(500), Fault.status(500), Reply(), Fault.status(500),
                         Fault.status(500))
    config = breaker_chain(fake_provider, "primary", "backup", clock=clock)
    client = FailoverClient(config)
    for _ in range(5):
        client.complete(ask())
    assert config.health.state("primary") == "closed"
    assert config.health.failure_count("primary", config.breaker) == 2


def test_after_the_cooldown_one_probe_closes_the_circuit(fake_provider):
    clock = FakeClock()
    client, circuit = tripped(fake_provider, clock)
    clock.advance(29.9)
    assert client.complete(ask()).attempts[0].outcome == "skipped"
    clock.advance(0.2)
    assert client.config.health.state("primary") == "half_open"
    response = client.complete(ask())  # the probe: the primary answers again
    assert response.provider == "primary" and outcomes(response.attempts) == [("primary", "ok", None)]
    assert [event["state"] for event in circuit] == ["open", "half_open", "closed"]
    assert client.config.health.state("primary") == "closed"


def test_a_failed_probe_opens_the_circuit_for_another_cooldown(fake_provider):
    clock = FakeClock()
    client, circuit = tripped(fake_provider, clock, Fault.status(502))
    clock.advance(31)
    assert outcomes(client.complete(ask()).attempts)[0] == ("primary", "error", "ServerError")  # the probe
    assert [event["state"] for event in circuit] == ["open", "half_open", "open"]
    clock.advance(29)
    assert client.complete(ask()).attempts[0].outcome == "skipped"  # a whole new cooldown
    assert served(fake_provider).count("primary") == 4


def test_half_open_lets_exactly_one_probe_out_at_a_time():
    clock = FakeClock()
    store = MemoryHealthStore(clock=clock)
    breaker = CircuitBreaker(failure_threshold=1, cooldown=10.0, probe_timeout=5.0)
    assert store.record_failure("p", store.acquire("p", breaker), breaker) == "open"
    clock.advance(10)
    start = threading.Barrier(16)

    def ask_for_permit(_):
        start.wait()
        return store.acquire("p", breaker).kind

    with ThreadPoolExecutor(16) as pool:
        kinds = list(pool.map(ask_for_permit, range(16)))
    assert sorted(kinds) == ["probe"] + ["probing"] * 15
    clock.advance(5)  # the probe never reported back: its slot frees itself
    assert store.acquire("p", breaker).kind == "probe"


def test_a_probe_ended_by_the_callers_own_error_frees_the_slot(fake_provider):
    clock = FakeClock()
    client, _ = tripped(fake_provider, clock, Fault.status(400, message="bad field"))
    clock.advance(31)
    with pytest.raises(InvalidRequestError):  # the probe's 400 says nothing about the provider
        client.complete(ask())
    assert client.config.health.state("primary") == "half_open"
    assert client.complete(ask()).provider == "primary"  # the next call may probe at once
    assert client.config.health.state("primary") == "closed"


def test_errors_that_are_the_callers_fault_do_not_count(fake_provider):
    clock = FakeClock()
    faults = [Fault.status(400), Fault.status(401), Fault.status(403), Fault.status(404), Fault.status(422),
              Fault.context_length(), Fault.content_filter()]
    fake_provider.script("primary", *faults)
    config = breaker_chain(fake_provider, "primary", "backup", clock=clock, failure_threshold=1)
    config.with_triggers(FailoverTrigger.ANY_ERROR)
    client = FailoverClient(config)
    for _ in faults:
        assert client.complete(ask()).provider == "backup"
    assert config.health.state("primary") == "closed"
    assert served(fake_provider).count("primary") == len(faults)


def test_auth_errors_count_when_configured(fake_provider):
    clock = FakeClock()
    fake_provider.set_default("primary", Fault.status(401))
    config = breaker_chain(fake_provider, "primary", "backup", clock=clock, failure_threshold=2,
                           count_auth_errors=True).with_triggers(FailoverTrigger.ANY_ERROR)
    client = FailoverClient(config)
    for _ in range(3):
        client.complete(ask())
    assert served(fake_provider).count("primary") == 2
    assert config.health.state("primary") == "open"


def test_when_every_circuit_is_open_the_first_to_cool_down_is_tried(fake_provider):
    clock = FakeClock()
    store = MemoryHealthStore(clock=clock)
    b_first = breaker_chain(fake_provider, "b", "a", clock=clock, failure_threshold=1).with_health_store(store)
    a_first = breaker_chain(fake_provider, "a", "b", clock=clock, failure_threshold=1).with_health_store(store)
    circuit = heard(a_first)
    fake_provider.script("b", Fault.status(500))
    assert FailoverClient(b_first).complete(ask()).provider == "a"  # b's circuit opens at t=0
    clock.advance(5)
    fake_provider.script("a", Fault.status(500))
    with pytest.raises(AllProvidersFailedError):
        FailoverClient(a_first).complete(ask())  # a's opens at t=5; b is skipped
    clock.advance(1)
    fake_provider.script("b", Reply(text="b is back"))
    response = FailoverClient(a_first).complete(ask())  # both open: b cools down first
    assert response.text == "b is back"
    assert outcomes(response.attempts) == [("a", "skipped", "CircuitOpen"), ("b", "skipped", "CircuitOpen"),
                                           ("b", "ok", None)]
    assert store.state("b") == "closed" and store.state("a") == "open"  # a forced success closes the circuit
    assert circuit[-1] == {"provider": "b", "state": "closed"}
    assert served(fake_provider) == ["b", "a", "a", "b"]


def test_a_provider_that_asked_for_time_is_skipped_for_that_long(fake_provider):
    clock = FakeClock()
    fake_provider.script("primary", Fault.rate_limit(retry_after=10))
    client = FailoverClient(breaker_chain(fake_provider, "primary", "backup", clock=clock))
    assert outcomes(client.complete(ask()).attempts)[0] == ("primary", "error", "RateLimitError")
    clock.advance(9.9)
    assert outcomes(client.complete(ask()).attempts) == [("primary", "skipped", "RetryAfter"), ("backup", "ok", None)]
    clock.advance(0.1)
    assert client.complete(ask()).provider == "primary"
    assert served(fake_provider) == ["primary", "backup", "backup", "primary"]


def test_a_hold_lasts_at_most_the_cooldown(fake_provider):
    clock = FakeClock()
    fake_provider.script("primary", Fault.rate_limit(retry_after=3600))
    client = FailoverClient(breaker_chain(fake_provider, "primary", "backup", clock=clock, cooldown=30))
    client.complete(ask())
    clock.advance(29.9)
    assert client.complete(ask()).attempts[0].outcome == "skipped"
    clock.advance(0.1)
    assert client.complete(ask()).provider == "primary"


def test_a_forgotten_half_open_circuit_closes_by_itself():
    clock = FakeClock()
    store = MemoryHealthStore(clock=clock)
    breaker = CircuitBreaker(failure_threshold=1, window=60.0, cooldown=30.0)
    store.record_failure("p", store.acquire("p", breaker), breaker)
    clock.advance(30 + 59)
    assert store.state("p") == "half_open"
    clock.advance(1)
    assert store.state("p") == "closed" and store.acquire("p", breaker).kind == "closed"


def test_without_the_breaker_every_call_reaches_the_primary(fake_provider):
    fake_provider.set_default("primary", Fault.status(500))
    config = chain(fake_provider, "primary", "backup").without_circuit_breaker()
    client = FailoverClient(config)
    for _ in range(8):
        client.complete(ask())
    assert served(fake_provider).count("primary") == 8


def test_streams_count_towards_the_breaker_and_skip_open_providers(fake_provider):
    clock = FakeClock()
    fake_provider.set_default("primary", Fault.stream_error_event(0, "overloaded_error"))
    config = breaker_chain(fake_provider, "primary", "backup", clock=clock)
    client = FailoverClient(config)
    for _ in range(4):
        response = collect(client.complete_stream(ask(stream=True)))
        assert response.provider == "backup"
    assert outcomes(response.attempts) == [("primary", "skipped", "CircuitOpen"), ("backup", "ok", None)]
    assert served(fake_provider).count("primary") == 3


def test_concurrent_failures_are_all_counted():
    store = MemoryHealthStore()
    breaker = CircuitBreaker(failure_threshold=10**9, window=600.0)

    def fail_many(_):
        for _ in range(500):
            store.record_failure("p", store.acquire("p", breaker), breaker)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(fail_many, range(16)))
    assert store.failure_count("p", breaker) == 16 * 500


@pytest.mark.parametrize("settings, named", [
    ({"failure_threshold": 0}, "failure_threshold"),
    ({"window": 0}, "window"),
    ({"cooldown": -1}, "cooldown"),
    ({"probe_timeout": "soon"}, "probe_timeout"),
])
def test_bad_breaker_settings_are_named(fake_provider, settings, named):
    with pytest.raises(InvalidArgumentError, match=named):
        chain(fake_provider, "a", "b").with_circuit_breaker(**settings)


def test_with_health_store_takes_only_a_store(fake_provider):
    with pytest.raises(InvalidArgumentError, match="HealthStore"):
        chain(fake_provider, "a", "b").with_health_store("redis://localhost")
