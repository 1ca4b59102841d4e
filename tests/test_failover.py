"""The failover rules of design.md §4 (points 1-8), each against a real local server."""

import time

import pytest

from failover_client import (
    AllProvidersFailedError,
    AuthenticationError,
    ContextLengthExceededError,
    FailoverClient,
    FailoverConfig,
    FailoverTrigger,
    FallbackProvider,
    InvalidArgumentError,
    InvalidRequestError,
    ProviderTimeoutError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamInterruptedError,
    collect,
    presets,
)
from failover_client.testing import Fault, Reply

from chains import Sleeps, chain, served
from support import ask, assert_cut_by_deadline, make_provider


def test_rate_limited_primary_falls_back_and_says_who_served(fake_provider, protocol):
    fake_provider.script("primary", Fault.rate_limit(retry_after=1))
    fake_provider.script("backup", Reply(text="from backup"))
    response = FailoverClient(chain(fake_provider, "primary", "backup", protocol=protocol)).complete(ask())
    assert response.text == "from backup" and response.provider == "backup"
    assert [(a.provider, a.outcome, a.error_type, a.status) for a in response.attempts] == [
        ("primary", "error", "RateLimitError", 429), ("backup", "ok", None, None)]
    assert all(a.elapsed_ms >= 0 for a in response.attempts)


def test_error_matching_no_trigger_is_raised_at_once_with_attempts(fake_provider):
    fake_provider.script("primary", Fault.status(400, message="bad field"))
    with pytest.raises(InvalidRequestError, match="bad field") as info:
        FailoverClient(chain(fake_provider, "primary", "backup")).complete(ask())
    assert served(fake_provider) == ["primary"]
    assert [a.provider for a in info.value.attempts] == ["primary"]


def test_triggers_decide_what_moves_on(fake_provider):
    fake_provider.script("primary", Fault.status(401), Fault.status(401), Fault.context_length())
    config = chain(fake_provider, "primary", "backup")
    with pytest.raises(AuthenticationError):
        FailoverClient(config).complete(ask())
    config.trigger_on(FailoverTrigger.AUTH_ERROR)
    assert FailoverClient(config).complete(ask()).provider == "backup"
    config.with_triggers(FailoverTrigger.CONTEXT_LENGTH)
    assert FailoverClient(config).complete(ask()).provider == "backup"
    fake_provider.script("primary", Fault.rate_limit())
    with pytest.raises(RateLimitError):  # RATE_LIMIT is no longer a trigger
        FailoverClient(config).complete(ask())


def test_any_error_trigger_covers_invalid_requests(fake_provider):
    fake_provider.script("primary", Fault.status(422))
    config = chain(fake_provider, "primary", "backup").with_triggers(FailoverTrigger.ANY_ERROR)
    assert FailoverClient(config).complete(ask()).provider == "backup"


def test_fallbacks_get_their_mapped_model(fake_provider):
    fake_provider.script("primary", Fault.overloaded())
    config = FailoverConfig("primary", make_provider(fake_provider, "primary", "openai")).add_fallback(
        FallbackProvider("backup", make_provider(fake_provider, "backup", "anthropic"))
        .with_model_mapping("gpt-4o", "claude-sonnet-4-5"))
    response = FailoverClient(config).complete(ask(model="gpt-4o"))
    assert fake_provider.requests_for("backup")[0].body["model"] == "claude-sonnet-4-5"
    assert response.attempts[-1].model == "claude-sonnet-4-5"
    fake_provider.script("primary", Fault.overloaded())
    FailoverClient(config).complete(ask(model="unmapped-model"))
    assert fake_provider.requests_for("backup")[1].body["model"] == "unmapped-model"


def test_retrying_the_primary_backs_off_with_jitter(fake_provider):
    fake_provider.script("primary", Fault.status(500), Fault.status(502), Reply(text="third time"))
    sleeps = Sleeps()
    config = chain(fake_provider, "primary", "backup", sleeps=sleeps).retry_primary(2)
    config.with_retry_policy(RetryPolicy(base_delay=0.5, max_delay=8))
    response = FailoverClient(config).complete(ask())
    assert response.text == "third time" and response.provider == "primary"
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0
    assert served(fake_provider) == ["primary"] * 3


def test_retry_after_is_honoured_up_to_the_cap(fake_provider):
    fake_provider.script("primary", Fault.rate_limit(retry_after=3), Reply(text="waited"))
    sleeps = Sleeps()
    config = chain(fake_provider, "primary", "backup", sleeps=sleeps).retry_primary(1)
    assert FailoverClient(config).complete(ask()).text == "waited"
    assert sleeps == [3.0]


def test_retry_after_ms_is_preferred(fake_provider):
    fake_provider.script("primary", Fault.rate_limit(retry_after=9, retry_after_ms=250))
    sleeps = Sleeps()
    FailoverClient(chain(fake_provider, "primary", "backup", sleeps=sleeps).retry_primary(1)).complete(ask())
    assert sleeps == [0.25]


def test_a_long_retry_after_moves_on_instead_of_blocking(fake_provider):
    fake_provider.script("primary", Fault.rate_limit(retry_after=600))
    sleeps = Sleeps()
    config = chain(fake_provider, "primary", "backup", sleeps=sleeps).retry_primary(3)
    assert FailoverClient(config).complete(ask()).provider == "backup"
    assert sleeps == [] and served(fake_provider) == ["primary", "backup"]


def test_moving_to_another_provider_never_sleeps(fake_provider):
    for name in ("a", "b"):
        fake_provider.script(name, Fault.rate_limit(retry_after=1))
    sleeps = Sleeps()
    response = FailoverClient(chain(fake_provider, "a", "b", "c", sleeps=sleeps)).complete(ask())
    assert response.provider == "c" and sleeps == []


def test_quota_exhaustion_is_not_retried_but_fails_over(fake_provider):
    fake_provider.script("primary", Fault.status(429, error_code="insufficient_quota", error_type="insufficient_quota",
                                                 message="You exceeded your current quota"))
    sleeps = Sleeps()
    config = chain(fake_provider, "primary", "backup", sleeps=sleeps).retry_primary(3)
    assert FailoverClient(config).complete(ask()).provider == "backup"
    assert sleeps == [] and served(fake_provider) == ["primary", "backup"]


def test_every_provider_failing_lists_every_attempt(fake_provider):
    fake_provider.script("a", Fault.rate_limit())
    fake_provider.script("b", Fault.status(500))
    fake_provider.script("c", Fault.overloaded())
    with pytest.raises(AllProvidersFailedError) as info:
        FailoverClient(chain(fake_provider, "a", "b", "c")).complete(ask())
    exc = info.value
    assert [(a.provider, a.error_type) for a in exc.attempts] == [
        ("a", "RateLimitError"), ("b", "ServerError"), ("c", "OverloadedError")]
    assert isinstance(exc.__cause__, ServerError) and exc.__cause__.provider == "c"


def test_max_attempts_limits_the_fallbacks_tried(fake_provider):
    for name in ("a", "b"):
        fake_provider.script(name, Fault.status(503))
    with pytest.raises(AllProvidersFailedError):
        FailoverClient(chain(fake_provider, "a", "b", "c").with_max_attempts(1)).complete(ask())
    assert served(fake_provider) == ["a", "b"]


def test_deadline_bounds_the_whole_call_including_stalls(fake_provider):
    fake_provider.script("a", Fault.stall_before_headers(5))
    config = chain(fake_provider, "a", "b").with_deadline(0.6)
    started = time.monotonic()
    with pytest.raises(AllProvidersFailedError, match="deadline") as info:
        FailoverClient(config).complete(ask())
    assert_cut_by_deadline(started, 0.6)
    assert info.value.attempts[0].error_type == "ProviderTimeoutError"


def test_each_attempt_gets_only_the_time_left(fake_provider):
    fake_provider.script("a", Fault.stall_before_headers(0.4))
    fake_provider.script("b", Fault.stall_before_headers(5))
    config = chain(fake_provider, "a", "b", read_timeout=0.2).with_deadline(1.0)
    started = time.monotonic()
    with pytest.raises(AllProvidersFailedError):
        FailoverClient(config).complete(ask())
    assert_cut_by_deadline(started, 1.0)


def test_stream_fails_over_before_the_first_output(fake_provider, protocol):
    fake_provider.script("primary", Fault.rate_limit())
    fake_provider.script("backup", Reply(text="streamed from backup"))
    chunks = list(FailoverClient(chain(fake_provider, "primary", "backup", protocol=protocol))
                  .complete_stream(ask(stream=True)))
    response = collect(chunks)
    assert response.text == "streamed from backup" and response.provider == "backup"
    assert [a.outcome for a in response.attempts] == ["error", "ok"]
    assert {c.provider for c in chunks} == {"backup"}


def test_overload_event_right_after_200_fails_over(fake_provider):
    fake_provider.script("primary", Fault.stream_error_event(after_events=0, error_type="overloaded_error"))
    chunks = list(FailoverClient(chain(fake_provider, "primary", "backup", protocol="anthropic"))
                  .complete_stream(ask(stream=True)))
    response = collect(chunks)
    assert response.provider == "backup" and response.attempts[0].error_type == "OverloadedError"


def test_empty_stream_fails_over(fake_provider, protocol):
    fake_provider.script("primary", Fault.empty_200())
    response = collect(FailoverClient(chain(fake_provider, "primary", "backup", protocol=protocol))
                       .complete_stream(ask(stream=True)))
    assert response.provider == "backup" and response.text == "Hello!"


def test_failure_after_output_raises_stream_interrupted_with_the_partial_text(fake_provider, protocol):
    reply = Reply(text="one two three four five six seven")
    fake_provider.script("primary", Fault.truncated_stream(after_events=5, reply=reply))
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in FailoverClient(chain(fake_provider, "primary", "backup", protocol=protocol)).complete_stream(
                ask(stream=True)):
            received.append(chunk.text or "")
    exc = info.value
    assert exc.partial_text and exc.partial_text == "".join(received)
    assert "one two three four five six seven".startswith(exc.partial_text)
    assert served(fake_provider) == ["primary"]  # no fallback once output reached the caller
    assert exc.partial.attempts[0].provider == "primary"


def test_truncated_stream_is_never_a_silent_success(fake_provider, protocol):
    fake_provider.script("p", Fault.truncated_stream(after_events=3))
    provider = make_provider(fake_provider, "p", protocol)
    with pytest.raises(Exception) as info:
        list(provider.complete_stream(ask(stream=True)))
    assert "ended before" in str(info.value)


def test_stream_deadline_stops_a_trickle(fake_provider):
    fake_provider.script("a", Fault.trickle(0.1, Reply(text="slow " * 100)))
    config = chain(fake_provider, "a", "b").with_deadline(0.8)
    started = time.monotonic()
    with pytest.raises((StreamInterruptedError, AllProvidersFailedError)) as info:
        list(FailoverClient(config).complete_stream(ask(stream=True)))
    assert_cut_by_deadline(started, 0.8)
    assert isinstance(info.value.__cause__, ProviderTimeoutError) or "deadline" in str(info.value)


def test_abandoning_a_stream_closes_it(fake_provider):
    fake_provider.script("p", Reply(text="a b c d e f g h"))
    client = FailoverClient(chain(fake_provider, "p", "q"))
    stream = client.complete_stream(ask(stream=True))
    assert any(chunk.text for chunk in stream)
    stream.close()
    assert client.complete(ask()).provider == "p"


def test_bad_configuration_is_a_clear_error(fake_provider):
    config = chain(fake_provider, "a", "b")
    with pytest.raises(InvalidArgumentError, match="already"):
        config.add_fallback(FallbackProvider("b", make_provider(fake_provider, "b", "openai")))
    with pytest.raises(InvalidArgumentError, match="FailoverTrigger"):
        config.with_triggers("rate_limit")
    with pytest.raises(InvalidArgumentError, match="retry_primary"):
        config.retry_primary(-1)
    with pytest.raises(InvalidArgumentError, match="with_deadline"):
        config.with_deadline(0)
    with pytest.raises(InvalidArgumentError):
        FailoverClient(config).complete(ask(model=""))
    assert fake_provider.requests == []


def test_refusal_fails_over_when_content_filter_is_a_trigger(fake_provider):
    fake_provider.script("primary", Reply(text="", refusal="I can't help with that."))
    config = chain(fake_provider, "primary", "backup").trigger_on(FailoverTrigger.CONTENT_FILTER)
    assert FailoverClient(config).complete(ask()).provider == "backup"


def test_context_length_error_class_survives_failover_annotation(fake_provider):
    fake_provider.script("primary", Fault.context_length())
    with pytest.raises(ContextLengthExceededError):
        FailoverClient(chain(fake_provider, "primary", "backup")).complete(ask())


def test_presets_build_cross_vendor_chains():
    client = presets.openai_to_anthropic("sk-o-123456789", "sk-a-123456789")
    assert client.config.names() == ["openai", "anthropic"]
    assert client.config.fallbacks[0].model_for("gpt-4o").startswith("claude")
    reverse = presets.anthropic_to_openai("sk-a-123456789", "sk-o-123456789")
    assert reverse.config.fallbacks[0].model_for("claude-sonnet-4-5").startswith("gpt")
    assert "sk-" not in repr(client)


def test_64_threads_share_one_failover_client(fake_provider):
    from concurrent.futures import ThreadPoolExecutor

    fake_provider.set_default("primary", Fault.rate_limit())
    client = FailoverClient(chain(fake_provider, "primary", "backup"))
    with ThreadPoolExecutor(64) as pool:
        responses = list(pool.map(lambda i: client.complete(ask(f"q{i}")), range(256)))
    assert {r.provider for r in responses} == {"backup"}
    assert all([a.provider for a in r.attempts] == ["primary", "backup"] for r in responses)
    assert sorted(r.body["messages"][0]["content"] for r in fake_provider.requests_for("backup")) == sorted(
        f"q{i}" for i in range(256))  # every request answered exactly once
    client.close()


def test_hooks_hear_attempts_retries_and_failovers_and_never_break_a_request(fake_provider, caplog):
    fake_provider.script("a", Fault.status(500), Fault.status(500))
    fake_provider.script("b", Reply(text="ok", usage={"input": 5, "output": 2}))
    heard = []
    config = chain(fake_provider, "a", "b").retry_primary(1)
    for event in ("attempt_start", "attempt_end", "retry", "failover"):
        config.on(event, lambda event=event, **payload: heard.append((event, payload.get("provider")
                                                                      or payload.get("to_provider"))))
    config.on("attempt_end", lambda **payload: 1 / 0)  # a broken hook must not break the call
    response = FailoverClient(config).complete(ask())
    assert response.provider == "b"
    assert heard == [("attempt_start", "a"), ("attempt_end", "a"), ("retry", "a"), ("attempt_start", "a"),
                     ("attempt_end", "a"), ("failover", "b"), ("attempt_start", "b"), ("attempt_end", "b")]
    assert sum("attempt_end hook raised" in r.getMessage() for r in caplog.records) == 1  # logged once
    with pytest.raises(InvalidArgumentError, match="unknown event"):
        config.on("attempt_begin", print)
