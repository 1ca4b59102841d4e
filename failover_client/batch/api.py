"""What the provider Batch APIs (OpenAI Files + Batches, Anthropic Message Batches) share:
checking a batch before anything is sent, the multipart upload body, result files read line by
line, and timestamps in one representation.

The protocol modules (``providers/openai_batch.py``, ``providers/anthropic_batch.py``) map
their wire shapes; this module knows none of them.
"""

from __future__ import annotations

import json
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator, Mapping
from urllib.parse import quote

from ..errors import FailoverClientError, InvalidArgumentError, InvalidRequestError, ResponseDecodeError
from ..provider import HttpProvider
from ..retry import Deadline
from ..streaming import StreamDecodeError, iter_ndjson
from ..types import BatchJob, BatchRequest, BatchResult, CompletionRequest

if TYPE_CHECKING:
    from ..transport import HttpResponse


class BatchMethods(HttpProvider):
    """The Provider batch methods of a protocol that has a Batch API.

    Both Batch APIs keep their jobs under one path (``PATH`` of the protocol's module, e.g.
    ``/batches``) with ``GET {PATH}/{id}``, ``POST {PATH}/{id}/cancel`` and
    ``GET {PATH}?limit=&{CURSOR}=<last id>``, so those are done here; the module named by
    ``batch_module`` (imported on first use, so importing a provider stays cheap) supplies
    ``job_from_wire``, ``create_batch`` and ``get_batch_results``.
    """

    batch_module: ClassVar[str]  # e.g. "failover_client.providers.openai_batch"
    supports_batch = True

    def _batch_api(self) -> Any:
        if not self.supports_batch:
            raise self._unsupported("the Batch API")
        return import_module(self.batch_module)

    def create_batch(self, requests: Iterable[BatchRequest], *, timeout: float | None = None,
                     **options: Any) -> BatchJob:
        """Check the requests (nothing is sent if one is wrong) and start a batch job."""
        return self._batch_api().create_batch(self, requests, timeout=timeout, **options)

    def get_batch(self, batch_id: str, *, timeout: float | None = None) -> BatchJob:
        return self._job("GET", f"/{path_id(batch_id)}", timeout)

    def cancel_batch(self, batch_id: str, *, timeout: float | None = None) -> BatchJob:
        return self._job("POST", f"/{path_id(batch_id)}/cancel", timeout)

    def _job(self, method: str, suffix: str, timeout: float | None) -> BatchJob:
        api = self._batch_api()
        answer = self.transport().request(method, api.PATH + suffix, deadline=Deadline(timeout))
        return api.job_from_wire(self.name, answer.json())

    def get_batch_results(self, batch_id: str, *, timeout: float | None = None) -> Iterator[BatchResult]:
        """The results of an ended job, streamed (never all in memory), in the provider's order.
        Asking before the job has ended is an InvalidRequestError."""
        job = self.get_batch(batch_id, timeout=timeout)
        if not job.done:
            raise InvalidRequestError(f"batch {job.id} is {job.raw_status}: its results are readable once it has "
                                      "ended", provider=self.name)
        return self._batch_api().get_batch_results(self, job, timeout=timeout)

    def list_batches(self, *, limit: int | None = None, after: str | None = None, page_size: int = 20,
                     timeout: float | None = None) -> Iterator[BatchJob]:
        """Jobs, newest first, page after page (each asked for with the protocol's cursor set to
        the last id of the page before) up to ``limit``, fetched as the iteration goes."""
        api = self._batch_api()
        seen = 0
        while True:
            params = {"limit": page_size, **({api.CURSOR: after} if after else {})}
            page = self.transport().request("GET", api.PATH, params=params, deadline=Deadline(timeout)).json()
            with wire_shape(self.name, "a page of batches"):
                data = page["data"]
                more = bool(page.get("has_more")) and bool(data)
                after = page.get("last_id") or (data[-1]["id"] if data else None)
            for item in data:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield api.job_from_wire(self.name, item)
            if not more:
                return


@dataclass(frozen=True)
class BatchLimits:
    """What a provider accepts in one batch (checked before upload)."""

    max_requests: int
    max_bytes: int  # of the uploaded file or request body
    one_model: bool  # every request must name the same model
    custom_id: re.Pattern[str] | None = None  # the form a custom_id must have, if the API restricts it
    custom_id_rule: str = ""


def check_requests(requests: Iterable[BatchRequest], limits: BatchLimits, provider: str) -> list[BatchRequest]:
    """The requests as a list, or InvalidArgumentError naming the first problem: no requests,
    too many, a missing, malformed or repeated ``custom_id``, a streaming or invalid request,
    or (where the provider forbids it) a second model."""
    items = list(requests)
    if not items:
        raise InvalidArgumentError("a batch needs at least one request")
    if len(items) > limits.max_requests:
        raise InvalidArgumentError(
            f"{len(items)} requests is more than {provider} accepts in one batch ({limits.max_requests:,})")
    seen: dict[str, int] = {}
    models: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, BatchRequest):
            raise InvalidArgumentError(f"requests[{i}] is {type(item).__name__}, not a BatchRequest")
        custom_id = item.custom_id
        if not isinstance(custom_id, str) or not custom_id:
            raise InvalidArgumentError(f"requests[{i}] has an empty custom_id")
        if limits.custom_id is not None and not limits.custom_id.fullmatch(custom_id):
            raise InvalidArgumentError(
                f"requests[{i}].custom_id {custom_id!r} is not accepted by {provider}: {limits.custom_id_rule}")
        if custom_id in seen:
            raise InvalidArgumentError(
                f"custom_id {custom_id!r} is used twice (requests[{seen[custom_id]}] and requests[{i}])")
        seen[custom_id] = i
        request = item.request
        if not isinstance(request, CompletionRequest):
            raise InvalidArgumentError(f"requests[{i}].request is {type(request).__name__}, not a CompletionRequest")
        if request.stream:
            raise InvalidArgumentError(f"requests[{i}] ({custom_id!r}) asks for a stream; batch requests cannot stream")
        try:
            request.validate()
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"requests[{i}] ({custom_id!r}): {exc}") from None
        models.setdefault(request.model, i)
    if limits.one_model and len(models) > 1:
        first, second = list(models.items())[:2]
        raise InvalidArgumentError(
            f"{provider} runs one model per batch, but requests[{first[1]}] asks for {first[0]!r} "
            f"and requests[{second[1]}] for {second[0]!r}")
    return items


def check_size(size: int, limits: BatchLimits, provider: str) -> None:
    if size > limits.max_bytes:
        raise InvalidArgumentError(
            f"the batch is {size:,} bytes, more than {provider} accepts ({limits.max_bytes:,} bytes)")


def wire_body(provider: HttpProvider, request: CompletionRequest) -> dict[str, Any]:
    """The request's body exactly as the provider would send it on its own (vendor ``extra``
    options included)."""
    body = provider._body(request, False)
    if request.extra:
        body.update(request.extra)
    return body


def path_id(batch_id: str) -> str:
    """A batch or file id, checked and quoted for use as one path segment."""
    if not isinstance(batch_id, str) or not batch_id.strip():
        raise InvalidArgumentError(f"a batch id is a non-empty string, got {batch_id!r}")
    return quote(batch_id, safe="")


def multipart_form(fields: Mapping[str, str], file_field: str, filename: str, data: bytes,
                   content_type: str) -> tuple[bytes, str]:
    """(body, Content-Type header) of a multipart/form-data upload of ``fields`` and one file."""
    boundary = f"failover-client-{uuid.uuid4().hex}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode())
    parts.append(data)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def iter_jsonl(response: HttpResponse, provider: str) -> Iterator[dict[str, Any]]:
    """Each JSON object of a JSONL body as it arrives: only the current line is held, so a
    results file of any size streams in bounded memory.  The connection is released at the end
    (or closed if the reader stops early)."""
    try:
        for line in iter_ndjson(response.iter_bytes()):
            with wire_shape(provider, "a results line"):
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise TypeError(f"a line is {type(obj).__name__}, not an object")
            yield obj
    except StreamDecodeError as exc:
        raise ResponseDecodeError(f"the results file is not UTF-8 ({exc})", provider=provider) from None
    finally:
        response.close()


@contextmanager
def wire_shape(provider: str, what: str) -> Iterator[None]:
    """Turn a body that lacks what the protocol promises into ResponseDecodeError."""
    try:
        yield
    except FailoverClientError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ResponseDecodeError(f"{what} from {provider} has an unexpected shape ({type(exc).__name__}: "
                                  f"{str(exc)[:120]})", provider=provider) from None


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$")


def epoch_seconds(value: Any) -> float | None:
    """Unix seconds from epoch seconds (OpenAI) or an RFC 3339 string (Anthropic); None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _RFC3339.match(str(value))
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {str(value)[:40]!r}")
    day, time, fraction, zone = match.groups()
    offset = "+00:00" if zone in ("Z", "z") else zone
    moment = datetime.fromisoformat(f"{day}T{time}{offset}").astimezone(timezone.utc)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)
