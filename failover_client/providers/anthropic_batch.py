"""Anthropic's Message Batches API (``/v1/messages/batches``): the requests travel in one JSON
body, results come back as JSONL with one ``succeeded``/``errored``/``canceled``/``expired``
entry per request, in no particular order.

Wire facts: protocols.md §2.8.  Limits (Anthropic's API reference for "Create a Message
Batch" and its batch-processing guide): 100,000 requests or 256 MB per batch, whichever comes
first; ``custom_id`` 1-64 characters of ``[a-zA-Z0-9_-]``, unique in the batch; models may mix.
Results are read from the documented path ``/v1/messages/batches/{id}/results`` of the
configured base URL, never from the ``results_url`` the answer names, so the API key only ever
goes to the host it was configured for.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ..batch.api import (
    BatchLimits,
    check_requests,
    check_size,
    epoch_seconds,
    iter_jsonl,
    path_id,
    wire_body,
    wire_shape,
)
from ..errors import FailoverClientError, error_for_event
from ..provider import dumps
from ..retry import Deadline
from ..types import BatchCounts, BatchJob, BatchRequest, BatchResult, BatchResultStatus, BatchStatus
from .anthropic import response_from_wire

if TYPE_CHECKING:
    from .anthropic import AnthropicProvider

LIMITS = BatchLimits(max_requests=100_000, max_bytes=256_000_000, one_model=False,
                     custom_id=re.compile(r"[a-zA-Z0-9_-]{1,64}"),
                     custom_id_rule="1 to 64 letters, digits, '_' or '-'")
PATH = "/v1/messages/batches"  # jobs: GET {PATH}/{id}, POST {PATH}/{id}/cancel, GET {PATH}?after_id=
CURSOR = "after_id"
_NOT_RUN = {"canceled": BatchResultStatus.CANCELLED, "expired": BatchResultStatus.EXPIRED}


def create_batch(provider: AnthropicProvider, requests: Iterable[BatchRequest], *,
                 timeout: float | None = None) -> BatchJob:
    """Check the requests and send them as one Message Batch."""
    items = check_requests(requests, LIMITS, provider.name)
    body = dumps({"requests": [{"custom_id": item.custom_id, "params": wire_body(provider, item.request)}
                               for item in items]})
    check_size(len(body), LIMITS, provider.name)
    answer = provider.transport().request("POST", PATH, body=body, deadline=Deadline(timeout))
    return job_from_wire(provider.name, answer.json())


def get_batch_results(provider: AnthropicProvider, job: BatchJob, *,
                      timeout: float | None = None) -> Iterator[BatchResult]:
    """The results of an ended job, streamed line by line."""
    response = provider.transport().request("GET", f"{PATH}/{path_id(job.id)}/results",
                                            headers={"Accept": "application/binary"}, deadline=Deadline(timeout))
    return (result_from_line(line, provider.name) for line in iter_jsonl(response, provider.name))


def result_from_line(line: dict[str, Any], provider: str) -> BatchResult:
    with wire_shape(provider, "a results line"):
        custom_id = str(line["custom_id"])
        result = line["result"]
        kind = result["type"]
    if kind in _NOT_RUN:
        return BatchResult(custom_id, _NOT_RUN[kind])
    try:
        with wire_shape(provider, f"the result of {custom_id!r}"):
            if kind == "succeeded":
                return BatchResult(custom_id, BatchResultStatus.SUCCEEDED,
                                   response=response_from_wire(result["message"], provider))
            error = result.get("error") or {}
            raise error_for_event(error.get("error") or error, provider=provider)
    except FailoverClientError as exc:
        return BatchResult(custom_id, BatchResultStatus.ERRORED, error=exc)


def _status(raw: str, data: dict[str, Any], counts: BatchCounts) -> BatchStatus:
    if raw == "canceling":
        return BatchStatus.CANCELLING
    if raw != "ended":
        return BatchStatus.IN_PROGRESS
    if data.get("cancel_initiated_at"):
        return BatchStatus.CANCELLED
    return BatchStatus.EXPIRED if counts.expired else BatchStatus.COMPLETED


def job_from_wire(provider: str, data: Any) -> BatchJob:
    """A MessageBatch as a BatchJob (see _status for how ``ended`` is told apart)."""
    with wire_shape(provider, "a message batch"):
        raw = str(data["processing_status"])
        wire_counts = data.get("request_counts") or {}
        processing, succeeded, errored, cancelled, expired = (
            int(wire_counts.get(key) or 0) for key in ("processing", "succeeded", "errored", "canceled", "expired"))
        counts = BatchCounts(total=processing + succeeded + errored + cancelled + expired, processing=processing,
                             succeeded=succeeded, errored=errored, cancelled=cancelled, expired=expired)
        return BatchJob(
            id=str(data["id"]), status=_status(raw, data, counts), raw_status=raw, provider=provider,
            counts=counts, created_at=epoch_seconds(data.get("created_at")),
            ended_at=epoch_seconds(data.get("ended_at")), expires_at=epoch_seconds(data.get("expires_at")),
            results_url=data.get("results_url"),
        )
