"""``failover-client models`` and ``failover-client usage``.

* ``models`` lists the registry (built-in catalogue plus cached imports); ``models search TEXT``
  lists matches; ``models show NAME`` prints one model, or did-you-mean suggestions and exit 2;
* ``models refresh --source openrouter|models.dev|litellm [--file F] [--url U]`` stores a public
  catalogue in the user cache (the only command that downloads anything);
* ``usage LOGFILE`` sums requests, tokens and cost by provider and model from the JSON lines
  that :func:`failover_client.log.configure_logging` wrote, rotated backups included.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, TextIO

if TYPE_CHECKING:
    from ..models import ModelInfo

SOURCES = ("openrouter", "models.dev", "litellm")


def add_models_commands(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list, search and refresh the model registry")
    models.add_argument("--provider", help="only this provider's models")
    models.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    models.set_defaults(run=lambda args: list_models(None, args.provider, args.json))
    actions = models.add_subparsers(dest="models_command")
    search = actions.add_parser("search", help="models whose name contains every word of TEXT")
    search.add_argument("text", nargs="+")
    search.add_argument("--provider")
    search.add_argument("--json", action="store_true")
    search.set_defaults(run=lambda args: list_models(" ".join(args.text), args.provider, args.json))
    show = actions.add_parser("show", help="everything the registry knows about one model")
    show.add_argument("name")
    show.set_defaults(run=lambda args: show_model(args.name))
    refresh = actions.add_parser("refresh", help="download (or read --file) a public catalogue into the user cache")
    refresh.add_argument("--source", required=True, choices=SOURCES)
    refresh.add_argument("--file", help="read this file instead of downloading")
    refresh.add_argument("--url", help="download from this address instead of the source's public one")
    refresh.set_defaults(run=lambda args: refresh_catalogue(args.source, args.file, args.url))

    usage = commands.add_parser("usage", help="requests, tokens and cost by provider and model, from a JSON log file")
    usage.add_argument("logfile")
    usage.add_argument("--json", action="store_true", help="print the summary as JSON")
    usage.set_defaults(run=lambda args: summarise_usage(args.logfile, args.json))


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _tokens(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def list_models(text: str | None, provider: str | None, as_json: bool, out: TextIO = sys.stdout) -> int:
    from ..models import all_models, search

    rows = search(text, provider=provider) if text else [r for r in all_models() if provider in (None, r.provider)]
    if as_json:
        for row in rows:
            out.write(json.dumps(row.to_dict(), default=str) + "\n")
        return 0
    if not rows:
        out.write(f"no model matches {text!r}\n" if text else "no models\n")
        return 1
    out.write(f"{'model':<58} {'context':>10} {'max out':>9} {'in $/M':>8} {'out $/M':>8} {'cached':>8}  checked\n")
    for row in rows:
        out.write(f"{row.name:<58} {_tokens(row.context_window):>10} {_tokens(row.max_output_tokens):>9} "
                  f"{_price(row.input_price):>8} {_price(row.output_price):>8} {_price(row.cache_read_price):>8}  "
                  f"{row.checked or '-'}\n")
    out.write(f"{len(rows)} models\n")
    return 0


def show_model(name: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from ..models import UnknownModelError, lookup

    try:
        row: ModelInfo = lookup(name)
    except UnknownModelError as exc:
        err.write(f"{exc}\n")
        return 2
    for key, value in row.to_dict().items():
        out.write(f"{key:>18}: {value}\n")
    from ..models.deprecation import describe

    lifecycle = describe(row)
    if lifecycle:
        out.write(f"{'lifecycle':>18}: {lifecycle}\n")
    return 0


def refresh_catalogue(source: str, file: str | None, url: str | None, out: TextIO = sys.stdout,
                      err: TextIO = sys.stderr) -> int:
    from ..errors import FailoverClientError
    from ..models import refresh

    try:
        path, count = refresh(source, file=file, url=url)
    except FailoverClientError as exc:
        err.write(f"models refresh failed: {exc}\n")
        return 2
    out.write(f"stored {count} {source} models in {path}\n")
    return 0


# --- usage from a log file ------------------------------------------------------------------

def log_files(path: str | Path) -> list[Path]:
    """The log and its rotated backups (``path.1``, ``path.2``, ...), oldest first."""
    base = Path(path)
    backups = sorted((p for p in base.parent.glob(base.name + ".*") if p.suffix[1:].isdigit()),
                     key=lambda p: int(p.suffix[1:]), reverse=True)
    return [*backups, base] if base.exists() else backups


def attempt_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The per-attempt records among JSON log lines (other lines are skipped)."""
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "request_id" in record and "outcome" in record:
            yield record


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Requests, failures, tokens and cost by ``provider/model``, and in total."""
    empty = {"requests": 0, "failures": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "unpriced": 0}
    by_model: dict[str, dict[str, Any]] = defaultdict(lambda: dict(empty))
    calls = set()
    for record in records:
        totals = by_model[f"{record.get('provider')}/{record.get('model')}"]
        totals["requests" if record["outcome"] == "ok" else "failures"] += 1
        totals["input_tokens"] += int(record.get("input_tokens") or 0)
        totals["output_tokens"] += int(record.get("output_tokens") or 0)
        if record.get("cost_usd") is not None:
            totals["cost_usd"] += float(record["cost_usd"])
        elif record.get("input_tokens") or record.get("output_tokens"):
            totals["unpriced"] += 1
        calls.add(record["request_id"])
    total = dict(empty)
    for totals in by_model.values():
        for key in total:
            total[key] += totals[key]
    return {"calls": len(calls), "total": total, "by_model": dict(sorted(by_model.items()))}


def summarise_usage(logfile: str, as_json: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    files = log_files(logfile)
    if not files:
        err.write(f"no log file at {logfile}\n")
        return 2

    def lines() -> Iterator[str]:
        for path in files:
            with open(path, encoding="utf-8", errors="replace") as handle:
                yield from handle

    summary = summarise(attempt_records(lines()))
    if as_json:
        out.write(json.dumps(summary, indent=2) + "\n")
        return 0
    out.write(f"{'provider/model':<50} {'ok':>7} {'failed':>7} {'input':>12} {'output':>12} {'cost $':>12}\n")
    for name, t in [*summary["by_model"].items(), ("total", summary["total"])]:
        cost = f"{t['cost_usd']:.6f}" + ("*" if t["unpriced"] else "")
        out.write(f"{name:<50} {t['requests']:>7} {t['failures']:>7} {t['input_tokens']:>12,} "
                  f"{t['output_tokens']:>12,} {cost:>12}\n")
    out.write(f"{summary['calls']} calls in {len(files)} file(s)")
    out.write("; * some answers had no known price\n" if summary["total"]["unpriced"] else "\n")
    return 0
