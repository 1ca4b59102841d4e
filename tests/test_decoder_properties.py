"""Whatever a provider sends, an attempt ends in an answer, chunks, or one of our errors (issue 12,
item 3): arbitrary bytes, and arbitrary JSON values in the protocol's framing, are served over a
real socket to every protocol's plain and stream decoders."""

import json
import struct
import zlib

import hypothesis
import hypothesis.strategies as st
import pytest

from failover_client import CompletionResponse, FailoverClientError, StreamChunk

from hostile_server import HostileServer, answer
from support import PROTOCOLS, ask, provider_at

MODEL = {"vertex": "gemini-2.0-flash", "bedrock": "anthropic.claude-3-haiku"}
SETTINGS = hypothesis.settings(max_examples=40, deadline=None, derandomize=True,
                               suppress_health_check=[hypothesis.HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "model", "choices", "delta", "content", "text", "usage", "message", "type",
                         "finish_reason", "stop_reason", "candidates", "parts", "error", "done", "index",
                         "prompt_tokens", "input_tokens", "output_tokens", "tokens", "tool_calls", "function",
                         "arguments", "name", "role", "contentBlockDelta", "metadata", "messageStop",
                         "response", "output", "output_index", "item", "status", "incomplete_details"])
        | st.text(max_size=8),
        inner, max_size=5),
    max_leaves=20)
EVENT_NAMES = ["", "message_start", "content_block_start", "content_block_delta", "message_delta", "message_stop",
               "error", "content-delta", "message-end", "stream-start", "response.created",
               "response.output_item.added", "response.output_text.delta", "response.function_call_arguments.delta",
               "response.completed", "response.incomplete", "response.failed"]
AWS_EVENT_TYPES = ["messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop",
                   "metadata", "throttlingException", "internalServerException"]


@pytest.fixture(scope="module")
def server():
    hostile = HostileServer()
    yield hostile
    hostile.close()


def aws_message(event_type, payload):
    headers = b""
    for name, value in ((":event-type", event_type), (":message-type", "event"), (":content-type", "application/json")):
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def framed(protocol, events):
    """Events (name, JSON value) in the protocol's stream framing."""
    out = b""
    for name, value in events:
        payload = json.dumps(value, allow_nan=True).encode()
        if protocol == "ollama":
            out += payload + b"\n"
        elif protocol == "bedrock":
            out += aws_message(AWS_EVENT_TYPES[len(name) % len(AWS_EVENT_TYPES)], payload)
        else:
            out += (f"event: {name}\n".encode() if name else b"") + b"data: " + payload + b"\n\n"
    return out


def outcome(server, protocol, body, stream):
    """Serve ``body`` and decode it; only our types may come out."""
    server.script = answer(body=body, headers={"Content-Type": "text/event-stream" if stream else "application/json"})
    provider = provider_at(server.url, protocol)
    request = ask(model=MODEL.get(protocol, "gpt-4o"))
    try:
        if stream:
            for chunk in provider.complete_stream(request, timeout=10):
                assert isinstance(chunk, StreamChunk)
                assert chunk.text is None or isinstance(chunk.text, str)
        else:
            response = provider.complete(request, timeout=10)
            assert isinstance(response, CompletionResponse)
            assert isinstance(response.text, str) and response.usage.total_tokens >= 0
    except FailoverClientError:
        pass
    finally:
        provider.close()


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@SETTINGS
@hypothesis.given(body=st.binary(max_size=300))
def test_arbitrary_bytes_give_answers_chunks_or_our_errors(server, protocol, stream, body):
    outcome(server, protocol, body, stream)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@SETTINGS
@hypothesis.given(value=json_values)
def test_arbitrary_json_answers_give_answers_or_our_errors(server, protocol, value):
    outcome(server, protocol, json.dumps(value, allow_nan=True).encode(), stream=False)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@SETTINGS
@hypothesis.given(events=st.lists(st.tuples(st.sampled_from(EVENT_NAMES), json_values), min_size=1, max_size=5))
def test_arbitrary_json_events_give_chunks_or_our_errors(server, protocol, events):
    outcome(server, protocol, framed(protocol, events), stream=True)
