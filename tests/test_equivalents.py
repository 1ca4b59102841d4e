"""Cross-vendor equivalents from the registry, the presets built on them, and FallbackProvider's
default model.  The chains talk to the fake provider server on 127.0.0.1."""

from datetime import date

import pytest

from failover_client import models, presets
from failover_client.errors import InvalidArgumentError
from failover_client.failover import FailoverClient, FailoverConfig, FallbackProvider
from failover_client.models import ModelInfo, Registry, UnknownModelError
from failover_client.models.equivalents import chat_models, default_model, equivalent, mapping
from failover_client.testing import FakeProviderServer, Fault
from tests.support import ask, make_provider

FULL = frozenset({"tools", "vision", "streaming", "json_schema", "thinking"})


def row(provider, model, price, window=200_000, capabilities=FULL, deprecation=None):
    return ModelInfo(provider, model, context_window=window, input_price=price, output_price=price * 5,
                     capabilities=frozenset(capabilities), deprecation_date=deprecation)


def live(provider, model):
    found = models.find(model, provider=provider)
    return found is not None and found.provider == provider and not found.retired()


@pytest.fixture(scope="module")
def server():
    with FakeProviderServer() as fake:
        yield fake


@pytest.mark.parametrize("source, target, build", [
    ("openai", "anthropic", lambda s: presets.openai_to_anthropic(
        "sk-o-123456789", "sk-a-123456789",
        openai_base_url=s.base_url("primary", "openai"), anthropic_base_url=s.base_url("fallback", "anthropic"))),
    ("anthropic", "openai", lambda s: presets.anthropic_to_openai(
        "sk-a-123456789", "sk-o-123456789",
        anthropic_base_url=s.base_url("primary", "anthropic"), openai_base_url=s.base_url("fallback", "openai"))),
])
def test_every_current_chat_model_fails_over_to_a_live_model_of_the_other_vendor(server, source, target, build):
    client = build(server)
    current = chat_models(source)
    assert len(current) >= 10
    with client:
        for info in current:
            server.script("primary", Fault.overloaded())
            before = len(server.requests_for("fallback"))
            response = client.complete(ask(model=info.model))
            sent = server.requests_for("fallback")[before]
            assert response.provider == target, info.model
            assert live(target, sent.body["model"]), (info.model, sent.body["model"])
            assert response.attempts[-1].model == sent.body["model"]


def test_preset_maps_cover_every_current_model_and_name_only_live_ones():
    openai_map = presets.OPENAI_TO_ANTHROPIC
    anthropic_map = presets.ANTHROPIC_TO_OPENAI
    unmapped = {info.model for info in chat_models("openai")} - set(openai_map)
    # only models with a capability no Anthropic model has (audio) are left to the default model
    assert unmapped and all(models.lookup(name).supports("audio_out") for name in unmapped)
    assert {info.model for info in chat_models("anthropic")} <= set(anthropic_map)
    assert all(live("anthropic", target) for target in openai_map.values())
    assert all(live("openai", target) for target in anthropic_map.values())
    assert "claude-sonnet-4-5" not in openai_map.values()  # retired 2026-11-30 per the registry
    with pytest.raises(AttributeError):
        presets.NO_SUCH_MAP  # noqa: B018


def test_an_unmapped_model_goes_to_the_fallback_as_its_default_model(server):
    config = FailoverConfig("primary", make_provider(server, "primary", "openai")).add_fallback(
        FallbackProvider("fallback", make_provider(server, "fallback", "anthropic"),
                         {"gpt-4o": "claude-haiku-5-5"}, default_model="claude-sonnet-5-5"))
    for model, expected in (("gpt-4o", "claude-haiku-5-5"), ("gpt-9-unreleased", "claude-sonnet-5-5")):
        server.script("primary", Fault.overloaded())
        before = len(server.requests_for("fallback"))
        FailoverClient(config).complete(ask(model=model))
        assert server.requests_for("fallback")[before].body["model"] == expected


def test_the_preset_fallback_sends_unknown_models_as_a_live_mid_tier_model():
    client = presets.openai_to_anthropic("sk-o-123456789", "sk-a-123456789")
    fallback = client.config.fallbacks[0]
    assert fallback.default_model == default_model("anthropic")
    assert live("anthropic", fallback.model_for("gpt-9-unreleased"))


def test_price_tier_and_kept_capabilities_choose_the_closest():
    registry = Registry([
        row("a", "big", 10.0), row("a", "mid", 2.0), row("a", "small", 0.2),
        row("b", "b-big", 8.0), row("b", "b-mid", 3.0), row("b", "b-mid-text-only", 2.0, capabilities={"tools"}),
        row("b", "b-small", 0.25),
    ])
    pick = {name: equivalent(name, "b", registry=registry).model for name in ("big", "mid", "small")}
    assert pick == {"big": "b-big", "mid": "b-mid", "small": "b-small"}  # vision and thinking kept


def test_retired_models_are_never_chosen_and_deprecated_ones_only_last():
    registry = Registry([
        row("a", "src", 2.0),
        row("b", "exact-but-retired", 2.0, deprecation="2026-11-30"),
        row("b", "exact-but-going", 2.0, deprecation="2027-01-14"),
        row("b", "pricier-and-staying", 5.0),
    ])
    assert equivalent("src", "b", registry=registry, today=date(2026, 12, 4)).model == "pricier-and-staying"
    assert equivalent("src", "b", registry=Registry([row("a", "src", 2.0),
                                                      row("b", "exact-but-going", 2.0, deprecation="2027-01-14")]),
                      today=date(2026, 12, 4)).model == "exact-but-going"
    only_retired = Registry([row("a", "src", 2.0), row("b", "gone", 2.0, deprecation="2026-01-01")])
    assert equivalent("src", "b", registry=only_retired, today=date(2026, 12, 4)) is None
    assert mapping("a", "b", registry=only_retired, today=date(2026, 12, 4)) == {}


def test_a_window_too_small_loses_to_a_dearer_model_that_fits():
    registry = Registry([
        row("a", "long", 2.0, window=1_000_000),
        row("b", "short-same-price", 2.0, window=200_000), row("b", "long-dearer", 4.0, window=1_000_000),
    ])
    assert equivalent("long", "b", registry=registry).model == "long-dearer"


def test_models_equivalent_is_the_public_entry_and_checks_its_arguments():
    assert models.equivalent("gpt-4o", "anthropic") == equivalent("gpt-4o", "anthropic")
    assert live("anthropic", models.equivalent("gpt-4o", "anthropic").model)
    with pytest.raises(UnknownModelError):
        models.equivalent("no-such-model-anywhere", "anthropic")
    with pytest.raises(InvalidArgumentError, match="provider"):
        models.equivalent("gpt-4o", "")
    assert models.equivalent("gpt-4o", "no-such-vendor") is None
