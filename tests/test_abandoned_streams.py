"""Every attempt that starts ends, even when the consumer drops the stream (issue 13, part 6).

Four ways a consumer drops a stream mid-way: ``close()`` (a web server whose client hung up), an
exception thrown into the generator, KeyboardInterrupt from a real SIGINT (a notebook), and
garbage collection.  Each must end the attempt as "abandoned" on the attempt hook and the
attempt log line, count the request in a UsageTracker with estimated usage, close the
connection rather than pool it half-read, and hand a half-open probe's permit back.
"""

import gc
import logging
import os
import signal
import threading
import traceback

import pytest

from failover_client import FailoverClient, UsageTracker
from failover_client.health import MemoryHealthStore
from failover_client.testing import Fault, Reply

from chains import FakeClock, chain, outcomes, tcp_states_to
from support import ask

LONG = Reply(text=" ".join(f"word{i}" for i in range(60)))
STALLED = Fault.stall_mid_stream(4, 30, reply=LONG)  # a few events, then silence until the server stops


def first_output(stream):
    for chunk in stream:
        if chunk.text:
            return chunk
    raise AssertionError("the stream ended without output")


def by_close(stream):
    first_output(stream)
    stream.close()


def by_throw(stream):
    first_output(stream)
    with pytest.raises(RuntimeError, match="client went away"):
        stream.throw(RuntimeError("client went away"))


def by_sigint(stream, after_output=True):
    """The read blocks on a stalled server until a real SIGINT interrupts it, as Ctrl-C does."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if after_output:
        first_output(stream)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            for _ in stream:
                pass
    finally:
        timer.join()
    # it struck inside the library, reading the stalled socket
    assert any("failover_client" in frame.filename for frame in traceback.extract_tb(info.value.__traceback__))


def by_garbage_collection(stream):
    first_output(stream)
    del stream
    gc.collect()


WAYS = {"close": by_close, "throw": by_throw, "sigint": by_sigint, "gc": by_garbage_collection}


class Hooks:
    def __init__(self, config):
        self.started, self.ended = [], []
        config.on("attempt_start", lambda **payload: self.started.append(payload))
        config.on("attempt_end", lambda **payload: self.ended.append(payload))


@pytest.mark.parametrize("way", WAYS)
def test_an_abandoned_stream_ends_its_attempt(fake_provider, caplog, way):
    fake_provider.script("primary", STALLED)
    config = chain(fake_provider, "primary", "backup")
    hooks = Hooks(config)
    tracker = UsageTracker()
    tracker.attach(config)
    caplog.set_level(logging.INFO, logger="failover_client.attempts")

    WAYS[way](FailoverClient(config).complete_stream(ask(stream=True)))

    assert len(hooks.started) == len(hooks.ended) == 1
    ended = hooks.ended[0]
    assert (ended["provider"], ended["outcome"], ended["error"]) == ("primary", "abandoned", None)
    usage = ended["usage"]  # no usage arrived: estimated from the prompt and the words that did
    assert usage.estimated and usage.input_tokens > 0 and usage.output_tokens > 0
    assert [r.failover["outcome"] for r in caplog.records if hasattr(r, "failover")] == ["abandoned"]
    totals = tracker.totals()
    assert (totals.requests, totals.failures, totals.estimated) == (1, 0, 1)
    assert totals.output_tokens == usage.output_tokens
    assert "ESTABLISHED" not in tcp_states_to(fake_provider.port)  # closed, not back in the pool
    assert [r.name for r in fake_provider.requests] == ["primary"]


def test_an_interrupt_before_the_first_output_ends_the_attempt_too(fake_provider):
    fake_provider.script("primary", Fault.stall_mid_stream(1, 30, reply=LONG))
    config = chain(fake_provider, "primary", "backup")
    hooks = Hooks(config)
    by_sigint(FailoverClient(config).complete_stream(ask(stream=True)), after_output=False)
    assert [(e["outcome"], e["usage"].estimated, e["usage"].output_tokens) for e in hooks.ended] == [
        ("abandoned", True, 0)]
    assert len(hooks.started) == 1 and "ESTABLISHED" not in tcp_states_to(fake_provider.port)


def test_an_interrupted_plain_call_ends_its_attempt_too(fake_provider):
    fake_provider.script("primary", Fault.stall_before_headers(30))
    config = chain(fake_provider, "primary", "backup")
    hooks = Hooks(config)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            FailoverClient(config).complete(ask())
    finally:
        timer.join()
    assert [(e["outcome"], e["usage"].estimated) for e in hooks.ended] == [("abandoned", True)]


@pytest.mark.parametrize("way", WAYS)
def test_an_abandoned_half_open_probe_does_not_keep_a_recovered_provider_skipped(fake_provider, way):
    clock = FakeClock()
    config = chain(fake_provider, "primary", "backup").with_circuit_breaker(failure_threshold=1, cooldown=10)
    config.with_health_store(MemoryHealthStore(clock))
    client = FailoverClient(config)
    fake_provider.script("primary", Fault.status(500))
    client.complete(ask())  # the primary fails once: its circuit opens
    clock.advance(11)  # half-open: the next call is the primary's probe
    fake_provider.script("primary", STALLED)

    WAYS[way](client.complete_stream(ask(stream=True)))

    answer = client.complete(ask())  # the probe's slot is free: the primary is tried, not skipped
    assert outcomes(answer.attempts) == [("primary", "ok", None)]
    assert config.health.acquire("primary", config.breaker).kind == "closed"


def test_the_otel_attempt_span_says_abandoned(fake_provider):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from failover_client.log.otel import instrument

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake_provider.script("primary", STALLED)
    traced = instrument(FailoverClient(chain(fake_provider, "primary", "backup")), tracer_provider)
    by_close(traced.complete_stream(ask(stream=True)))
    attempt, call = exporter.get_finished_spans()
    assert attempt.attributes["failover.outcome"] == "abandoned"
    assert call.attributes["failover.outcome"] == "abandoned"
    assert attempt.parent.span_id == call.context.span_id
