"""Helpers the tests share: providers pointed at the fake server, a short request, and the
installed console script."""

import sys
import time
from pathlib import Path

from failover_client import CompletionRequest, Message, ToolDefinition
from failover_client.providers import (
    AnthropicProvider,
    AzureOpenAIProvider,
    BedrockProvider,
    CohereProvider,
    GeminiProvider,
    OllamaProvider,
    OpenAIProvider,
    OpenAIResponsesProvider,
    VertexProvider,
)
from failover_client.testing._bedrock import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY

PROTOCOLS = {  # protocol name (as the fake server knows it) -> provider class, one line each
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "vertex": VertexProvider,  # Gemini models on Vertex AI (Claude on Vertex: tests/test_vertex_provider.py)
    "cohere": CohereProvider,
    "ollama": OllamaProvider,
    "azure": AzureOpenAIProvider,
    "bedrock": BedrockProvider,
    "responses": OpenAIResponsesProvider,  # OpenAI's Responses API
}

OPTIONS = {  # constructor arguments a protocol needs besides a key and a base URL
    "azure": {"api_version": "2024-10-21"},
    # an OAuth access token instead of an API key
    "vertex": {"api_key": None, "access_token": "ya29.fake-access-token-0123456789", "project": "test-project",
               "location": "us-central1"},
    # SigV4 with a key pair the fake server knows (api_key None: no bearer key as well)
    "bedrock": {"api_key": None, "region": "us-east-1", "aws_access_key_id": TEST_ACCESS_KEY_ID,
                "aws_secret_access_key": TEST_SECRET_ACCESS_KEY},
}


def provider_at(url, protocol, **options):
    """A provider of ``protocol`` whose base URL is ``url``, with the test credentials it needs."""
    options = {**OPTIONS.get(protocol, {}), **options}
    options.setdefault("api_key", "sk-test-key-0123456789")
    return PROTOCOLS[protocol](base_url=url, **options)


def make_provider(server, name, protocol, **options):
    """A provider of ``protocol`` talking to the fake server's route ``name``."""
    return provider_at(server.base_url(name, protocol), protocol, name=name, **options)


def ask(text="Hello", model="gpt-4o", **fields):
    return CompletionRequest(model=model, messages=[Message.user(text)], **fields)


WEATHER = ToolDefinition("get_weather", "Current weather", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def sent(server):
    """The last request the fake server received."""
    return server.requests[-1]


def console_script():
    """The ``failover-client`` script installed beside the interpreter running the tests.

    Never a PATH lookup: the README's test command runs ``.venv/bin/python`` without activating the
    venv, so PATH may hold nothing of ours, or an older install from somewhere else.
    """
    script = Path(sys.executable).parent / "failover-client"
    assert script.is_file(), f"no failover-client beside {sys.executable}: install the package (pip install -e .)"
    return str(script)


CUT_SLACK = 1.0  # seconds past a deadline that still count as "cut by it"


def assert_cut_by_deadline(started, deadline):
    """The call that started at ``started`` (time.monotonic) ended because ``deadline`` ran out.

    The faults these tests script would hold a call for 5 s or more, so ending within a second
    of the deadline proves the cut.  The promise itself (at most 10% + 50 ms late) is a timing
    figure: benchmarks/deadline_overshoot.py measures it, because on a busy machine scheduling
    alone can add hundreds of milliseconds to any wall-clock bound.
    """
    elapsed = time.monotonic() - started
    assert elapsed <= deadline + CUT_SLACK, f"{elapsed:.3f} s for a {deadline} s deadline"
