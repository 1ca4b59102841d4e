"""OpenTelemetry spans (GenAI semantic conventions) for a call and each of its attempts, read
back from the SDK's in-memory exporter."""

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra (opentelemetry-sdk) is not installed")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from failover_client import (  # noqa: E402
    AllProvidersFailedError,
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    InvalidArgumentError,
)
from failover_client.log.otel import instrument  # noqa: E402
from failover_client.testing import Fault, Reply  # noqa: E402
from tests.support import ask, make_provider  # noqa: E402

USAGE = {"input": 120, "output": 30, "cache_read": 100, "cache_write": 0, "reasoning": 0}


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def traced(fake_provider, exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake_provider.script("primary", Fault.overloaded())
    fake_provider.set_default("primary", Reply(text="primary answer", usage=USAGE, model="gpt-4o-2024-08-06"))
    fake_provider.set_default("backup", Reply(text="backup answer", usage=USAGE, model="claude-sonnet-4-5"))
    config = (FailoverConfig("primary", make_provider(fake_provider, "primary", "openai"))
              .add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", "anthropic"))
                            .with_model_mapping("gpt-4o", "claude-sonnet-4-5")))
    client = instrument(FailoverClient(config), tracer_provider=provider)
    yield client
    client.close()


def spans(exporter):
    finished = exporter.get_finished_spans()
    call = next(s for s in finished if "failover.attempt" not in s.attributes)
    attempts = sorted((s for s in finished if "failover.attempt" in s.attributes),
                      key=lambda s: s.attributes["failover.attempt"])
    return call, attempts


def test_a_call_and_its_attempts(traced, exporter):
    answer = traced.complete(ask(max_tokens=50, temperature=0.2))
    assert answer.text == "backup answer"
    call, (failed, served) = spans(exporter)
    assert call.name == "chat gpt-4o" and call.kind is SpanKind.CLIENT
    assert call.attributes["gen_ai.operation.name"] == "chat"
    assert (call.attributes["gen_ai.request.model"], call.attributes["gen_ai.request.max_tokens"],
            call.attributes["gen_ai.request.temperature"]) == ("gpt-4o", 50, 0.2)
    assert call.attributes["gen_ai.response.model"] == "claude-sonnet-4-5"
    assert tuple(call.attributes["gen_ai.response.finish_reasons"]) == ("end_turn",)
    assert (call.attributes["gen_ai.usage.input_tokens"], call.attributes["gen_ai.usage.output_tokens"],
            call.attributes["gen_ai.usage.cache_read.input_tokens"]) == (120, 30, 100)
    assert (call.attributes["failover.provider"], call.attributes["failover.attempts"]) == ("backup", 2)
    assert call.status.status_code is StatusCode.UNSET

    for attempt in (failed, served):
        assert attempt.parent.span_id == call.context.span_id
        assert attempt.context.trace_id == call.context.trace_id
    assert (failed.attributes["failover.provider"], failed.attributes["gen_ai.request.model"],
            failed.attributes["failover.outcome"], failed.attributes["error.type"]) == (
        "primary", "gpt-4o", "error", "OverloadedError")
    assert failed.status.status_code is StatusCode.ERROR
    assert (served.name, served.attributes["gen_ai.provider.name"], served.attributes["failover.outcome"],
            served.attributes["gen_ai.usage.output_tokens"]) == ("chat claude-sonnet-4-5", "backup", "ok", 30)


def test_a_stream_is_one_call_span_with_its_attempts(traced, exporter):
    traced.complete(ask())  # uses up the scripted fault: the stream is answered by the primary
    exporter.clear()
    text = "".join(chunk.text or "" for chunk in traced.complete_stream(ask()))
    assert text == "primary answer"
    call, attempts = spans(exporter)
    assert [a.attributes["failover.provider"] for a in attempts] == ["primary"]
    assert attempts[0].parent.span_id == call.context.span_id
    assert call.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert call.attributes["gen_ai.usage.input_tokens"] == 120


def test_a_failed_call_is_an_error_span(fake_provider, exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake_provider.set_default("only", Fault.overloaded())
    client = instrument(FailoverClient(FailoverConfig("only", make_provider(fake_provider, "only", "openai"))),
                        tracer_provider=provider)
    with pytest.raises(AllProvidersFailedError):
        client.complete(ask())
    call, (attempt,) = spans(exporter)
    assert call.status.status_code is StatusCode.ERROR and call.attributes["error.type"] == "AllProvidersFailedError"
    assert attempt.attributes["error.type"] == "OverloadedError"


def test_instrument_wants_a_failover_client(fake_provider):
    with pytest.raises(InvalidArgumentError, match="FailoverClient"):
        instrument(make_provider(fake_provider, "x", "openai"))
