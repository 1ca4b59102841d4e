"""Ready-made failover chains for the common cases."""

from __future__ import annotations

from .failover import FailoverClient, FailoverConfig, FallbackProvider
from .provider import Provider

# Chat models of one vendor mapped to the closest of the other, for cross-vendor failover.
OPENAI_TO_ANTHROPIC = {
    "gpt-4o": "claude-sonnet-4-5",
    "gpt-4.1": "claude-sonnet-4-5",
    "gpt-5": "claude-opus-4-5",
    "gpt-4o-mini": "claude-haiku-4-5",
    "gpt-4.1-mini": "claude-haiku-4-5",
    "gpt-5-mini": "claude-haiku-4-5",
}
ANTHROPIC_TO_OPENAI = {
    "claude-sonnet-4-5": "gpt-4.1",
    "claude-opus-4-5": "gpt-5",
    "claude-haiku-4-5": "gpt-4.1-mini",
}


def simple_failover(primary: Provider, *fallbacks: Provider) -> FailoverClient:
    """Primary then fallbacks in order, the same model name for each, default triggers."""
    config = FailoverConfig(primary.name, primary)
    for index, fallback in enumerate(fallbacks, start=1):
        name = fallback.name if fallback.name not in config.names() else f"{fallback.name}-{index}"
        config.add_fallback(FallbackProvider(name, fallback))
    return FailoverClient(config)


def _cross_vendor(primary: Provider, fallback: Provider, mapping: dict[str, str]) -> FailoverClient:
    entry = FallbackProvider(fallback.name, fallback)
    for model, mapped in mapping.items():
        entry.with_model_mapping(model, mapped)
    return FailoverClient(FailoverConfig(primary.name, primary).add_fallback(entry))


def openai_to_anthropic(openai_api_key: str | None = None, anthropic_api_key: str | None = None) -> FailoverClient:
    """OpenAI first, Anthropic when OpenAI is rate-limited or down (keys default to the environment)."""
    from .providers.anthropic import AnthropicProvider
    from .providers.openai import OpenAIProvider

    return _cross_vendor(OpenAIProvider(openai_api_key), AnthropicProvider(anthropic_api_key), OPENAI_TO_ANTHROPIC)


def anthropic_to_openai(anthropic_api_key: str | None = None, openai_api_key: str | None = None) -> FailoverClient:
    """Anthropic first, OpenAI when Anthropic is rate-limited, overloaded or down."""
    from .providers.anthropic import AnthropicProvider
    from .providers.openai import OpenAIProvider

    return _cross_vendor(AnthropicProvider(anthropic_api_key), OpenAIProvider(openai_api_key), ANTHROPIC_TO_OPENAI)
