"""``failover-client models ...`` and ``failover-client usage``, end to end through the installed
console script in a subprocess (offline: refresh reads a file)."""

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_model_import import OPENROUTER_SAMPLE

from support import console_script


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "FAILOVER_CLIENT_CACHE_DIR": str(tmp_path / "cache")}

    def run(*args):
        return subprocess.run([console_script(), *args], capture_output=True, text=True, env=env, timeout=60)

    return run


def catalogue_rows() -> int:
    """The data rows of the package's CSV files, counted without the registry's help."""
    folder = Path(__file__).parent.parent / "failover_client" / "models" / "data"
    return sum(len(list(csv.DictReader(path.open(encoding="utf-8")))) for path in folder.glob("*.csv"))


def test_models_lists_the_catalogue(run):
    result = run("models")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == f"{catalogue_rows()} models"
    assert any(line.startswith("anthropic/claude-opus-5-5 ") for line in result.stdout.splitlines())


def test_models_search(run):
    result = run("models", "search", "gpt-6")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()[1:-1]]
    assert names == ["openai/gpt-6-astra", "openai/gpt-6-luna", "openai/gpt-6-sol", "openai/gpt-6.1-sol",
                     "openai/gpt-6.1-terra", "openai/gpt-6.2-astra", "openai/gpt-6.2-sol"]
    sol = next(line for line in result.stdout.splitlines() if line.startswith("openai/gpt-6.2-sol "))
    assert sol.split()[1:6] == ["1,050,000", "128,000", "2", "10", "0.1"]
    as_json = run("models", "search", "claude haiku 5-5", "--provider", "anthropic", "--json")
    (row,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (row["name"], row["input_price"], row["long_context"]["threshold"]) == ("anthropic/claude-haiku-5-5",
                                                                                   0.1, 100_000)
    missing = run("models", "search", "nothing-like-this")
    assert (missing.returncode, missing.stdout.strip()) == (1, "no model matches 'nothing-like-this'")


def test_models_show_and_did_you_mean(run):
    shown = run("models", "show", "claude-sonnet-4-5-20250929")
    assert shown.returncode == 0 and "name: anthropic/claude-sonnet-4-5" in shown.stdout
    unknown = run("models", "show", "gpt4o")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("unknown model 'gpt4o'; did you mean gpt-4o")


def test_models_refresh_from_a_file_feeds_later_lookups(run, tmp_path):
    sample = tmp_path / "openrouter.json"
    sample.write_text(OPENROUTER_SAMPLE)
    refreshed = run("models", "refresh", "--source", "openrouter", "--file", str(sample))
    assert refreshed.returncode == 0
    assert refreshed.stdout.strip() == f"stored 4 openrouter models in {tmp_path / 'cache' / 'models-openrouter.json'}"
    found = run("models", "search", "sonnet-4.5", "--provider", "openrouter")
    assert found.stdout.splitlines()[1].split()[:5] == ["openrouter/anthropic/claude-sonnet-4.5", "1,000,000",
                                                        "64,000", "3", "15"]
    assert run("models").stdout.splitlines()[-1] == f"{catalogue_rows() + 4} models"


def test_models_refresh_rejects_a_wrong_file(run, tmp_path):
    sample = tmp_path / "openrouter.json"
    sample.write_text(OPENROUTER_SAMPLE)
    result = run("models", "refresh", "--source", "litellm", "--file", str(sample))
    assert result.returncode == 2
    assert "models refresh failed: not a LiteLLM" in result.stderr and "Traceback" not in result.stderr


WRITER = textwrap.dedent("""
    import sys
    from failover_client.log import configure_logging, log_attempt
    from failover_client.types import Usage
    configure_logging(sys.argv[1], max_bytes=2_000, backup_count=50)
    for i in range(10):
        log_attempt(f"call-{i}", "primary", "gpt-4o", 1, "error", 3.0, RuntimeError("429 from sk-abcdefghijklmnop"))
        log_attempt(f"call-{i}", "backup", "claude-sonnet-4-5", 2, "ok", 9.5, None, Usage(1_000, 100))
    log_attempt("call-x", "local", "my-finetune", 1, "ok", 1.0, None, Usage(10, 10))
""")


def test_usage_summarises_a_log_file_and_its_rotated_backups(run, tmp_path):
    log = tmp_path / "llm.jsonl"
    subprocess.run([sys.executable, "-c", WRITER, str(log)], check=True, timeout=60)
    assert list(tmp_path.glob("llm.jsonl.*"))  # the log rotated: the summary must read the backups too
    assert not any("sk-abcdefghijklmnop" in p.read_text() for p in tmp_path.glob("llm.jsonl*"))
    result = run("usage", str(log), "--json")
    assert result.returncode == 0
    summary = json.loads(result.stdout)
    backup = summary["by_model"]["backup/claude-sonnet-4-5"]
    assert (backup["requests"], backup["input_tokens"], backup["output_tokens"]) == (10, 10_000, 1_000)
    assert backup["cost_usd"] == pytest.approx(10 * (1_000 * 3 + 100 * 15) / 1e6)  # Sonnet 4.5: $3 / $15
    assert summary["by_model"]["primary/gpt-4o"]["failures"] == 10
    assert summary["by_model"]["local/my-finetune"]["unpriced"] == 1
    assert (summary["calls"], summary["total"]["requests"], summary["total"]["failures"]) == (11, 11, 10)
    table = run("usage", str(log))
    assert table.returncode == 0
    total = next(line for line in table.stdout.splitlines() if line.startswith("total "))
    assert total.split() == ["total", "11", "10", "10,010", "1,010", "0.045000*"]
    assert "* some answers had no known price" in table.stdout


def test_usage_without_a_log_file(run, tmp_path):
    result = run("usage", str(tmp_path / "none.jsonl"))
    assert (result.returncode, result.stderr.strip()) == (2, f"no log file at {tmp_path / 'none.jsonl'}")


def test_a_reader_that_stops_early_is_not_an_error():
    process = subprocess.Popen([console_script(), "models", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.read(200)
    process.stdout.close()  # as `| head` does
    _out, errors = process.communicate(timeout=60)
    assert process.returncode == 0 and b"Traceback" not in errors
