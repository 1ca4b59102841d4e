"""Routing by error kind (design.md §4.11): a context-length error goes to bigger-context models,
a content-filter refusal to another vendor, each instead of the rest of the chain."""

import pytest

from failover_client import (
    AllProvidersFailedError,
    ContextLengthExceededError,
    FailoverClient,
    FallbackProvider,
    InvalidArgumentError,
    collect,
)
from failover_client.testing import Fault, Reply

from chains import chain, link, outcomes, served
from support import ask, make_provider


def served_by(config):
    return FailoverClient(config).complete(ask()).provider


def test_context_length_goes_to_its_own_fallbacks_with_their_models(fake_provider):
    fake_provider.script("primary", Fault.context_length())
    fake_provider.script("long", Reply(text="read it all"))
    config = chain(fake_provider, "primary", "backup").on_context_length(
        link(fake_provider, "long").with_model_mapping("gpt-4o", "gpt-4.1"))
    response = FailoverClient(config).complete(ask(model="gpt-4o"))
    assert response.text == "read it all" and response.provider == "long"
    assert outcomes(response.attempts) == [("primary", "error", "ContextLengthExceededError"), ("long", "ok", None)]
    assert served(fake_provider) == ["primary", "long"]  # not the rest of the chain
    assert fake_provider.requests_for("long")[0].body["model"] == "gpt-4.1"


def test_the_route_is_followed_in_order_and_reported_when_exhausted(fake_provider):
    for name in ("primary", "long", "longer"):
        fake_provider.script(name, Fault.context_length())
    config = chain(fake_provider, "primary", "backup").on_context_length(
        link(fake_provider, "long"), link(fake_provider, "longer"))
    with pytest.raises(AllProvidersFailedError) as info:
        FailoverClient(config).complete(ask())
    assert [a.provider for a in info.value.attempts] == ["primary", "long", "longer"]
    assert isinstance(info.value.__cause__, ContextLengthExceededError)
    fake_provider.script("primary", Fault.context_length())
    fake_provider.script("long", Fault.context_length())
    assert FailoverClient(config).complete(ask()).provider == "longer"


def test_a_fallback_hitting_the_limit_routes_too(fake_provider):
    fake_provider.script("primary", Fault.status(503))
    fake_provider.script("backup", Fault.context_length())
    config = chain(fake_provider, "primary", "backup", "other").on_context_length(link(fake_provider, "long"))
    response = FailoverClient(config).complete(ask())
    assert outcomes(response.attempts) == [("primary", "error", "OverloadedError"),
                                           ("backup", "error", "ContextLengthExceededError"), ("long", "ok", None)]


def test_without_a_route_a_context_length_error_is_raised_as_before(fake_provider):
    fake_provider.script("primary", Fault.context_length())
    with pytest.raises(ContextLengthExceededError) as info:
        FailoverClient(chain(fake_provider, "primary", "backup")).complete(ask())
    assert [a.provider for a in info.value.attempts] == ["primary"]


def test_content_filter_errors_and_refusals_go_to_their_own_fallbacks(fake_provider):
    fake_provider.script("primary", Fault.content_filter(), Reply(text="", refusal="I can't help with that."))
    fake_provider.set_default("vendor2", Reply(text="here you go"))
    config = chain(fake_provider, "primary", "backup").on_content_filter(link(fake_provider, "vendor2", "anthropic"))
    client = FailoverClient(config)
    for _ in range(2):
        response = client.complete(ask())
        assert response.provider == "vendor2" and response.text == "here you go"
        assert outcomes(response.attempts)[0] == ("primary", "error", "ContentFilteredError")
    assert "backup" not in served(fake_provider)


def test_a_filter_on_the_context_route_switches_to_the_filter_route(fake_provider):
    fake_provider.script("primary", Fault.context_length())
    fake_provider.script("long", Fault.content_filter())
    config = (chain(fake_provider, "primary", "backup")
              .on_context_length(link(fake_provider, "long"))
              .on_content_filter(link(fake_provider, "vendor2")))
    assert served_by(config) == "vendor2"
    assert served(fake_provider) == ["primary", "long", "vendor2"]


def test_streams_route_before_the_first_output(fake_provider):
    fake_provider.script("primary", Fault.context_length())
    fake_provider.script("long", Reply(text="streamed from the long one"))
    config = chain(fake_provider, "primary", "backup").on_context_length(link(fake_provider, "long"))
    chunks = list(FailoverClient(config).complete_stream(ask(stream=True)))
    response = collect(chunks)
    assert response.text == "streamed from the long one"
    assert {c.provider for c in chunks} == {"long"}


def test_routed_providers_have_circuit_breakers_too(fake_provider):
    fake_provider.set_default("primary", Fault.context_length())
    fake_provider.set_default("long", Fault.status(500))
    config = (chain(fake_provider, "primary", "backup")
              .on_context_length(link(fake_provider, "long"), link(fake_provider, "longer"))
              .with_circuit_breaker(failure_threshold=2))
    client = FailoverClient(config)
    for _ in range(3):
        response = client.complete(ask())
    assert outcomes(response.attempts) == [("primary", "error", "ContextLengthExceededError"),
                                           ("long", "skipped", "CircuitOpen"), ("longer", "ok", None)]
    assert served(fake_provider).count("long") == 2


def test_route_configuration_is_checked(fake_provider):
    config = chain(fake_provider, "primary", "backup")
    with pytest.raises(InvalidArgumentError, match="FallbackProvider"):
        config.on_context_length(make_provider(fake_provider, "long", "openai"))
    with pytest.raises(InvalidArgumentError, match="'backup' already names another provider"):
        config.on_content_filter(link(fake_provider, "backup"))
    config.on_content_filter(FallbackProvider("backup", config.fallbacks[0].provider))  # the same provider: fine
    config.on_context_length(link(fake_provider, "long"))
    config.on_context_length()
    assert "context_length" not in config.routes
