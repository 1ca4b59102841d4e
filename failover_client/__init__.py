"""failover_client: one synchronous client for many LLM providers, with failover.

Importing the package is cheap and does no I/O: names are resolved on first access
(PEP 562), so a web worker that only needs the types never loads requests or the providers.

The package map (each module stands above what it imports; scripts/check_layout.py keeps it so):

    types.py        requests, answers, stream chunks and batch records as dataclasses (JSON both ways)
    errors.py       the error hierarchy; status, error body or stream event -> error class; redaction
    streaming.py    bytes -> frames, pure: SSE, NDJSON, AWS event-stream
    retry.py        RetryPolicy, back-off with jitter, Retry-After, Deadline
    transport.py    the only user of requests: sessions per process, timeouts, errors translated
    provider.py     the Provider contract and HttpProvider, the base of every wire protocol
    health.py       the circuit breaker and its state stores (in memory, Redis)
    tokens.py       local token counts: tiktoken where installed, a heuristic otherwise
    failover.py     triggers, fallbacks, FailoverConfig and FailoverClient
    presets.py      ready-made chains (OpenAI <-> Anthropic, simple failover)
    cache.py        the response cache: keys, MemoryCache, RedisCache, stream replay
    compat.py       OpenAI and Anthropic request/response shapes <-> ours
    web.py          a committed stream relayed as Server-Sent Events or plain text
    providers/      one module per wire protocol, SigV4, and the catalog of named providers
    resilience/     load balancing, hedging, cancel scopes, client-side rate limits
    log/            logging, event hooks, OpenTelemetry spans, usage and budgets, notebook views
    models/         the model registry: CSV data, importers, pricing, equivalents, deprecations
    output/         structured output: an answer's JSON checked against the request's schema
    batch/          provider Batch APIs, the batch runner (threads or Celery), batch embedding
    cli/            the failover-client command, one module per command group
    contrib/        Django, Flask and Celery integrations (each imports its framework)
    testing/        a real local fake provider with scripted faults, and a pytest plugin
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "types": (
        "CompletionRequest", "CompletionResponse", "Message", "Role", "StreamChunk", "Usage", "StopReason",
        "TextBlock", "ImageBlock", "ToolUseBlock", "ToolResultBlock", "ThinkingBlock", "ToolDefinition",
        "ToolChoice", "ThinkingConfig", "ResponseFormat", "ToolCallDelta", "Attempt", "collect", "iter_text",
        "TokenCountRequest", "TokenCountResult", "BatchRequest", "BatchJob", "BatchResult", "BatchStatus",
        "BatchCounts", "BatchResultStatus", "DocumentBlock", "EmbeddingRequest", "EmbeddingResponse",
    ),
    "errors": (
        "FailoverClientError", "InvalidArgumentError", "ProviderError", "RateLimitError", "QuotaExceededError",
        "ServerError", "OverloadedError", "ProviderTimeoutError", "NetworkError", "AuthenticationError",
        "MissingCredentialsError", "InvalidRequestError", "ContextLengthExceededError", "ContentFilteredError",
        "NotSupportedError", "ResponseDecodeError", "ResponseTooLargeError", "StreamInterruptedError",
        "AllProvidersFailedError", "BudgetExceededError", "ModelNotFoundError", "InvalidOutputError",
    ),
    "compat": ("openai_chunks",),
    "retry": ("RetryPolicy",),
    "provider": ("Provider",),
    "models": ("ModelInfo", "UnknownModelError"),
    "log.usage": ("UsageTracker",),
    "log": ("configure_logging",),
    "failover": ("FailoverClient", "FailoverProvider", "FailoverConfig", "FallbackProvider", "FailoverTrigger"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted([*_WHERE, "presets"])

# The library logs through this logger and never configures logging itself (see failover_client.log).
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name == "presets":
        return import_module(".presets", __name__)
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'failover_client' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from . import presets
    from .compat import openai_chunks
    from .errors import (
        AllProvidersFailedError,
        AuthenticationError,
        BudgetExceededError,
        ContentFilteredError,
        ContextLengthExceededError,
        FailoverClientError,
        InvalidArgumentError,
        InvalidOutputError,
        InvalidRequestError,
        MissingCredentialsError,
        ModelNotFoundError,
        NetworkError,
        NotSupportedError,
        OverloadedError,
        ProviderError,
        ProviderTimeoutError,
        QuotaExceededError,
        RateLimitError,
        ResponseDecodeError,
        ResponseTooLargeError,
        ServerError,
        StreamInterruptedError,
    )
    from .failover import FailoverClient, FailoverConfig, FailoverProvider, FailoverTrigger, FallbackProvider
    from .log import configure_logging
    from .log.usage import UsageTracker
    from .models import ModelInfo, UnknownModelError
    from .provider import Provider
    from .retry import RetryPolicy
    from .types import (
        Attempt,
        BatchCounts,
        BatchJob,
        BatchRequest,
        BatchResult,
        BatchResultStatus,
        BatchStatus,
        CompletionRequest,
        CompletionResponse,
        DocumentBlock,
        EmbeddingRequest,
        EmbeddingResponse,
        ImageBlock,
        Message,
        ResponseFormat,
        Role,
        StopReason,
        StreamChunk,
        TextBlock,
        ThinkingBlock,
        ThinkingConfig,
        TokenCountRequest,
        TokenCountResult,
        ToolCallDelta,
        ToolChoice,
        ToolDefinition,
        ToolResultBlock,
        ToolUseBlock,
        Usage,
        collect,
        iter_text,
    )
