"""The response cache: keys that change with every field that changes the answer, hits with a
"cache" attempt and zero cost, streams replayed, only whole answers stored, sampled answers only
when asked, hit/miss counts, a corrupt entry replaced, and a real redis-server shared by two
processes (one stores, the other hits) — and Redis down means uncached calls with one warning."""

import dataclasses
import logging
import subprocess
import sys
import textwrap

import pytest

from failover_client import (
    CompletionRequest,
    EmbeddingRequest,
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    InvalidRequestError,
    Message,
    ResponseFormat,
    StreamInterruptedError,
    TextBlock,
    ThinkingConfig,
    ToolChoice,
    UsageTracker,
    collect,
)
from failover_client.cache import MemoryCache, RedisCache, cache_key
from failover_client.errors import InvalidArgumentError
from failover_client.testing import Fault, Reply, ToolCall

from support import WEATHER, make_provider

CHAIN = [("primary", "gpt-4o"), ("backup", "claude-sonnet-4-5")]


def cached_client(server, cache, **options):
    primary = make_provider(server, "primary", "openai")
    config = FailoverConfig("primary", primary).with_cache(cache, **options)
    config.add_fallback(FallbackProvider("backup", make_provider(server, "backup", "openai")))
    return FailoverClient(config)


def ask(text="Hello", **fields):
    return CompletionRequest("gpt-4o", [Message.user(text)], **fields)


# --- the key -----------------------------------------------------------------------------------

BASE = CompletionRequest("gpt-4o", [Message.user("hi")])
CHANGED = {  # every field of CompletionRequest but stream, changed
    "model": "gpt-4o-mini",
    "messages": [Message.user("hi!")],
    "system": "be brief",
    "max_tokens": 10,
    "temperature": 0.0,
    "top_p": 0.5,
    "stop_sequences": ["\n"],
    "tools": [WEATHER],
    "tool_choice": ToolChoice.auto(),
    "thinking": ThinkingConfig(budget_tokens=1024),
    "response_format": ResponseFormat.json(),
    "metadata": {"user": "u1"},
    "extra": {"seed": 7},
}


def test_the_table_covers_every_field():
    assert set(CHANGED) | {"stream"} == {f.name for f in dataclasses.fields(CompletionRequest)}


@pytest.mark.parametrize("field", CHANGED)
def test_every_request_field_changes_the_key(field):
    assert cache_key(dataclasses.replace(BASE, **{field: CHANGED[field]}), CHAIN) != cache_key(BASE, CHAIN)


@pytest.mark.parametrize("changed", [
    dataclasses.replace(WEATHER, input_schema={**WEATHER.input_schema, "required": []}),  # a tool schema
    dataclasses.replace(WEATHER, description="Weather now"),
])
def test_tool_schemas_are_part_of_the_key(changed):
    assert cache_key(dataclasses.replace(BASE, tools=[changed]), CHAIN) != cache_key(
        dataclasses.replace(BASE, tools=[WEATHER]), CHAIN)


def test_the_chain_mapping_is_part_of_the_key_and_stream_is_not():
    assert cache_key(BASE, [("primary", "gpt-4o"), ("backup", "claude-opus")]) != cache_key(BASE, CHAIN)
    assert cache_key(dataclasses.replace(BASE, stream=True), CHAIN) == cache_key(BASE, CHAIN)
    assert cache_key(BASE, CHAIN) == cache_key(CompletionRequest("gpt-4o", [Message.user("hi")]), CHAIN)


@pytest.mark.parametrize("field, value", [("model", "m2"), ("inputs", ["a", "c"]), ("dimensions", 8),
                                          ("input_type", "query"), ("truncate", True), ("extra", {"x": 1})])
def test_every_embedding_field_changes_the_key(field, value):
    base = EmbeddingRequest("m", ["a", "b"])
    assert cache_key(dataclasses.replace(base, **{field: value}), CHAIN) != cache_key(base, CHAIN)


def test_a_request_and_an_embedding_request_never_share_a_key():
    assert cache_key(EmbeddingRequest("gpt-4o", ["hi"]), CHAIN) != cache_key(BASE, CHAIN)


# --- hits and misses -------------------------------------------------------------------------------

def test_a_hit_returns_the_stored_answer_with_a_cache_attempt_and_no_cost(fake_provider):
    tracker = UsageTracker()
    client = cached_client(fake_provider, MemoryCache())
    tracker.attach(client.config)
    first = client.complete(ask(temperature=0))
    assert first.cost > 0
    again = client.complete(ask(temperature=0))
    assert len(fake_provider.requests) == 1
    assert again.text == first.text == "Hello!" and again.id == first.id
    assert [(a.provider, a.outcome) for a in again.attempts] == [("primary", "cache")]
    assert again.usage.total_tokens == 0 and again.cost == 0
    assert (tracker.cache_hits, tracker.cache_misses) == (1, 1)
    assert tracker.to_dict()["cache"] == {"hits": 1, "misses": 1}
    assert tracker.totals().requests == 1  # the hit sent nothing


def test_a_streamed_request_that_hits_is_replayed_as_chunks(fake_provider):
    fake_provider.script("primary", Reply("Sunny and warm", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]))
    client = cached_client(fake_provider, MemoryCache())
    stored = client.complete(ask())
    chunks = list(client.complete_stream(ask(stream=True)))
    assert len(fake_provider.requests) == 1
    assert sum(1 for c in chunks if c.text) >= 1 and chunks[-1].attempts[0].outcome == "cache"
    replayed = collect(chunks)
    assert (replayed.text, replayed.tool_calls, replayed.stop_reason) == (
        stored.text, stored.tool_calls, stored.stop_reason)


def test_a_whole_stream_is_stored_and_answers_a_plain_request(fake_provider):
    client = cached_client(fake_provider, MemoryCache())
    streamed = collect(client.complete_stream(ask(stream=True)))
    assert client.complete(ask()).text == streamed.text == "Hello!"
    assert len(fake_provider.requests) == 1


def test_errors_and_broken_or_abandoned_streams_are_not_stored(fake_provider):
    cache = MemoryCache()
    client = cached_client(fake_provider, cache)
    fake_provider.script("primary", Fault.reset_mid_body(after_events=4, reply=Reply("one two three four five")))
    with pytest.raises(StreamInterruptedError):
        collect(client.complete_stream(ask(stream=True)))
    stream = client.complete_stream(ask(stream=True))
    next(stream)
    stream.close()  # the consumer walked away
    assert len(cache) == 0
    fake_provider.set_default("primary", Fault.status(400))
    with pytest.raises(InvalidRequestError):
        client.complete(ask())
    assert len(cache) == 0


def test_sampled_answers_are_cached_only_when_asked(fake_provider):
    cache = MemoryCache()
    cached_client(fake_provider, cache).complete(ask(temperature=0.7))
    assert len(cache) == 0
    sampled = cached_client(fake_provider, cache, cache_sampled=True)
    sampled.complete(ask(temperature=0.7))
    sampled.complete(ask(temperature=0.7))
    assert len(cache) == 1 and len(fake_provider.requests) == 2


def test_embeddings_are_cached_the_same_way(fake_provider):
    client = cached_client(fake_provider, MemoryCache())
    request = EmbeddingRequest("text-embedding-3-small", ["a", "b"], dimensions=4)
    first = client.embed(request)
    again = client.embed(request)
    assert again.vectors == first.vectors and again.attempts[0].outcome == "cache" and again.usage.input_tokens == 0
    assert len(fake_provider.requests) == 1
    client.embed(dataclasses.replace(request, input_type="query"))
    assert len(fake_provider.requests) == 2


def test_a_corrupt_entry_is_ignored_and_replaced(fake_provider, caplog):
    cache = MemoryCache()
    client = cached_client(fake_provider, cache)
    client.complete(ask())
    (key,) = list(cache._entries)
    for corrupt in (b"{not json", b'{"id": 1}', b'{"model": "gpt-4o", "id": "x", "content": [{"type": "?"}]}'):
        cache.set(key, corrupt)
        with caplog.at_level(logging.WARNING, "failover_client"):
            assert client.complete(ask()).attempts[-1].outcome == "ok"
        assert cache.get(key) != corrupt
    assert "does not decode" in caplog.text


def test_memory_cache_is_an_lru_with_expiry():
    cache = MemoryCache(max_entries=2)
    cache.set("a", b"1")
    cache.set("b", b"2")
    cache.get("a")
    cache.set("c", b"3")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
    short = MemoryCache(ttl=0.001)
    short.set("a", b"1")
    short._entries["a"] = (0.0, b"1")  # expired long ago
    assert short.get("a") is None
    with pytest.raises(InvalidArgumentError):
        MemoryCache(max_entries=0)
    with pytest.raises(InvalidArgumentError):
        FailoverConfig("p", None).with_cache({})


# --- Redis --------------------------------------------------------------------------------------

OTHER_PROCESS = textwrap.dedent("""
    import sys
    from failover_client import CompletionRequest, FailoverClient, FailoverConfig, Message
    from failover_client.cache import RedisCache
    from failover_client.providers import OpenAIProvider

    redis_url, base_url = sys.argv[1:3]
    primary = OpenAIProvider(api_key="sk-test", base_url=base_url, name="primary")
    client = FailoverClient(FailoverConfig("primary", primary).with_cache(RedisCache(redis_url, ttl=60)))
    answer = client.complete(CompletionRequest("gpt-4o", [Message.user("shared question")]))
    print(answer.attempts[-1].outcome, answer.text)
""")


def in_another_process(redis_url, base_url):
    done = subprocess.run([sys.executable, "-c", OTHER_PROCESS, redis_url, base_url], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_two_processes_share_answers_through_redis(fake_provider, redis_server):
    fake_provider.script("primary", Reply("stored by the first process"))
    base_url = fake_provider.base_url("primary", "openai")
    assert in_another_process(redis_server.url, base_url) == "ok stored by the first process"
    assert in_another_process(redis_server.url, base_url) == "cache stored by the first process"
    assert len(fake_provider.requests) == 1
    here = cached_client(fake_provider, RedisCache(redis_server.url))
    here.config.fallbacks.clear()  # the same chain as the other processes: one provider
    assert here.complete(CompletionRequest("gpt-4o", [Message.user("shared question")])).text == (
        "stored by the first process")


def test_redis_down_means_uncached_calls_and_one_warning(fake_provider, redis_server, caplog):
    client = cached_client(fake_provider, RedisCache(redis_server.url, retry_interval=0.0))
    client.complete(ask())
    redis_server.kill()
    with caplog.at_level(logging.WARNING, "failover_client"):
        for _ in range(3):
            assert client.complete(ask()).attempts[-1].outcome == "ok"
    assert caplog.text.count("response cache unavailable") == 1
    assert len(fake_provider.requests) == 4


def test_redis_cache_repr_hides_the_password():
    assert "s3cret" not in repr(RedisCache("redis://:s3cret@127.0.0.1:1/0"))


def test_the_text_blocks_of_a_hit_are_real_blocks(fake_provider):
    client = cached_client(fake_provider, MemoryCache())
    client.complete(ask())
    assert all(isinstance(block, TextBlock) for block in client.complete(ask()).content)
