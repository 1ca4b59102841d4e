"""Logging: nothing configured on import, one JSON line per attempt, redaction of every part of a
record, and four processes sharing one rotating file without losing or interleaving a line."""

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from failover_client import FailoverClient, FailoverConfig, FallbackProvider
from failover_client.log import configure_logging
from failover_client.testing import Fault, Reply
from tests.support import ask, make_provider

KEY = "sk-proj-Zx9Qw8Er7Ty6Ui5Op4As3Df2"
GOOGLE_KEY = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv"


@pytest.fixture
def configured(tmp_path):
    """configure_logging() into a file, undone afterwards."""
    handlers = []

    def configure(**options):
        options.setdefault("path", tmp_path / "llm.jsonl")
        handlers.append(configure_logging(**options))
        return options["path"]

    yield configure
    target = logging.getLogger("failover_client")
    for handler in handlers:
        target.removeHandler(handler)
        handler.close()
    target.setLevel(logging.NOTSET)


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_importing_the_library_configures_nothing():
    code = ("import logging, failover_client, failover_client.failover, failover_client.log; "
            "lib = logging.getLogger('failover_client'); "
            "print([type(h).__name__ for h in lib.handlers], lib.level, len(logging.getLogger().handlers))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['NullHandler'] 0 0"


def test_each_attempt_is_one_json_line_with_a_shared_request_id(fake_provider, configured):
    path = configured()
    fake_provider.script("primary", Fault.rate_limit())
    usage = {"input": 1_000, "output": 50, "cache_read": 0, "cache_write": 0, "reasoning": 0}
    fake_provider.set_default("backup", Reply(text="hi", usage=usage, model="claude-sonnet-4-5"))
    config = (FailoverConfig("primary", make_provider(fake_provider, "primary", "openai"))
              .add_fallback(FallbackProvider("backup", make_provider(fake_provider, "backup", "anthropic"))
                            .with_model_mapping("gpt-4o", "claude-sonnet-4-5")))
    with FailoverClient(config) as client:
        client.complete(ask())
    first, second = lines(path)
    assert first["request_id"] == second["request_id"] and len(first["request_id"]) == 16
    assert (first["level"], first["provider"], first["model"], first["attempt"], first["outcome"]) == (
        "WARNING", "primary", "gpt-4o", 1, "error")
    assert first["error_type"] == "RateLimitError" and first["latency_ms"] >= 0 and "input_tokens" not in first
    assert (second["level"], second["provider"], second["model"], second["attempt"], second["outcome"]) == (
        "INFO", "backup", "claude-sonnet-4-5", 2, "ok")
    assert (second["input_tokens"], second["output_tokens"]) == (1_000, 50)
    assert second["cost_usd"] == pytest.approx((1_000 * 3 + 50 * 15) / 1e6)  # Sonnet 4.5: $3 / $15
    assert second["message"].startswith("attempt 2 ok: backup/claude-sonnet-4-5 in ")


def test_keys_are_redacted_from_message_args_extra_and_exceptions(configured):
    path = configured()
    log = logging.getLogger("failover_client.app")
    log.info("calling with %s and header Bearer %s", KEY, "abcdefghijklmnop.qrstuvwxyz")
    log.info("url https://generativelanguage.googleapis.com/v1/models?key=%s", GOOGLE_KEY,
             extra={"headers": {"x-api-key": KEY}, "note": f"secret {KEY}"})
    try:
        raise RuntimeError(f"upstream said: invalid key {KEY}")
    except RuntimeError:
        log.exception("it failed")
    text = path.read_text(encoding="utf-8")
    assert KEY not in text and GOOGLE_KEY not in text and "abcdefghijklmnop" not in text
    first, second, third = lines(path)
    assert first["message"] == "calling with [REDACTED] and header Bearer [REDACTED]"
    assert second["message"].endswith("?key=[REDACTED]")
    assert second["headers"] == {"x-api-key": "[REDACTED]"} and second["note"] == "secret [REDACTED]"
    assert "RuntimeError: upstream said: invalid key [REDACTED]" in third["exc"]


def test_extra_secrets_and_plain_text_format(configured, capsys):
    configured(path=None, json=False, secrets=["hunter2-internal-token"])
    logging.getLogger("failover_client").warning("token hunter2-internal-token and %s", KEY)
    err = capsys.readouterr().err
    assert "WARNING failover_client" in err and "token [REDACTED] and [REDACTED]" in err
    assert "hunter2" not in err and KEY not in err


def test_configuring_again_replaces_the_handler(configured, tmp_path):
    first = configured(path=tmp_path / "a.jsonl")
    lib = logging.getLogger("failover_client")
    lib.warning("before")
    second = configured(path=tmp_path / "b.jsonl", level="WARNING")
    lib.warning("after")
    lib.info("below the level")
    assert [r["message"] for r in lines(first)] == ["before"]
    assert [r["message"] for r in lines(second)] == ["after"]
    assert sum(not isinstance(h, logging.NullHandler) for h in lib.handlers) == 1


WORKER = textwrap.dedent("""
    import logging, sys
    from failover_client.log import configure_logging, log_attempt
    from failover_client.types import Usage

    path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    configure_logging(path, max_bytes=32_000, backup_count=200)
    log = logging.getLogger("failover_client")
    for i in range(count):
        log_attempt(f"{worker}-{i:04d}", "openai", "gpt-4o", 1, "ok", 12.5, None, Usage(100, 20))
        log.warning("worker %s line %d used key %s", worker, i, sys.argv[4])
""")


def test_four_processes_share_one_rotating_file(tmp_path):
    path = tmp_path / "shared.jsonl"
    count = 250
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(path), f"w{n}", str(count), KEY])
               for n in range(4)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0, 0, 0]
    files = [path, *tmp_path.glob("shared.jsonl.*")]
    assert len(files) > 2  # it rotated while the four processes wrote
    records, pids_per_file = [], []
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert KEY not in text
        file_records = [json.loads(line) for line in text.splitlines()]  # every line is whole JSON
        records += file_records
        pids_per_file.append({r["pid"] for r in file_records})
    assert len(records) == 4 * 2 * count
    attempts = sorted(r["request_id"] for r in records if "request_id" in r)
    assert attempts == sorted(f"w{n}-{i:04d}" for n in range(4) for i in range(count))
    warnings = [r["message"] for r in records if r["level"] == "WARNING"]
    assert len(warnings) == 4 * count and all(m.endswith("used key [REDACTED]") for m in warnings)
    assert max(len(pids) for pids in pids_per_file) > 1  # processes really wrote the same file
