"""The exception hierarchy, and the one table that turns an HTTP error into it.

Design points, each from a bug users hit elsewhere:

* Every exception pickles and unpickles with its fields (Celery result backends pickle them),
  and rebuilds from ``cls(*exc.args)`` alone (Celery's JSON backends do that).
* ``str()``/``repr()`` never show an API key: messages and body excerpts pass through
  :func:`redact` when the exception is made.
* Status codes and provider error codes map to classes in :func:`error_for_status`, the same
  for every protocol, so failover triggers mean the same thing everywhere.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

_KEY_PATTERNS = re.compile(
    r"\bsk-[A-Za-z0-9_\-*.]{6,}"  # OpenAI / Anthropic / DeepSeek style keys, incl. masked echoes
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}"  # AWS access key ids
    r"|ya29\.[0-9A-Za-z_\-]{10,}"  # Google OAuth access tokens
)
_PREFIXED_SECRETS = re.compile(
    r"([Bb]earer\s+|[?&;](?:key|api_key|apikey|api-key|token|access_token)=)[A-Za-z0-9._~+/=\-]{8,}"
)
REDACTED = "[REDACTED]"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove anything that looks like a credential, and every given secret, from ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _PREFIXED_SECRETS.sub(r"\1" + REDACTED, _KEY_PATTERNS.sub(REDACTED, text))


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls)
    BaseException.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class FailoverClientError(Exception):
    """The base of every exception this library raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class InvalidArgumentError(FailoverClientError, ValueError):
    """A request or configuration was malformed; raised before anything is sent."""


class ProviderError(FailoverClientError):
    """A provider refused or failed a request.

    ``retryable`` says whether sending the same request to the same provider again may help;
    failover to another provider is decided by triggers, not by this flag.
    """

    retryable = False

    def __init__(
        self,
        message: str = "",
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = redact(body)[:500] if body else body
        self.code = code
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        where = " ".join(p for p in (self.provider, f"({self.model})" if self.model else None) if p)
        status = f"HTTP {self.status}" if self.status else None
        return ": ".join(p for p in (where, status, self.message) if p)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, model={self.model!r}, "
                f"status={self.status!r}, retry_after={self.retry_after!r})")


class RateLimitError(ProviderError):
    retryable = True


class QuotaExceededError(RateLimitError):
    """429 ``insufficient_quota`` or 402 billing: another provider may answer, this one will not."""

    retryable = False


class ServerError(ProviderError):
    retryable = True


class OverloadedError(ServerError):
    pass


class ProviderTimeoutError(ProviderError):
    retryable = True


class NetworkError(ProviderError):
    retryable = True


class AuthenticationError(ProviderError):
    pass


class MissingCredentialsError(AuthenticationError):
    """No key was given and the customary environment variable is unset."""


class InvalidRequestError(ProviderError):
    pass


class ContextLengthExceededError(InvalidRequestError):
    pass


class ContentFilteredError(InvalidRequestError):
    pass


class NotSupportedError(ProviderError):
    """The provider has no such operation or option (raised before sending)."""


class ResponseDecodeError(ProviderError):
    """The provider answered 2xx with a body that is not what its protocol promises."""

    retryable = True


class InvalidOutputError(ResponseDecodeError):
    """A structured-output answer (ResponseFormat) that is not JSON, or not JSON of the schema:
    raised by ``CompletionResponse.parsed``, and a failover trigger of its own when opted in
    (``FailoverTrigger.INVALID_OUTPUT``)."""


class StreamInterruptedError(ProviderError):
    """A stream failed after output reached the caller; ``partial`` holds what arrived."""

    def __init__(self, message: str = "", *, partial: Any = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.partial = partial

    @property
    def partial_text(self) -> str:
        return self.partial.text if self.partial is not None else ""


class AllProvidersFailedError(FailoverClientError):
    """Every provider in the chain failed; ``attempts`` lists each try, the last error is the cause."""

    def __init__(self, message: str = "all providers failed", *, attempts: list[Any] | None = None) -> None:
        super().__init__(message)
        self.attempts = list(attempts or [])

    def __str__(self) -> str:
        tried = "; ".join(
            f"{a.provider}/{a.model}: {a.error_type or a.outcome}" + (f" ({a.error})" if a.error else "")
            for a in self.attempts
        )
        return f"{self.args[0]}: {tried}" if tried else str(self.args[0])


class BudgetExceededError(FailoverClientError):
    """A UsageTracker's spending limit is used up: the call was refused before anything was sent.
    ``spent`` and ``budget`` are in US dollars."""

    def __init__(self, message: str = "the budget is spent", *, spent: float | None = None,
                 budget: float | None = None) -> None:
        super().__init__(message)
        self.spent = spent
        self.budget = budget


# --- HTTP status + body -> exception class --------------------------------------------------

_CONTEXT_MARKERS = re.compile(
    r"context_length_exceeded|context length|context window|prompt is too long|input is too long"
    r"|too many (input )?tokens|maximum number of tokens|exceeds the maximum|input too long"
    r"|reduce the length|string_above_max_length|model_context_window_exceeded|input tokens exceed",
    re.IGNORECASE,
)
_FILTER_MARKERS = re.compile(
    r"content_filter|content_policy|content management policy|responsibleaipolicyviolation"
    r"|content filtering policy|safety system|prohibited_content|blocked by|guardrail",
    re.IGNORECASE,
)
_QUOTA_MARKERS = re.compile(r"insufficient_quota|billing|exceeded your current quota|credit balance",
                            re.IGNORECASE)
# Google answers a bad key with 400 INVALID_ARGUMENT (ErrorInfo reason API_KEY_INVALID).
_AUTH_MARKERS = re.compile(r"API_KEY_INVALID|API key not valid|API key expired", re.IGNORECASE)
# Google's hint is a google.rpc.RetryInfo detail in the body, a proto Duration such as "37s" or "0.5s".
_RETRY_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')

_STATUS_CLASSES: dict[int, type[ProviderError]] = {
    400: InvalidRequestError, 401: AuthenticationError, 402: QuotaExceededError,
    403: AuthenticationError, 404: InvalidRequestError, 408: ProviderTimeoutError,
    409: ServerError, 413: InvalidRequestError, 422: InvalidRequestError, 429: RateLimitError,
    498: AuthenticationError, 500: ServerError, 502: ServerError, 503: OverloadedError,
    504: ServerError, 529: OverloadedError,
}
# Error codes that name the class whatever the status: AWS sends its exception type in the
# x-amzn-errortype header, and a throttle or an unready model is not always a 429/503.
_CODE_CLASSES: dict[str, type[ProviderError]] = {
    "throttlingexception": RateLimitError,
    "serviceunavailableexception": OverloadedError,
    "modelnotreadyexception": OverloadedError,
    "modeltimeoutexception": ProviderTimeoutError,
    "accessdeniedexception": AuthenticationError,
    "unrecognizedclientexception": AuthenticationError,
    "invalidsignatureexception": AuthenticationError,
    "expiredtokenexception": AuthenticationError,
}


def parse_error_body(body: str) -> tuple[str, str | None]:
    """(message, code) from any provider's error JSON; the raw excerpt when it is not JSON.

    Covers OpenAI/Azure ``{"error": {message, type, code}}``, Anthropic
    ``{"type": "error", "error": {type, message}}``, Google ``{"error": {code, message, status}}``,
    Cohere/Bedrock ``{"message": ...}`` and Ollama ``{"error": "..."}``.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return _html_title(body) or body.strip()[:200], None
    if isinstance(data, list) and data:
        data = data[0]  # Google sometimes wraps the error in a one-element list
    if not isinstance(data, dict):
        return str(data)[:200], None
    err = data.get("error", data)
    if isinstance(err, str):
        return err, None
    if not isinstance(err, dict):
        return str(err)[:200], None
    message = err.get("message") or data.get("message") or err.get("Message") or data.get("detail") or ""
    if not isinstance(message, str):  # FastAPI-style hosts send {"detail": [{...}, ...]}
        message = json.dumps(message)[:300]
    code = err.get("code")
    if isinstance(code, int) and isinstance(err.get("status"), str):
        code = err["status"]  # Google: the numeric code repeats the HTTP status, "status" names the error
    code = code or err.get("status") or err.get("type") or data.get("__type")
    inner = err.get("innererror")
    if isinstance(inner, dict) and inner.get("code"):
        code = f"{code} {inner['code']}"
    return str(message), None if code is None else str(code)


def _html_title(body: str) -> str | None:
    match = re.search(r"<title>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    return f"non-JSON error page: {match.group(1).strip()}" if match else None


def error_for_status(status: int, body: str, *, code: str | None = None, **fields: Any) -> ProviderError:
    """The exception for a non-2xx answer: the status picks a class, then the provider's error
    code or message refines it (context length, content filter, exhausted quota).  ``code`` is
    the error code when it travels outside the body (AWS's x-amzn-errortype header)."""
    message, body_code = parse_error_body(body)
    code = body_code or code
    cls = (_CODE_CLASSES.get((code or "").lower()) or _STATUS_CLASSES.get(status)
           or (ServerError if status >= 500 else InvalidRequestError))
    marker_text = f"{code or ''} {message}"
    if cls is InvalidRequestError or status == 403:
        if _CONTEXT_MARKERS.search(marker_text):
            cls = ContextLengthExceededError
        elif _FILTER_MARKERS.search(marker_text):
            cls = ContentFilteredError
        elif _AUTH_MARKERS.search(marker_text):
            cls = AuthenticationError
    elif cls is RateLimitError and code != "RESOURCE_EXHAUSTED" and _QUOTA_MARKERS.search(marker_text):
        cls = QuotaExceededError  # Google words every per-minute limit as "exceeded your current quota"
    if cls is ServerError and code and "overloaded" in code.lower():
        cls = OverloadedError
    if fields.get("retry_after") is None:
        delay = _RETRY_DELAY.search(body)
        if delay:
            fields["retry_after"] = float(delay.group(1))
    return cls(message or f"HTTP {status}", status=status, body=body, code=code, **fields)


def error_for_event(error: Any, **fields: Any) -> ProviderError:
    """The exception for an error reported inside a 200 stream (Anthropic ``event: error``,
    OpenAI ``data: {"error": ...}``): classified by its type/code as if it had a status."""
    body = json.dumps({"error": error})
    message, code = parse_error_body(body)
    kind = (code or "").lower()
    http_code = error.get("code") if isinstance(error, dict) else None
    if isinstance(http_code, int) and 400 <= http_code < 600:
        status = http_code  # Google's error objects carry the HTTP status they stand for
    elif "overloaded" in kind:
        status = 529
    elif "rate_limit" in kind or "resource_exhausted" in kind or "throttl" in kind:
        status = 429
    elif "invalid_request" in kind or "validation" in kind:
        status = 400
    elif "authentication" in kind or "permission" in kind:
        status = 401
    else:
        status = 500
    exc = error_for_status(status, body, **fields)
    exc.status = None  # the HTTP status was 200; the class carries the meaning
    return exc
