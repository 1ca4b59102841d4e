"""The LiteLLM importer against the real catalogue LiteLLM ships, not a sample written by us.

The litellm wheel carries ``litellm/model_prices_and_context_window_backup.json``; the session
fixture downloads the pinned wheel once with pip (the package registry is reachable in CI) into
a session temp directory and reads the JSON straight out of the zip, so no copy is committed.
Every figure the tests expect is read from that JSON, never from our own parser's output.

OpenRouter's and models.dev's catalogues are only published over their HTTP APIs, not in a
registry package, so they have no counterpart here.
"""

import json
import math
import subprocess
import sys
import zipfile

import pytest

from failover_client.models import Registry
from failover_client.models.importers import parse, parse_litellm, provider_name

LITELLM_VERSION = "1.110.2"
CATALOGUE_MEMBER = "litellm/model_prices_and_context_window_backup.json"
CHAT_MODES = {None, "chat", "completion", "responses"}


@pytest.fixture(scope="session")
def litellm_catalogue(tmp_path_factory):
    """The raw bytes of the catalogue inside the pinned litellm wheel."""
    folder = tmp_path_factory.mktemp("litellm-wheel")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    f"litellm=={LITELLM_VERSION}", "-d", str(folder)], check=True, timeout=600)
    (wheel,) = folder.glob(f"litellm-{LITELLM_VERSION}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(CATALOGUE_MEMBER)


@pytest.fixture(scope="session")
def entries(litellm_catalogue):
    return json.loads(litellm_catalogue)


def chat_entries(entries):
    """(LiteLLM key, entry) for every chat/completion model, selected straight from the JSON."""
    return [(key, entry) for key, entry in entries.items()
            if key != "sample_spec" and isinstance(entry, dict) and "litellm_provider" in entry
            and entry.get("mode") in CHAT_MODES]


def model_id(key, entry):
    prefix = entry["litellm_provider"] + "/"
    return key[len(prefix):] if key.startswith(prefix) else key


def per_million(value):
    return None if value is None else value * 1_000_000


def test_every_chat_model_of_the_real_catalogue_becomes_one_row(entries, litellm_catalogue):
    expected = chat_entries(entries)
    rows = parse("litellm", litellm_catalogue)

    assert len(expected) > 2000  # the real catalogue, not a stub
    assert len(rows) == len(expected)
    assert sorted((r.provider, r.model) for r in rows) == sorted(
        (provider_name(e["litellm_provider"]), model_id(k, e)) for k, e in expected)
    assert len(Registry(rows)) == len({(r.provider, r.model) for r in rows})


def test_every_price_and_limit_matches_the_json(entries):
    priced = 0
    # The importer keeps the catalogue's order, one row per chat entry (counted in the test above).
    for row, (key, entry) in zip(parse_litellm(entries), chat_entries(entries), strict=True):
        assert (row.provider, row.model) == (provider_name(entry["litellm_provider"]), model_id(key, entry))
        for price, field in ((row.input_price, "input_cost_per_token"), (row.output_price, "output_cost_per_token"),
                             (row.cache_read_price, "cache_read_input_token_cost"),
                             (row.cache_write_price, "cache_creation_input_token_cost")):
            want = per_million(entry.get(field))
            assert (price is None) == (want is None or want < 0), (row.name, field)
            if price is not None:
                # the importer rounds per-million prices to 10 decimals
                assert math.isclose(price, want, rel_tol=1e-9, abs_tol=1e-9), (row.name, field, price, want)
        priced += row.input_price is not None
        assert row.context_window == (entry.get("max_input_tokens") or None), row.name
        assert row.deprecation_date == (entry.get("deprecation_date") or None), row.name
    assert priced > 1500


@pytest.mark.parametrize("key, provider, model", [
    ("gpt-4o", "openai", "gpt-4o"),
    ("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
    ("gemini/gemini-2.5-pro", "gemini", "gemini-2.5-pro"),
    ("vertex_ai/claude-opus-4-8", "vertex", "vertex_ai/claude-opus-4-8"),
    ("anthropic.claude-opus-4-8", "bedrock", "anthropic.claude-opus-4-8"),
    ("mistral/mistral-large-latest", "mistral", "mistral-large-latest"),
])
def test_sample_rows_carry_the_json_prices(entries, key, provider, model):
    entry = entries[key]
    rows = {(r.provider, r.model): r for r in parse_litellm(entries)}
    row = rows[(provider, model)]

    assert math.isclose(row.input_price, entry["input_cost_per_token"] * 1_000_000, rel_tol=1e-9)
    assert math.isclose(row.output_price, entry["output_cost_per_token"] * 1_000_000, rel_tol=1e-9)
    assert row.context_window == entry["max_input_tokens"]
    batch = entry.get("input_cost_per_token_batches")
    if batch is None:
        assert row.batch_discount is None
    else:
        assert math.isclose(row.batch_discount, 1 - batch / entry["input_cost_per_token"], abs_tol=1e-6)
