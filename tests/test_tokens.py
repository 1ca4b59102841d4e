"""Token counting: OpenAI-family prompts counted locally (tiktoken's exact count by OpenAI's
published method, or a labelled estimate), Anthropic's own count endpoint, and
FailoverClient.count_tokens failing over like complete() does.

The exact counts are checked against the numbers OpenAI's cookbook ("How to count tokens with
tiktoken") reports from the real API for its example prompts.  tiktoken's encodings are not
downloaded (no test touches the internet): the test extra's ``quicktok-v1`` ships OpenAI's
vocabularies in its own binary layout, which is turned back into ``.tiktoken`` files here and
accepted only if they hash to the published SHA-256.
"""

import base64
import struct
import sys
from pathlib import Path

import pytest

from failover_client import (
    AllProvidersFailedError,
    CompletionRequest,
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    ImageBlock,
    InvalidArgumentError,
    InvalidRequestError,
    Message,
    Provider,
    RateLimitError,
    ResponseDecodeError,
    ResponseFormat,
    TextBlock,
    ThinkingConfig,
    TokenCountRequest,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    tokens,
)
from failover_client.testing import Fault, Reply

from support import make_provider

COOKBOOK_MESSAGES = [  # the cookbook's example, with the API's prompt_tokens: gpt-4o 124, gpt-4 129
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate "
                                  "jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch "
                                                          "base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to "
                                                               "do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                "deliverable."},
]
WEATHER = ToolDefinition("get_current_weather", "Get the current weather in a given location", {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "description": "The unit of temperature to return",
                 "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
})


def weather_prompt(model):
    """The cookbook's tool example (API prompt_tokens: gpt-4o 101, gpt-4 105) in our types."""
    return TokenCountRequest(model, [Message.user("What's the weather like in San Francisco?")],
                             system="You are a helpful assistant that can answer to questions about the weather.",
                             tools=[WEATHER])


@pytest.fixture(autouse=True)
def no_way_out(monkeypatch):
    """Any attempt to download (tiktoken uses requests) fails at once instead of reaching out;
    the local fake servers stay reachable (providers honour the proxy variables too)."""
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("no_proxy", raising=False)


def tiktoken_file(vocab: bytes) -> bytes:
    """quicktok's layout (u32 count, then per token: u16 length, bytes, u32 rank) as tiktoken's
    text format (``base64(bytes) rank`` per line)."""
    (count,) = struct.unpack_from("<I", vocab, 0)
    position, lines = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", vocab, position)
        token = vocab[position + 2: position + 2 + length]
        (rank,) = struct.unpack_from("<I", vocab, position + 2 + length)
        position += 6 + length
        lines.append(b"%s %d\n" % (base64.b64encode(token), rank))
    return b"".join(lines)


@pytest.fixture(scope="module")
def encoding_files():
    pytest.importorskip("tiktoken", reason="exact counts need the optional tiktoken package")
    quicktok = pytest.importorskip("quicktok", reason="the test extra's quicktok-v1 ships OpenAI's encodings")
    data = Path(quicktok.__file__).parent / "data"
    return {"o200k_base": tiktoken_file((data / "o200k.vocab").read_bytes()),
            "cl100k_base": tiktoken_file((data / "cl100k.vocab").read_bytes())}


@pytest.fixture
def tiktoken_cache(encoding_files, tmp_path, monkeypatch):
    """tiktoken's cache directory, holding both encodings (installed the way a user would)."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    for name, data in encoding_files.items():
        tokens.install_encoding(name, data)
    return tmp_path


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    return tmp_path


def openai(fake_provider):
    return make_provider(fake_provider, "p", "openai")


# --- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model, encoding", [
    ("gpt-4o", "o200k_base"), ("gpt-4o-mini-2024-07-18", "o200k_base"), ("chatgpt-4o-latest", "o200k_base"),
    ("gpt-4.1-nano", "o200k_base"), ("o1", "o200k_base"), ("o3-mini", "o200k_base"), ("o4-mini", "o200k_base"),
    ("gpt-5", "o200k_base"), ("openai/gpt-4o", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"), ("gpt-4-0613", "cl100k_base"),
    ("gpt-3.5-turbo", "cl100k_base"), ("gpt-35-turbo", "cl100k_base"),
    ("claude-sonnet-4-5", None), ("llama-3.3-70b", None), ("ollama", None), ("o1x", None),
])
def test_each_model_family_has_its_encoding(model, encoding):
    assert tokens.encoding_for_model(model) == encoding


def test_install_encoding_refuses_a_file_that_is_not_the_published_one(empty_cache):
    with pytest.raises(InvalidArgumentError, match="SHA-256 must be 446a9538"):
        tokens.install_encoding("o200k_base", b"aGk= 0\n")
    with pytest.raises(InvalidArgumentError, match="unknown encoding 'p50k_base'"):
        tokens.install_encoding("p50k_base", b"")
    assert list(empty_cache.iterdir()) == []


def test_install_encoding_needs_a_cache_when_tiktoken_has_none(monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    with pytest.raises(InvalidArgumentError, match="cache is switched off"):
        tokens.install_encoding("o200k_base", b"")


def test_install_encoding_reads_a_file(encoding_files, tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "cl100k_base.tiktoken"
    source.write_bytes(encoding_files["cl100k_base"])
    path = tokens.install_encoding("cl100k_base", source)
    assert path.parent == tmp_path / "cache" and path.read_bytes() == encoding_files["cl100k_base"]
    assert tokens.load_encoding("cl100k_base").name == "cl100k_base"


# --- exact counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("model, expected", [("gpt-4o", 124), ("gpt-4o-mini", 124), ("gpt-4", 129),
                                             ("gpt-3.5-turbo", 129)])
def test_messages_count_as_the_api_bills_them(tiktoken_cache, model, expected):
    result = tokens.count_chat_body({"model": model, "messages": COOKBOOK_MESSAGES}, provider="p")
    assert (result.input_tokens, result.exact, result.model, result.provider) == (expected, True, model, "p")


@pytest.mark.parametrize("model, expected", [("gpt-4o", 101), ("gpt-4o-mini", 101), ("gpt-4", 105),
                                             ("gpt-3.5-turbo", 105)])
def test_tools_count_as_the_api_bills_them(tiktoken_cache, fake_provider, model, expected):
    result = openai(fake_provider).count_tokens(weather_prompt(model))
    assert (result.input_tokens, result.exact, result.provider) == (expected, True, "p")
    assert fake_provider.requests == []  # counted locally


def test_a_completion_request_counts_like_its_prompt(tiktoken_cache, fake_provider):
    prompt = weather_prompt("gpt-4o")
    full = CompletionRequest("gpt-4o", prompt.messages, system=prompt.system, tools=prompt.tools, max_tokens=50,
                             temperature=0.2)
    assert openai(fake_provider).count_tokens(full).input_tokens == 101


def test_models_the_method_was_not_verified_for_are_counted_but_not_exact(tiktoken_cache):
    reasoning = tokens.count_chat_body({"model": "o3-mini", "messages": COOKBOOK_MESSAGES})
    other = tokens.count_chat_body({"model": "llama-3.3-70b", "messages": COOKBOOK_MESSAGES})
    assert (reasoning.input_tokens, reasoning.exact) == (124, False)  # o200k_base, framing unpublished
    assert (other.input_tokens, other.exact) == (124, False)  # not an OpenAI tokenizer at all


@pytest.mark.parametrize("extra, added", [
    ("image", tokens.IMAGE_TOKENS),
    ("tool history", None),
    ("nested schema", None),
    ("structured output", None),
])
def test_what_the_method_does_not_cover_is_estimated(tiktoken_cache, fake_provider, extra, added):
    provider = openai(fake_provider)
    plain = provider.count_tokens(TokenCountRequest("gpt-4o", [Message.user("Describe it")]))
    if extra == "image":
        request = TokenCountRequest("gpt-4o", [Message.user([TextBlock("Describe it"),
                                                             ImageBlock.from_url("https://example.com/a.png")])])
    elif extra == "tool history":
        request = TokenCountRequest("gpt-4o", [
            Message.user("Describe it"),
            Message.assistant([ToolUseBlock("call_1", "look", {"at": "it"})]),
            Message.tool_results([ToolResultBlock("call_1", "a cat")])])
    elif extra == "nested schema":
        request = TokenCountRequest("gpt-4o", [Message.user("Describe it")], tools=[ToolDefinition(
            "find", "Find things", {"type": "object", "properties": {
                "where": {"type": "object", "properties": {"city": {"type": "string"}}}}})])
    else:
        request = CompletionRequest("gpt-4o", [Message.user("Describe it")],
                                    response_format=ResponseFormat.json_schema({"type": "object"}))
    result = provider.count_tokens(request)
    assert plain.exact and not result.exact
    assert result.input_tokens > plain.input_tokens
    if added is not None:
        assert result.input_tokens >= plain.input_tokens + added


# --- estimates, and never the network ----------------------------------------------------------


def test_without_the_encoding_on_disk_it_estimates_and_downloads_nothing(empty_cache, fake_provider):
    pytest.importorskip("tiktoken")
    result = openai(fake_provider).count_tokens(weather_prompt("gpt-4o"))
    assert result.exact is False and result.input_tokens > 0
    assert list(empty_cache.iterdir()) == []  # tiktoken would have cached a download here


def test_a_damaged_encoding_file_is_left_alone_and_not_replaced(tiktoken_cache, fake_provider):
    cached = next(tiktoken_cache.iterdir())
    for path in tiktoken_cache.iterdir():
        path.write_bytes(b"damaged")
    result = openai(fake_provider).count_tokens(TokenCountRequest("gpt-4-0314", [Message.user("hi")]))
    assert result.exact is False
    assert cached.read_bytes() == b"damaged"  # tiktoken would delete it and download again


def test_without_tiktoken_it_estimates(tiktoken_cache, fake_provider, monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # as if the extra were not installed
    monkeypatch.setattr(tokens, "_encodings", {})
    result = openai(fake_provider).count_tokens(weather_prompt("gpt-3.5-turbo-0125"))
    assert result.exact is False and result.input_tokens > 0


@pytest.mark.parametrize("text, expected", [("", 0), ("abcd" * 10, 10), ("abcde", 2), ("こんにちは", 5),
                                            ("hi 世界", 3)])
def test_the_estimate_is_four_ascii_characters_or_one_other_per_token(text, expected):
    assert tokens.estimate_text_tokens(text) == expected


def test_the_estimate_counts_messages_and_tools(empty_cache):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "abcd" * 10}]}
    assert tokens.count_chat_body(body).input_tokens == 3 + 1 + 10 + 3  # framing, "user", text, priming
    tool = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}
    with_tool = tokens.count_chat_body({**body, "tools": [tool]}).input_tokens
    assert with_tool == 17 + 7 + 1 + 12  # + the function's framing, "f:d", the tool list's end


def test_bad_requests_are_refused_before_counting(fake_provider):
    provider = openai(fake_provider)
    with pytest.raises(InvalidArgumentError, match="TokenCountRequest or CompletionRequest"):
        provider.count_tokens({"model": "gpt-4o"})
    with pytest.raises(InvalidArgumentError, match="messages must hold at least one"):
        provider.count_tokens(TokenCountRequest("gpt-4o", []))


# --- Anthropic's count endpoint ----------------------------------------------------------------


def test_anthropic_counts_with_its_endpoint(fake_provider):
    fake_provider.script("a", Reply(usage={"input": 2095}))
    provider = make_provider(fake_provider, "a", "anthropic")
    request = TokenCountRequest("claude-sonnet-4-5", [Message.user("Hello")], system="Be brief", tools=[WEATHER],
                                thinking=ThinkingConfig(budget_tokens=2048))
    result = provider.count_tokens(request)
    assert (result.input_tokens, result.exact, result.model, result.provider) == (2095, True, "claude-sonnet-4-5", "a")
    sent = fake_provider.requests[-1]
    assert sent.path == "/a/v1/messages/count_tokens" and sent.step == "reply"
    assert sent.body["system"] == "Be brief" and sent.body["tools"][0]["name"] == "get_current_weather"
    assert sent.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "max_tokens" not in sent.body  # the endpoint refuses it


def test_anthropic_count_sends_only_what_the_endpoint_takes(fake_provider):
    fake_provider.script("a", Reply(usage={"input": 9}))
    full = CompletionRequest("claude-haiku-4-5", [Message.user("Hi")], max_tokens=100, temperature=0.5,
                             stop_sequences=["x"], metadata={"user_id": "u1"}, extra={"top_k": 3})
    assert make_provider(fake_provider, "a", "anthropic").count_tokens(full).input_tokens == 9
    assert set(fake_provider.requests[-1].body) == {"model", "messages"}


def test_anthropic_count_errors_are_provider_errors(fake_provider):
    provider = make_provider(fake_provider, "a", "anthropic")
    fake_provider.script("a", Fault.rate_limit(retry_after=3), Fault.status(400, message="bad model"),
                         Fault.status(200, body={"tokens": 3}))
    prompt = TokenCountRequest("claude-haiku-4-5", [Message.user("Hi")])
    with pytest.raises(RateLimitError) as limited:
        provider.count_tokens(prompt)
    assert limited.value.retry_after == 3
    with pytest.raises(InvalidRequestError, match="bad model"):
        provider.count_tokens(prompt)
    with pytest.raises(ResponseDecodeError, match="unexpected response shape"):
        provider.count_tokens(prompt)


# --- who supports it, and failover -------------------------------------------------------------


def test_supports_token_counting_tells_the_truth(fake_provider):
    counting = make_provider(fake_provider, "p", "openai")
    chain = FailoverConfig("p", counting)
    assert counting.supports_token_counting and make_provider(fake_provider, "a", "anthropic").supports_token_counting
    assert Provider().supports_token_counting is False
    assert FailoverClient(FailoverConfig("x", Provider())).supports_token_counting is False
    assert FailoverClient(chain).supports_token_counting is True


def failover(fake_provider, **mapping):
    config = FailoverConfig("anthropic", make_provider(fake_provider, "a", "anthropic"))
    fallback = FallbackProvider("openai", make_provider(fake_provider, "p", "openai"))
    for model, mapped in mapping.items():
        fallback.with_model_mapping(model, mapped)
    return FailoverClient(config.add_fallback(fallback))


def test_failover_client_counts_with_the_primary(fake_provider):
    fake_provider.script("a", Reply(usage={"input": 77}))
    result = failover(fake_provider).count_tokens(TokenCountRequest("claude-haiku-4-5", [Message.user("Hi")]))
    assert (result.input_tokens, result.exact, result.provider) == (77, True, "anthropic")


def test_failover_client_falls_back_on_its_triggers_with_the_model_mapped(tiktoken_cache, fake_provider):
    fake_provider.script("a", Fault.overloaded())
    client = failover(fake_provider, **{"claude-haiku-4-5": "gpt-4o"})
    result = client.count_tokens(weather_prompt("claude-haiku-4-5"))
    assert (result.input_tokens, result.exact, result.model, result.provider) == (101, True, "gpt-4o", "openai")
    assert [r.name for r in fake_provider.requests] == ["a"]


def test_failover_client_raises_at_once_when_no_trigger_matches(fake_provider):
    fake_provider.script("a", Fault.status(400, message="messages: Field required"))
    with pytest.raises(InvalidRequestError) as raised:
        failover(fake_provider).count_tokens(TokenCountRequest("claude-haiku-4-5", [Message.user("Hi")]))
    assert [(a.provider, a.error_type) for a in raised.value.attempts] == [("anthropic", "InvalidRequestError")]


def test_failover_client_passes_over_providers_that_cannot_count(fake_provider):
    config = FailoverConfig("none", Provider()).add_fallback(
        FallbackProvider("anthropic", make_provider(fake_provider, "a", "anthropic")))
    fake_provider.script("a", Reply(usage={"input": 5}))
    assert FailoverClient(config).count_tokens(TokenCountRequest("m", [Message.user("Hi")])).provider == "anthropic"
    with pytest.raises(AllProvidersFailedError) as failed:
        FailoverClient(FailoverConfig("none", Provider())).count_tokens(TokenCountRequest("m", [Message.user("Hi")]))
    assert [a.error_type for a in failed.value.attempts] == ["NotSupportedError"]
