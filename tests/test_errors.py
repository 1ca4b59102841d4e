"""Error classification, pickling and redaction."""

import json
import pickle

import pytest

from failover_client import (
    AllProvidersFailedError,
    Attempt,
    AuthenticationError,
    ContentFilteredError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    errors,
)
from failover_client.errors import error_for_event, error_for_status, redact


def openai_body(message, code=None, type_="invalid_request_error"):
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


def anthropic_body(type_, message):
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_1"})


@pytest.mark.parametrize("status, body, cls", [
    (429, openai_body("Rate limit reached", "rate_limit_exceeded", "requests"), RateLimitError),
    (429, openai_body("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
     QuotaExceededError),
    (500, openai_body("boom", None, "server_error"), ServerError),
    (502, "<html><title>502 Bad Gateway</title></html>", ServerError),
    (503, openai_body("busy"), OverloadedError),
    (504, anthropic_body("timeout_error", "timed out"), ServerError),
    (529, anthropic_body("overloaded_error", "Overloaded"), OverloadedError),
    (401, openai_body("Incorrect API key provided", "invalid_api_key"), AuthenticationError),
    (403, anthropic_body("permission_error", "nope"), AuthenticationError),
    (400, openai_body("This model's maximum context length is 128000 tokens. However, your messages resulted "
                      "in 130012 tokens.", "context_length_exceeded"), ContextLengthExceededError),
    (400, anthropic_body("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
     ContextLengthExceededError),
    (400, json.dumps({"error": {"code": "content_filter", "message": "The response was filtered due to the prompt "
                                "triggering Azure OpenAI's content management policy."}}), ContentFilteredError),
    (404, openai_body("The model 'x' does not exist", "model_not_found"), ModelNotFoundError),
    (422, "{}", InvalidRequestError),
    (408, "", ProviderTimeoutError),
    (409, "", ServerError),
])
def test_status_and_body_pick_the_class(status, body, cls):
    exc = error_for_status(status, body, provider="p", model="m")
    assert type(exc) is cls
    assert exc.status == status and exc.provider == "p" and exc.model == "m"


def test_message_and_code_come_from_the_body():
    exc = error_for_status(400, anthropic_body("invalid_request_error", "max_tokens: 10000 > 4096"))
    assert exc.message == "max_tokens: 10000 > 4096" and exc.code == "invalid_request_error"
    html = error_for_status(502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
    assert "502 Bad Gateway" in html.message


def test_retryable_flags():
    assert error_for_status(429, openai_body("slow", "rate_limit_exceeded")).retryable
    assert not error_for_status(429, openai_body("quota", "insufficient_quota")).retryable
    assert error_for_status(529, "").retryable
    assert not error_for_status(400, "").retryable


def test_stream_error_events_are_classified_by_type():
    assert type(error_for_event({"type": "overloaded_error", "message": "Overloaded"})) is OverloadedError
    assert type(error_for_event({"type": "rate_limit_error", "message": "slow"})) is RateLimitError
    assert type(error_for_event({"message": "oops", "type": "server_error"})) is ServerError
    assert error_for_event({"type": "overloaded_error", "message": "x"}).status is None


def all_error_classes():
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.FailoverClientError)]


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_fields_and_rebuilds_from_args(cls):
    if issubclass(cls, errors.ProviderError):
        exc = cls("went wrong", provider="p", model="m", status=429, request_id="req", retry_after=1.5,
                  body="{}", code="c")
    elif cls is AllProvidersFailedError:
        exc = cls("all failed", attempts=[Attempt("p", "m", "error", 1.0, "RateLimitError", "x", 429)])
    else:
        exc = cls("bad")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is cls and str(again) == str(exc) and vars(again) == vars(exc)
    rebuilt = cls(*exc.args)  # what Celery's JSON result backend does
    assert type(rebuilt) is cls and rebuilt.args == exc.args


def test_stream_interrupted_keeps_partial_output_through_pickle():
    from failover_client import CompletionResponse, TextBlock

    exc = StreamInterruptedError("cut", partial=CompletionResponse("1", "m", [TextBlock("Hel")]), provider="p")
    again = pickle.loads(pickle.dumps(exc))
    assert again.partial_text == "Hel"


KEYS = ["sk-proj-AbCdEf1234567890abcdef", "sk-ant-api03-AbCdEf1234567890", "AIzaSyA1234567890abcdefghijklmnopq",
        "AKIAIOSFODNN7EXAMPLE"]


@pytest.mark.parametrize("key", KEYS)
def test_keys_never_appear_in_str_or_repr(key):
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}})
    exc = error_for_status(401, body, provider="p")
    for text in (str(exc), repr(exc), exc.body, exc.message):
        assert key not in text
    assert "[REDACTED]" in str(exc)


def test_redact_removes_bearer_tokens_query_keys_and_named_secrets():
    text = redact("Authorization: Bearer abc.def-ghi_123 url=https://x/y?key=zzzzzzzzzz&a=1 my-custom-secret",
                  secrets=["my-custom-secret"])
    assert "abc.def-ghi_123" not in text and "zzzzzzzzzz" not in text and "my-custom-secret" not in text
    assert "a=1" in text
    assert redact("a task-force-alpha plan") == "a task-force-alpha plan"


def test_all_providers_failed_lists_every_attempt():
    exc = AllProvidersFailedError(attempts=[Attempt("a", "m1", "error", 1, "RateLimitError", "slow", 429),
                                            Attempt("b", "m2", "error", 2, "ServerError", "down", 500)])
    assert "a/m1: RateLimitError" in str(exc) and "b/m2: ServerError" in str(exc)
