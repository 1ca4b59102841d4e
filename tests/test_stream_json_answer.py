"""A server that ignores ``stream: true`` (issue 13, part 4).

LiteLLM's proxy answers some stream requests with ``200 application/json`` and the complete
message.  On every protocol that answer is delivered as the stream that would have carried it:
its content as chunks, then the final chunk with the stop reason and usage.  Any other content
type (a captive portal's HTML page) is a ResponseDecodeError naming it, and a chain fails over.
"""

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from failover_client import (
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    ResponseDecodeError,
    StopReason,
    Usage,
    collect,
)
from failover_client.testing import FakeProviderServer, Reply, ToolCall

from raw_server import RawServer
from support import PROTOCOLS, WEATHER, ask, make_provider

TEXT_REPLY = Reply(chunks=["Hello", " from", " a", " proxy"], usage={"input": 21, "output": 4})
TOOL_REPLY = Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")],
                   usage={"input": 30, "output": 9})
PORTAL = "<html><head><title>Hotel WiFi - please log in</title></head><body>Accept the terms</body></html>"


def complete_answer(raw, protocol, reply):
    """The protocol's complete JSON answer to the request the provider just sent, rendered by the
    fake server's own protocol module."""
    path, headers, body = raw.requests[-1]
    target = urlsplit(path)
    name, wire, route = FakeProviderServer()._route("POST", target.path)
    call = wire.call(name, json.loads(body), {k.lower(): v for k, v in headers.items()}, route,
                     dict(parse_qsl(target.query)))
    return wire.render(reply, call)


def stream_of_a_json_answer(protocol, reply, request):
    with RawServer() as raw:
        provider = make_provider(raw, "p", protocol)
        raw.answer(200, "{}")
        with pytest.raises(ResponseDecodeError):  # an empty object is no answer: its shape is named
            list(provider.complete_stream(request))
        raw.answer(200, complete_answer(raw, protocol, reply), "application/json; charset=utf-8")
        return list(provider.complete_stream(request))


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_complete_answer_to_a_stream_request_is_delivered_as_a_stream(protocol):
    chunks = stream_of_a_json_answer(protocol, TEXT_REPLY, ask(stream=True))
    assert "".join(c.text or "" for c in chunks) == "Hello from a proxy"
    last = chunks[-1]
    assert last.stop_reason is StopReason.END_TURN
    assert (last.usage.input_tokens, last.usage.output_tokens, last.usage.estimated) == (21, 4, False)
    assert not any(c.stop_reason or c.usage for c in chunks[:-1])  # the end comes once, last
    assert collect(chunks).text == "Hello from a proxy"


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_tool_call_answer_becomes_a_streamed_tool_call(protocol):
    chunks = stream_of_a_json_answer(protocol, TOOL_REPLY, ask(stream=True, tools=[WEATHER]))
    answer = collect(chunks)
    assert [(c.name, c.input) for c in answer.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert answer.stop_reason is StopReason.TOOL_USE


def test_an_error_object_in_a_json_answer_is_raised_as_that_error():
    with RawServer() as raw:
        raw.answer(200, json.dumps({"error": {"message": "slow down", "type": "rate_limit_error"}}))
        with pytest.raises(Exception) as info:
            list(make_provider(raw, "p", "openai").complete_stream(ask(stream=True)))
    assert type(info.value).__name__ == "RateLimitError"


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_captive_portal_page_is_a_decode_error_naming_its_content_type(protocol):
    with RawServer() as raw:
        raw.answer(200, PORTAL, "text/html; charset=utf-8")
        with pytest.raises(ResponseDecodeError) as info:
            list(make_provider(raw, "p", protocol).complete_stream(ask(stream=True)))
    message = str(info.value)
    assert "text/html" in message and "Hotel WiFi - please log in" in message
    assert "the stream ended" not in message


def test_a_chain_fails_over_past_a_captive_portal(fake_provider):
    fake_provider.set_default("backup", Reply(text="real answer"))
    with RawServer() as raw:
        raw.answer(200, PORTAL, "text/html")
        config = FailoverConfig("portal", make_provider(raw, "portal", "openai"))
        config.add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", "openai")))
        answer = collect(FailoverClient(config).complete_stream(ask(stream=True)))
    assert answer.text == "real answer"
    assert [(a.provider, a.error_type) for a in answer.attempts] == [("portal", "ResponseDecodeError"),
                                                                       ("backup", None)]
    assert answer.usage == Usage(10, 2)  # as the backup reported it
