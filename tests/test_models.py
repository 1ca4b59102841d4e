"""The model registry: the built-in catalogue's shape, lookups, did-you-mean, search and the
registry-aware fallback helper."""

import csv
import pickle
import re
import subprocess
import sys
from datetime import date
from importlib.resources import files

import pytest

from failover_client import CompletionRequest, ImageBlock, InvalidArgumentError, Message, ToolDefinition
from failover_client.models import (
    CAPABILITIES,
    ModelInfo,
    Registry,
    UnknownModelError,
    builtin_models,
    find,
    lookup,
    pick_fallbacks,
    search,
)

CATALOGUE = builtin_models()
TODAY = date.today().isoformat()


def test_the_catalogue_is_large_and_spans_the_major_providers():
    assert len(CATALOGUE) >= 300
    assert sum(row.input_price is not None and row.output_price is not None for row in CATALOGUE) >= 300
    providers = {row.provider for row in CATALOGUE}
    assert {"openai", "anthropic", "gemini", "vertex", "bedrock", "azure", "mistral", "deepseek", "xai", "groq",
            "cohere", "together", "fireworks"} <= providers


def test_each_table_holds_one_catalogued_provider_named_by_its_file():
    from failover_client.providers import names

    for table in files("failover_client.models").joinpath("data").iterdir():
        if table.name.endswith(".csv"):
            providers = {r["provider"] for r in csv.DictReader(table.read_text(encoding="utf-8").splitlines())}
            assert providers == {table.name[:-4]}, table.name
            assert table.name[:-4] in names(), table.name


def test_no_duplicate_names_or_aliases_within_a_provider():
    names = [row.name for row in CATALOGUE]
    assert len(names) == len(set(names))
    for provider in {row.provider for row in CATALOGUE}:
        keys = [key for row in CATALOGUE if row.provider == provider for key in (row.model, *row.aliases)]
        assert len(keys) == len(set(keys)), provider


def test_every_row_is_sane():
    for row in CATALOGUE:
        prices = [row.input_price, row.output_price, row.cache_read_price, row.cache_write_price]
        assert all(p is None or p >= 0 for p in prices), row.name
        if row.input_price is not None and row.output_price is not None:
            assert row.output_price >= row.input_price, row.name
        if row.cache_read_price is not None and row.input_price is not None:
            assert row.cache_read_price <= row.input_price, row.name
        if row.context_window and row.max_output_tokens:
            assert row.context_window >= row.max_output_tokens, row.name
        if row.batch_discount is not None:
            assert 0 < row.batch_discount < 1, row.name
        assert row.capabilities <= set(CAPABILITIES), row.name
        if row.checked is None:  # not verified against a provider page: nothing priced on a guess
            assert row.input_price is None and row.output_price is None, row.name
            assert row.source.startswith("unverified"), row.name
        else:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row.checked), row.name
            assert row.checked <= TODAY, row.name
        assert row.source, row.name


def test_the_major_providers_current_rows_are_priced_or_say_why_no_price_exists():
    # Issue 14's bar: a blank price is allowed only where the provider publishes no per-token rate.
    major = {"openai", "anthropic", "gemini", "vertex", "bedrock", "azure", "mistral", "xai", "deepseek", "groq",
             "cohere"}
    blank = [row for row in CATALOGUE if row.provider in major and not row.retired() and row.input_price is None]
    assert all("no per-token price" in row.source for row in blank), [row.name for row in blank]
    assert sum(row.context_window is not None for row in CATALOGUE) >= 0.97 * len(CATALOGUE)


def test_every_successor_is_a_live_model_of_the_same_provider():
    # A deprecation warning that names a successor already shut down sends the user to a second 404.
    for row in CATALOGUE:
        if row.successor:
            successor = find(row.successor, provider=row.provider)
            assert successor is not None and successor.provider == row.provider, (row.name, row.successor)
            assert not successor.retired(), (row.name, row.successor)


def test_the_csv_files_are_the_data_and_unknown_prices_are_empty_cells():
    table = files("failover_client.models").joinpath("data", "openai.csv").read_text(encoding="utf-8")
    records = {r["model"]: r for r in csv.DictReader(table.splitlines())}
    assert records["gpt-5.3-chat-latest"]["input"] == ""
    assert lookup("gpt-5.3-chat-latest").input_price is None
    assert records["gpt-6.2-sol"]["input"] == "2"


def test_published_prices_of_a_few_models():
    # platform.claude.com pricing page; developers.openai.com model pages; ai.google.dev pricing.
    opus = lookup("anthropic/claude-opus-5-5")
    assert (opus.input_price, opus.output_price, opus.cache_read_price, opus.cache_write_price) == (4, 20, 0.2, 5)
    sol = lookup("gpt-6.2-sol")
    assert (sol.input_price, sol.cache_read_price, sol.cache_write_price, sol.output_price) == (2, 0.1, 2.5, 10)
    assert (sol.context_window, sol.max_output_tokens) == (1_050_000, 128_000)
    flash = lookup("gemini/gemini-3.5-flash")
    assert (flash.input_price, flash.output_price) == (1.5, 9)


@pytest.mark.parametrize("name, expected", [
    ("openai/gpt-4o", "openai/gpt-4o"),
    ("gpt-4o", "openai/gpt-4o"),  # a bare id resolves to the model's own vendor, not a reseller
    ("gpt-4o-2024-08-06", "openai/gpt-4o"),  # alias
    ("openai/gpt-4o-2024-08-06", "openai/gpt-4o"),  # provider/alias
    ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),
    ("Claude-Sonnet-4-5", "anthropic/claude-sonnet-4-5"),  # case-insensitive
    ("azure/gpt-4o", "azure/gpt-4o"),
    ("groq/openai/gpt-oss-120b", "groq/openai/gpt-oss-120b"),  # a model id with a slash of its own
    ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "bedrock/anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("deepseek-v4-flash", "deepseek/deepseek-flash"),
    ("deepseek-chat", "deepseek/deepseek-chat"),  # the retired name has its own row, so it warns
])
def test_lookup(name, expected):
    assert lookup(name).name == expected


def test_a_provider_narrows_a_bare_name_and_is_ignored_when_it_does_not_serve_it():
    assert lookup("gpt-4o", provider="azure").name == "azure/gpt-4o"
    assert lookup("gpt-4o", provider="my-primary").name == "openai/gpt-4o"


def test_did_you_mean():
    with pytest.raises(UnknownModelError) as caught:
        lookup("gpt4o")
    assert "gpt-4o" in caught.value.suggestions
    assert "did you mean" in str(caught.value) and "gpt-4o" in str(caught.value)
    assert isinstance(caught.value, InvalidArgumentError)
    assert find("gpt4o") is None
    with pytest.raises(UnknownModelError) as typo:
        lookup("claude-sonet-4-5")
    assert typo.value.suggestions[0] == "claude-sonnet-4-5"


def test_unknown_model_error_pickles_with_its_suggestions():
    with pytest.raises(UnknownModelError) as caught:
        lookup("gemni-2.5-pro")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is UnknownModelError
    assert copy.suggestions == caught.value.suggestions and "gemini-2.5-pro" in copy.suggestions
    assert str(copy) == str(caught.value)


def test_bad_names_are_typed_errors():
    with pytest.raises(InvalidArgumentError, match="non-empty string"):
        lookup("")
    with pytest.raises(InvalidArgumentError):
        find(None)  # type: ignore[arg-type]


def test_search_matches_every_word():
    names = [row.name for row in search("claude haiku 4-5")]
    assert "anthropic/claude-haiku-4-5" in names and "bedrock/anthropic.claude-haiku-4-5-20251001-v1:0" in names
    assert all("haiku" in n and "4-5" in n for n in names)
    assert [r.name for r in search("gpt-4o", provider="azure")] == ["azure/gpt-4o", "azure/gpt-4o-mini"]
    assert search("no such thing anywhere") == []


def _registry():
    return Registry([
        ModelInfo("a", "small", context_window=8_000, input_price=1, output_price=2, capabilities=frozenset({"tools"})),
        ModelInfo("a", "big", context_window=200_000, input_price=3, output_price=15,
                  capabilities=frozenset({"tools", "vision"})),
        ModelInfo("b", "huge", context_window=1_000_000, input_price=2, output_price=10,
                  capabilities=frozenset({"tools", "vision", "streaming"})),
        ModelInfo("b", "huge-no-tools", context_window=1_000_000, input_price=0.5, output_price=1),
        ModelInfo("c", "retired", context_window=2_000_000, input_price=0.1, output_price=0.1,
                  capabilities=frozenset({"tools", "vision"}), deprecation_date="2020-01-01"),
        ModelInfo("c", "unpriced", context_window=500_000, capabilities=frozenset({"tools", "vision"})),
    ])


def test_pick_fallbacks_after_a_context_error_wants_a_bigger_window_and_the_same_capabilities():
    request = CompletionRequest(model="small", messages=[Message.user("hi")],
                                tools=[ToolDefinition("lookup", "find things", {"type": "object"})])
    picked = [r.name for r in pick_fallbacks(request, registry=_registry())]
    # bigger than 8K, with tools, not retired; priced ones cheapest first, unpriced last
    assert picked == ["b/huge", "a/big", "c/unpriced"]


def test_pick_fallbacks_with_a_known_prompt_size_and_images():
    request = CompletionRequest(model="small", max_tokens=1_000, messages=[
        Message.user([ImageBlock.from_url("https://example.com/cat.png")])])
    picked = [r.name for r in pick_fallbacks(request, prompt_tokens=300_000, registry=_registry())]
    assert picked == ["b/huge", "c/unpriced"]
    assert [r.name for r in pick_fallbacks(request, prompt_tokens=300_000, providers=["c"],
                                           registry=_registry())] == ["c/unpriced"]


def test_pick_fallbacks_rejects_unknown_capabilities():
    with pytest.raises(InvalidArgumentError, match="telepathy"):
        pick_fallbacks(model="small", needs=["telepathy"], registry=_registry())


def test_pick_fallbacks_on_the_builtin_catalogue():
    picked = pick_fallbacks(model="gpt-4o", needs=["tools", "vision"], providers=["openai", "anthropic"], limit=3)
    assert len(picked) == 3
    assert all(r.context_window > 128_000 and r.supports("tools", "vision") and not r.retired() for r in picked)


def test_register_overrides_a_row_and_adds_new_ones():
    from failover_client import models

    try:
        models.register(ModelInfo("openai", "gpt-4o", input_price=1.0, output_price=2.0),
                        ModelInfo("mine", "finetune-7", aliases=("ft7",), input_price=0.5, output_price=0.5))
        assert lookup("openai/gpt-4o").input_price == 1.0
        assert lookup("ft7").name == "mine/finetune-7"
    finally:
        models.default._default.registered.clear()
        models.reload()
    assert lookup("openai/gpt-4o").input_price == 2.5


def test_registry_add_checks_its_rows():
    with pytest.raises(InvalidArgumentError, match="ModelInfo"):
        Registry([("openai", "gpt-4o")])  # type: ignore[list-item]


def test_importing_the_package_reads_no_catalogue():
    code = ("import sys, failover_client, failover_client.models as m; "
            "print(m.default._default.registry is None, 'concurrent_log_handler' in sys.modules, "
            "'requests' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "False"]


def test_fallbacks_for_a_chat_request_are_never_embedding_models():
    request = CompletionRequest(model="gpt-4o", messages=[Message.user("hi")])
    picked = pick_fallbacks(request, prompt_tokens=1_000, limit=None)
    assert picked and not [row.name for row in picked if row.embedding_dimensions is not None]
