"""Deprecation notices: one WARNING per retired model per process, an INFO line within 30 days
of the shutdown, the successor named, `models show` printing both.  Requests go through a real
provider to the fake server on 127.0.0.1; the rows are the built-in catalogue's."""

import io
import logging
from datetime import date

import pytest

from failover_client import models
from failover_client.cli.models import show_model
from failover_client.models import deprecation
from failover_client.testing import FakeProviderServer
from tests.support import ask, make_provider

RETIRED = "gpt-5.2-chat-latest"  # shut down 2026-08-10, successor gpt-5.5 (OpenAI deprecations page)
RETIRED_NOTICE = ("model openai/gpt-5.2-chat-latest was retired on 2026-08-10; the registry names gpt-5.5 as "
                  "its successor; requests for it will fail")


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
    return [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "failover_client" and r.getMessage().startswith("model ")]


def test_a_retired_model_warns_once_naming_date_and_successor(provider, caplog):
    caplog.set_level(logging.INFO, logger="failover_client")
    for _ in range(3):
        provider.complete(ask(model=RETIRED))
    for _ in provider.complete_stream(ask(model=RETIRED, stream=True)):
        pass
    assert notices(caplog) == [(logging.WARNING, RETIRED_NOTICE)]


def test_current_and_unknown_models_say_nothing(provider, caplog):
    caplog.set_level(logging.DEBUG, logger="failover_client")
    provider.complete(ask(model="gpt-5.5"))
    provider.complete(ask(model="a-model-the-registry-does-not-know"))
    assert notices(caplog) == []


def test_within_thirty_days_of_the_date_an_info_line(caplog):
    caplog.set_level(logging.INFO, logger="failover_client")
    deprecation.check("gpt-5", "openai", today=date(2026, 12, 1))  # shuts down 2026-12-11, for gpt-6.1-sol
    deprecation.check("gpt-5", "openai", today=date(2026, 12, 1))
    deprecation.check("gpt-4o", "openai", today=date(2026, 12, 1))  # 2027-01-14: 44 days away
    assert notices(caplog) == [(logging.INFO, "model openai/gpt-5 is deprecated and shuts down on 2026-12-11 "
                                "(in 10 days); the registry names gpt-6.1-sol as its successor")]


def test_each_model_is_noticed_once_under_any_of_its_names(caplog):
    caplog.set_level(logging.INFO, logger="failover_client")
    deprecation.check(RETIRED, "openai")
    deprecation.check(f"openai/{RETIRED}", None)
    deprecation.check(RETIRED.upper(), None)
    assert notices(caplog) == [(logging.WARNING, RETIRED_NOTICE)]


def test_models_show_prints_the_date_and_successor():
    out = io.StringIO()
    assert show_model(RETIRED, out=out) == 0
    text = out.getvalue()
    assert "deprecation_date: 2026-08-10" in text
    assert "successor: gpt-5.5" in text
    assert "lifecycle: model openai/gpt-5.2-chat-latest was retired on 2026-08-10" in text


def test_the_catalogue_carries_successors_and_anthropic_one_hour_cache_writes():
    retired = models.lookup(RETIRED)
    assert models.find(retired.successor).provider == "openai" and not models.find(retired.successor).retired()
    haiku = models.lookup("claude-haiku-5-5")
    assert haiku.cache_write_1h_price == 2 * haiku.input_price
    assert haiku.long_context.cache_write_1h_price == 2 * haiku.long_context.input_price
    long_prompt = haiku.prices_for(haiku.long_context.threshold + 1)
    assert long_prompt.cache_write_1h_price == haiku.long_context.cache_write_1h_price
