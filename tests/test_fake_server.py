"""failover_client.testing: the fake provider speaks real wire formats and its faults really happen.

Everything here talks to the server over real sockets (requests, or a raw socket where the exact
bytes matter) and decodes what comes back the way a client would.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from failover_client.testing import FakeProviderServer, Fault, RecordedRequest, Reply, ToolCall
from failover_client.testing.pytest_plugin import fake_provider as fake_provider_fixture  # noqa: F401

WIRES = ["openai", "anthropic"]
OPENAI_HEADERS = {"Authorization": "Bearer sk-test"}
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
PARTIAL_ERRORS = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
CORPUS = Path(os.environ.get("FAILOVER_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus")


# --- client helpers --------------------------------------------------------------------------


def post(server, wire, name="default", *, stream=False, timeout=5.0, session=None, headers=None, **fields):
    """One chat request in `wire`'s format; `fields` extend the JSON body."""
    if wire == "openai":
        url = server.base_url(name, "openai") + "/chat/completions"
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        default_headers = OPENAI_HEADERS
    else:
        url = server.base_url(name, "anthropic") + "/v1/messages"
        body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
        default_headers = ANTHROPIC_HEADERS
    if stream:
        body["stream"] = True
    body.update(fields)
    sender = session or requests
    return sender.post(url, json=body, headers=headers or default_headers, timeout=timeout, stream=stream)


def sse(raw: bytes) -> list[tuple[str | None, str]]:
    """Decode an SSE body into (event name, data) pairs (protocols.md §0.1)."""
    events, name, data = [], None, []
    for line in raw.decode().split("\n"):
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    return events


def payloads(raw: bytes) -> list:
    """The JSON of every event except OpenAI's literal [DONE]."""
    return [json.loads(data) for _, data in sse(raw) if data != "[DONE]"]


def openai_stream(raw: bytes) -> dict:
    """Fold an OpenAI chunk stream the way a client does."""
    out = {"text": "", "refusal": "", "calls": {}, "finish": None, "usage": None, "roles": []}
    for chunk in payloads(raw):
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if "role" in delta:
                out["roles"].append(delta["role"])
            out["text"] += delta.get("content") or ""
            out["refusal"] += delta.get("refusal") or ""
            for call in delta.get("tool_calls") or []:
                slot = out["calls"].setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = call.get("function", {}).get("name") or slot["name"]
                slot["arguments"] += call["function"].get("arguments", "")
            out["finish"] = choice["finish_reason"] or out["finish"]
    return out


def anthropic_stream(raw: bytes) -> dict:
    """Fold an Anthropic event stream the way a client does."""
    out = {"blocks": [], "stop": None, "start_usage": None, "usage": None, "names": []}
    for name, data in sse(raw):
        event = json.loads(data)
        out["names"].append(name)
        assert event["type"] == name
        if name == "message_start":
            out["start_usage"] = event["message"]["usage"]
        elif name == "content_block_start":
            assert event["index"] == len(out["blocks"])
            out["blocks"].append({**event["content_block"], "partial": ""})
        elif name == "content_block_delta":
            block, delta = out["blocks"][event["index"]], event["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                block["text"] += delta["text"]
            elif kind == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] = delta["signature"]
            elif kind == "input_json_delta":
                block["partial"] += delta["partial_json"]
        elif name == "message_delta":
            out["stop"], out["usage"] = event["delta"]["stop_reason"], event["usage"]
    return out


def first_choice(response: requests.Response) -> dict:
    return response.json()["choices"][0]


def key_tree(value):
    """The keys of a JSON value, in order and nested, without the values."""
    if isinstance(value, dict):
        return [(key, key_tree(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [key_tree(item) for item in value[:1]]
    return None


def collapse(names):
    """Event names with runs of the same name folded into one."""
    return [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]


# --- fidelity to recorded traffic ------------------------------------------------------------


@pytest.mark.parametrize(("wire", "cassette", "index", "reply"), [
    ("openai", "openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml", 0,
     Reply(tool_calls=[ToolCall("get_capital", {"country": "UK"})])),
    ("openai", "openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml", 1,
     Reply(text="The capital of the UK is London.")),
    ("anthropic", "anthropic/llm-anthropic__test_prompt.yaml", 0, Reply(text="- Captain\n- Scoop")),
])
def test_streams_match_recorded_traffic(fake_provider, wire, cassette, index, reply):
    """Same event kinds, same order, same JSON keys in the same order as a real recording."""
    yaml = pytest.importorskip("yaml")
    if not (CORPUS / cassette).exists():
        pytest.skip(f"cassette corpus not found at {CORPUS}")
    recorded = yaml.safe_load((CORPUS / cassette).read_text())["interactions"][index]["response"]
    real = sse(recorded["body"]["string"].encode())
    fake_provider.script("default", reply)
    response = post(fake_provider, wire, stream=True, stream_options={"include_usage": True})
    ours = sse(response.content)
    real_headers = {name.lower(): values for name, values in recorded["headers"].items()}
    assert response.headers["content-type"] == real_headers["content-type"][0]
    assert collapse([name for name, _ in ours]) == collapse([name for name, _ in real])
    assert ours[-1][1] == real[-1][1] if wire == "openai" else ours[-1][0] == real[-1][0]

    def shapes(events):
        return [json.dumps(key_tree(json.loads(data))) for _, data in events if data != "[DONE]"]

    assert collapse(shapes(ours)) == collapse(shapes(real))


# --- OpenAI replies --------------------------------------------------------------------------


def test_openai_plain_reply_has_the_recorded_shape(fake_provider):
    fake_provider.script("default", Reply(text="Hello there"))
    response = post(fake_provider, "openai")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.text.startswith('{\n  "id": "chatcmpl-') and response.text.endswith("}\n")
    body = response.json()
    assert list(body) == ["id", "object", "created", "model", "choices", "usage", "service_tier",
                          "system_fingerprint"]
    assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there", "refusal": None, "annotations": []}
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 10 and body["usage"]["completion_tokens"] == 2
    assert body["usage"]["total_tokens"] == 12


def test_openai_plain_tool_calls_are_json_strings_with_generated_ids(fake_provider):
    fake_provider.script("default", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}),
                                                      ToolCall("get_time", {}, id="call_given")]))
    message = first_choice(post(fake_provider, "openai"))["message"]
    assert message["content"] is None
    first, second = message["tool_calls"]
    assert first["id"].startswith("call_") and len(first["id"]) == 29
    assert first["type"] == "function" and first["function"]["name"] == "get_weather"
    assert json.loads(first["function"]["arguments"]) == {"city": "Paris"}
    assert second["id"] == "call_given" and second["function"]["arguments"] == "{}"
    assert first_choice(post(fake_provider, "openai"))["finish_reason"] == "stop"  # default reply next
    fake_provider.script("default", Reply(tool_calls=[ToolCall("f", {})]))
    assert first_choice(post(fake_provider, "openai"))["finish_reason"] == "tool_calls"


def test_openai_usage_maps_cache_and_reasoning(fake_provider):
    usage = {"input": 100, "output": 40, "cache_read": 60, "cache_write": 10, "reasoning": 15}
    fake_provider.script("default", Reply(usage=usage))
    body = post(fake_provider, "openai").json()["usage"]
    assert body["prompt_tokens"] == 100 and body["completion_tokens"] == 40 and body["total_tokens"] == 140
    assert body["prompt_tokens_details"] == {"cached_tokens": 60, "audio_tokens": 0, "cache_write_tokens": 10}
    assert body["completion_tokens_details"]["reasoning_tokens"] == 15


def test_openai_stream_with_usage_chunk(fake_provider):
    fake_provider.script("default", Reply(text="Hello there friend"))
    response = post(fake_provider, "openai", stream=True, stream_options={"include_usage": True})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["transfer-encoding"] == "chunked"
    raw = response.content
    events = sse(raw)
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = payloads(raw)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [c["choices"][0]["delta"] for c in chunks[1:4]] == [
        {"content": "Hello"}, {"content": " there"}, {"content": " friend"}]
    assert chunks[4]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert all(c["usage"] is None for c in chunks[:-1])
    assert all(c["object"] == "chat.completion.chunk" and "obfuscation" in c for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert list(chunks[0])[:6] == ["id", "object", "created", "model", "service_tier", "system_fingerprint"]


def test_openai_stream_without_usage_option_sends_no_usage(fake_provider):
    raw = post(fake_provider, "openai", stream=True, stream_options={"include_obfuscation": False}).content
    chunks = payloads(raw)
    assert all("usage" not in c and "obfuscation" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    assert openai_stream(raw)["text"] == "Hello!" and sse(raw)[-1][1] == "[DONE]"


def test_openai_stream_tool_calls_arrive_as_fragments(fake_provider):
    calls = [ToolCall("get_capital", {"country": "United Kingdom"}), ToolCall("get_time", {"zone": "UTC"})]
    fake_provider.script("default", Reply(tool_calls=calls))
    raw = post(fake_provider, "openai", stream=True).content
    chunks = payloads(raw)
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None  # role chunk opens the first call
    assert first["tool_calls"][0]["function"] == {"name": "get_capital", "arguments": ""}
    fragments = [c for c in chunks if c["choices"][0]["delta"].get("tool_calls", [{}])[0].get("id") is None
                 and c["choices"][0]["delta"].get("tool_calls")]
    assert len(fragments) >= 4  # about three per call
    folded = openai_stream(raw)
    assert [json.loads(folded["calls"][i]["arguments"]) for i in (0, 1)] == [c.arguments for c in calls]
    assert folded["calls"][1]["name"] == "get_time" and folded["calls"][1]["id"].startswith("call_")
    assert folded["finish"] == "tool_calls" and folded["text"] == ""


def test_openai_refusal_plain_and_streamed(fake_provider):
    fake_provider.script("default", Reply(refusal="I can't help with that."), Reply(refusal="I can't help."))
    message = first_choice(post(fake_provider, "openai"))["message"]
    assert message["content"] is None and message["refusal"] == "I can't help with that."
    raw = post(fake_provider, "openai", stream=True).content
    assert payloads(raw)[0]["choices"][0]["delta"] == {"role": "assistant", "content": None, "refusal": ""}
    folded = openai_stream(raw)
    assert folded["refusal"] == "I can't help." and folded["text"] == "" and folded["finish"] == "stop"


def test_openai_ignores_thinking(fake_provider):
    fake_provider.script("default", Reply(text="4", thinking="2+2 is 4"))
    response = post(fake_provider, "openai")
    assert first_choice(response)["message"]["content"] == "4" and "2+2" not in response.text


# --- Anthropic replies -----------------------------------------------------------------------


def test_anthropic_plain_reply_has_the_recorded_shape(fake_provider):
    reply = Reply(text="It is sunny.", thinking="Check the weather.", signature="EuYDsig==",
                  tool_calls=[ToolCall("get_weather", {"city": "Paris"})])
    fake_provider.script("default", reply)
    response = post(fake_provider, "anthropic")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.headers["request-id"].startswith("req_")
    assert response.text.startswith('{"model":"claude-haiku-4-5","id":"msg_01')  # compact, model first
    body = response.json()
    assert list(body) == ["model", "id", "type", "role", "content", "stop_reason", "stop_sequence", "usage"]
    thinking, text, tool = body["content"]
    assert thinking == {"type": "thinking", "thinking": "Check the weather.", "signature": "EuYDsig=="}
    assert text == {"type": "text", "text": "It is sunny."}
    assert tool["type"] == "tool_use" and tool["id"].startswith("toolu_01") and tool["input"] == {"city": "Paris"}
    assert body["stop_reason"] == "tool_use" and body["stop_sequence"] is None
    assert body["usage"]["input_tokens"] == 10 and body["usage"]["output_tokens"] == 3


def test_anthropic_usage_excludes_cache_from_input(fake_provider):
    usage = {"input": 100, "output": 40, "cache_read": 60, "cache_write": 10, "reasoning": 15}
    fake_provider.script("default", Reply(usage=usage), Reply(usage=usage))
    body = post(fake_provider, "anthropic").json()["usage"]
    assert body["input_tokens"] == 30 and body["output_tokens"] == 40
    assert body["cache_read_input_tokens"] == 60 and body["cache_creation_input_tokens"] == 10
    assert body["cache_creation"] == {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 0}
    folded = anthropic_stream(post(fake_provider, "anthropic", stream=True).content)
    assert folded["start_usage"]["input_tokens"] == 30 and folded["start_usage"]["cache_read_input_tokens"] == 60
    assert folded["usage"] == {"input_tokens": 30, "cache_creation_input_tokens": 10,
                               "cache_read_input_tokens": 60, "output_tokens": 40}


def test_anthropic_stream_event_sequence(fake_provider):
    reply = Reply(text="It is sunny.", thinking="Check the weather first.", signature="sig123",
                  tool_calls=[ToolCall("get_weather", {"city": "Paris", "unit": "celsius"})])
    fake_provider.script("default", reply)
    response = post(fake_provider, "anthropic", stream=True)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    raw = response.content
    assert b'event: ping\ndata: {"type": "ping"}\n\n' in raw
    assert any(data.endswith(" ") for _, data in sse(raw))  # recorded servers pad data lines
    folded = anthropic_stream(raw)
    names = folded["names"]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 3
    thinking, text, tool = folded["blocks"]
    assert thinking["thinking"] == "Check the weather first." and thinking["signature"] == "sig123"
    assert text["text"] == "It is sunny."
    assert tool["name"] == "get_weather" and json.loads(tool["partial"]) == reply.tool_calls[0].arguments
    tool_deltas = [json.loads(d)["delta"] for n, d in sse(raw) if n == "content_block_delta"
                   and json.loads(d)["index"] == 2]
    assert tool_deltas[0]["partial_json"] == "" and len(tool_deltas) >= 3
    thinking_deltas = [json.loads(d)["delta"]["type"] for n, d in sse(raw)
                       if n == "content_block_delta" and json.loads(d)["index"] == 0]
    assert thinking_deltas[-1] == "signature_delta" and set(thinking_deltas[:-1]) == {"thinking_delta"}
    assert folded["stop"] == "tool_use" and folded["usage"]["output_tokens"] == 3
    assert folded["start_usage"]["output_tokens"] == 1


def test_anthropic_refusal_and_stop_sequence(fake_provider):
    fake_provider.script("default", Reply(refusal="I won't."), Reply(text="a", stop_reason="stop_sequence"))
    body = post(fake_provider, "anthropic").json()
    assert body["stop_reason"] == "refusal" and body["content"] == [{"type": "text", "text": "I won't."}]
    body = post(fake_provider, "anthropic", stop_sequences=["END"]).json()
    assert body["stop_reason"] == "stop_sequence" and body["stop_sequence"] == "END"


@pytest.mark.parametrize(("neutral", "openai", "anthropic"), [
    ("end_turn", "stop", "end_turn"),
    ("max_tokens", "length", "max_tokens"),
    ("stop_sequence", "stop", "stop_sequence"),
    ("tool_use", "tool_calls", "tool_use"),
    ("content_filter", "content_filter", "refusal"),
    ("refusal", "stop", "refusal"),
])
def test_stop_reasons_map_to_each_protocol(fake_provider, neutral, openai, anthropic):
    fake_provider.set_default("default", Reply(text="x", stop_reason=neutral))
    assert first_choice(post(fake_provider, "openai"))["finish_reason"] == openai
    assert openai_stream(post(fake_provider, "openai", stream=True).content)["finish"] == openai
    assert post(fake_provider, "anthropic").json()["stop_reason"] == anthropic
    assert anthropic_stream(post(fake_provider, "anthropic", stream=True).content)["stop"] == anthropic


@pytest.mark.parametrize("wire", WIRES)
def test_model_is_echoed_unless_the_reply_names_one(fake_provider, wire):
    fake_provider.script("default", Reply(), Reply(model="served-model-2025"))
    assert post(fake_provider, wire, model="asked-model").json()["model"] == "asked-model"
    assert post(fake_provider, wire, model="asked-model").json()["model"] == "served-model-2025"


def test_reply_headers_and_delay(fake_provider):
    fake_provider.script("default", Reply(headers={"x-custom": "yes"}, delay=0.3))
    started = time.monotonic()
    response = post(fake_provider, "openai")
    assert time.monotonic() - started >= 0.3 and response.headers["x-custom"] == "yes"


def test_reply_defaults_and_validation():
    assert Reply(text="Hello there  friend ").chunks == ("Hello", " there", "  friend ")
    assert Reply(chunks=["Hel", "lo"]).text == "Hello"
    assert Reply().text == "Hello!" and Reply(tool_calls=[ToolCall("f")]).text == ""
    assert Reply(tool_calls=[ToolCall("f")]).stop_reason == "tool_use"
    assert Reply(text="a b c").usage == {"input": 10, "output": 3, "cache_read": 0, "cache_write": 0,
                                         "reasoning": 0}
    with pytest.raises(ValueError):
        Reply(stop_reason="finished")
    with pytest.raises(ValueError):
        Reply(usage={"prompt": 3})
    with pytest.raises(ValueError):
        Reply(usage={"input": 5, "cache_read": 6})
    with pytest.raises(TypeError):
        ToolCall("f", arguments='{"a": 1}')
    with pytest.raises(ValueError):
        Fault("explode")


# --- faults: error responses -----------------------------------------------------------------


@pytest.mark.parametrize(("status", "error_type"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
    (404, "not_found_error"), (429, "rate_limit_error"), (500, "api_error"), (504, "timeout_error"),
    (529, "overloaded_error"),
])
def test_anthropic_status_fault_uses_the_type_for_the_status(fake_provider, status, error_type):
    fake_provider.script("default", Fault.status(status))
    response = post(fake_provider, "anthropic", stream=True)  # errors are JSON even for streams
    assert response.status_code == status and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type and body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"]


@pytest.mark.parametrize(("status", "error_type", "code"), [
    (400, "invalid_request_error", None), (401, "invalid_request_error", "invalid_api_key"),
    (404, "invalid_request_error", "model_not_found"), (500, "server_error", None),
    (502, "server_error", None),
])
def test_openai_status_fault_body(fake_provider, status, error_type, code):
    fake_provider.script("default", Fault.status(status))
    response = post(fake_provider, "openai", stream=True)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.text.startswith('{\n    "error": {\n') and response.text.endswith("}\n")
    error = response.json()["error"]
    assert list(error) == ["message", "type", "param", "code"]
    assert error["type"] == error_type and error["code"] == code and error["message"]


@pytest.mark.parametrize("wire", WIRES)
def test_status_fault_overrides(fake_provider, wire):
    fake_provider.script(
        "default",
        Fault.status(400, error_type="custom_error", message="nope", error_code="bad_thing",
                     headers={"x-should-retry": "false"}),
        Fault.status(503, body="upstream unavailable"),
        Fault.status(418, body={"detail": "teapot"}),
    )
    response = post(fake_provider, wire)
    assert response.status_code == 400 and response.headers["x-should-retry"] == "false"
    assert "custom_error" in response.text and "nope" in response.text
    assert ("bad_thing" in response.text) == (wire == "openai")
    response = post(fake_provider, wire)
    assert response.status_code == 503 and response.content == b"upstream unavailable"
    response = post(fake_provider, wire)
    assert response.status_code == 418 and response.json() == {"detail": "teapot"}


@pytest.mark.parametrize("wire", WIRES)
def test_rate_limit_headers_and_body(fake_provider, wire):
    fake_provider.script(
        "default",
        Fault.rate_limit(retry_after=1),
        Fault.rate_limit(retry_after="Wed, 21 Oct 2026 07:28:00 GMT", retry_after_ms=1500),
        Fault.rate_limit(),
    )
    first = post(fake_provider, wire)
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert "retry-after-ms" not in first.headers
    second = post(fake_provider, wire, stream=True)
    assert second.status_code == 429 and second.headers["retry-after"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert second.headers["retry-after-ms"] == "1500"
    third = post(fake_provider, wire)
    assert third.status_code == 429 and "retry-after" not in third.headers
    if wire == "openai":
        error = first.json()["error"]
        assert error["code"] == "rate_limit_exceeded" and "Rate limit reached for gpt-4o-mini" in error["message"]
    else:
        assert first.json()["error"]["type"] == "rate_limit_error"


def test_overloaded_context_length_and_content_filter(fake_provider):
    steps = (Fault.overloaded(), Fault.context_length(), Fault.content_filter())
    fake_provider.script("default", *steps, *steps)
    overloaded, context, content = (post(fake_provider, "anthropic") for _ in steps)
    assert overloaded.status_code == 529 and overloaded.json()["error"] == {"type": "overloaded_error",
                                                                           "message": "Overloaded"}
    assert context.status_code == 400
    assert context.json()["error"]["message"] == "prompt is too long: 210000 tokens > 200000 maximum"
    assert content.status_code == 400 and "content filtering policy" in content.json()["error"]["message"]
    overloaded, context, content = (post(fake_provider, "openai") for _ in steps)
    assert overloaded.status_code == 503 and overloaded.json()["error"]["type"] == "server_error"
    error = context.json()["error"]
    assert context.status_code == 400 and error["code"] == "context_length_exceeded"
    assert error["message"].startswith("This model's maximum context length is")
    error = content.json()["error"]
    assert content.status_code == 400 and error["code"] == "content_filter"
    assert "content management policy" in error["message"]


@pytest.mark.parametrize("wire", WIRES)
def test_html_error_page(fake_provider, wire):
    fake_provider.script("default", Fault.html_error(), Fault.html_error(503))
    response = post(fake_provider, wire)
    assert response.status_code == 502 and response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>") and "502 Bad Gateway" in response.text
    with pytest.raises(ValueError):
        response.json()
    assert "503 Service Unavailable" in post(fake_provider, wire, stream=True).text


# --- faults: broken connections, stalls and slow streams -------------------------------------


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("stream", [False, True])
def test_reset_before_headers(fake_provider, wire, stream):
    fake_provider.script("default", Fault.reset_before_headers())
    with pytest.raises(requests.ConnectionError):
        post(fake_provider, wire, stream=stream)
    assert fake_provider.requests[0].step == "reset_before_headers"
    assert post(fake_provider, wire).status_code == 200  # the server itself is fine


@pytest.mark.parametrize("wire", WIRES)
def test_reset_mid_body(fake_provider, wire):
    fake_provider.script("default", Fault.reset_mid_body(after_events=2), Fault.reset_mid_body())
    response = post(fake_provider, wire, stream=True)
    assert response.status_code == 200
    received = b""
    with pytest.raises(PARTIAL_ERRORS):
        for piece in response.iter_content(None):
            received += piece
    assert len(sse(received)) == 2
    with pytest.raises(PARTIAL_ERRORS):
        post(fake_provider, wire)


@pytest.mark.parametrize("wire", WIRES)
def test_stall_before_headers_times_out_a_short_read_timeout(fake_provider, wire):
    fake_provider.script("default", Fault.stall_before_headers(1.0), Fault.stall_before_headers(0.3))
    with pytest.raises(requests.ReadTimeout):
        post(fake_provider, wire, timeout=(2, 0.25))
    started = time.monotonic()
    response = post(fake_provider, wire, stream=True)
    assert time.monotonic() - started >= 0.3 and response.status_code == 200
    assert len(sse(response.content)) > 3


@pytest.mark.parametrize("wire", WIRES)
def test_stall_mid_stream(fake_provider, wire):
    fake_provider.script("default", Fault.stall_mid_stream(after_events=2, seconds=1.0),
                         Fault.stall_mid_stream(after_events=2, seconds=0.3))
    response = post(fake_provider, wire, stream=True, timeout=(2, 0.25))
    assert response.status_code == 200
    received = b""
    with pytest.raises(requests.ConnectionError):  # requests' name for a read timeout mid-body
        for piece in response.iter_content(None):
            received += piece
    assert len(sse(received)) == 2
    started = time.monotonic()
    raw = post(fake_provider, wire, stream=True).content
    assert time.monotonic() - started >= 0.3
    text = openai_stream(raw)["text"] if wire == "openai" else anthropic_stream(raw)["blocks"][0]["text"]
    assert text == "Hello!"


@pytest.mark.parametrize("wire", WIRES)
def test_trickle_spaces_stream_events(fake_provider, wire):
    interval = 0.05
    fake_provider.script("default", Fault.trickle(interval, reply=Reply(text="one two three")))
    response = post(fake_provider, wire, stream=True)
    arrivals, received = [], b""
    for piece in response.iter_content(None):
        arrivals.append(time.monotonic())
        received += piece
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert len(arrivals) == len(sse(received)) >= 6  # one event per chunk
    assert min(gaps) >= interval * 0.8
    folded = openai_stream(received) if wire == "openai" else anthropic_stream(received)["blocks"][0]
    assert folded["text"] == "one two three"


@pytest.mark.parametrize("wire", WIRES)
def test_trickle_plain_body_in_slices(fake_provider, wire):
    fake_provider.script("default", Fault.trickle(0.01))
    started = time.monotonic()
    response = post(fake_provider, wire)
    slices = -(-len(response.content) // 16)
    assert time.monotonic() - started >= (slices - 1) * 0.01
    assert response.status_code == 200 and "Hello!" in response.text and response.json()


@pytest.mark.parametrize("wire", WIRES)
def test_truncated_stream_has_no_terminal_event(fake_provider, wire):
    fake_provider.script("default", Fault.truncated_stream(after_events=3), Fault.truncated_stream(after_events=99),
                         Fault.truncated_stream())
    raw = post(fake_provider, wire, stream=True).content  # a clean end: no exception
    assert len(sse(raw)) == 3
    raw = post(fake_provider, wire, stream=True).content
    last = sse(raw)[-1]
    if wire == "openai":
        assert last[1] != "[DONE]" and json.loads(last[1])["choices"][0]["finish_reason"] == "stop"
    else:
        assert last[0] == "message_delta" and "message_stop" not in raw.decode()
    body = post(fake_provider, wire).json()
    assert (body["choices"][0]["finish_reason"] if wire == "openai" else body["stop_reason"]) is None


@pytest.mark.parametrize("wire", WIRES)
def test_malformed_json(fake_provider, wire):
    fake_provider.script("default", Fault.malformed_json(), Fault.malformed_json())
    response = post(fake_provider, wire)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(response.content)
    events = sse(post(fake_provider, wire, stream=True).content)
    assert len(events) == 2
    json.loads(events[0][1])
    with pytest.raises(ValueError):
        json.loads(events[1][1])


@pytest.mark.parametrize("wire", WIRES)
def test_stream_error_event(fake_provider, wire):
    fake_provider.script(
        "default",
        Fault.stream_error_event(after_events=2),
        Fault.stream_error_event(),
        Fault.stream_error_event(error_type="api_error", message="Internal server error"),
    )
    response = post(fake_provider, wire, stream=True)
    assert response.status_code == 200
    events = sse(response.content)
    assert len(events) == 3
    name, data = events[-1]
    if wire == "openai":
        assert name is None and json.loads(data)["error"]["type"] == "server_error"
        assert json.loads(data)["error"]["message"] == "Overloaded"
    else:
        assert name == "error"
        assert json.loads(data)["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    plain = post(fake_provider, wire)  # a plain request gets the matching status error
    assert plain.status_code == (503 if wire == "openai" else 529)
    assert post(fake_provider, wire).status_code == 500


@pytest.mark.parametrize("wire", WIRES)
def test_empty_200(fake_provider, wire):
    fake_provider.script("default", Fault.empty_200(), Fault.empty_200())
    response = post(fake_provider, wire)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == "application/json"
    response = post(fake_provider, wire, stream=True)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"].startswith("text/event-stream")


# --- validation like the real APIs -----------------------------------------------------------


def test_openai_validation_errors(fake_provider):
    fake_provider.script("default", Fault.status(500))
    missing_key = post(fake_provider, "openai", headers={"Authorization": "Bearer "})
    assert missing_key.status_code == 401 and "didn't provide an API key" in missing_key.json()["error"]["message"]
    assert post(fake_provider, "openai", model="").status_code == 400
    empty = post(fake_provider, "openai", messages=[])
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_array"
    url = fake_provider.base_url("default", "openai") + "/chat/completions"
    bad_json = requests.post(url, data=b"{not json", headers=OPENAI_HEADERS, timeout=5)
    assert bad_json.status_code == 400 and "could not parse the JSON body" in bad_json.json()["error"]["message"]
    no_messages = requests.post(url, json={"model": "m"}, headers=OPENAI_HEADERS, timeout=5)
    assert no_messages.json()["error"]["param"] == "messages"
    assert post(fake_provider, "openai").status_code == 500  # rejected requests used no script step
    assert [r.step for r in fake_provider.requests] == ["rejected:401"] + ["rejected:400"] * 4 + ["status:500"]


def test_anthropic_validation_errors(fake_provider):
    no_key = post(fake_provider, "anthropic", headers={"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    no_version = post(fake_provider, "anthropic", headers={"x-api-key": "k"})
    assert no_version.status_code == 400 and "anthropic-version" in no_version.json()["error"]["message"]
    bearer = post(fake_provider, "anthropic", headers={"Authorization": "Bearer t", "anthropic-version": "1"})
    assert bearer.status_code == 200
    url = fake_provider.base_url("default", "anthropic") + "/v1/messages"
    for missing in ("model", "max_tokens", "messages"):
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        del body[missing]
        response = requests.post(url, json=body, headers=ANTHROPIC_HEADERS, timeout=5)
        assert response.status_code == 400 and response.json()["error"]["message"] == f"{missing}: Field required"
    assert requests.post(url, data=b"[1, 2", headers=ANTHROPIC_HEADERS, timeout=5).status_code == 400


@pytest.mark.parametrize("wire", WIRES)
def test_require_key(fake_provider, wire):
    fake_provider.require_key("primary", "sk-test-123")

    def key(value):
        if wire == "openai":
            return {"Authorization": f"Bearer {value}"}
        return {"x-api-key": value, "anthropic-version": "2023-06-01"}

    wrong = post(fake_provider, wire, "primary", headers=key("sk-wrong-456789"))
    assert wrong.status_code == 401
    if wire == "openai":
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        assert wrong.json()["error"]["message"].startswith("Incorrect API key provided: sk-*****6789.")
    else:
        assert wrong.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert post(fake_provider, wire, "primary", headers=key("sk-test-123")).status_code == 200
    assert post(fake_provider, wire, "other").status_code == 200  # other names take any key


# --- routing, scripts and the request log ----------------------------------------------------


def test_routing_and_urls(fake_provider):
    url = fake_provider.url
    assert url.startswith("http://127.0.0.1:") and int(url.rsplit(":", 1)[1]) == fake_provider.port
    assert fake_provider.base_url("primary", "openai") == f"{url}/primary/v1"
    assert fake_provider.base_url("backup", "anthropic") == f"{url}/backup"
    with pytest.raises(ValueError):
        fake_provider.base_url("primary", "gopher")
    with pytest.raises(ValueError):
        fake_provider.script("a/b", Reply())
    with pytest.raises(TypeError):
        fake_provider.script("a", "hello")
    for path in ("/v1/completions", "/a/b/v1/messages", "/primary/v1/chat"):
        response = requests.post(url + path, json={}, headers=OPENAI_HEADERS, timeout=5)
        assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_url"
    assert requests.get(url + "/v1/chat/completions", timeout=5).status_code == 404
    assert requests.post(url + "/v1/chat/completions", json={"model": "m", "messages": [{}]},
                         headers=OPENAI_HEADERS, timeout=5).status_code == 200
    assert [(r.name, r.protocol) for r in fake_provider.requests] == [("default", "openai")]


def test_scripts_are_fifo_per_name_and_independent(fake_provider):
    fake_provider.script("a", Reply(text="a1"), Fault.status(500))
    fake_provider.script("a", Reply(text="a3"))
    fake_provider.script("b", Reply(text="b1"))
    fake_provider.set_default("b", Fault.overloaded())

    def answer(wire, name):
        response = post(fake_provider, wire, name)
        if response.status_code != 200:
            return response.status_code
        if wire == "openai":
            return first_choice(response)["message"]["content"]
        return response.json()["content"][0]["text"]

    seen = [answer("openai", "a"), answer("anthropic", "b"), answer("anthropic", "a"), answer("openai", "b"),
            answer("openai", "a"), answer("anthropic", "a"), answer("anthropic", "b")]
    assert seen == ["a1", "b1", 500, 503, "a3", "Hello!", 529]
    assert [r.step for r in fake_provider.requests_for("b")] == ["reply", "overloaded", "overloaded"]
    fake_provider.reset()
    assert fake_provider.requests == []
    assert answer("openai", "b") == "Hello!"


def test_partial_faults_use_the_default_reply(fake_provider):
    fake_provider.set_default("p", Reply(text="from default"))
    fake_provider.script("p", Fault.stall_before_headers(0.01), Fault.truncated_stream(after_events=99))
    assert first_choice(post(fake_provider, "openai", "p"))["message"]["content"] == "from default"
    assert openai_stream(post(fake_provider, "openai", "p", stream=True).content)["text"] == "from default"


def test_request_log_records_everything(fake_provider):
    url = fake_provider.base_url("primary", "openai") + "/chat/completions?api-version=2024-10-21"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    requests.post(url, json=body, headers={**OPENAI_HEADERS, "X-Custom-Header": "Value"}, timeout=5).close()
    fake_provider.script("backup", Fault.rate_limit())
    post(fake_provider, "anthropic", "backup")
    first, second = fake_provider.requests
    assert isinstance(first, RecordedRequest)
    assert (first.name, first.protocol, first.method, first.path) == (
        "primary", "openai", "POST", "/primary/v1/chat/completions")
    assert first.query == {"api-version": "2024-10-21"}
    assert first.headers["x-custom-header"] == "Value" and first.headers["authorization"] == "Bearer sk-test"
    assert first.body == body and json.loads(first.raw_body) == body
    assert first.stream is True and first.step == "reply"
    assert (second.name, second.protocol, second.step, second.stream) == ("backup", "anthropic", "rate_limit", False)
    assert second.headers["anthropic-version"] == "2023-06-01"
    assert fake_provider.requests_for("backup") == [second]
    with pytest.raises(AttributeError):
        first.name = "x"  # frozen


def raw_request(stream: bool) -> bytes:
    """An OpenAI request as bytes, for tests that need to see the socket itself."""
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer k\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.mark.parametrize("fault", [Fault.reset_before_headers(), Fault.reset_mid_body()])
def test_resets_are_tcp_resets_not_clean_closes(fake_provider, fault):
    fake_provider.script("default", fault)
    with socket.create_connection(("127.0.0.1", fake_provider.port), timeout=5) as sock:
        sock.sendall(raw_request(stream=True))
        with pytest.raises(ConnectionResetError):
            while sock.recv(65536):  # a FIN would end this loop quietly
                pass


def test_raw_http_framing_and_keep_alive(fake_provider):
    """Two requests on one socket: exact status line, chunked framing, one SSE event per chunk."""
    request = raw_request(stream=True)
    with socket.create_connection(("127.0.0.1", fake_provider.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        for _ in range(2):
            sock.sendall(request)
            assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            assert headers["transfer-encoding"] == "chunked" and headers["connection"] == "keep-alive"
            chunks = []
            while size := int(reader.readline(), 16):
                chunks.append(reader.read(size))
                assert reader.read(2) == b"\r\n"
            assert reader.read(2) == b"\r\n"
            assert chunks[0].startswith(b'data: {"id":"chatcmpl-') and chunks[-1] == b"data: [DONE]\n\n"
            assert all(c.endswith(b"\n\n") and c.count(b"\n\n") == 1 for c in chunks)
    assert len(fake_provider.requests) == 2


# --- concurrency and shutdown ----------------------------------------------------------------


def test_many_concurrent_keep_alive_clients(fake_provider):
    failures, lock = [], threading.Lock()

    def client(index):
        wire = WIRES[index % 2]
        with requests.Session() as session:
            for i in range(20):
                response = post(fake_provider, wire, f"client{index}", session=session, stream=i % 4 == 0)
                text = response.content
                if response.status_code != 200 or b"Hello" not in text:
                    with lock:
                        failures.append((index, i, response.status_code))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert len(fake_provider.requests) == 64 * 20
    assert {len(fake_provider.requests_for(f"client{i}")) for i in range(64)} == {20}


def test_stop_ends_a_stall_at_once_and_leaves_no_threads():
    before = threading.active_count()
    server = FakeProviderServer().start()
    server.script("default", Fault.stall_before_headers(30))
    outcome = []

    def stalled_client():
        try:
            post(server, "openai", timeout=30)
            outcome.append("answered")
        except requests.ConnectionError:
            outcome.append("dropped")

    client = threading.Thread(target=stalled_client)
    client.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    idle = requests.Session()  # leaves an idle keep-alive connection open on the server
    assert post(server, "anthropic", session=idle).status_code == 200
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    client.join(5)
    idle.close()
    assert outcome == ["dropped"]
    assert threading.active_count() == before
    with pytest.raises(requests.ConnectionError):
        post(server, "openai", timeout=1)
    server.stop()  # idempotent


def test_context_manager_and_fixture(fake_provider):
    assert post(fake_provider, "openai").status_code == 200
    with FakeProviderServer() as server:
        port = server.port
        assert post(server, "anthropic").status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://127.0.0.1:{port}/v1/messages", json={}, timeout=1)
    with pytest.raises(RuntimeError):
        server.start()
