"""Deprecation notices: one WARNING per retired model per process, an INFO line within 30 days
of the shutdown, the successor named, `models show` printing both; requests go through a real
provider to the fake server on 127.0.0.1."""

import io
import logging
from datetime import date, timedelta

import pytest

from failover_client import deprecation, models
from failover_client.models import ModelInfo
from failover_client.models_cli import show_model
from failover_client.testing import FakeProviderServer
from tests.support import ask, make_provider

TODAY = date.today()
RETIRED = (TODAY - timedelta(days=10)).isoformat()
SOON = (TODAY + timedelta(days=10)).isoformat()
LATER = (TODAY + timedelta(days=100)).isoformat()


@pytest.fixture(scope="module", autouse=True)
def test_rows():
    models.register(
        ModelInfo("openai", "test-retired-model", deprecation_date=RETIRED, successor="test-successor-model"),
        ModelInfo("openai", "test-retiring-model", deprecation_date=SOON),
        ModelInfo("openai", "test-later-model", deprecation_date=LATER),
    )


@pytest.fixture(autouse=True)
def fresh_process_state():
    deprecation.reset()
    yield
    deprecation.reset()


@pytest.fixture(scope="module")
def provider():
    with FakeProviderServer() as server:
        yield make_provider(server, "openai", "openai")


def notices(caplog):
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "failover_client"
            and "test-" in r.getMessage()]


def test_a_retired_model_warns_once_naming_date_and_successor(provider, caplog):
    caplog.set_level(logging.INFO, logger="failover_client")
    for _ in range(3):
        provider.complete(ask(model="test-retired-model"))
    for _ in provider.complete_stream(ask(model="test-retired-model", stream=True)):
        pass
    assert notices(caplog) == [(logging.WARNING, f"model openai/test-retired-model was retired on {RETIRED}; "
                                "the registry names test-successor-model as its successor; "
                                "requests for it will fail")]


def test_a_model_within_thirty_days_gets_one_info_line(provider, caplog):
    caplog.set_level(logging.INFO, logger="failover_client")
    provider.complete(ask(model="test-retiring-model"))
    provider.complete(ask(model="test-retiring-model"))
    assert notices(caplog) == [(logging.INFO, f"model openai/test-retiring-model is deprecated and shuts "
                                f"down on {SOON} (in 10 days)")]


def test_models_far_from_their_date_or_unknown_say_nothing(provider, caplog):
    caplog.set_level(logging.DEBUG, logger="failover_client")
    provider.complete(ask(model="test-later-model"))
    provider.complete(ask(model="test-not-in-the-registry"))
    assert notices(caplog) == []


def test_each_model_is_noticed_once_under_any_of_its_names(caplog):
    caplog.set_level(logging.INFO, logger="failover_client")
    deprecation.check("test-retired-model", "openai")
    deprecation.check("openai/test-retired-model", None)
    deprecation.check("test-retired-model", "azure")
    assert len(notices(caplog)) == 1


def test_models_show_prints_the_date_and_successor():
    out = io.StringIO()
    assert show_model("test-retired-model", out=out) == 0
    text = out.getvalue()
    assert f"deprecation_date: {RETIRED}" in text
    assert "successor: test-successor-model" in text
    assert f"lifecycle: model openai/test-retired-model was retired on {RETIRED}" in text


def test_the_catalogue_carries_successors_and_anthropic_one_hour_cache_writes():
    retired = models.lookup("gpt-5.2-chat-latest")
    assert retired.successor == "gpt-5.5" and models.find(retired.successor).provider == "openai"
    haiku = models.lookup("claude-haiku-5-5")
    assert haiku.cache_write_1h_price == 2 * haiku.input_price
    assert haiku.long_context.cache_write_1h_price == 2 * haiku.long_context.input_price
    long_prompt = haiku.prices_for(haiku.long_context.threshold + 1)
    assert long_prompt.cache_write_1h_price == haiku.long_context.cache_write_1h_price
