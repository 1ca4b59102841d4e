"""``failover-client batch``: provider Batch APIs and the thread-pool runner from a shell.

* ``batch submit FILE.jsonl --provider P`` checks and sends the requests as one batch job and
  prints the job (JSON); ``batch status ID``, ``batch cancel ID`` print it again; ``batch list``
  prints the provider's jobs, newest first; ``batch results ID [-o OUT.jsonl]`` writes one
  result per line (``custom_id``, ``status``, ``response`` or ``error``) in the provider's order.
* ``batch run FILE.jsonl --models openai/gpt-4o,anthropic/claude-haiku-4-5 [--workers 8]
  [-o OUT.jsonl] [--checkpoint FILE]`` answers every request now through a FailoverClient on a
  pool of threads, with a progress bar on a terminal, and writes the results in input order.
  It exits 0 when every request succeeded, 1 when some failed, 130 after Ctrl-C (the results
  that finished are still written; rerun with the same ``--checkpoint`` to finish the rest).

Input lines are ``{"custom_id": ..., "request": {...a CompletionRequest as JSON...}}``, or
OpenAI's own batch lines ``{"custom_id": ..., "method": "POST", "url": "/v1/chat/completions",
"body": {...}}``, read by :meth:`CompletionRequest.from_openai` (tools, images and the rest; a
field with no neutral meaning is refused, naming it).  With
``--models`` a line may leave out the model: every request goes to the first model given, and
to the next ones' models on failover.  Providers and keys come from the catalog and its
environment variables; ``--base-url URL`` (or ``PROVIDER=URL`` with several providers) points
a provider elsewhere, e.g. at a local fake server.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TextIO

if TYPE_CHECKING:
    from ..provider import Provider
    from ..types import BatchRequest

INTERRUPTED = 130


def add_batch_commands(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser("batch", help="provider Batch APIs, and many requests at once on a thread pool")
    actions = batch.add_subparsers(dest="batch_command", required=True)

    def provider_command(name: str, help: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help)
        parser.add_argument("--provider", required=True, help="a catalog name with a Batch API: openai, anthropic")
        parser.add_argument("--base-url", help="send to this base URL instead of the provider's")
        parser.set_defaults(run=_reporting_errors(run))
        return parser

    provider_command("submit", "send the requests of FILE as one batch job", submit).add_argument("file")
    provider_command("status", "show a batch job", status).add_argument("id")
    provider_command("cancel", "cancel a batch job", cancel).add_argument("id")
    listing = provider_command("list", "list batch jobs, newest first", list_jobs)
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    results = provider_command("results", "write the results of an ended batch job", results_of)
    results.add_argument("id")
    results.add_argument("-o", "--output", help="write to this file instead of stdout")

    runner = actions.add_parser("run", help="answer every request of FILE now, on a pool of threads")
    runner.add_argument("file")
    runner.add_argument("--models", required=True, help="provider/model[,provider/model...]: the failover chain")
    runner.add_argument("--workers", type=int, default=8, help="requests in flight at once (default 8)")
    runner.add_argument("--timeout", type=float, help="seconds each request may take")
    runner.add_argument("--checkpoint", help="JSONL file of finished results: resume from it, add to it")
    runner.add_argument("-o", "--output", help="write the results to this file instead of stdout")
    runner.add_argument("--base-url", action="append", default=[], metavar="[PROVIDER=]URL",
                        help="send a provider's requests to this base URL (repeatable)")
    runner.set_defaults(run=_reporting_errors(run_file))


def _reporting_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Our errors (bad input, a provider refusing) as one line on stderr and exit status 1."""
    def guarded(args: argparse.Namespace) -> int:
        from ..errors import FailoverClientError

        try:
            return command(args)
        except FailoverClientError as exc:
            sys.stderr.write(f"failover-client batch: {type(exc).__name__}: {exc}\n")
            return 1
    return guarded


# --- provider Batch APIs ----------------------------------------------------------------------


def _provider(args: argparse.Namespace) -> Provider:
    from .. import providers

    return providers.create(args.provider, **({"base_url": args.base_url} if args.base_url else {}))


def submit(args: argparse.Namespace) -> int:
    requests = read_requests(args.file)
    job = _provider(args).create_batch(requests)
    print(job.to_json())
    sys.stderr.write(f"submitted batch {job.id} ({len(requests)} requests) to {args.provider}\n")
    return 0


def status(args: argparse.Namespace) -> int:
    print(_provider(args).get_batch(args.id).to_json())
    return 0


def cancel(args: argparse.Namespace) -> int:
    print(_provider(args).cancel_batch(args.id).to_json())
    return 0


def list_jobs(args: argparse.Namespace) -> int:
    for job in islice(_provider(args).list_batches(), args.limit):  # pages are fetched as they are read
        print(job.to_json())
    return 0


def results_of(args: argparse.Namespace) -> int:
    counts: dict[str, int] = {}
    with _output(args.output) as out:
        for result in _provider(args).get_batch_results(args.id):
            out.write(result.to_json() + "\n")
            counts[result.status.value] = counts.get(result.status.value, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no results"
    sys.stderr.write(f"batch {args.id}: {summary}\n")
    return 0


# --- the thread-pool runner --------------------------------------------------------------------


def run_file(args: argparse.Namespace) -> int:
    from ..batch import run
    from ..errors import InvalidArgumentError
    from ..failover import FailoverClient
    from ..providers import resolve

    models = [text.strip() for text in args.models.split(",") if text.strip()]
    if not models:
        raise InvalidArgumentError("--models needs at least one provider/model")
    routes = [resolve(text) for text in models]
    first_model = routes[0][1]
    overrides = _base_urls(args.base_url, [provider for provider, _ in routes])
    requests = read_requests(args.file, model=first_model)
    with FailoverClient.from_models(*models, overrides=overrides) as client:
        results = run(client, (_with_model(item, first_model) for item in requests), max_workers=args.workers,
                      timeout=args.timeout, checkpoint=args.checkpoint)
    with _output(args.output) as out:
        for result in results:
            out.write(result.to_json() + "\n")
    if results.interrupted:
        return INTERRUPTED
    return 0 if all(result.ok for result in results) else 1


def _with_model(item: BatchRequest, model: str) -> BatchRequest:
    from dataclasses import replace

    return replace(item, request=item.request.with_model(model))


def _base_urls(values: list[str], providers: list[str]) -> dict[str, dict[str, Any]]:
    """``--base-url`` values as from_models overrides: ``PROVIDER=URL``, or a bare URL when the
    chain has one provider."""
    from ..errors import InvalidArgumentError

    overrides: dict[str, dict[str, Any]] = {}
    for value in values:
        name, equals, url = value.partition("=")
        if not equals or "://" in name:
            if len(set(providers)) != 1:
                raise InvalidArgumentError(f"--base-url {value!r}: say which provider (PROVIDER=URL), "
                                           f"the chain has {sorted(set(providers))}")
            name, url = providers[0], value
        if name not in providers:
            raise InvalidArgumentError(f"--base-url names {name!r}, which is not among --models")
        overrides[name] = {"base_url": url}
    return overrides


# --- files -------------------------------------------------------------------------------------


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8") as out:
        yield out


def read_requests(path: str, *, model: str | None = None) -> list[BatchRequest]:
    """The requests of a JSONL file (see the module's doc for the two line formats); ``model``
    stands in for a line that names none.  A bad line is an InvalidArgumentError naming it."""
    from ..errors import InvalidArgumentError
    from ..types import BatchRequest, CompletionRequest

    items = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except ValueError:
            raise InvalidArgumentError(f"{where}: not a JSON object") from None
        if not isinstance(data, dict) or not isinstance(data.get("custom_id"), str):
            raise InvalidArgumentError(f"{where}: a line needs a string custom_id")
        if isinstance(data.get("request"), dict):
            fields = {"model": model, **data["request"]} if model else data["request"]
            try:
                request = CompletionRequest.from_dict(fields)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InvalidArgumentError(f"{where}: not a CompletionRequest ({type(exc).__name__}: {exc})") from None
        elif isinstance(data.get("body"), dict):
            body = data["body"] if data["body"].get("model") or not model else {**data["body"], "model": model}
            try:
                request = CompletionRequest.from_openai(body)
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"{where}: {exc}") from None
        else:
            raise InvalidArgumentError(f"{where}: a line needs a request object (or OpenAI's body)")
        items.append(BatchRequest(data["custom_id"], request))
    return items
