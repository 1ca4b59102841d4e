"""The exception hierarchy, and the one table that turns an HTTP error into it.

Design points, each from a bug users hit elsewhere:

* Every exception pickles and unpickles with its fields (Celery result backends pickle them),
  and rebuilds from ``cls(*exc.args)`` alone (Celery's JSON backends do that).
* ``str()``/``repr()`` never show an API key: messages and body excerpts pass through
  :func:`redact` when the exception is made.
* Status codes and provider error codes map to classes in one table (``_WORD_CLASSES`` with
  ``_STATUS_CLASSES``), read by :func:`error_for_status` (an HTTP answer) and
  :func:`error_for_event` (an error inside a 200 stream) alike, for every protocol, so failover
  triggers mean the same thing whichever way an error arrives.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Iterable, Sequence

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
    """Remove every registered secret (see :func:`register_secrets`), every given one, and
    anything that looks like a credential, from ``text``."""
    for secret in (*_registered, *secrets):
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_USERINFO.sub(r"\1" + REDACTED + "@", text)
    return _PREFIXED_SECRETS.sub(r"\1" + REDACTED, _KEY_PATTERNS.sub(REDACTED, text))


# --- redaction by value -------------------------------------------------------------------
# Patterns only find keys of known shapes; a Groq, Mistral, Azure or Cohere key, an AWS secret or
# a short-lived bearer token has none.  So every secret a provider holds is registered here when
# it is resolved, and :func:`redact` (which every error message, body, code, request id and log
# record goes through) removes it by value, whatever its shape and whichever provider's error
# carries it.  Process-wide on purpose: a key echoed into another provider's error is still a key.

_MIN_SECRET = 8  # shorter values cannot be told apart from ordinary words of a message
_MAX_REGISTERED = 256  # rotating bearer tokens are registered as they come: keep the newest
_registered: tuple[str, ...] = ()  # longest first; replaced whole, never mutated: readers need no lock
_newest_first: tuple[str, ...] = ()
_registry_lock = threading.Lock()
_URL_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s?#]+@")


def register_secrets(*secrets: str | None) -> None:
    """Redact these values from every error and log record from now on (once each; the empty
    and the very short are ignored).  Providers call it when they resolve their credentials."""
    global _registered, _newest_first
    fresh = [s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET and s not in _registered]
    if not fresh:
        return
    with _registry_lock:
        _newest_first = (*dict.fromkeys(fresh), *(s for s in _newest_first if s not in fresh))[:_MAX_REGISTERED]
        _registered = tuple(sorted(_newest_first, key=len, reverse=True))  # a secret holding another goes whole


def _redacted(value: str | None) -> str | None:
    return redact(value) if value else value


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
        self.request_id = _redacted(request_id)
        self.retry_after = retry_after
        self.body = redact(body)[:500] if body else body
        self.code = _redacted(code)
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


class ModelNotFoundError(InvalidRequestError):
    """The provider has no such model (unknown, retired, or not deployed there).  Another
    provider may well serve it, so this is a default failover trigger; retrying here is not."""


class NotSupportedError(ProviderError):
    """The provider has no such operation or option (raised before sending)."""


class ResponseDecodeError(ProviderError):
    """The provider answered 2xx with a body that is not what its protocol promises."""

    retryable = True


class ResponseTooLargeError(ResponseDecodeError):
    """An answer (its body, one stream event or line, or what its compression expands to) grew
    past the provider's limit: refused before the bytes are held, so a hostile or broken
    endpoint cannot exhaust memory.  A ResponseDecodeError, so the default triggers fail over."""


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

    def _repr_html_(self) -> str:
        """Jupyter's view: why, then every attempt as a table (all escaped)."""
        from .log.notebook import failure_html

        return failure_html(self)

    def _repr_markdown_(self) -> str:
        from .log.notebook import failure_markdown

        return failure_markdown(self)


class BudgetExceededError(FailoverClientError):
    """A UsageTracker's spending limit is used up: the call was refused before anything was sent.
    ``spent`` and ``budget`` are in US dollars."""

    def __init__(self, message: str = "the budget is spent", *, spent: float | None = None,
                 budget: float | None = None) -> None:
        super().__init__(message)
        self.spent = spent
        self.budget = budget


# --- HTTP status / error body / in-stream error -> exception class: the one table ------------

_STATUS_CLASSES: dict[int, type[ProviderError]] = {
    400: InvalidRequestError, 401: AuthenticationError, 402: QuotaExceededError,
    403: AuthenticationError, 404: ModelNotFoundError, 408: ProviderTimeoutError,
    409: ServerError, 413: InvalidRequestError, 422: InvalidRequestError, 429: RateLimitError,
    498: AuthenticationError, 500: ServerError, 502: ServerError, 503: OverloadedError,
    504: ServerError, 529: OverloadedError,
}
# The words providers and proxies put in an error's ``type``, ``code`` or ``status`` (or AWS's
# x-amzn-errortype header, or a Bedrock stream's :exception-type), lower-cased, and what each
# means.  A word names the class whatever the status: a LiteLLM throttle inside a 200 stream, an
# AWS throttle answered 400, OpenAI's model_not_found answered 400 by the Responses API.
_WORD_CLASSES: dict[str, type[ProviderError]] = {
    # rate limits: OpenAI, Anthropic, Google, AWS, LiteLLM and other proxies
    "rate_limit_exceeded": RateLimitError, "rate_limit_error": RateLimitError, "rate_limit": RateLimitError,
    "ratelimiterror": RateLimitError, "throttling_error": RateLimitError, "throttlingexception": RateLimitError,
    "resource_exhausted": RateLimitError, "too_many_requests": RateLimitError,
    "requests_limit_exceeded": RateLimitError, "tokens_limit_exceeded": RateLimitError,
    # a used-up quota or unpaid bill: another provider may answer, this one will not soon
    "insufficient_quota": QuotaExceededError, "billing_error": QuotaExceededError,
    "quota_exceeded": QuotaExceededError, "billing_hard_limit_reached": QuotaExceededError,
    "budget_exceeded": QuotaExceededError, "servicequotaexceededexception": QuotaExceededError,
    # overloaded or not ready: the provider's capacity, not the request
    "overloaded_error": OverloadedError, "overloaded": OverloadedError, "unavailable": OverloadedError,
    "service_unavailable": OverloadedError, "serviceunavailableexception": OverloadedError,
    "modelnotreadyexception": OverloadedError,
    # server-side failures
    "api_error": ServerError, "server_error": ServerError, "internal_server_error": ServerError,
    "internal": ServerError, "internal_error": ServerError, "internalserverexception": ServerError,
    "modelstreamerrorexception": ServerError, "modelerrorexception": ServerError,
    # timeouts: the generation's own (Cohere's finish_reason TIMEOUT, AWS's 408); a timeout the
    # provider reports from behind its gateway is a server error, as the 504 it comes with is
    "timeout": ProviderTimeoutError, "modeltimeoutexception": ProviderTimeoutError,
    "timeout_error": ServerError, "deadline_exceeded": ServerError,
    # credentials and permissions
    "authentication_error": AuthenticationError, "auth_error": AuthenticationError,
    "invalid_api_key": AuthenticationError, "unauthenticated": AuthenticationError,
    "permission_error": AuthenticationError, "permission_denied": AuthenticationError,
    "accessdeniedexception": AuthenticationError, "unrecognizedclientexception": AuthenticationError,
    "invalidsignatureexception": AuthenticationError, "expiredtokenexception": AuthenticationError,
    # a request the provider will not take as it is
    "invalid_request_error": InvalidRequestError, "invalid_argument": InvalidRequestError,
    "validationexception": InvalidRequestError, "validation_error": InvalidRequestError,
    "bad_request": InvalidRequestError, "bad_request_error": InvalidRequestError,
    "request_too_large": InvalidRequestError, "failed_precondition": InvalidRequestError,
    "context_length_exceeded": ContextLengthExceededError, "string_above_max_length": ContextLengthExceededError,
    "model_context_window_exceeded": ContextLengthExceededError,
    "content_filter": ContentFilteredError, "content_policy_violation": ContentFilteredError,
    "responsibleaipolicyviolation": ContentFilteredError,
    # no such model here (unknown id, retired, not deployed)
    "model_not_found": ModelNotFoundError, "not_found_error": ModelNotFoundError, "not_found": ModelNotFoundError,
    "deploymentnotfound": ModelNotFoundError, "resourcenotfoundexception": ModelNotFoundError,
    "invalid_model": ModelNotFoundError, "model_decommissioned": ModelNotFoundError,
}

# What an error's message (with its code) says, for a class too broad to fail over on: checked in
# order when the words and status gave only InvalidRequestError (or a 403), or nothing at all.
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
# Google answers a bad key with 400 INVALID_ARGUMENT (ErrorInfo reason API_KEY_INVALID).
_AUTH_MARKERS = re.compile(r"API_KEY_INVALID|API key not valid|API key expired", re.IGNORECASE)
# Model-not-found wordings that come without a distinguishing code (docs/protocols-documents-errors.md
# B.0): Bedrock's ValidationException, DeepSeek, OpenRouter, Ollama's and Cohere's plain messages.
_MODEL_MISSING_MARKERS = re.compile(
    r"model identifier is invalid|model not exist|not a valid model id|deploymentnotfound"
    r"|\bmodels?\b[^.\n]{0,160}?(?:not found|does not exist|decommissioned|was removed on"
    r"|no longer available|reached the end of its life)",
    re.IGNORECASE,
)
_QUOTA_MARKERS = re.compile(r"insufficient_quota|billing|exceeded your current quota|credit balance",
                            re.IGNORECASE)
# Only for an error nothing else classified (a bare message inside a stream).
_RATE_MARKERS = re.compile(r"rate limit|too many requests|throttl", re.IGNORECASE)
_OVERLOAD_MARKERS = re.compile(r"overloaded", re.IGNORECASE)
_NARROWING = ((_CONTEXT_MARKERS, ContextLengthExceededError), (_FILTER_MARKERS, ContentFilteredError),
              (_AUTH_MARKERS, AuthenticationError), (_MODEL_MISSING_MARKERS, ModelNotFoundError))
_UNCLASSIFIED = (*_NARROWING, (_QUOTA_MARKERS, QuotaExceededError), (_RATE_MARKERS, RateLimitError),
                 (_OVERLOAD_MARKERS, OverloadedError))
# Google's hint is a google.rpc.RetryInfo detail in the body, a proto Duration such as "37s" or "0.5s".
_RETRY_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')


def classify(status: int | None, words: Sequence[str], message: str) -> type[ProviderError]:
    """The class of an error from its HTTP status (None inside a 200 stream), the words of its
    type/code/status fields, and its message.

    Words decide first: the first that names a class wins and a later one may only narrow it to a
    subclass (OpenAI's type ``invalid_request_error`` with code ``context_length_exceeded``).  A
    numeric word ("429", Google's ``code: 429``) stands for the status when there was none.  The
    status then decides, narrows what the words said (``server_error`` answered 503 is
    overload), or overrides the generic ``invalid_request_error``.  Last, the message narrows a
    class too broad to act on."""
    cls: type[ProviderError] | None = None
    for word in words:
        if status is None and word.isdigit() and 400 <= int(word) < 600:
            status = int(word)
        named = _WORD_CLASSES.get(word)
        if named is not None and (cls is None or issubclass(named, cls)):
            cls = named
    by_status = None
    if status is not None:
        by_status = _STATUS_CLASSES.get(status) or (ServerError if status >= 500 else InvalidRequestError)
    if by_status is not None and (cls is None or cls is InvalidRequestError or issubclass(by_status, cls)):
        cls = by_status  # a generic "invalid request" word says less than a 503 or a 401
    if cls is None:  # a bare message: say what it says, else the provider failed
        return next((found for marker, found in _UNCLASSIFIED if marker.search(message)), ServerError)
    text = " ".join((*words, message))
    if cls is InvalidRequestError or status == 403:
        return next((found for marker, found in _NARROWING if marker.search(text)), cls)
    if cls is RateLimitError and "resource_exhausted" not in words and _QUOTA_MARKERS.search(text):
        return QuotaExceededError  # Google words every per-minute limit as "exceeded your current quota"
    return cls


def _word(value: Any) -> str | None:
    """An error field as a table word: AWS's ``ThrottlingException:http://...`` and
    ``namespace#Type`` forms cut to the type; numbers as their digits."""
    if value is None or isinstance(value, (dict, list)):
        return None
    word = str(value).strip().split(":", 1)[0].rpartition("#")[2].lower()
    return word or None


def _parse(body: str) -> tuple[str, str | None, list[str]]:
    """(message, the code to report, every word to classify by) from any provider's error JSON;
    the raw excerpt when it is not JSON.

    Covers OpenAI/Azure ``{"error": {message, type, code}}`` (Azure's ``innererror.code`` too),
    Anthropic ``{"type": "error", "error": {type, message}}``, Google ``{"error": {code, message,
    status}}``, Cohere/Bedrock ``{"message": ...}``, Mistral's top-level ``type``/``code`` and
    Ollama ``{"error": "..."}``.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return _html_title(body) or body.strip()[:200], None, []
    if isinstance(data, list) and data:
        data = data[0]  # Google sometimes wraps the error in a one-element list
    if not isinstance(data, dict):
        return str(data)[:200], None, []
    err = data.get("error", data)
    if isinstance(err, str):
        return err, None, []
    if not isinstance(err, dict):
        return str(err)[:200], None, []
    message = err.get("message") or data.get("message") or err.get("Message") or data.get("detail") or ""
    if not isinstance(message, str):  # FastAPI-style hosts send {"detail": [{...}, ...]}
        message = json.dumps(message)[:300]
    inner = err.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    fields = [err.get("code"), inner_code, err.get("status"), err.get("type"), data.get("__type"),
              data.get("code"), data.get("type")]
    words = [w for w in map(_word, fields) if w is not None and w not in ("error", "none", "null")]
    code = err.get("code")
    if isinstance(code, int) and isinstance(err.get("status"), str):
        code = err["status"]  # Google: the numeric code repeats the HTTP status, "status" names the error
    code = code or err.get("status") or err.get("type") or data.get("__type")
    if inner_code:
        code = f"{code} {inner_code}"
    return str(message), None if code is None else str(code), words


def parse_error_body(body: str) -> tuple[str, str | None]:
    """(message, code) from any provider's error JSON; the raw excerpt when it is not JSON."""
    message, code, _ = _parse(body)
    return message, code


def _html_title(body: str) -> str | None:
    match = re.search(r"<title>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    return f"non-JSON error page: {match.group(1).strip()}" if match else None


def error_from_body(status: int | None, body: str, *, code: str | None = None, **fields: Any) -> ProviderError:
    """The exception for an error body, classified by :func:`classify`.  ``status`` is None for
    an error inside a 200 stream (the exception's ``status`` is None then too); ``code`` is the
    error code when it travels outside the body (AWS's x-amzn-errortype header, a Bedrock
    stream's :exception-type)."""
    message, body_code, words = _parse(body)
    outside = _word(code)
    if outside is not None:
        words.append(outside)
    cls = classify(status, words, message)
    if fields.get("retry_after") is None:
        delay = _RETRY_DELAY.search(body)
        if delay:
            fields["retry_after"] = float(delay.group(1))
    default = f"HTTP {status}" if status is not None else "the provider reported an error in the stream"
    return cls(message or default, status=status, body=body, code=body_code or code, **fields)


def error_for_status(status: int, body: str, *, code: str | None = None, **fields: Any) -> ProviderError:
    """The exception for a non-2xx answer (see :func:`classify`)."""
    return error_from_body(status, body, code=code, **fields)


def error_for_event(error: Any, **fields: Any) -> ProviderError:
    """The exception for an error reported inside a 200 stream (Anthropic ``event: error``,
    OpenAI ``data: {"error": ...}``, Gemini's error object, Ollama's error line): classified by
    the same table as an HTTP answer, its numeric code standing for the status."""
    return error_from_body(None, json.dumps({"error": error}), **fields)
