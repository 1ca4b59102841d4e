"""Provider classes, one module per wire protocol, imported on first use."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_WHERE = {  # class name -> module, one line per provider class
    "OpenAIProvider": "openai",
    "OpenAIResponsesProvider": "openai_responses",
    "AnthropicProvider": "anthropic",
    "GeminiProvider": "gemini",
    "VertexProvider": "vertex",
    "BedrockProvider": "bedrock",
    "CohereProvider": "cohere",
    "OllamaProvider": "ollama",
    "AzureOpenAIProvider": "azure",
    "names": "registry",
    "create": "registry",
    "from_env": "registry",
    "resolve": "registry",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'failover_client.providers' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


if TYPE_CHECKING:
    from .anthropic import AnthropicProvider
    from .openai import OpenAIProvider
    from .registry import create, from_env, names, resolve
