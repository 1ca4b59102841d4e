"""Embedding many texts: ``batch.embed(texts, client, model=...)`` (defined in the package, which
lends this module its progress bar) cuts them into requests that
fit the provider's limits, runs them on a pool of threads, and returns one EmbeddingResponse
with a vector per text, in input order.

Why the cutting is ours: every provider caps a request — texts per request (OpenAI 2048,
Cohere 96, Titan 1) and tokens (per text, and OpenAI's 300,000 per request) — and a request
over a cap is refused whole.  The caps come from the model registry (``max_inputs``,
``max_input_tokens``); ``batch_size`` and ``max_tokens_per_request`` lower them.  Tokens are
estimated at 3 characters a token, on the safe side of the usual 4.

With ``checkpoint=path`` each finished request's vectors are appended to a JSONL file as they
arrive; a later call with the same path and texts reads it and sends only what is missing
(a line is matched by its texts' position and digest, so changed texts are embedded again).
When a request fails, the others still finish (and are checkpointed), then the first error is
raised.

With ``executor=CeleryExecutor(app)`` (and None as the client) the requests are cut here and
answered by a Celery fleet's workers (``failover_client.embed`` tasks), ``workers`` in flight;
order, checkpoint, progress and errors are as above.  An executor for embeddings has
``check_client(client)`` and ``embed(requests, timeout, window)``, which yields (position,
EmbeddingResponse or the error) for each request of the ``{position: EmbeddingRequest}`` given.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence

from ..errors import InvalidArgumentError
from ..provider import Provider
from ..types import Attempt, BatchResult, BatchResultStatus, EmbeddingRequest, EmbeddingResponse, Usage
from .journal import Journal

CHARS_PER_TOKEN = 3
DEFAULT_BATCH_SIZE = 96  # the smallest cap of the services that take lists (Cohere), when the registry has none


def embed_all(texts: Sequence[str], client: Provider, *, bar: Callable[..., Any], model: str,
              dimensions: int | None = None, input_type: str | None = None, truncate: bool | None = None,
              batch_size: int | None = None, max_tokens_per_request: int | None = None, workers: int = 8,
              timeout: float | None = None, checkpoint: str | os.PathLike[str] | None = None,
              progress: bool | None = None, executor: Any = None) -> EmbeddingResponse:
    """Vectors for ``texts`` (in order) from ``client`` (a Provider or FailoverClient; None with
    an ``executor`` whose workers have their own), ``workers`` requests at a time; ``timeout``
    bounds each request; ``progress`` None draws ``bar`` (the batch runner's) on a terminal only."""
    if executor is not None:
        executor.check_client(client)
    elif not isinstance(client, Provider):
        raise InvalidArgumentError(f"embed() takes a Provider or FailoverClient, got {type(client).__name__}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(f"workers must be a whole number >= 1, got {workers!r}")
    template = EmbeddingRequest(model, list(texts), dimensions, input_type, truncate)
    template.validate()
    batches = plan(template.inputs, *limits(model, batch_size, max_tokens_per_request))
    log = _Checkpoint(checkpoint) if checkpoint is not None else None
    done: dict[int, tuple[list[list[float]], int]] = log.load(template.inputs, batches) if log else {}
    shown = bar(len(batches), sys.stderr, progress,
                resumed=[BatchResult(str(i), BatchResultStatus.SUCCEEDED) for i in done])
    errors: list[tuple[int, BaseException]] = []
    attempts: list[Attempt] = []
    requests = {i: EmbeddingRequest(model, template.inputs[start:end], dimensions, input_type, truncate)
                for i, (start, end) in enumerate(batches) if i not in done}
    if log is not None:
        log.open()
    try:
        answers = (executor.embed(requests, timeout, workers) if executor is not None
                   else _on_threads(client, requests, timeout, workers))
        for i, answer in answers:
            if isinstance(answer, BaseException):
                errors.append((i, answer))
                shown.update([BatchResult(str(i), BatchResultStatus.ERRORED)])
                continue
            done[i] = (answer.vectors, answer.usage.input_tokens)
            attempts.extend(answer.attempts)
            if log is not None:
                log.write(i, batches[i], template.inputs, answer.vectors, answer.usage.input_tokens)
            shown.update([BatchResult(str(i), BatchResultStatus.SUCCEEDED)])
    finally:
        shown.close()
        if log is not None:
            log.close()
    if errors:
        raise min(errors, key=lambda pair: pair[0])[1]
    vectors = [vector for i in range(len(batches)) for vector in done[i][0]]
    usage = Usage(input_tokens=sum(tokens for _, tokens in done.values()))
    provider = next((a.provider for a in reversed(attempts) if a.outcome in ("ok", "cache")), None)
    return EmbeddingResponse(vectors, model, provider=provider or getattr(client, "name", None), usage=usage,
                             attempts=attempts)


def _on_threads(client: Provider, requests: dict[int, EmbeddingRequest], timeout: float | None,
                workers: int) -> Iterator[tuple[int, EmbeddingResponse | Exception]]:
    """Each request sent by one of ``workers`` threads; (position, answer or error) as each ends."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="failover-client-embed") as pool:
        futures = {pool.submit(client.embed, request, timeout=timeout): i for i, request in requests.items()}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as exc:
                yield futures[future], exc


def limits(model: str, batch_size: int | None, max_tokens_per_request: int | None) -> tuple[int, int | None]:
    """(texts per request, tokens per request or None): the registry's caps for ``model``,
    lowered by the caller's."""
    for name, value in (("batch_size", batch_size), ("max_tokens_per_request", max_tokens_per_request)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidArgumentError(f"{name} must be a whole number >= 1, got {value!r}")
    from ..models import find

    info = find(model)
    cap = info.max_inputs if info is not None and info.max_inputs else None
    size = min(n for n in (cap, batch_size) if n is not None) if (cap or batch_size) else DEFAULT_BATCH_SIZE
    return size, max_tokens_per_request


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def plan(texts: Sequence[str], size: int, max_tokens: int | None) -> list[tuple[int, int]]:
    """The requests as (start, end) slices of ``texts``: at most ``size`` texts and, when given,
    ``max_tokens`` estimated tokens each (a text alone over it still goes, in a request of its own)."""
    batches: list[tuple[int, int]] = []
    start, tokens = 0, 0
    for i, text in enumerate(texts):
        cost = estimate_tokens(text)
        full = i - start >= size or (max_tokens is not None and i > start and tokens + cost > max_tokens)
        if full:
            batches.append((start, i))
            start, tokens = i, 0
        tokens += cost
    if start < len(texts):
        batches.append((start, len(texts)))
    return batches


def _digest(texts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()


class _Checkpoint(Journal):
    """A JSONL file with one line per finished request: its slice, the digest of its texts, its
    vectors and tokens; appended and flushed as each arrives."""

    def load(self, texts: Sequence[str], batches: list[tuple[int, int]]) -> dict[int, tuple[list[list[float]], int]]:
        """Which of ``batches`` an earlier run finished (a line cut short is skipped)."""
        index = {(start, end): i for i, (start, end) in enumerate(batches)}
        found = {}
        for line in self.lines():
            try:
                entry = json.loads(line)
                key = (entry["start"], entry["end"])
                vectors = entry["vectors"]
                if key in index and entry["digest"] == _digest(texts[key[0]:key[1]]) \
                        and len(vectors) == key[1] - key[0]:
                    found[index[key]] = (vectors, int(entry.get("tokens") or 0))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def write(self, i: int, batch: tuple[int, int], texts: Sequence[str], vectors: list[list[float]],
              tokens: int) -> None:
        start, end = batch
        line = {"start": start, "end": end, "digest": _digest(texts[start:end]), "tokens": tokens,
                "vectors": vectors}
        self.append(json.dumps(line, separators=(",", ":")))
