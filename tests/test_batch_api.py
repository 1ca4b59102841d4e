"""Provider Batch APIs — OpenAI Files + Batches, Anthropic Message Batches — against the fake
server's batch endpoints: the whole life cycle, cancel/expire/fail, listing with pagination,
every check made before anything is sent, the status mapping, and results streamed from a
100,000-line file in bounded memory."""

import email.parser
import email.policy
import json
import time
import tracemalloc
from dataclasses import replace

import pytest

from failover_client import (
    AuthenticationError,
    BatchJob,
    BatchRequest,
    BatchResult,
    BatchResultStatus,
    BatchStatus,
    CompletionRequest,
    InvalidArgumentError,
    InvalidRequestError,
    Message,
    OverloadedError,
    RateLimitError,
    ResponseDecodeError,
)
from failover_client.batch.api import epoch_seconds
from failover_client.providers import anthropic_batch, openai_batch
from failover_client.testing import Fault, Reply

from support import make_provider

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}


@pytest.fixture(params=["openai", "anthropic"])
def protocol(request):
    return request.param


def batch_of(n, protocol, prefix="req"):
    return [BatchRequest(f"{prefix}-{i}", CompletionRequest(MODELS[protocol], [Message.user(f"question {i}")],
                                                            max_tokens=50))
            for i in range(n)]


def provider(server, protocol, name="b"):
    return make_provider(server, name, protocol, **({"batch_api": True} if protocol == "openai" else {}))


# --- the life cycle ----------------------------------------------------------------------------


def test_openai_upload_is_a_jsonl_file_of_wire_requests(fake_provider):
    client = provider(fake_provider, "openai")
    requests = batch_of(2, "openai")
    requests[1] = replace(requests[1], request=replace(requests[1].request, extra={"seed": 7}))
    job = client.create_batch(requests, metadata={"job": "nightly"})
    upload, create = fake_provider.requests
    assert (upload.method, upload.path, create.path) == ("POST", "/b/v1/files", "/b/v1/batches")
    head = f"Content-Type: {upload.headers['content-type']}\r\n\r\n".encode()
    form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + upload.raw_body)
    parts = {part.get_param("name", header="content-disposition"): part for part in form.iter_parts()}
    assert parts["purpose"].get_content().strip() == "batch"
    assert parts["file"].get_filename() == "batch.jsonl"
    lines = [json.loads(line) for line in parts["file"].get_payload(decode=True).splitlines()]
    assert [(line["custom_id"], line["method"], line["url"]) for line in lines] == [
        ("req-0", "POST", "/v1/chat/completions"), ("req-1", "POST", "/v1/chat/completions")]
    assert lines[0]["body"] == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "question 0"}],
                                "max_tokens": 50}
    assert lines[1]["body"]["seed"] == 7 and "stream" not in lines[1]["body"]
    assert create.body == {"input_file_id": job.input_file_id, "endpoint": "/v1/chat/completions",
                           "completion_window": "24h", "metadata": {"job": "nightly"}}
    assert (job.status, job.raw_status, job.model, job.metadata) == (
        BatchStatus.VALIDATING, "validating", "gpt-4o-mini", {"job": "nightly"})
    assert (job.counts.total, job.counts.processing) == (2, 2)


def test_anthropic_batch_is_one_body_of_messages_params(fake_provider):
    job = provider(fake_provider, "anthropic").create_batch(batch_of(2, "anthropic"))
    (sent,) = fake_provider.requests
    assert sent.path == "/b/v1/messages/batches"
    assert sent.body == {"requests": [
        {"custom_id": f"req-{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [
            {"role": "user", "content": [{"type": "text", "text": f"question {i}"}]}]}} for i in range(2)]}
    assert (job.status, job.raw_status, job.counts.total, job.counts.processing) == (
        BatchStatus.IN_PROGRESS, "in_progress", 2, 2)
    assert job.id.startswith("msgbatch_") and job.results_url is None


def test_life_cycle_from_create_to_results(fake_provider, protocol):
    fake_provider.batches.complete_after(polls=2)
    fake_provider.script("b", Reply(text="answer 0"), Fault.rate_limit(), Reply(text="answer 2"),
                         Fault.overloaded(), Reply(text="answer 4", usage={"input": 12, "output": 3}))
    client = provider(fake_provider, protocol)
    created = client.create_batch(batch_of(5, protocol))
    polled = client.get_batch(created.id)
    assert polled.status is BatchStatus.IN_PROGRESS and not polled.done
    ended = client.get_batch(created.id)
    assert ended.status is BatchStatus.COMPLETED and ended.done
    assert (ended.counts.total, ended.counts.succeeded, ended.counts.errored, ended.counts.processing) == (5, 3, 2, 0)
    assert ended.created_at <= ended.ended_at <= time.time() + 1
    assert ended.expires_at - ended.created_at == pytest.approx(24 * 3600, abs=1)
    results = {r.custom_id: r for r in client.get_batch_results(created.id)}
    assert sorted(results) == [f"req-{i}" for i in range(5)]
    for i in (0, 2, 4):
        assert results[f"req-{i}"].status is BatchResultStatus.SUCCEEDED and results[f"req-{i}"].ok
        assert results[f"req-{i}"].response.text == f"answer {i}" and results[f"req-{i}"].error is None
    assert (results["req-4"].response.usage.input_tokens, results["req-4"].response.usage.output_tokens) == (12, 3)
    assert isinstance(results["req-1"].error, RateLimitError) and results["req-1"].response is None
    assert isinstance(results["req-3"].error, OverloadedError)
    assert all(r.error.provider == "b" for r in results.values() if r.error)


def test_batches_can_end_by_time_instead_of_polls(fake_provider, protocol):
    client = provider(fake_provider, protocol)
    fake_provider.batches.complete_after(seconds=3600)
    slow = client.create_batch(batch_of(1, protocol, prefix="slow"))
    assert [client.get_batch(slow.id).done for _ in range(3)] == [False] * 3
    fake_provider.batches.complete_after(seconds=0)
    assert client.get_batch(slow.id).status is BatchStatus.COMPLETED
    with pytest.raises(ValueError, match="exactly one of polls= or seconds="):
        fake_provider.batches.complete_after(polls=1, seconds=1)


def test_jobs_and_results_survive_a_json_round_trip(fake_provider, protocol):
    fake_provider.script("b", Reply(text="hi"), Fault.status(400, message="bad request"))
    client = provider(fake_provider, protocol)
    job = client.create_batch(batch_of(2, protocol))
    job = client.get_batch(job.id)
    assert BatchJob.from_json(job.to_json()) == job
    for result in client.get_batch_results(job.id):
        again = BatchResult.from_json(result.to_json())
        assert (again.custom_id, again.status, again.response) == (result.custom_id, result.status, result.response)
        assert type(again.error) is type(result.error)
        assert vars(again.error or Exception()) == vars(result.error or Exception())


def test_results_before_the_batch_ended_are_refused(fake_provider, protocol):
    fake_provider.batches.complete_after(polls=5)
    client = provider(fake_provider, protocol)
    job = client.create_batch(batch_of(1, protocol))
    with pytest.raises(InvalidRequestError, match="results are readable once it has ended"):
        client.get_batch_results(job.id)
    assert not any("results" in r.path or "content" in r.path for r in fake_provider.requests)


def test_a_result_that_is_not_a_message_is_an_errored_result(fake_provider, protocol):
    fake_provider.script("b", Fault.status(200, body="not json at all"), Reply(text="fine"))
    client = provider(fake_provider, protocol)
    job = client.get_batch(client.create_batch(batch_of(2, protocol)).id)
    results = {r.custom_id: r for r in client.get_batch_results(job.id)}
    assert isinstance(results["req-0"].error, ResponseDecodeError)
    assert results["req-1"].response.text == "fine"


# --- cancel, expire, fail ------------------------------------------------------------------------


def test_cancel_ends_the_batch_with_every_request_cancelled(fake_provider, protocol):
    fake_provider.batches.complete_after(polls=3)
    client = provider(fake_provider, protocol)
    job = client.create_batch(batch_of(3, protocol))
    cancelling = client.cancel_batch(job.id)
    assert (cancelling.status, cancelling.raw_status) == (
        BatchStatus.CANCELLING, "cancelling" if protocol == "openai" else "canceling")
    cancelled = client.get_batch(job.id)
    assert cancelled.status is BatchStatus.CANCELLED and cancelled.counts.cancelled == 3
    assert [r.status for r in client.get_batch_results(job.id)] == [BatchResultStatus.CANCELLED] * 3
    assert fake_provider.batches.ids() == [job.id]


def test_expired_batches_report_expired_requests(fake_provider, protocol):
    fake_provider.batches.complete_after(polls=3)
    client = provider(fake_provider, protocol)
    job = client.create_batch(batch_of(2, protocol))
    fake_provider.batches.expire(job.id)
    expired = client.get_batch(job.id)
    assert expired.status is BatchStatus.EXPIRED and expired.counts.expired == 2
    results = list(client.get_batch_results(job.id))
    assert sorted(r.custom_id for r in results) == ["req-0", "req-1"]
    assert {r.status for r in results} == {BatchResultStatus.EXPIRED}


def test_openai_batch_that_fails_validation(fake_provider):
    fake_provider.batches.complete_after(polls=3)
    client = provider(fake_provider, "openai")
    job = client.create_batch(batch_of(2, "openai"))
    fake_provider.batches.fail(job.id, "the input file is not valid")
    failed = client.get_batch(job.id)
    assert (failed.status, failed.errors, failed.counts.errored) == (
        BatchStatus.FAILED, ["the input file is not valid"], 2)
    assert list(client.get_batch_results(job.id)) == []


# --- listing ---------------------------------------------------------------------------------------


def test_list_pages_through_every_batch_newest_first(fake_provider, protocol):
    client = provider(fake_provider, protocol)
    created = [client.create_batch(batch_of(1, protocol, prefix=f"b{i}")).id for i in range(5)]
    before = len(fake_provider.requests)
    listed = list(client.list_batches(page_size=2))
    assert [job.id for job in listed] == created[::-1]
    pages = fake_provider.requests[before:]
    cursor = "after" if protocol == "openai" else "after_id"
    assert [page.query.get(cursor) for page in pages] == [None, created[3], created[1]]
    assert [job.id for job in client.list_batches(limit=3, page_size=2)] == created[:1:-1]
    assert [job.id for job in client.list_batches(after=created[2])] == created[1::-1]


# --- checked before anything is sent --------------------------------------------------------------


def one(model="gpt-4o-mini", **fields):
    return CompletionRequest(model, [Message.user("hi")], **fields)


@pytest.mark.parametrize("requests, message", [
    ([], "needs at least one request"),
    ([BatchRequest("", one())], r"requests\[0\] has an empty custom_id"),
    ([BatchRequest("a", one()), BatchRequest("b", one()), BatchRequest("a", one())],
     r"custom_id 'a' is used twice \(requests\[0\] and requests\[2\]\)"),
    ([BatchRequest("a", one(stream=True))], r"requests\[0\] \('a'\) asks for a stream"),
    ([BatchRequest("a", CompletionRequest("gpt-4o-mini", []))], "messages must hold at least one Message"),
    ([one()], r"requests\[0\] is CompletionRequest, not a BatchRequest"),
    ([BatchRequest("a", "hi")], r"requests\[0\].request is str, not a CompletionRequest"),
])
def test_malformed_batches_are_refused_before_sending(fake_provider, protocol, requests, message):
    with pytest.raises(InvalidArgumentError, match=message):
        provider(fake_provider, protocol).create_batch(requests)
    assert fake_provider.requests == []


def test_openai_refuses_two_models_in_one_batch(fake_provider):
    requests = [BatchRequest("a", one("gpt-4o-mini")), BatchRequest("b", one("gpt-4o-mini")),
                BatchRequest("c", one("gpt-4o"))]
    with pytest.raises(InvalidArgumentError, match=r"one model per batch, but requests\[0\] asks for 'gpt-4o-mini' "
                                                   r"and requests\[2\] for 'gpt-4o'"):
        provider(fake_provider, "openai").create_batch(requests)
    assert fake_provider.requests == []


def test_anthropic_takes_mixed_models_and_any_custom_id_of_its_form(fake_provider):
    requests = [BatchRequest("a" * 64, one("claude-haiku-4-5")), BatchRequest("B_2-x", one("claude-sonnet-4-5"))]
    job = provider(fake_provider, "anthropic").create_batch(requests)
    assert job.counts.total == 2


@pytest.mark.parametrize("custom_id", ["has space", "a" * 65, "café", "a/b"])
def test_anthropic_custom_ids_must_be_short_and_plain(fake_provider, custom_id):
    with pytest.raises(InvalidArgumentError, match="1 to 64 letters, digits, '_' or '-'"):
        provider(fake_provider, "anthropic").create_batch([BatchRequest(custom_id, one("claude-haiku-4-5"))])
    assert fake_provider.requests == []


def test_openai_takes_any_non_empty_custom_id(fake_provider):
    job = provider(fake_provider, "openai").create_batch([BatchRequest("has space/and é", one())])
    assert job.counts.total == 1


@pytest.mark.parametrize("protocol, count", [("openai", 50_001), ("anthropic", 100_001)])
def test_more_requests_than_the_provider_takes_are_refused(fake_provider, protocol, count):
    request = one(MODELS[protocol])
    with pytest.raises(InvalidArgumentError, match=f"{count} requests is more than b accepts in one batch"):
        provider(fake_provider, protocol).create_batch(BatchRequest(f"r{i}", request) for i in range(count))
    assert fake_provider.requests == []


def test_the_limits_are_the_documented_ones():
    assert (openai_batch.LIMITS.max_requests, openai_batch.LIMITS.max_bytes, openai_batch.LIMITS.one_model) == (
        50_000, 200_000_000, True)
    assert (anthropic_batch.LIMITS.max_requests, anthropic_batch.LIMITS.max_bytes,
            anthropic_batch.LIMITS.one_model) == (100_000, 256_000_000, False)


@pytest.mark.parametrize("module, protocol", [(openai_batch, "openai"), (anthropic_batch, "anthropic")])
def test_more_bytes_than_the_provider_takes_are_refused(fake_provider, monkeypatch, module, protocol):
    monkeypatch.setattr(module, "LIMITS", replace(module.LIMITS, max_bytes=2_000))
    small = [BatchRequest("a", one(MODELS[protocol]))]
    provider(fake_provider, protocol).create_batch(small)  # under the limit: sent
    sent = len(fake_provider.requests)
    big = [BatchRequest("a", CompletionRequest(MODELS[protocol], [Message.user("x" * 2_000)]))]
    with pytest.raises(InvalidArgumentError, match=r"the batch is 2,\d{3} bytes, more than b accepts \(2,000 bytes\)"):
        provider(fake_provider, protocol).create_batch(big)
    assert len(fake_provider.requests) == sent


def test_batch_ids_are_checked_and_kept_in_their_path_segment(fake_provider, protocol):
    client = provider(fake_provider, protocol)
    with pytest.raises(InvalidArgumentError, match="a batch id is a non-empty string"):
        client.get_batch("")
    with pytest.raises(InvalidRequestError, match="No batch found"):
        client.get_batch("x/../y?z")
    assert fake_provider.requests[-1].path.endswith("x%2F..%2Fy%3Fz")


def test_a_wrong_key_is_an_authentication_error(fake_provider, protocol):
    fake_provider.require_key("b", "the-right-key-123")
    with pytest.raises(AuthenticationError):
        provider(fake_provider, protocol).create_batch(batch_of(1, protocol))


# --- the status mapping -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["validating", "in_progress", "finalizing", "completed", "failed", "expired",
                                 "cancelling", "cancelled"])
def test_openai_statuses_are_ours(raw):
    job = openai_batch.job_from_wire("openai", {"id": "batch_1", "status": raw, "created_at": 1711471533,
                                                "request_counts": {"total": 10, "completed": 6, "failed": 1}})
    assert (job.status.value, job.raw_status, job.created_at) == (raw, raw, 1711471533.0)
    left = {"expired": "expired", "cancelled": "cancelled", "failed": "errored", "completed": "errored"}.get(
        raw, "processing")  # what neither completed nor failed became
    expected = {"processing": 0, "cancelled": 0, "expired": 0, "errored": 1}
    expected[left] += 3
    assert (job.counts.total, job.counts.succeeded, job.counts.processing, job.counts.cancelled,
            job.counts.expired, job.counts.errored) == (10, 6, expected["processing"], expected["cancelled"],
                                                        expected["expired"], expected["errored"])


def message_batch(status, **fields):
    counts = {"processing": 0, "succeeded": 2, "errored": 0, "canceled": 0, "expired": 0, **fields.pop("counts", {})}
    return {"id": "msgbatch_01", "type": "message_batch", "processing_status": status, "request_counts": counts,
            "created_at": "2024-09-24T18:37:24.100435Z", "expires_at": "2024-09-25T18:37:24.100435Z",
            "ended_at": None, "cancel_initiated_at": None, "results_url": None, **fields}


@pytest.mark.parametrize("wire, status", [
    (message_batch("in_progress", counts={"processing": 2}), BatchStatus.IN_PROGRESS),
    (message_batch("canceling", cancel_initiated_at="2024-09-24T18:40:00Z"), BatchStatus.CANCELLING),
    (message_batch("ended", ended_at="2024-09-24T19:00:00Z"), BatchStatus.COMPLETED),
    (message_batch("ended", counts={"errored": 1}), BatchStatus.COMPLETED),
    (message_batch("ended", counts={"canceled": 1}, cancel_initiated_at="2024-09-24T18:40:00Z"),
     BatchStatus.CANCELLED),
    (message_batch("ended", counts={"expired": 1}), BatchStatus.EXPIRED),
])
def test_anthropic_statuses_map_to_ours(wire, status):
    job = anthropic_batch.job_from_wire("anthropic", wire)
    assert (job.status, job.raw_status) == (status, wire["processing_status"])
    counts = wire["request_counts"]
    assert job.counts.total == sum(counts.values()) and job.counts.cancelled == counts["canceled"]
    assert job.created_at == pytest.approx(1727203044.100435, abs=1e-6)


@pytest.mark.parametrize("text, seconds", [
    ("2024-09-24T18:37:24Z", 1727203044.0),
    ("2024-09-24T18:37:24.5Z", 1727203044.5),
    ("2024-09-24T20:37:24.250+02:00", 1727203044.25),
    ("2024-09-24T18:37:24.123456789Z", 1727203044.123456789),
    (1727203044, 1727203044.0),
    (None, None),
])
def test_times_become_unix_seconds(text, seconds):
    assert epoch_seconds(text) == pytest.approx(seconds, abs=1e-6) if seconds else epoch_seconds(text) is None


def test_a_malformed_batch_object_is_a_decode_error():
    with pytest.raises(ResponseDecodeError, match="a message batch from anthropic has an unexpected shape"):
        anthropic_batch.job_from_wire("anthropic", message_batch("ended", created_at="yesterday"))
    with pytest.raises(ResponseDecodeError, match="a batch from openai has an unexpected shape"):
        openai_batch.job_from_wire("openai", {"id": "batch_1"})


# --- a large results file streams -----------------------------------------------------------------


def test_a_100000_result_batch_streams_in_bounded_memory(fake_provider):
    client = provider(fake_provider, "anthropic")
    request = CompletionRequest("claude-haiku-4-5", [Message.user("hi")], max_tokens=5)
    fake_provider.set_default("b", Reply(text="A fairly ordinary answer of a few words."))
    job = client.create_batch(BatchRequest(f"r{i}", request) for i in range(100_000))
    job = client.get_batch(job.id)  # the fake renders the results file here, before measuring
    assert job.counts.succeeded == 100_000
    file_size = len(fake_provider.batches._batches[job.id].results["results"])
    seen = bytearray(100_000)  # allocated before measuring: one byte per custom_id
    texts = 0
    tracemalloc.start()
    try:
        for result in client.get_batch_results(job.id):
            seen[int(result.custom_id[1:])] += 1
            texts += result.response.text == "A fairly ordinary answer of a few words."
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == bytearray([1]) * 100_000 and texts == 100_000
    assert peak < file_size / 20, f"peak {peak:,} bytes while streaming a {file_size:,}-byte results file"


def test_only_openais_own_host_claims_the_batch_api(fake_provider):
    from failover_client import NotSupportedError
    from failover_client.providers import AzureOpenAIProvider, OpenAIProvider

    assert OpenAIProvider(api_key="k").supports_batch
    compatible = OpenAIProvider(api_key="k", base_url=fake_provider.base_url("groq", "openai"), name="groq")
    assert not compatible.supports_batch
    with pytest.raises(NotSupportedError, match="Batch API"):
        list(compatible.list_batches())
    assert fake_provider.requests == []
    assert OpenAIProvider(api_key="k", base_url=fake_provider.base_url("p", "openai"), batch_api=True).supports_batch
    assert not AzureOpenAIProvider(api_key="k", azure_endpoint="https://r.openai.azure.com").supports_batch
