"""failover_client.web (SSE and plain-text bodies, the 502/503 answer), the web profile
FailoverConfig.for_web, and attempt log lines that say why an attempt failed."""

import json
import logging
import os

import pytest

from failover_client import (
    AllProvidersFailedError,
    FailoverClient,
    InvalidArgumentError,
    MissingCredentialsError,
    RetryPolicy,
    StreamInterruptedError,
)
from failover_client.contrib._config import ProcessClient, build_client
from failover_client.testing import Fault, Reply, ToolCall
from failover_client.web import error_body, sse, text

from chains import chain, served, tcp_states_to
from support import WEATHER, ask


def events(body):
    """(event name, data) for each SSE event of a body given as byte chunks."""
    parsed = []
    for block in b"".join(body).decode().split("\n\n")[:-1]:
        name, data = "message", None
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data = json.loads(value)
        parsed.append((name, data))
    return parsed


def opened(server, *names, protocol="openai", **request):
    return FailoverClient(chain(server, *names, protocol=protocol)).open_stream(ask(stream=True, **request))


def test_sse_sends_each_delta_then_a_summary_with_usage_cost_and_attempts(fake_provider):
    fake_provider.script("primary", Fault.status(500))
    fake_provider.script("backup", Reply(chunks=["Bonjour", " à", " tous"]))
    got = events(sse(opened(fake_provider, "primary", "backup")))
    assert got[:-1] == [("message", {"text": "Bonjour"}), ("message", {"text": " à"}),
                        ("message", {"text": " tous"})]
    name, done = got[-1]
    assert name == "done"
    assert done["provider"] == "backup" and done["model"] == "gpt-4o" and done["stop_reason"] == "end_turn"
    assert done["usage"]["input_tokens"] == 10 and done["usage"]["output_tokens"] == 3
    assert done["cost_usd"] > 0  # gpt-4o has a price in the model registry
    assert [(a["provider"], a["outcome"], a["status"]) for a in done["attempts"]] == [
        ("primary", "error", 500), ("backup", "ok", None)]


def test_sse_carries_thinking_and_tool_call_deltas(fake_provider):
    call = ToolCall("get_weather", {"city": "Paris"})
    fake_provider.script("primary", Reply(thinking="Look it up", tool_calls=[call]))
    got = events(sse(opened(fake_provider, "primary", protocol="anthropic", model="claude-sonnet-4-5",
                            tools=[WEATHER])))
    thinking = "".join(data.get("thinking", "") for name, data in got if name == "message")
    calls = [data["tool_call"] for name, data in got if "tool_call" in (data or {})]
    assert thinking == "Look it up"
    assert {call["name"] for call in calls if call["name"]} == {"get_weather"}
    assert json.loads("".join(call["arguments"] for call in calls)) == {"city": "Paris"}
    assert got[-1][0] == "done" and got[-1][1]["stop_reason"] == "tool_use"


def test_sse_ends_a_broken_stream_with_an_error_event(fake_provider):
    fake_provider.script("primary", Fault.reset_mid_body(after_events=3, reply=Reply(chunks=["a", "b", "c", "d"])))
    got = events(sse(opened(fake_provider, "primary")))
    assert got[0] == ("message", {"text": "a"})
    name, error = got[-1]
    assert name == "error" and error["type"] == "StreamInterruptedError"
    assert "sk-test" not in json.dumps(error)


def test_text_is_the_answer_and_a_broken_stream_raises(fake_provider):
    fake_provider.script("primary", Reply(chunks=["Grüß", " Gott"]),
                         Fault.reset_mid_body(after_events=3, reply=Reply(chunks=["a", "b", "c", "d"])))
    assert b"".join(text(opened(fake_provider, "primary"))).decode() == "Grüß Gott"
    body = text(opened(fake_provider, "primary"))
    assert next(body) == b"a"
    with pytest.raises(StreamInterruptedError):
        list(body)


@pytest.mark.parametrize("relay", [sse, text])
def test_a_consumer_that_stops_early_closes_the_upstream_connection(fake_provider, relay):
    fake_provider.script("primary", Fault.trickle(0.05, reply=Reply(chunks=["x"] * 40)))
    body = relay(opened(fake_provider, "primary"))
    next(body)
    assert tcp_states_to(fake_provider.port).count("ESTABLISHED") == 1
    body.close()  # what a WSGI server does when the browser hangs up
    assert "ESTABLISHED" not in tcp_states_to(fake_provider.port)


def test_error_body_is_502_when_providers_failed_and_503_when_none_could_be_tried(fake_provider):
    fake_provider.script("primary", Fault.status(500))
    with pytest.raises(AllProvidersFailedError) as failed:
        opened(fake_provider, "primary")
    status, body = error_body(failed.value)
    assert status == 502 and body["error"]["type"] == "AllProvidersFailedError"
    assert body["error"]["attempts"][0]["status"] == 500

    config = chain(fake_provider, "primary").with_rate_limit("primary", rpm=1)
    client = FailoverClient(config)
    client.complete(ask())
    with pytest.raises(AllProvidersFailedError) as skipped:
        client.open_stream(ask(stream=True))
    status, body = error_body(skipped.value)
    assert status == 503 and body["error"]["attempts"][0]["outcome"] == "skipped"


def test_the_web_profile_moves_on_rather_than_honour_a_long_retry_after(fake_provider):
    fake_provider.script("primary", Fault.rate_limit(retry_after=5))
    config = chain(fake_provider, "primary", "backup").for_web()
    assert FailoverClient(config).complete(ask()).provider == "backup"
    assert config.sleep == [] and served(fake_provider) == ["primary", "backup"]


def test_the_web_profile_sleeps_at_most_max_sleep_per_call(fake_provider):
    fake_provider.script("primary", Fault.rate_limit(retry_after=1.5), Fault.rate_limit(retry_after=1.5))
    config = chain(fake_provider, "primary", "backup").retry_primary(3).for_web(max_sleep=2)
    assert FailoverClient(config).complete(ask()).provider == "backup"
    assert config.sleep == [1.5] and served(fake_provider) == ["primary", "primary", "backup"]
    assert config.retry_policy == RetryPolicy(base_delay=0.25, max_delay=2, max_retry_after=2)
    with pytest.raises(InvalidArgumentError, match="for_web"):
        config.for_web(None)


def test_a_failed_attempt_log_line_names_the_error_status_and_retry_after(fake_provider, caplog):
    fake_provider.script("primary", Fault.rate_limit(retry_after=7))
    with caplog.at_level(logging.INFO, logger="failover_client.attempts"):
        FailoverClient(chain(fake_provider, "primary", "backup")).complete(ask())
    failed, answered = [record.getMessage() for record in caplog.records]
    assert failed.startswith("attempt 1 error: primary/gpt-4o in ")
    assert failed.endswith(" ms (RateLimitError, status 429, retry-after 7s)")
    assert answered.startswith("attempt 2 ok: backup/gpt-4o in ") and answered.endswith(" ms")


# --- the FAILOVER_CLIENT settings and the framework helpers ----------------------------------

def settings_for(server, **more):
    primary = {"base_url": server.base_url("primary", "openai"), "api_key": "sk-test-1234567"}
    backup = {"base_url": server.base_url("backup", "anthropic"), "api_key": "sk-test-7654321"}
    return {"providers": [{"model": "openai/gpt-4o", "name": "primary", "options": primary},
                          {"model": "anthropic/claude-sonnet-4-5", "name": "backup", "models": {"gpt-4o-mini": "haiku"},
                           "options": backup}],
            **more}


def test_settings_build_the_chain_with_the_web_profile_by_default(fake_provider):
    fake_provider.script("primary", Fault.rate_limit(retry_after=5))
    client = build_client(settings_for(fake_provider, deadline=20))
    config = client.config
    assert config.names() == ["primary", "backup"] and config.deadline == 20
    assert config.fallbacks[0].model_mapping == {"gpt-4o": "claude-sonnet-4-5", "gpt-4o-mini": "haiku"}
    assert (config.primary_retries, config.retry_policy.max_retry_after) == (1, 2.0)
    response = client.complete(ask())
    assert (response.provider, response.model) == ("backup", "claude-sonnet-4-5")
    assert [r.body["model"] for r in fake_provider.requests] == ["gpt-4o", "claude-sonnet-4-5"]


def test_settings_can_tune_or_drop_every_part(fake_provider, tmp_path):
    config = build_client(settings_for(
        fake_provider, profile="script", retry_primary=3, retry_policy={"max_retry_after": 7},
        circuit_breaker=False, health_store="redis://127.0.0.1:1/0", stream_interrupt="resume")).config
    assert (config.primary_retries, config.retry_policy, config.breaker) == (3, RetryPolicy(max_retry_after=7), None)
    assert (type(config.health).__name__, config.health.url, config.stream_interrupt) == (
        "RedisHealthStore", "redis://127.0.0.1:1/0", "resume")
    assert build_client(settings_for(fake_provider, circuit_breaker={"failure_threshold": 2})
                        ).config.breaker.failure_threshold == 2


@pytest.mark.parametrize("change, complaint", [
    ({"retries": 1}, r"unknown keys \['retries'\]"),
    ({"providers": []}, "non-empty list"),
    ({"providers": [{"model": "openai/gpt-4o", "key": "x"}]}, r"providers'\]\[0\] must be a dict with 'model'"),
    ({"providers": [{"model": "gpt-4o"}]}, "not of the form 'provider/model'"),
    ({"providers": [{"model": "openai/gpt-4o", "options": {"api_key": "sk-a-123456"}},
                    {"model": "openai/gpt-4o-mini", "options": {"api_key": "sk-b-123456"}}]},
     "the name 'openai' is taken"),
    ({"providers": [{"model": "openai/gpt-4o", "models": {"a": "b"}, "options": {"api_key": "sk-a-123456"}}]},
     "only on fallbacks"),
    ({"profile": "fast"}, "'web' or 'script'"),
    ({"retry_policy": 3}, "retry_policy.* must be a dict"),
    ({"deadline": -1}, "positive number of seconds"),
])
def test_bad_settings_say_what_is_wrong(fake_provider, change, complaint):
    with pytest.raises(InvalidArgumentError, match=complaint):
        build_client({**settings_for(fake_provider), **change})
    with pytest.raises(InvalidArgumentError, match="must be a dict"):
        build_client([("providers", [])])


def test_a_provider_without_a_key_names_its_environment_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY"):
        build_client({"providers": [{"model": "openai/gpt-4o"}]})


def test_the_process_client_is_built_once_per_process_and_anew_after_fork(fake_provider):
    built = []
    holder = ProcessClient(lambda: built.append(1) or build_client(settings_for(fake_provider)))
    parent = holder.get()
    assert holder.get() is parent and len(built) == 1
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a client of its own, which answers
        try:
            child = holder.get()
            os.write(writing, f"{child is not parent} {len(built)} {child.complete(ask()).text}".encode())
        finally:
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        assert pipe.read() == "True 2 Hello!"
    os.waitpid(pid, 0)
    assert holder.get() is parent
    holder.close()
    assert holder.get() is not parent and len(built) == 2


def test_flask_extension_streams_and_answers_502_before_any_header(fake_provider):
    flask = pytest.importorskip("flask")
    from failover_client.contrib.flask import FailoverClientExtension, current_client, stream_response

    app = flask.Flask("test")
    app.config["FAILOVER_CLIENT"] = settings_for(fake_provider)
    FailoverClientExtension(app)
    app.add_url_rule("/stream", "stream", lambda: stream_response(ask(stream=True)))
    app.add_url_rule("/text", "text", lambda: stream_response(ask(stream=True), as_text=True))
    fake_provider.script("primary", Reply(text="Hi there"), Reply(text="Hi again"), *[Fault.status(500)] * 2)
    fake_provider.script("backup", Fault.status(503))
    http = app.test_client()
    answer = http.get("/stream")
    assert (answer.status_code, answer.headers["Content-Type"]) == (200, "text/event-stream; charset=utf-8")
    assert [name for name, _ in events([answer.data])] == ["message", "message", "done"]
    assert http.get("/text").data == b"Hi again"
    failed = http.get("/stream")
    assert (failed.status_code, failed.json["error"]["type"]) == (502, "AllProvidersFailedError")
    with app.app_context():
        assert current_client.config.names() == ["primary", "backup"]
        assert current_client._get_current_object() is FailoverClientExtension.client()
    with pytest.raises(InvalidArgumentError, match="FAILOVER_CLIENT"):
        FailoverClientExtension(flask.Flask("unconfigured"))
