"""Every fault the fake server scripts (and a closed port) x complete / complete_stream x trigger
settings, for OpenAI's Chat Completions and Responses and for Anthropic's Messages: the exact
outcome of each — who served, or which error, with the attempts — and a table of them all at the
end of the module."""

import socket

import pytest

from failover_client import (
    AllProvidersFailedError,
    AuthenticationError,
    ContentFilteredError,
    ContextLengthExceededError,
    FailoverClient,
    FailoverConfig,
    FailoverTrigger,
    FallbackProvider,
    InvalidRequestError,
    NetworkError,
    OverloadedError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    StreamInterruptedError,
)
from failover_client.providers import AnthropicProvider, OpenAIProvider, OpenAIResponsesProvider
from failover_client.testing import Fault, Reply

from chains import call, outcomes, served
from support import make_provider

# Short limits only where a fault is about time: a stall meets a short read timeout, a trickle a
# short deadline; anything else gets limits no busy machine reaches (see tests/test_faults.py).
READ_TIMEOUT = 0.2
DEADLINE = 0.6
PATIENT = 30.0
STALL = 30
CLOSED_PORT = "connection refused (closed port)"

# fault -> (script step, error of complete(), error of a stream that fails before any output);
# a dict picks per protocol where the protocols differ
FAULTS = {
    **{f"{code}{hint}": (Fault.status(code, headers=headers), error, error)
       for code, error in ((408, ProviderTimeoutError), (409, ServerError), (500, ServerError), (502, ServerError),
                           (503, OverloadedError), (504, ServerError), (529, OverloadedError))
       for hint, headers in (("", None), (" retry-after", {"retry-after": "1"}))},
    "429": (Fault.rate_limit(), RateLimitError, RateLimitError),
    "429 retry-after": (Fault.rate_limit(retry_after=1), RateLimitError, RateLimitError),
    CLOSED_PORT: (None, NetworkError, NetworkError),
    "reset before headers": (Fault.reset_before_headers(), NetworkError, NetworkError),
    "reset mid-body": (Fault.reset_mid_body(after_events=0), NetworkError, NetworkError),
    "stall before headers": (Fault.stall_before_headers(STALL), ProviderTimeoutError, ProviderTimeoutError),
    "stall mid-stream": (Fault.stall_mid_stream(0, STALL), ProviderTimeoutError, ProviderTimeoutError),
    "trickle past the deadline": (Fault.trickle(0.05, Reply(text="slow " * 200)), ProviderTimeoutError,
                                  ProviderTimeoutError),
    "truncated stream": (Fault.truncated_stream(after_events=0), ResponseDecodeError, NetworkError),
    "malformed json": (Fault.malformed_json(), ResponseDecodeError, ResponseDecodeError),
    "html error page": (Fault.html_error(502), ServerError, ServerError),
    # OpenAI reports an overload inside a stream as a server_error object (Responses: an error
    # event with that code), Anthropic as overloaded_error
    "mid-stream error event": (Fault.stream_error_event(0, "overloaded_error", "Overloaded"), OverloadedError,
                               {"openai": ServerError, "anthropic": OverloadedError, "responses": ServerError}),
    "empty 200": (Fault.empty_200(), ResponseDecodeError, NetworkError),
    # the caller's own errors: they fail over only when configured to
    "400": (Fault.status(400), InvalidRequestError, InvalidRequestError),
    "401": (Fault.status(401), AuthenticationError, AuthenticationError),
    "context length": (Fault.context_length(), ContextLengthExceededError, ContextLengthExceededError),
    "content filter": (Fault.content_filter(), ContentFilteredError, ContentFilteredError),
}
# trigger setting -> (triggers, the error classes that move on under it)
TRIGGERS = {
    "default": (None, (RateLimitError, ServerError, ResponseDecodeError, ProviderTimeoutError, NetworkError)),
    "ANY_ERROR": ((FailoverTrigger.ANY_ERROR,), (Exception,)),
    "rate limit + timeout": ((FailoverTrigger.RATE_LIMIT, FailoverTrigger.TIMEOUT),
                             (RateLimitError, ProviderTimeoutError)),
}
PROVIDERS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider, "responses": OpenAIResponsesProvider}
MODES = ("complete", "stream")
# a trickle spends the whole deadline on the primary; streamed, its output reached the caller
EATS_THE_DEADLINE = "trickle past the deadline"
TABLE = []


@pytest.fixture(scope="module", autouse=True)
def print_the_table(request):
    """Prints, after the module's last test whatever the order, the outcomes it observed."""
    yield
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\n{'fault':<28} {'protocol':<10} {'mode':<9} {'triggers':<21} outcome")
        for row in sorted(TABLE):
            print(f"{row[0]:<28} {row[1]:<10} {row[2]:<9} {row[3]:<21} {row[4]}")
        print(f"{len(TABLE)} outcomes")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def primary_for(server, fault_name, protocol):
    if fault_name == CLOSED_PORT:
        url = server.base_url("primary", protocol).replace(f":{server.port}/", f":{closed_port()}/")
        return PROVIDERS[protocol](api_key="sk-test-key-0123456789", base_url=url, name="primary")
    server.script("primary", FAULTS[fault_name][0])
    stalls = fault_name.startswith("stall")
    return make_provider(server, "primary", protocol, read_timeout=READ_TIMEOUT if stalls else PATIENT)


@pytest.mark.parametrize("triggers", TRIGGERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("protocol", sorted(PROVIDERS))
@pytest.mark.parametrize("fault_name", FAULTS)
def test_fault_outcome(fake_provider, fault_name, protocol, mode, triggers):
    fake_provider.script("backup", Reply(text="served by backup"))
    config = FailoverConfig("primary", primary_for(fake_provider, fault_name, protocol))
    config.add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", protocol)))
    chosen, moving = TRIGGERS[triggers]
    if chosen is not None:
        config.with_triggers(*chosen)
    error = FAULTS[fault_name][1 if mode == "complete" else 2]
    error = error[protocol] if isinstance(error, dict) else error
    primary_failed = [("primary", "error", error.__name__)]
    client = FailoverClient(config)
    deadline = DEADLINE if fault_name == EATS_THE_DEADLINE else PATIENT
    if fault_name == EATS_THE_DEADLINE and mode == "stream":
        with pytest.raises(StreamInterruptedError) as info:
            call(client, mode, timeout=deadline)
        assert outcomes(info.value.partial.attempts) == primary_failed and info.value.partial_text
        outcome = "StreamInterruptedError (partial output kept)"
    elif not issubclass(error, moving):
        with pytest.raises(error) as info:
            call(client, mode, timeout=deadline)
        assert type(info.value) is error and outcomes(info.value.attempts) == primary_failed
        outcome = f"raised {error.__name__}"
    elif fault_name == EATS_THE_DEADLINE:
        with pytest.raises(AllProvidersFailedError, match="deadline exceeded") as info:
            call(client, mode, timeout=deadline)
        assert outcomes(info.value.attempts) == primary_failed
        outcome = "AllProvidersFailedError (deadline)"
    else:
        response = call(client, mode, timeout=deadline)
        assert response.provider == "backup" and response.text == "served by backup"
        assert outcomes(response.attempts) == primary_failed + [("backup", "ok", None)]
        outcome = "served by backup"
    expected_requests = ["backup"] if outcome == "served by backup" else []
    if fault_name != CLOSED_PORT:
        expected_requests.insert(0, "primary")
    assert served(fake_provider) == expected_requests
    TABLE.append((fault_name, protocol, mode, triggers, f"primary: {error.__name__} -> {outcome}"))
