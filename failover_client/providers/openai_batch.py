"""OpenAI's Batch API: the requests as a JSONL file uploaded to ``/files`` (``purpose=batch``),
a job made from it at ``/batches``, results read from its output and error files.

Wire facts: protocols.md §3.  Limits (OpenAI's API reference for ``POST /v1/batches``): 50,000
requests and 200 MB per input file, one model per file.  Results come in no particular order:
each carries its ``custom_id``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from ..batch.api import (
    BatchLimits,
    check_requests,
    check_size,
    epoch_seconds,
    iter_jsonl,
    multipart_form,
    path_id,
    wire_body,
    wire_shape,
)
from ..errors import FailoverClientError, ProviderError, error_for_status
from ..provider import dumps
from ..retry import Deadline
from ..types import BatchCounts, BatchJob, BatchRequest, BatchResult, BatchResultStatus, BatchStatus
from .openai import response_from_wire

if TYPE_CHECKING:
    from .openai import OpenAIProvider

LIMITS = BatchLimits(max_requests=50_000, max_bytes=200_000_000, one_model=True)
ENDPOINT = "/v1/chat/completions"
PATH = "/batches"  # jobs: GET {PATH}/{id}, POST {PATH}/{id}/cancel, GET {PATH}?after=
CURSOR = "after"
STATUSES = {status.value: status for status in BatchStatus}  # OpenAI's words are ours
_NOT_RUN = {"batch_cancelled": BatchResultStatus.CANCELLED, "batch_expired": BatchResultStatus.EXPIRED}


def create_batch(provider: OpenAIProvider, requests: Iterable[BatchRequest], *,
                 metadata: Mapping[str, str] | None = None, timeout: float | None = None) -> BatchJob:
    """Check the requests, upload them as one JSONL file and start a batch on it."""
    items = check_requests(requests, LIMITS, provider.name)
    lines = [dumps({"custom_id": item.custom_id, "method": "POST", "url": ENDPOINT,
                    "body": wire_body(provider, item.request)}) for item in items]
    jsonl = b"\n".join(lines) + b"\n"
    del lines  # a batch may be 200 MB: keep one copy at a time
    check_size(len(jsonl), LIMITS, provider.name)
    body, content_type = multipart_form({"purpose": "batch"}, "file", "batch.jsonl", jsonl, "application/jsonl")
    del jsonl
    deadline = Deadline(timeout)
    transport = provider.transport()
    uploaded = transport.request("POST", "/files", body=body, headers={"Content-Type": content_type},
                                 deadline=deadline).json()
    with wire_shape(provider.name, "the uploaded file"):
        file_id = str(uploaded["id"])
    create: dict[str, Any] = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h"}
    if metadata:
        create["metadata"] = dict(metadata)
    answer = transport.request("POST", PATH, body=dumps(create), deadline=deadline)
    return job_from_wire(provider.name, answer.json())


def get_batch_results(provider: OpenAIProvider, job: BatchJob, *,
                      timeout: float | None = None) -> Iterator[BatchResult]:
    """The results of an ended job, streamed from its output file, then its error file."""
    for file_id in (job.output_file_id, job.error_file_id):
        if file_id:
            response = provider.transport().request("GET", f"/files/{path_id(file_id)}/content",
                                                    headers={"Accept": "application/octet-stream"},
                                                    deadline=Deadline(timeout))
            for line in iter_jsonl(response, provider.name):
                yield result_from_line(line, provider.name)


def result_from_line(line: dict[str, Any], provider: str) -> BatchResult:
    """One line of an output or error file: a response with its HTTP status, or an error that
    kept the request from running (the batch was cancelled or expired first)."""
    with wire_shape(provider, "a results line"):
        custom_id = str(line["custom_id"])
        response = line.get("response")
        error = line.get("error") or {}
    try:
        with wire_shape(provider, f"the result of {custom_id!r}"):
            if response:
                status = int(response.get("status_code") or 0)
                body = response.get("body")
                if 200 <= status < 300:
                    return BatchResult(custom_id, BatchResultStatus.SUCCEEDED,
                                       response=response_from_wire(body, provider))
                raise error_for_status(status, json.dumps(body), provider=provider,
                                       request_id=response.get("request_id"))
            code = error.get("code")
            if code in _NOT_RUN:
                return BatchResult(custom_id, _NOT_RUN[code])
            raise ProviderError(error.get("message") or "the request failed", provider=provider, code=code)
    except FailoverClientError as exc:
        return BatchResult(custom_id, BatchResultStatus.ERRORED, error=exc)


def job_from_wire(provider: str, data: Any) -> BatchJob:
    """A Batch object as a BatchJob: OpenAI's statuses are ours; requests neither completed nor
    failed count as processing until the job ends, then as cancelled, expired or errored."""
    with wire_shape(provider, "a batch"):
        raw = str(data["status"])
        status = STATUSES.get(raw, BatchStatus.IN_PROGRESS)
        counts = data.get("request_counts") or {}
        total, done, failed = (int(counts.get(key) or 0) for key in ("total", "completed", "failed"))
        left = max(0, total - done - failed)
        tally = BatchCounts(total=total, succeeded=done, errored=failed)
        if not status.done:
            tally.processing = left
        elif status is BatchStatus.EXPIRED:
            tally.expired = left
        elif status is BatchStatus.CANCELLED:
            tally.cancelled = left
        else:
            tally.errored += left  # validation failed: nothing ran
        errors = (data.get("errors") or {}).get("data") or []
        ended = next((data[key] for key in ("completed_at", "failed_at", "expired_at", "cancelled_at")
                      if data.get(key)), None)
        return BatchJob(
            id=str(data["id"]), status=status, raw_status=raw, provider=provider, counts=tally,
            created_at=epoch_seconds(data.get("created_at")), ended_at=epoch_seconds(ended),
            expires_at=epoch_seconds(data.get("expires_at")), model=data.get("model"),
            input_file_id=data.get("input_file_id"), output_file_id=data.get("output_file_id"),
            error_file_id=data.get("error_file_id"), metadata=data.get("metadata") or None,
            errors=[_describe(error) for error in errors],
        )


def _describe(error: Mapping[str, Any]) -> str:
    where = f"line {error['line']}: " if error.get("line") is not None else ""
    return f"{where}{error.get('message') or error.get('code') or 'invalid'}"
