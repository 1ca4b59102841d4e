"""Helpers the tests share: providers pointed at the fake server, and a short request."""

from failover_client import CompletionRequest, Message
from failover_client.providers import AnthropicProvider, OpenAIProvider

PROTOCOLS = {  # protocol name (as the fake server knows it) -> provider class, one line each
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
}


def make_provider(server, name, protocol, **options):
    """A provider of ``protocol`` talking to the fake server's route ``name``."""
    options.setdefault("api_key", "sk-test-key-0123456789")
    return PROTOCOLS[protocol](base_url=server.base_url(name, protocol), name=name, **options)


def ask(text="Hello", model="gpt-4o", **fields):
    return CompletionRequest(model=model, messages=[Message.user(text)], **fields)
