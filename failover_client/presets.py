"""Ready-made failover chains for the common cases."""

from __future__ import annotations

from .failover import FailoverClient, FailoverConfig, FallbackProvider
from .provider import Provider


def __getattr__(name: str) -> dict[str, str]:
    """``OPENAI_TO_ANTHROPIC`` and ``ANTHROPIC_TO_OPENAI``, computed from the registry when read
    (see :mod:`failover_client.models.equivalents`), so they never point at a retired model."""
    from .models.equivalents import mapping

    if name == "OPENAI_TO_ANTHROPIC":
        return mapping("openai", "anthropic")
    if name == "ANTHROPIC_TO_OPENAI":
        return mapping("anthropic", "openai")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def simple_failover(primary: Provider, *fallbacks: Provider) -> FailoverClient:
    """Primary then fallbacks in order, the same model name for each, default triggers."""
    config = FailoverConfig(primary.name, primary)
    for index, fallback in enumerate(fallbacks, start=1):
        name = fallback.name if fallback.name not in config.names() else f"{fallback.name}-{index}"
        config.add_fallback(FallbackProvider(name, fallback))
    return FailoverClient(config)


def _cross_vendor(primary: Provider, fallback: Provider, source: str, target: str) -> FailoverClient:
    """``primary`` then ``fallback``, every current ``source`` chat model mapped to its registry
    equivalent at ``target``, and any other model sent as a mid-tier ``target`` model."""
    from .models.equivalents import default_model, mapping

    entry = FallbackProvider(fallback.name, fallback, mapping(source, target), default_model=default_model(target))
    return FailoverClient(FailoverConfig(primary.name, primary).add_fallback(entry))


def openai_to_anthropic(openai_api_key: str | None = None, anthropic_api_key: str | None = None, *,
                        openai_base_url: str | None = None, anthropic_base_url: str | None = None) -> FailoverClient:
    """OpenAI first, Anthropic when OpenAI is rate-limited or down (keys default to the environment,
    addresses to the vendors' own; pass a base URL to go through a proxy)."""
    from .providers.anthropic import AnthropicProvider
    from .providers.openai import OpenAIProvider

    return _cross_vendor(OpenAIProvider(openai_api_key, base_url=openai_base_url),
                         AnthropicProvider(anthropic_api_key, base_url=anthropic_base_url), "openai", "anthropic")


def anthropic_to_openai(anthropic_api_key: str | None = None, openai_api_key: str | None = None, *,
                        anthropic_base_url: str | None = None, openai_base_url: str | None = None) -> FailoverClient:
    """Anthropic first, OpenAI when Anthropic is rate-limited, overloaded or down."""
    from .providers.anthropic import AnthropicProvider
    from .providers.openai import OpenAIProvider

    return _cross_vendor(AnthropicProvider(anthropic_api_key, base_url=anthropic_base_url),
                         OpenAIProvider(openai_api_key, base_url=openai_base_url), "anthropic", "openai")
