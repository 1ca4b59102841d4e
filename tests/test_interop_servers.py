"""Our providers against real third-party OpenAI/Anthropic-compatible servers from PyPI.

The fake server in failover_client.testing is ours, so it can share our misreadings of a
protocol.  These tests start two independent mock servers written by others (``fakellm``, on
FastAPI/uvicorn, and ``mocktopus``, on aiohttp; both in the ``test`` extra, neither needs model
weights) as subprocesses on free 127.0.0.1 ports, send each exchange through the official SDK
and through ``CompletionRequest.from_openai``/``from_anthropic`` + our provider, and require the
same text, tool calls, stop reason and error class.  Each server starts once per module.

Their console scripts are taken from beside ``sys.executable``, never from PATH (CI runs the
venv's python with only system directories on PATH).
"""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import openai
import pytest

from failover_client import (
    AuthenticationError,
    CompletionRequest,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    StopReason,
    collect,
)
from failover_client.providers import AnthropicProvider, OpenAIProvider

KEY = "sk-test-key-0123456789"
START_TIMEOUT = 30.0  # seconds a server may take to accept connections (a cold import of FastAPI)

# A rule set both servers are given, each in its own configuration format: the last user message
# picks the answer.
GREETING = "hello"
WEATHER = "weather"
RATE_LIMIT = "rate limit"
BAD_REQUEST = "bad request"
UNAUTHORISED = "unauthorised"
BROKEN = "broken"
TOOL_CALL = ("get_weather", {"city": "Paris"})

FAKELLM_CONFIG = f"""\
version: 1
rules:
  - name: weather
    when: {{messages_contain: "{WEATHER}"}}
    respond:
      tool_calls: [{{name: {TOOL_CALL[0]}, arguments: {json.dumps(TOOL_CALL[1])}}}]
  - name: rate_limit
    when: {{messages_contain: "{RATE_LIMIT}"}}
    respond: {{status: 429, error: "Rate limit exceeded (mock)"}}
  - name: bad_request
    when: {{messages_contain: "{BAD_REQUEST}"}}
    respond: {{status: 400, error: "messages: malformed (mock)"}}
  - name: unauthorised
    when: {{messages_contain: "{UNAUTHORISED}"}}
    respond: {{status: 401, error: "invalid x-api-key (mock)"}}
  - name: broken
    when: {{messages_contain: "{BROKEN}"}}
    respond: {{status: 500, error: "internal error (mock)"}}
  - name: greeting
    when: {{messages_contain: "{GREETING}"}}
    respond: {{content: "Hi there, this is fakellm speaking."}}
"""

MOCKTOPUS_CONFIG = f"""\
version: 1
rules:
  - type: llm.openai
    when: {{messages_contains: "{WEATHER}"}}
    respond:
      content: null
      tool_calls:
        - id: call_mock_1
          type: function
          function: {{name: {TOOL_CALL[0]}, arguments: '{json.dumps(TOOL_CALL[1])}'}}
  - type: llm.openai
    when: {{messages_contains: "{RATE_LIMIT}"}}
    respond: {{error_type: rate_limit, message: "Rate limit exceeded (mock)", status_code: 429, retry_after: 1}}
  - type: llm.openai
    when: {{messages_contains: "{BAD_REQUEST}"}}
    respond: {{error_type: invalid_request, message: "messages: malformed (mock)", status_code: 400}}
  - type: llm.openai
    when: {{messages_contains: "{UNAUTHORISED}"}}
    respond: {{error_type: authentication, message: "Incorrect API key (mock)", status_code: 401}}
  - type: llm.openai
    when: {{messages_contains: "{BROKEN}"}}
    respond: {{error_type: server_error, message: "internal error (mock)", status_code: 500}}
  - type: llm.openai
    when: {{messages_contains: "{GREETING}"}}
    respond: {{content: "Hi there, this is mocktopus speaking."}}
"""


def script_beside_interpreter(name):
    script = Path(sys.executable).parent / name
    assert script.is_file(), f"no {name} beside {sys.executable}: pip install -e '.[test]'"
    return str(script)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(process, port, log):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on {port} within {START_TIMEOUT} s: {log.read_text()[-2000:]}")


def start(directory, command, config_name, config):
    """Start a server subprocess on a free port; yields its base URL (no ``/v1``)."""
    directory.mkdir()
    (directory / config_name).write_text(config)
    port = free_port()
    log = directory / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([part.format(port=port) for part in command], cwd=directory, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_listening(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Server:
    """What a server is, and which of its answers these tests may compare."""

    def __init__(self, name, command, config_name, config, anthropic_exchanges):
        self.name, self.command, self.config_name, self.config = name, command, config_name, config
        self.anthropic_exchanges = anthropic_exchanges


SERVERS = {
    "fakellm": Server("fakellm", ["fakellm", "serve", "--host", "127.0.0.1", "--port", "{port}",
                                  "--config", "fakellm.yaml"], "fakellm.yaml", FAKELLM_CONFIG,
                      anthropic_exchanges={"plain", "stream", "tool_call", "tool_call_stream", "error"}),
    # mocktopus answers Anthropic requests with text only: no tool calls, no errors, no streams
    "mocktopus": Server("mocktopus", ["mocktopus", "serve", "-s", "scenario.yaml", "-p", "{port}", "--host",
                                      "127.0.0.1"], "scenario.yaml", MOCKTOPUS_CONFIG,
                        anthropic_exchanges={"plain"}),
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request, tmp_path_factory):
    spec = SERVERS[request.param]
    command = [script_beside_interpreter(spec.command[0]), *spec.command[1:]]
    for url in start(tmp_path_factory.mktemp(spec.name) / "run", command, spec.config_name, spec.config):
        spec.url = url
        yield spec


# --- the two clients of each protocol --------------------------------------------------------

def openai_body(text, stream=False):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}],
            "tools": [{"type": "function", "function": {"name": TOOL_CALL[0], "description": "Weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}}}}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def anthropic_body(text, stream=False):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 256,
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
            "tools": [{"name": TOOL_CALL[0], "description": "Weather", "input_schema": {
                "type": "object", "properties": {"city": {"type": "string"}}}}]}
    if stream:
        body["stream"] = True
    return body


OPENAI_STOPS = {"stop": StopReason.END_TURN, "tool_calls": StopReason.TOOL_USE, "length": StopReason.MAX_TOKENS}


def sdk_openai(server, body):
    """(text, [(tool name, arguments)], our StopReason for its finish_reason) as the openai SDK reads them."""
    with openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0) as client:
        if not body.get("stream"):
            choice = client.chat.completions.create(**body).choices[0]
            calls = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or ()]
            return choice.message.content or "", calls, OPENAI_STOPS[choice.finish_reason]
        text, calls, finish = [], {}, None
        for chunk in client.chat.completions.create(**body):
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
                for call in choice.delta.tool_calls or ():
                    slot = calls.setdefault(call.index, ["", ""])
                    slot[0] += call.function.name or ""
                    slot[1] += call.function.arguments or ""
        return "".join(text), [(name, json.loads(args)) for name, args in calls.values()], OPENAI_STOPS[finish]


def sdk_anthropic(server, body):
    with anthropic.Anthropic(api_key=KEY, base_url=server.url, max_retries=0) as client:
        if body.get("stream"):
            params = {key: value for key, value in body.items() if key != "stream"}
            with client.messages.stream(**params) as stream:
                message = stream.get_final_message()
        else:
            message = client.messages.create(**body)
    text = "".join(block.text for block in message.content if block.type == "text")
    calls = [(block.name, block.input) for block in message.content if block.type == "tool_use"]
    return text, calls, StopReason(message.stop_reason)


def ours(server, protocol, body):
    """The same, through from_openai/from_anthropic and our provider."""
    if protocol == "openai":
        request = CompletionRequest.from_openai(body)
        provider = OpenAIProvider(api_key=KEY, base_url=f"{server.url}/v1", name=server.name)
    else:
        request = CompletionRequest.from_anthropic(body)
        provider = AnthropicProvider(api_key=KEY, base_url=server.url, name=server.name)
    with provider:
        answer = collect(provider.complete_stream(request)) if request.stream else provider.complete(request)
    assert answer.provider == server.name
    return answer.text, [(call.name, call.input) for call in answer.tool_calls], answer.stop_reason


CLIENTS = {"openai": (openai_body, sdk_openai), "anthropic": (anthropic_body, sdk_anthropic)}
EXCHANGES = {  # name -> (the user's message, stream?)
    "plain": (GREETING, False),
    "stream": (GREETING, True),
    "tool_call": (WEATHER, False),
    "tool_call_stream": (WEATHER, True),
}


def exchanges(protocol, server):
    if protocol == "anthropic":
        return sorted(set(EXCHANGES) & server.anthropic_exchanges)
    if server.name == "mocktopus":  # its OpenAI streams carry text only
        return ["plain", "stream", "tool_call"]
    return sorted(EXCHANGES)


@pytest.mark.parametrize("protocol", sorted(CLIENTS))
def test_answers_read_the_same_through_the_sdk_and_through_us(server, protocol):
    build, sdk = CLIENTS[protocol]
    compared = []
    for exchange in exchanges(protocol, server):
        text, stream = EXCHANGES[exchange]
        body = build(text, stream)
        expected = sdk(server, body)
        assert ours(server, protocol, body) == expected, exchange
        compared.append((exchange, expected))
    outcomes = dict(compared)
    assert "speaking" in outcomes["plain"][0] and outcomes["plain"][2] is StopReason.END_TURN
    if "tool_call" in outcomes:
        assert outcomes["tool_call"][1:] == ([TOOL_CALL], StopReason.TOOL_USE)


# --- errors: the SDK's class and ours name the same condition -------------------------------

OUR_CLASS = {  # the SDKs' exception classes (by name: both SDKs use these) -> ours
    "RateLimitError": RateLimitError,
    "BadRequestError": InvalidRequestError,
    "AuthenticationError": AuthenticationError,
    "InternalServerError": ServerError,
}
ERRORS = {RATE_LIMIT: 429, BAD_REQUEST: 400, UNAUTHORISED: 401, BROKEN: 500}


def sdk_error(server, protocol, body):
    if protocol == "openai":
        client = openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
        call, base = client.chat.completions.create, openai.APIStatusError
    else:
        client = anthropic.Anthropic(api_key=KEY, base_url=server.url, max_retries=0)
        call, base = client.messages.create, anthropic.APIStatusError
    with client, pytest.raises(base) as info:
        call(**body)
    return info.value


@pytest.mark.parametrize("trigger", sorted(ERRORS))
def test_an_error_is_the_same_class_through_the_sdk_and_through_us(server, trigger):
    protocols = [p for p in sorted(CLIENTS) if p == "openai" or "error" in server.anthropic_exchanges]
    for protocol in protocols:
        body = CLIENTS[protocol][0](trigger)
        expected = sdk_error(server, protocol, body)
        assert expected.status_code == ERRORS[trigger]
        with pytest.raises(OUR_CLASS[type(expected).__name__]) as info:
            ours(server, protocol, body)
        assert info.value.status == expected.status_code, protocol
        assert info.value.provider == server.name
        assert "(mock)" in str(info.value)  # the server's own message is kept
