"""failover_client: one synchronous client for many LLM providers, with failover.

Importing the package is cheap and does no I/O: names are resolved on first access
(PEP 562), so a web worker that only needs the types never loads requests or the providers.
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
        "BatchCounts", "BatchResultStatus",
    ),
    "errors": (
        "FailoverClientError", "InvalidArgumentError", "ProviderError", "RateLimitError", "QuotaExceededError",
        "ServerError", "OverloadedError", "ProviderTimeoutError", "NetworkError", "AuthenticationError",
        "MissingCredentialsError", "InvalidRequestError", "ContextLengthExceededError", "ContentFilteredError",
        "NotSupportedError", "ResponseDecodeError", "StreamInterruptedError", "AllProvidersFailedError",
        "BudgetExceededError",
        "ModelNotFoundError",
    ),
    "retry": ("RetryPolicy",),
    "provider": ("Provider",),
    "models": ("ModelInfo", "UnknownModelError"),
    "usage": ("UsageTracker",),
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
    from .errors import (
        AllProvidersFailedError,
        AuthenticationError,
        BudgetExceededError,
        ContentFilteredError,
        ContextLengthExceededError,
        FailoverClientError,
        InvalidArgumentError,
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
        ServerError,
        StreamInterruptedError,
    )
    from .failover import FailoverClient, FailoverConfig, FailoverProvider, FailoverTrigger, FallbackProvider
    from .log import configure_logging
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
    from .usage import UsageTracker
