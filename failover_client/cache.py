"""A response cache for FailoverClient: identical requests answered without a provider call.

``FailoverConfig.with_cache(MemoryCache())`` keeps answers in this process (a thread-safe LRU);
``RedisCache(url)`` shares them between every process and host that uses the same Redis (the
``redis`` extra, imported on first use).

What makes two requests "identical" is the key: a SHA-256 of the canonical JSON (sorted keys, no
whitespace) of everything that changes the answer — the whole request (model, messages, system,
every sampling parameter, tools with their schemas, tool choice, response format, thinking,
metadata, extra; for embeddings the inputs, dimensions, input type, truncation) and the model
each provider of the chain would be sent — prefixed with ``CACHE_FORMAT``, so that a change of
the stored format never reads an old entry.  Only ``stream`` is left out: a streamed request is
answered from a stored answer by replaying it as chunks (:func:`replay`).

Only complete, successful answers are stored: never an error, a stream that broke or was
abandoned, or a resumed stream.  Sampled answers (``temperature`` above 0) are cached only with
``cache_sampled=True``: caching them makes a random answer permanent.  A hit is the stored
answer with one attempt of outcome ``"cache"`` and zero usage (so zero cost).

A cache that fails never fails a call: Redis down means the calls go on uncached, with one
warning until it answers again; an entry that does not decode is ignored and replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Iterator

from .errors import InvalidArgumentError
from .provider import answer_chunks
from .types import (
    Attempt,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamChunk,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)

if TYPE_CHECKING:
    import redis

CACHE_FORMAT = "failover_client.cache/1"
logger = logging.getLogger("failover_client")

Answer = CompletionResponse | EmbeddingResponse
Request = CompletionRequest | EmbeddingRequest


class ResponseCache:
    """Where cached answers live: bytes under string keys, with the cache's own expiry.
    ``get`` and ``set`` never raise for the store's own failures."""

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def set(self, key: str, value: bytes) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError


def _ttl(ttl: float | None) -> float | None:
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0):
        raise InvalidArgumentError(f"ttl takes a positive number of seconds or None, got {ttl!r}")
    return ttl


class MemoryCache(ResponseCache):
    """The ``max_entries`` most recently used answers of this process, each for ``ttl`` seconds
    (None: until pushed out)."""

    def __init__(self, max_entries: int = 1024, ttl: float | None = None) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise InvalidArgumentError(f"max_entries takes a positive int, got {max_entries!r}")
        self.max_entries = max_entries
        self.ttl = _ttl(ttl)
        self._entries: OrderedDict[str, tuple[float | None, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires is not None and expires <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> None:
        expires = None if self.ttl is None else time.monotonic() + self.ttl
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class RedisCache(ResponseCache):
    """Answers in Redis under ``{namespace}:{key}``, each for ``ttl`` seconds (None: until Redis
    evicts them), shared by every process that uses the same ``url`` and namespace.  While Redis
    cannot be reached, calls skip the cache for ``retry_interval`` seconds at a time, so a dead
    Redis costs one short timeout now and then, not one per call."""

    def __init__(self, url: str = "redis://localhost:6379/0", ttl: float | None = 86400.0,
                 namespace: str = "failover_client:cache", *, socket_timeout: float = 0.5,
                 retry_interval: float = 5.0) -> None:
        self._url = url
        self.ttl = _ttl(ttl)
        self.namespace = namespace
        self.retry_interval = retry_interval
        self._socket_timeout = socket_timeout
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self._failing = False
        self._retry_at = 0.0

    def __repr__(self) -> str:
        from .health import _public

        return f"RedisCache(url={_public(self._url)!r}, namespace={self.namespace!r})"

    def _redis(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                try:
                    import redis
                except ImportError:
                    raise InvalidArgumentError(
                        "RedisCache needs the redis package: pip install 'failover_client[redis]'") from None
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                self._client = redis.Redis.from_url(self._url, socket_timeout=self._socket_timeout,
                                                    socket_connect_timeout=self._socket_timeout,
                                                    retry=Retry(NoBackoff(), 0))  # fail fast: the call goes on
            return self._client

    def _call(self, operation: str, *args: Any, **options: Any) -> Any:
        """Run one Redis command; on a Redis failure warn once (until it answers again), None."""
        if self._failing and time.monotonic() < self._retry_at:
            return None
        client = self._redis()
        try:
            result = getattr(client, operation)(*args, **options)
        except Exception as exc:  # redis.RedisError and the socket errors beneath it
            self._retry_at = time.monotonic() + self.retry_interval
            if not self._failing:
                self._failing = True
                from .errors import redact

                logger.warning("response cache unavailable, calls go on uncached: %s: %s",
                               type(exc).__name__, redact(str(exc))[:200])
            return None
        self._failing = False
        return result

    def get(self, key: str) -> bytes | None:
        return self._call("get", f"{self.namespace}:{key}")

    def set(self, key: str, value: bytes) -> None:
        if self.ttl is None:
            self._call("set", f"{self.namespace}:{key}", value)
        else:
            self._call("set", f"{self.namespace}:{key}", value, px=max(1, round(self.ttl * 1000)))

    def delete(self, key: str) -> None:
        self._call("delete", f"{self.namespace}:{key}")


# --- keys, storing and answering ---------------------------------------------------------------

def cache_key(request: Request, models: list[tuple[str, str]]) -> str:
    """The key of ``request`` sent through a chain that would send ``models`` ((provider, model)
    pairs, in order); see the module docstring for what goes in."""
    fields = dataclasses.asdict(request)  # nested dataclasses as dicts; the enums are str
    fields.pop("stream", None)
    canonical = json.dumps({"format": CACHE_FORMAT, "kind": type(request).__name__, "request": fields,
                            "chain": models}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cacheable(request: Request, cache_sampled: bool) -> bool:
    temperature = getattr(request, "temperature", None)
    return cache_sampled or temperature is None or temperature <= 0


def encode(answer: Answer) -> bytes:
    """The answer as stored: dataclasses-json's dict for a completion; for embeddings a plain
    dict, as that library walks every number of every vector (hundreds of ms for a few)."""
    if isinstance(answer, EmbeddingResponse):
        stored: dict[str, Any] = {"vectors": answer.vectors, "model": answer.model, "provider": answer.provider}
    else:
        stored = answer.to_dict(encode_json=True)
        stored.pop("attempts", None)
    return json.dumps(stored, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _embedding_from(raw: bytes) -> EmbeddingResponse:
    data = json.loads(raw)
    return EmbeddingResponse(data["vectors"], data["model"], provider=data.get("provider"))


def decode(raw: bytes, kind: type[Answer], elapsed_ms: float) -> Answer | None:
    """The stored answer as a hit (one "cache" attempt, zero usage), or None when the entry does
    not decode (then it is a miss, and the answer that follows replaces it)."""
    try:
        answer = _embedding_from(raw) if kind is EmbeddingResponse else kind.from_json(raw)
        _check_stored(answer)
    except Exception:  # whatever a corrupt entry makes the decoder raise
        logger.warning("ignored a response-cache entry that does not decode")
        return None
    answer.usage = Usage()
    answer.attempts = [Attempt(answer.provider or "cache", answer.model, "cache", elapsed_ms)]
    return answer


def _check_stored(answer: Answer) -> None:
    """The decoder is lenient: make sure what came back has the shape of an answer."""
    if not isinstance(answer.model, str):
        raise ValueError("no model")
    if isinstance(answer, EmbeddingResponse):
        if not isinstance(answer.vectors, list) or not answer.vectors or not all(
                isinstance(v, list) and v for v in answer.vectors):
            raise ValueError("no vectors")
    elif not isinstance(answer.id, str) or not isinstance(answer.content, list) or not all(
            isinstance(block, (TextBlock, ThinkingBlock, ToolUseBlock)) for block in answer.content):
        raise ValueError("no content")


def replay(answer: CompletionResponse) -> Iterator[StreamChunk]:
    """A stored answer as the chunks a stream of it would have carried; ``collect`` of them
    gives the answer back.  The last chunk carries the attempts, as a FailoverClient's does."""
    yield from answer_chunks(answer)
    yield StreamChunk(provider=answer.provider, attempts=answer.attempts, response_format=answer.response_format)
