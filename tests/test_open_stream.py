"""FailoverClient.open_stream: the failover runs before the stream is handed over, so a web
view can still answer 502/503; the Stream closes its upstream connection when dropped early."""

import pytest

from failover_client import (
    AllProvidersFailedError,
    FailoverClient,
    InvalidArgumentError,
    InvalidRequestError,
    StreamInterruptedError,
    collect,
)
from failover_client.testing import Fault, Reply

from chains import chain, outcomes, served, tcp_states_to
from support import ask


def test_fails_over_before_handing_the_stream_over(fake_provider):
    fake_provider.script("primary", Fault.overloaded())
    fake_provider.script("backup", Reply(text="from the backup"))
    stream = FailoverClient(chain(fake_provider, "primary", "backup")).open_stream(ask(stream=True))
    assert stream.provider == "backup"
    assert outcomes(stream.attempts) == [("primary", "error", "OverloadedError")]  # the winner is not done yet
    response = collect(stream)
    assert response.text == "from the backup" and response.provider == "backup"
    assert outcomes(stream.attempts) == [("primary", "error", "OverloadedError"), ("backup", "ok", None)]


def test_every_provider_failing_raises_from_open_stream_itself(fake_provider):
    fake_provider.script("primary", Fault.status(500))
    fake_provider.script("backup", Fault.rate_limit())
    with pytest.raises(AllProvidersFailedError) as info:
        FailoverClient(chain(fake_provider, "primary", "backup")).open_stream(ask(stream=True))
    assert outcomes(info.value.attempts) == [("primary", "error", "ServerError"),
                                            ("backup", "error", "RateLimitError")]


def test_an_error_no_trigger_matches_raises_as_complete_would(fake_provider):
    fake_provider.script("primary", Fault.status(400, message="bad field"))
    with pytest.raises(InvalidRequestError, match="bad field"):
        FailoverClient(chain(fake_provider, "primary", "backup")).open_stream(ask(stream=True))
    assert served(fake_provider) == ["primary"]


def test_a_malformed_request_is_refused_before_anything_is_sent(fake_provider):
    with pytest.raises(InvalidArgumentError):
        FailoverClient(chain(fake_provider, "primary")).open_stream(ask(max_tokens=0))
    assert served(fake_provider) == []


def test_the_stream_holds_only_the_chunks_up_to_the_first_output(fake_provider):
    fake_provider.script("primary", Reply(chunks=["one", " two", " three"]))
    stream = FailoverClient(chain(fake_provider, "primary")).open_stream(ask(stream=True))
    texts = [chunk.text for chunk in stream if chunk.text]
    assert texts == ["one", " two", " three"]
    with pytest.raises(StopIteration):
        next(stream)


def test_a_failure_after_the_first_output_comes_out_of_the_iteration(fake_provider):
    fake_provider.script("primary", Fault.reset_mid_body(after_events=3, reply=Reply(chunks=["a", "b", "c", "d"])))
    stream = FailoverClient(chain(fake_provider, "primary", "backup")).open_stream(ask(stream=True))
    with pytest.raises(StreamInterruptedError) as info:
        list(stream)
    assert info.value.partial.text.startswith("a")
    assert served(fake_provider) == ["primary"]


@pytest.mark.parametrize("how", ["close", "with"])
def test_dropping_the_stream_early_closes_the_upstream_connection(fake_provider, how):
    fake_provider.script("primary", Fault.trickle(0.05, reply=Reply(chunks=["x"] * 40)))
    client = FailoverClient(chain(fake_provider, "primary"))
    if how == "close":
        stream = client.open_stream(ask(stream=True))
        assert next(stream).provider == "primary"
        assert tcp_states_to(fake_provider.port).count("ESTABLISHED") == 1
        stream.close()
    else:
        with client.open_stream(ask(stream=True)) as stream:
            assert tcp_states_to(fake_provider.port).count("ESTABLISHED") == 1
    assert "ESTABLISHED" not in tcp_states_to(fake_provider.port)
    assert outcomes(stream.attempts) == [("primary", "abandoned", None)]  # logged and told to the hooks
    assert client.complete(ask()).text == "Hello!"  # and the client goes on working
