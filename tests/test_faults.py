"""Every fault the fake server can script, on complete() and complete_stream(), for both
protocols: the exact error a provider raises, and what a FailoverClient makes of it."""

import pytest

from failover_client import (
    AllProvidersFailedError,
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    NetworkError,
    OverloadedError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    StreamInterruptedError,
    collect,
)
from failover_client.testing import Fault, Reply

from support import PROTOCOLS, ask, make_provider

LONG = Reply(text="one two three four five six seven eight nine ten")
# Short limits only where a fault is about time, so those tests stay quick: a stall meets a short
# read timeout, a trickle a short deadline.  Every other limit is one no busy machine reaches, or
# a slow answer (or a fallback slow to answer after a stall) would read as a timeout.
READ_TIMEOUT = 0.3
DEADLINE = 0.6
PATIENT = 30.0
STALLS = {"stall before headers", "stall mid-stream"}

# name -> (fault, error for complete(), error for a stream that fails before any output)
FAULTS = {
    "408": (Fault.status(408), ProviderTimeoutError, ProviderTimeoutError),
    "409": (Fault.status(409), ServerError, ServerError),
    "429": (Fault.rate_limit(), RateLimitError, RateLimitError),
    "429 retry-after": (Fault.rate_limit(retry_after=2), RateLimitError, RateLimitError),
    "429 retry-after-ms": (Fault.rate_limit(retry_after_ms=1500), RateLimitError, RateLimitError),
    "500": (Fault.status(500), ServerError, ServerError),
    "502": (Fault.status(502), ServerError, ServerError),
    "503": (Fault.status(503, headers={"retry-after": "1"}), OverloadedError, OverloadedError),
    "504": (Fault.status(504), ServerError, ServerError),
    "529": (Fault.status(529), OverloadedError, OverloadedError),
    "html 502 from a proxy": (Fault.html_error(502), ServerError, ServerError),
    "reset before headers": (Fault.reset_before_headers(), NetworkError, NetworkError),
    "reset mid-body": (Fault.reset_mid_body(after_events=0), NetworkError, NetworkError),
    "stall before headers": (Fault.stall_before_headers(3), ProviderTimeoutError, ProviderTimeoutError),
    "stall mid-stream": (Fault.stall_mid_stream(0, 3), ProviderTimeoutError, ProviderTimeoutError),
    "trickle past the deadline": (Fault.trickle(0.05, Reply(text="slow " * 200)), ProviderTimeoutError,
                                  ProviderTimeoutError),
    "truncated": (Fault.truncated_stream(after_events=0), ResponseDecodeError, NetworkError),
    "malformed json": (Fault.malformed_json(), ResponseDecodeError, ResponseDecodeError),
    # OpenAI (and Azure) report a mid-stream overload as a server_error object; Anthropic as
    # overloaded_error; Cohere as message-end with finish_reason ERROR and Ollama as an
    # {"error": "..."} line, neither of which names a kind of error: their message says it
    "error event": (Fault.stream_error_event(0, "overloaded_error", "Overloaded"), OverloadedError,
                    {"openai": ServerError, "anthropic": OverloadedError, "cohere": OverloadedError,
                     "ollama": OverloadedError, "azure": ServerError, "responses": ServerError,
                     # Bedrock sends a serviceUnavailableException frame: overloaded, as its 503 is
                     "bedrock": OverloadedError,
                     # Gemini and Vertex send {"error": {"code": 503, "status": "UNAVAILABLE"}}: the
                     # HTTP code inside says overloaded
                     "gemini": OverloadedError, "vertex": OverloadedError}),
    "empty 200": (Fault.empty_200(), ResponseDecodeError, NetworkError),
}
# faults that can also strike after output has reached the caller
AFTER_OUTPUT = {
    "reset mid-body": Fault.reset_mid_body(after_events=6, reply=LONG),
    "stall mid-stream": Fault.stall_mid_stream(6, 3, reply=LONG),
    "truncated": Fault.truncated_stream(after_events=6, reply=LONG),
    "error event": Fault.stream_error_event(6, "overloaded_error", "Overloaded", reply=LONG),
}
MODES = ("complete", "stream")
# a trickle spends the whole deadline on the primary: nothing is left for a fallback
EATS_THE_DEADLINE = {"trickle past the deadline"}
# (fault, protocol) pairs whose streamed fault strikes after output: Gemini's first event already
# carries text (there is no opening event such as OpenAI's role delta or Anthropic's
# message_start), so malformed JSON in the second event interrupts the stream instead of failing over;
# so does Ollama's first NDJSON line
AFTER_FIRST_OUTPUT = {("malformed json", "gemini"), ("malformed json", "vertex"), ("malformed json", "ollama")}
OUTCOMES: list[tuple[str, ...]] = []


def expected_error(fault_name, protocol, mode):
    _fault, plain_error, stream_error = FAULTS[fault_name]
    expected = plain_error if mode == "complete" else stream_error
    return expected[protocol] if isinstance(expected, dict) else expected


def read_timeout(fault_name):
    return READ_TIMEOUT if fault_name in STALLS else PATIENT


def run(provider, mode, fault_name):
    deadline = DEADLINE if fault_name in EATS_THE_DEADLINE else PATIENT
    if mode == "complete":
        return provider.complete(ask(), timeout=deadline)
    return collect(provider.complete_stream(ask(stream=True), timeout=deadline))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault_name", FAULTS)
def test_provider_raises_the_right_error(fake_provider, protocol, mode, fault_name):
    fake_provider.script("p", FAULTS[fault_name][0])
    provider = make_provider(fake_provider, "p", protocol, read_timeout=read_timeout(fault_name))
    expected = expected_error(fault_name, protocol, mode)
    with pytest.raises(expected) as info:
        run(provider, mode, fault_name)
    assert type(info.value) is expected
    assert info.value.provider == "p"
    assert provider.complete(ask()).text == "Hello!"  # the provider is still usable afterwards


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault_name", FAULTS)
def test_failover_client_falls_back_on_every_fault(fake_provider, protocol, mode, fault_name):
    fake_provider.script("primary", FAULTS[fault_name][0])
    fake_provider.script("backup", Reply(text="served by backup"))
    config = FailoverConfig("primary", make_provider(fake_provider, "primary", protocol,
                                                     read_timeout=read_timeout(fault_name)))
    config.add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", protocol)))
    expected = expected_error(fault_name, protocol, mode).__name__
    if fault_name in EATS_THE_DEADLINE:  # a streamed trickle has shown output by then: interrupted
        outcome = AllProvidersFailedError if mode == "complete" else StreamInterruptedError
        with pytest.raises(outcome, match="deadline exceeded"):
            run(FailoverClient(config), mode, fault_name)
        assert [r.name for r in fake_provider.requests] == ["primary"]
        OUTCOMES.append((fault_name, protocol, mode, "primary: " + expected, outcome.__name__ + " (deadline)"))
        return
    if mode == "stream" and (fault_name, protocol) in AFTER_FIRST_OUTPUT:
        with pytest.raises(StreamInterruptedError) as info:
            run(FailoverClient(config), mode, fault_name)
        assert info.value.partial_text == "Hello!" and type(info.value.__cause__).__name__ == expected
        assert [r.name for r in fake_provider.requests] == ["primary"]
        OUTCOMES.append((fault_name, protocol, mode, "primary: " + expected, "StreamInterruptedError (after output)"))
        return
    response = run(FailoverClient(config), mode, fault_name)
    assert response.text == "served by backup" and response.provider == "backup"
    assert [(a.provider, a.outcome, a.error_type) for a in response.attempts] == [
        ("primary", "error", expected), ("backup", "ok", None)]
    OUTCOMES.append((fault_name, protocol, mode, "primary: " + expected, "served by backup"))


@pytest.mark.parametrize("fault_name", AFTER_OUTPUT)
def test_fault_after_output_interrupts_the_stream_with_partial_text(fake_provider, protocol, fault_name):
    fake_provider.script("primary", AFTER_OUTPUT[fault_name])
    config = FailoverConfig("primary", make_provider(fake_provider, "primary", protocol,
                                                     read_timeout=read_timeout(fault_name)))
    config.add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", protocol)))
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in FailoverClient(config).complete_stream(ask(stream=True)):
            received.append(chunk.text or "")
    assert info.value.partial_text == "".join(received) != ""
    assert LONG.text.startswith(info.value.partial_text)
    assert [r.name for r in fake_provider.requests] == ["primary"]
    OUTCOMES.append((fault_name + " (after output)", protocol, "stream", "StreamInterruptedError",
                     f"partial {info.value.partial_text!r}"))


def test_print_the_outcome_table(capsys):
    """Runs last in this module: prints what the matrix above observed."""
    with capsys.disabled():
        print(f"\n{'fault':<28} {'protocol':<10} {'mode':<9} {'error':<36} outcome")
        for row in OUTCOMES:
            print(f"{row[0]:<28} {row[1]:<10} {row[2]:<9} {row[3]:<36} {row[4]}")
    assert len(OUTCOMES) == (len(FAULTS) * len(MODES) + len(AFTER_OUTPUT)) * len(PROTOCOLS)
