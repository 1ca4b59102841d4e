"""Hedged requests: a slow attempt is raced by the next provider; the first good answer wins and
the loser's connection is shut at once (its socket leaves ESTABLISHED before the call returns)."""

import threading

import pytest

from failover_client import AllProvidersFailedError, FailoverClient, InvalidArgumentError, collect
from failover_client.testing import Fault, Reply

from chains import chain, outcomes, served, tcp_states_to
from support import ask

STALL = 30  # seconds: far longer than any test here waits; only a cancelled attempt ends sooner


def hedged(server, *names, after=0.1, **options):
    config = chain(server, *names, **options).with_hedging(after)
    hedges = []
    config.on("hedge", lambda **payload: hedges.append(payload))
    return FailoverClient(config), hedges


def hedge_threads():
    return [t for t in threading.enumerate() if t.name.startswith("failover-hedge-")]


def wait_for_hedge_threads_to_end():
    for thread in hedge_threads():
        thread.join(10)
    return hedge_threads()


def test_a_stalled_primary_is_raced_and_its_connection_closed(fake_provider):
    fake_provider.script("primary", Fault.stall_before_headers(STALL))
    fake_provider.script("backup", Reply(text="from backup"))
    client, hedges = hedged(fake_provider, "primary", "backup")
    response = client.complete(ask())
    assert response.text == "from backup" and response.provider == "backup"
    assert outcomes(response.attempts) == [("primary", "cancelled", None), ("backup", "ok", None)]
    assert hedges == [{"provider": "backup", "model": "gpt-4o", "waiting_for": "primary", "after": 0.1}]
    # the primary's socket is shut down already; only backup's idle keep-alive connection is open
    assert tcp_states_to(fake_provider.port).count("ESTABLISHED") == 1
    assert served(fake_provider) == ["primary", "backup"]
    assert wait_for_hedge_threads_to_end() == []


def test_the_first_good_answer_wins_even_if_it_started_first(fake_provider):
    fake_provider.script("primary", Reply(text="primary, a little late", delay=0.4))
    fake_provider.script("backup", Fault.stall_before_headers(STALL))
    client, hedges = hedged(fake_provider, "primary", "backup")
    response = client.complete(ask())
    assert response.provider == "primary" and response.text == "primary, a little late"
    assert outcomes(response.attempts) == [("backup", "cancelled", None), ("primary", "ok", None)]
    assert len(hedges) == 1
    assert tcp_states_to(fake_provider.port).count("ESTABLISHED") == 1


def test_a_fast_failure_fails_over_at_once_without_a_hedge(fake_provider):
    fake_provider.script("primary", Fault.status(500))
    client, hedges = hedged(fake_provider, "primary", "backup", after=5)
    response = client.complete(ask())
    assert outcomes(response.attempts) == [("primary", "error", "ServerError"), ("backup", "ok", None)]
    assert hedges == []


def test_at_most_one_extra_request_per_hedge_step(fake_provider):
    for name in ("a", "b", "c", "d"):
        fake_provider.script(name, Fault.stall_before_headers(STALL))
    client, hedges = hedged(fake_provider, "a", "b", "c", "d", after=0.1)
    with pytest.raises(AllProvidersFailedError, match="deadline") as info:
        client.complete(ask(), timeout=0.25)
    assert served(fake_provider) == ["a", "b", "c"]  # at 0, 0.1 and 0.2 s; d would have started at 0.3
    assert [h["waiting_for"] for h in hedges] == ["a", "b"]
    assert sorted(outcomes(info.value.attempts)) == [(name, "error", "ProviderTimeoutError") for name in "abc"]
    assert "ESTABLISHED" not in tcp_states_to(fake_provider.port)
    assert wait_for_hedge_threads_to_end() == []


def test_losing_hedges_say_nothing_to_the_circuit_breaker(fake_provider):
    fake_provider.set_default("primary", Fault.stall_before_headers(STALL))
    client, _ = hedged(fake_provider, "primary", "backup", after=0.05)
    client.config.with_circuit_breaker(failure_threshold=1)
    for _ in range(3):
        assert client.complete(ask()).provider == "backup"
    assert client.config.health.state("primary") == "closed"
    assert served(fake_provider).count("primary") == 3


def test_a_stream_that_has_not_started_is_hedged(fake_provider):
    fake_provider.script("primary", Fault.stall_before_headers(STALL))
    fake_provider.script("backup", Reply(text="streamed by backup"))
    client, hedges = hedged(fake_provider, "primary", "backup")
    chunks = list(client.complete_stream(ask(stream=True)))
    response = collect(chunks)
    assert response.text == "streamed by backup" and {c.provider for c in chunks} == {"backup"}
    assert outcomes(response.attempts) == [("primary", "cancelled", None), ("backup", "ok", None)]
    assert tcp_states_to(fake_provider.port).count("ESTABLISHED") == 1


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_a_stream_stalled_before_its_first_output_is_hedged(fake_provider, protocol):
    # headers and the opening events arrive, then nothing: no output has reached the caller yet
    fake_provider.script("primary", Fault.stall_mid_stream(after_events=1, seconds=STALL))
    fake_provider.script("backup", Reply(text="streamed by backup"))
    client, hedges = hedged(fake_provider, "primary", "backup", protocol=protocol)
    response = collect(client.complete_stream(ask(stream=True)))
    assert response.text == "streamed by backup" and len(hedges) == 1
    assert tcp_states_to(fake_provider.port).count("ESTABLISHED") == 1


def test_a_stream_that_has_started_is_not_hedged(fake_provider):
    # the first words arrive at once, then the stream pauses for longer than the hedging delay
    fake_provider.script("primary", Fault.stall_mid_stream(3, 0.3, reply=Reply(chunks=["one", " two", " three"])))
    client, hedges = hedged(fake_provider, "primary", "backup", after=0.05)
    response = collect(client.complete_stream(ask(stream=True)))
    assert response.text == "one two three" and response.provider == "primary"
    assert served(fake_provider) == ["primary"] and hedges == []


def test_hedging_takes_a_positive_delay(fake_provider):
    with pytest.raises(InvalidArgumentError, match="with_hedging"):
        chain(fake_provider, "a", "b").with_hedging(0)
