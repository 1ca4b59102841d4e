"""The README's promises held against a hostile or broken endpoint (issue 12), one section per
promise: bounded memory, a deadline over every byte, no foreign exception, validated usage, no
key in any output, bad configuration refused early.  The server is a raw socket
(tests/hostile_server.py) so it can send what no HTTP library would."""

import json
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from failover_client import (
    AllProvidersFailedError,
    CompletionRequest,
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    InvalidArgumentError,
    InvalidRequestError,
    Message,
    ProviderTimeoutError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    TextBlock,
    ToolChoice,
    ToolDefinition,
    collect,
)
from failover_client.providers import (
    AzureOpenAIProvider,
    BedrockProvider,
    CohereProvider,
    GeminiProvider,
    OllamaProvider,
    OpenAIProvider,
    VertexProvider,
)

from hostile_server import (
    HostileServer,
    Trickle,
    answer,
    chunked,
    close_delimited,
    endless,
    gzip_bomb,
)
from support import ask, make_provider

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
KEY = "gsk_Q7vW2xR9tLm4Np8Zc3Hb6Jd1Kf5Sg0Ty"  # a Groq-shaped key: no pattern knows it


@pytest.fixture
def hostile():
    server = HostileServer()
    yield server
    server.close()


def ok_chat(text="fine"):
    return json.dumps({"id": "c1", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1}}).encode()


def with_backup(primary, fake_provider, **config):
    backup = make_provider(fake_provider, "backup", "openai")
    return FailoverClient(FailoverConfig("primary", primary, [FallbackProvider("backup", backup)], **config))


# --- 1. memory is bounded ------------------------------------------------------------------

def aws_prelude(total):
    prelude = struct.pack(">II", total, 0)
    return prelude + struct.pack(">I", zlib.crc32(prelude))


def test_oversized_answers_are_refused_with_memory_bounded(hostile):
    """Each probe sends just past a default limit (64 MiB body, 16 MiB event) or forever; a
    child process faces them all and reports how far its peak RSS rose above a warm baseline."""
    over_body = 64 * MIB + MIB
    hostile.routes = {
        "warm": answer(body=ok_chat()),
        "length": close_delimited(endless(b"\0" * MIB), {"Content-Length": str(500 * MIB)}),
        "chunked": chunked(endless(b"x" * MIB)),
        "closing": close_delimited(endless(b"x" * MIB)),
        "gzip": chunked(gzip_bomb(over_body), {"Content-Encoding": "gzip"}),
        "sseline": chunked(endless(b"a" * MIB, prefix=b"data: "), {"Content-Type": "text/event-stream"}),
        "sseevent": chunked(endless(b"data: " + b"a" * 1024 + b"\n"), {"Content-Type": "text/event-stream"}),
        "ndjson": chunked(endless(b"a" * MIB, prefix=b'{"a":"')),
        "awsframe": chunked(endless(b"\0" * MIB, prefix=aws_prelude(20 * MIB))),
        "gzipsse": chunked(gzip_bomb(over_body, prefix=b"data: "), {"Content-Encoding": "gzip"}),
    }
    probes = ["length:openai:plain", "chunked:openai:plain", "closing:openai:plain", "gzip:openai:plain",
              "sseline:openai:stream", "sseevent:openai:stream", "ndjson:ollama:stream",
              "awsframe:bedrock:stream", "gzipsse:openai:stream"]
    run = subprocess.run([sys.executable, str(HERE / "memory_probe.py"), hostile.url, *probes],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["probe"] for r in results] == [p.split(":")[0] for p in probes]
    for result in results:
        assert result["outcome"] == "ResponseTooLargeError", result
        assert result["grew_mib"] < 100, result


def test_a_too_large_answer_fails_over_and_the_limit_is_per_provider(hostile, fake_provider):
    hostile.script = chunked(endless(b"x" * 65536))
    primary = OpenAIProvider(api_key=KEY, base_url=hostile.url, max_response_bytes=MIB, max_event_bytes=MIB)
    client = with_backup(primary, fake_provider)
    response = client.complete(ask())
    assert response.provider == "backup"
    assert response.attempts[0].error_type == "ResponseTooLargeError"
    with pytest.raises(ResponseTooLargeError, match="max_event_bytes"):
        collect(primary.complete_stream(ask()))
    with pytest.raises(InvalidArgumentError, match="max_response_bytes"):
        OpenAIProvider(api_key=KEY, max_response_bytes=0)


def test_error_bodies_keep_their_64_kib_cap(hostile):
    hostile.script = chunked(endless(b"x" * 65536), status=500)
    with pytest.raises(ResponseDecodeError.__mro__[1]) as caught:  # ProviderError
        OpenAIProvider(api_key=KEY, base_url=hostile.url).complete(ask(), timeout=10)
    assert type(caught.value).__name__ == "ServerError"
    assert len(caught.value.body) <= 500


# --- 2. the deadline covers every byte -------------------------------------------------------

@pytest.mark.parametrize("prefix", [
    b"",  # the status line itself, trickled
    b"HTTP/1.1 200 OK\r\nX-A: ",  # a header
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",  # the chunk-size line
], ids=["status-line", "headers", "chunk-size"])
@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_the_deadline_bounds_a_trickled_status_line_headers_and_chunk_size(hostile, prefix, mode):
    trickle = Trickle(b"HTTP/1.1 200 OK\r\nX-A: b\r\n" * 4 if not prefix else b"1" * 60, interval=0.1)

    def script(conn):
        conn.sendall(prefix)
        trickle(conn)

    hostile.script = script
    provider = OpenAIProvider(api_key=KEY, base_url=hostile.url)
    with pytest.raises(ProviderTimeoutError, match="deadline"):
        if mode == "plain":
            provider.complete(ask(), timeout=0.5)
        else:
            collect(provider.complete_stream(ask(), timeout=0.5))
    assert not trickle.finished.is_set()  # it gave up while the server was still trickling


# --- 3. no foreign exception; 4. usage counts validated ----------------------------------------

DEEP = b"[" * 100_000


@pytest.mark.parametrize("status", [200, 500])
def test_json_nested_beyond_the_recursion_limit_fails_over(hostile, fake_provider, status):
    hostile.script = answer(status, DEEP)
    response = with_backup(OpenAIProvider(api_key=KEY, base_url=hostile.url), fake_provider).complete(ask())
    assert response.provider == "backup" and response.text


def test_a_stream_event_nested_beyond_the_recursion_limit_is_a_decode_error(hostile):
    hostile.script = chunked(iter([b"data: " + DEEP + b"\n\n"]))
    with pytest.raises(ResponseDecodeError):
        collect(OpenAIProvider(api_key=KEY, base_url=hostile.url).complete_stream(ask()))


def chat_with(usage=None, content="fine"):
    return json.dumps({"id": "c", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage}).encode()


@pytest.mark.parametrize("body, field", [
    (chat_with({"prompt_tokens": "12"}), "usage.input_tokens"),
    (chat_with({"prompt_tokens": -1}), "usage.input_tokens"),
    (chat_with({"completion_tokens": 1e30}), "usage.output_tokens"),
    (b'{"id":"c","model":"m","choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}],'
     b'"usage":{"prompt_tokens":NaN}}', "usage.input_tokens"),
    (b'{"id":"c","model":"m","choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}],'
     b'"usage":{"prompt_tokens":Infinity}}', "usage.input_tokens"),
    (chat_with({"prompt_tokens": 2**53}), "usage.input_tokens"),
    (chat_with(content=42), "content"),
])
def test_malformed_fields_are_decode_errors_naming_provider_and_field(hostile, fake_provider, tmp_path, body,
                                                                      field):
    from failover_client import configure_logging

    handler = configure_logging(tmp_path / "calls.log")
    try:
        hostile.script = answer(body=body)
        primary = OpenAIProvider(api_key=KEY, base_url=hostile.url, name="hostile")
        with pytest.raises(ResponseDecodeError) as caught:
            primary.complete(ask())
        assert "hostile" in str(caught.value) and field in str(caught.value)
        response = with_backup(primary, fake_provider).complete(ask())  # the tracker, logs, cost never see it
        assert response.provider == "backup" and response.cost is not None or response.text
    finally:
        handler.close()


def test_malformed_usage_in_a_stream_and_cohere_infinity_are_decode_errors(hostile):
    hostile.script = chunked(iter([
        b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n',
        b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":NaN,"completion_tokens":1}}\n\n',
        b"data: [DONE]\n\n"]))
    with pytest.raises(ResponseDecodeError, match="usage.input_tokens"):
        collect(OpenAIProvider(api_key=KEY, base_url=hostile.url).complete_stream(ask()))
    hostile.script = answer(body=b'{"id":"c","finish_reason":"COMPLETE","message":{"role":"assistant","content":'
                                 b'[{"type":"text","text":"hi"}]},"usage":{"tokens":{"input_tokens":Infinity}}}')
    with pytest.raises(ResponseDecodeError):
        CohereProvider(api_key=KEY, base_url=hostile.url).complete(ask())


# --- 5. no key in any output -----------------------------------------------------------------

def every_form(exc):
    forms = [str(exc), repr(exc), *map(str, exc.args), pickle.dumps(exc).decode("latin-1")]
    forms += [str(getattr(exc, name, "")) for name in ("body", "request_id", "code", "message")]
    if isinstance(exc, AllProvidersFailedError):
        for attempt in exc.attempts:
            forms.append(str(attempt))
        forms += every_form(exc.__cause__) if exc.__cause__ is not None else []
    return forms


ECHOES = {
    "2xx non-JSON": answer(body=f"<html>your key {KEY} is fine</html>".encode()),
    "3xx location": answer(302, headers={"Location": f"https://elsewhere.example/login?k={KEY}"}),
    "in-stream error": chunked(iter([f'data: {{"error":{{"message":"bad key {KEY}","type":"server_error"}}}}\n\n'
                                     .encode()])),
    "request id": answer(500, b'{"error":{"message":"x"}}', {"x-request-id": KEY}),
    "error type": answer(500, b"{}", {"x-amzn-errortype": f"{KEY}:http://internal"}),
    "error body": answer(401, json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}}).encode()),
}


@pytest.mark.parametrize("echo", sorted(ECHOES))
def test_a_key_of_unknown_shape_echoed_back_appears_nowhere(hostile, tmp_path, echo):
    from failover_client import configure_logging

    log = tmp_path / "calls.log"
    handler = configure_logging(log)
    try:
        hostile.script = ECHOES[echo]
        provider = OpenAIProvider(api_key=KEY, base_url=hostile.url, name="groq")
        backup = OpenAIProvider(api_key=KEY, base_url=hostile.url, name="groq2")
        client = FailoverClient(FailoverConfig("groq", provider, [FallbackProvider("groq2", backup)]))
        with pytest.raises(Exception) as caught:
            if echo == "in-stream error":
                collect(client.complete_stream(ask()))
            else:
                client.complete(ask())
        assert isinstance(caught.value, AllProvidersFailedError) or caught.value.provider
        forms = every_form(caught.value)
        assert not [form for form in forms if KEY in form]
        assert any("[REDACTED]" in form for form in forms) or echo == "3xx location"
    finally:
        handler.close()
    assert KEY not in log.read_text()
    assert log.read_text()  # the attempts were logged


def test_every_secret_a_provider_holds_is_redacted_by_value(hostile):
    azure_key, aws_secret, aws_token = "3f9c2a1e8b7d4c6f0a5e9d2b1c8f7a6e", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE", \
        "IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJGMEQCIFAKESESSIONTOKEN"
    user_info = "user:pa55w0rd-in-the-url"
    echo_all = f"{azure_key} {aws_secret} {aws_token} pa55w0rd-in-the-url"
    hostile.script = answer(400, json.dumps({"error": {"message": echo_all}, "message": echo_all}).encode())
    azure = AzureOpenAIProvider(api_key=azure_key + "\n", azure_endpoint=hostile.url, api_version="2024-10-21",
                                deployment="d")
    bedrock = BedrockProvider(base_url=hostile.url, region="us-east-1", aws_access_key_id="AKIDEXAMPLE0000001",
                              aws_secret_access_key=aws_secret, aws_session_token=aws_token)
    userinfo = OpenAIProvider(api_key=KEY, base_url=hostile.url.replace("://", f"://{user_info}@"))
    assert "pa55w0rd" not in repr(userinfo)
    for provider in (azure, bedrock):
        with pytest.raises(InvalidRequestError) as caught:
            provider.complete(ask(model="anthropic.claude-3-haiku"))
        leaked = [form for form in every_form(caught.value)
                  for secret in (azure_key, aws_secret, aws_token) if secret in form]
        assert not leaked
    token = "opaque-rotating-token-abcdefghijklmnop"  # a bearer token fetched per request, of no known shape
    vertex = VertexProvider(token_provider=lambda: token, project="p", location="us-central1", base_url=hostile.url)
    hostile.script = answer(200, f"not json: {token}".encode())
    with pytest.raises(ResponseDecodeError) as caught:
        vertex.complete(ask(model="gemini-2.0-flash"))
    assert not [form for form in every_form(caught.value) if token in form]


# --- 6. bad configuration surfaces early ------------------------------------------------------

def test_a_key_read_with_its_newline_works_and_a_bad_key_is_named_without_showing_it(hostile):
    hostile.script = answer(body=ok_chat())
    assert OpenAIProvider(api_key=KEY + "\n", base_url=hostile.url).complete(ask()).text == "fine"
    assert f"Bearer {KEY}\r\n".encode() in hostile.requests[-1]
    for bad, problem in ((KEY[:10] + "\r\n" + KEY[10:], "control character"), (KEY + "é€", "latin-1")):
        with pytest.raises(InvalidArgumentError, match=problem) as caught:
            OpenAIProvider(api_key=bad, base_url=hostile.url, name="mine").complete(ask())
        assert "mine" in str(caught.value) and KEY[:10] not in str(caught.value)


def test_a_missing_ca_bundle_is_refused_at_construction():
    with pytest.raises(InvalidArgumentError, match="nonexistent"):
        OpenAIProvider(api_key=KEY, verify="/nonexistent/ca.pem")


@pytest.mark.parametrize("make", [
    lambda url: BedrockProvider(api_key=KEY, base_url=url, region="us-east-1"),
    lambda url: AzureOpenAIProvider(api_key=KEY, azure_endpoint=url, api_version="2024-10-21"),
    lambda url: GeminiProvider(api_key=KEY, base_url=url),
    lambda url: VertexProvider(access_token="ya29.token-0123456789abcdef", project="p", location="l",
                               base_url=url),
], ids=["bedrock", "azure", "gemini", "vertex"])
@pytest.mark.parametrize("model", [".", ".."])
def test_a_dot_segment_model_is_refused_before_sending(hostile, make, model):
    with pytest.raises(InvalidArgumentError, match="segment"):
        make(hostile.url).complete(ask(model=model))
    assert hostile.requests == []


@pytest.mark.parametrize("deployment", [".", ".."])
def test_a_dot_segment_deployment_is_refused_before_sending(hostile, deployment):
    azure = AzureOpenAIProvider(api_key=KEY, azure_endpoint=hostile.url, api_version="2024-10-21",
                                deployment=deployment)
    with pytest.raises(InvalidArgumentError, match="segment"):
        azure.complete(ask())
    assert hostile.requests == []


@pytest.mark.parametrize("fields, named", [
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"top_p": "x"}, "top_p"),
    ({"system": 123}, "system"),
    ({"tools": [{"name": "f"}]}, "tools[0]"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tools": [ToolDefinition("f", input_schema={"type": "string"})]}, "input_schema"),
    ({"tools": [ToolDefinition("")]}, "tools[0].name"),
    ({"tools": [ToolDefinition("f"), ToolDefinition("f")]}, "given twice"),
    ({"stop_sequences": "END"}, "stop_sequences"),
    ({"max_tokens": True}, "max_tokens"),
    ({"messages": [Message.user([TextBlock(None)])]}, "TextBlock.text"),
])
def test_malformed_request_fields_are_named_before_sending(hostile, fields, named):
    request = CompletionRequest(**{"model": "m", "messages": [Message.user("hi")], **fields})
    for provider in (OpenAIProvider(api_key=KEY, base_url=hostile.url), OllamaProvider(base_url=hostile.url)):
        with pytest.raises(InvalidArgumentError, match=named.replace("[", r"\[").replace("]", r"\]")):
            provider.complete(request)
    assert hostile.requests == []
    assert CompletionRequest("m", [Message.user("hi")], tool_choice=ToolChoice.auto()).validate() is None


def test_the_failover_config_constructor_checks_what_the_builder_checks(hostile):
    provider = OpenAIProvider(api_key=KEY, base_url=hostile.url)
    for bad in (
        lambda: FailoverConfig("p", provider, [FallbackProvider("p", provider)]),  # a duplicate name
        lambda: FailoverConfig("p", provider, [FallbackProvider("a", provider), FallbackProvider("a", provider)]),
        lambda: FailoverConfig("p", None),
        lambda: FailoverConfig("p", "openai"),
        lambda: FailoverConfig("p", provider, [FallbackProvider("b", None)]),
        lambda: FailoverConfig("p", provider, ["openai"]),
        lambda: FailoverConfig("p", provider, max_attempts=-1),
        lambda: FailoverConfig("p", provider, deadline=0),
        lambda: FailoverConfig("p", provider, triggers=frozenset({"rate_limit"})),
    ):
        with pytest.raises(InvalidArgumentError):
            bad()


@pytest.mark.parametrize("headers", [{"Retry-After": "-1"}, {"Retry-After": "nan"}, {"Retry-After": "-inf"},
                                     {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, {"retry-after-ms": "nan"}])
def test_an_unreadable_retry_after_gets_the_normal_back_off(hostile, headers):
    hostile.script = answer(429, b'{"error":{"message":"slow down"}}', headers)
    slept = []
    config = FailoverConfig("p", OpenAIProvider(api_key=KEY, base_url=hostile.url), primary_retries=2,
                            retry_policy=RetryPolicy(base_delay=0.01, jitter=False), sleep=slept.append)
    with pytest.raises(AllProvidersFailedError):
        FailoverClient(config).complete(ask())
    assert slept == [0.01, 0.02]
