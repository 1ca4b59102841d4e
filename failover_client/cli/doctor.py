"""``failover-client doctor``: is each provider set up, and does it answer?

For every catalog provider whose environment variables are set, and every provider named
(``doctor openai anthropic/claude-sonnet-5``, or a chain with ``--model``/``--fallback``), it
shows which variables it found (keys redacted to their first and last characters), the base
URL requests will go to, and, with ``--probe``, a one-token request (one embedding, for a service
without chat): its latency, or the error class and status.  A model named that the registry says
is past its deprecation date is flagged (one with a shutdown date ahead gets a note).  The probe
uses the model named for that provider, else the registry's cheapest current model of it.

Exit status 0 when nothing failed, 1 on any failure (a named provider's variable not set, a
probe refused, a retired model, nothing configured at all), 2 for a wrong command.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from .chain import FAILED, OK, add_chain_options, base_urls, chain_models, with_exit_status

if TYPE_CHECKING:
    from ..providers.catalog import ProviderSpec

SHOWN_KEY_CHARS = 3  # shown at each end of a long key
SHORTEST_SHOWN_KEY = 20  # a shorter key shows only its length
PROBE_TIMEOUT = 30.0
PROBE_PROMPT = "Reply with OK."


def add_doctor_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("doctor", help="check each provider's keys, base URL and (--probe) that it answers",
                                 description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="PROVIDER[/MODEL]", help="providers (and models) to check")
    add_chain_options(parser, model_required=False)
    parser.add_argument("--probe", action="store_true", help="send each provider a one-token request")
    parser.set_defaults(run=with_exit_status(doctor, "doctor"))


def doctor(args: argparse.Namespace) -> int:
    from ..providers.registry import spec

    wanted = _named(args)
    urls = base_urls(args.base_url, chain_models(args))
    for name in urls:
        spec(name)  # an unknown provider in --base-url is a wrong command
    providers = list(dict.fromkeys([*wanted, *(row.name for row in _configured())]))
    out = sys.stdout
    if not providers:
        out.write("no provider is configured: no catalog provider's variables are set "
                  "(failover-client doctor PROVIDER shows what one needs)\n")
        return FAILED
    failures = 0
    for name in providers:
        failures += Checkup(spec(name), wanted.get(name, []), name in wanted, urls.get(name), args, out).run()
    out.write(f"\n{len(providers)} provider(s) checked, {failures} problem(s)\n")
    return FAILED if failures else OK


def _named(args: argparse.Namespace) -> dict[str, list[str]]:
    """{provider: [models named for it]} from the arguments, in the order given."""
    from ..providers import resolve
    from ..providers.registry import spec

    named: dict[str, list[str]] = {}
    for text in [*args.names, *chain_models(args)]:
        if "/" in text:
            provider, model = resolve(text)
            named.setdefault(provider, [])
            if model not in named[provider]:
                named[provider].append(model)
        else:
            named.setdefault(spec(text).name, [])
    return named


def _configured() -> list[ProviderSpec]:
    """Catalog rows whose key variable is set (or, with no key variable, all their URL variables)."""
    from ..providers.catalog import CATALOG

    return [row for row in CATALOG
            if (os.environ.get(row.api_key_env) if row.api_key_env
                else row.params and all(os.environ.get(variable) for variable in row.params.values()))]


def redacted(value: str) -> str:
    """A key as it may be shown: its ends and its length, never the middle."""
    if len(value) < SHORTEST_SHOWN_KEY:
        return f"set ({len(value)} characters)"
    return f"set ({value[:SHOWN_KEY_CHARS]}…{value[-SHOWN_KEY_CHARS:]}, {len(value)} characters)"


class Checkup:
    """The report on one provider; :meth:`run` writes it and counts its failures."""

    def __init__(self, row: ProviderSpec, models: list[str], named: bool, base_url: str | None,
                 args: argparse.Namespace, out: TextIO) -> None:
        self.row = row
        self.models = models
        self.named = named
        self.overrides: dict[str, Any] = {"base_url": base_url} if base_url else {}
        self.args = args
        self.out = out
        self.failures = 0

    def line(self, label: str, text: str, *, failed: bool = False) -> None:
        self.failures += failed
        self.out.write(f"  {label:<24}  {text}{'   FAILED' if failed else ''}\n")

    def run(self) -> int:
        row = self.row
        self.out.write(f"\n{row.name} ({row.title}, {row.protocol} protocol)\n")
        missing = self._variables()
        provider = self._provider(explained=bool(missing))
        if provider is not None:
            self.line("base URL", getattr(provider, "base_url", "") or "(built for each request)")
        for model in self.models:
            self._deprecation(model)
        if self.args.probe:
            if missing or provider is None:
                self.line("probe", "not sent: the provider is not set up")
            else:
                self._probe(provider)
        if provider is not None:
            provider.close()
        return self.failures

    def _variables(self) -> list[str]:
        """Show the key and URL variables; the missing ones (a failure for a named provider)."""
        from ..providers.registry import missing_variables

        missing = missing_variables(self.row.name, **self.overrides)
        secret = self.row.api_key_env
        for variable in [*([secret] if secret else []), *self.row.params.values()]:
            value = os.environ.get(variable)
            if value:
                self.line(variable, redacted(value) if variable == secret else value)
            elif variable in missing:
                self.line(variable, "not set", failed=self.named)
            else:
                self.line(variable, "not set (not needed here)")
        if not secret and not self.row.params:
            self.line("key", "none needed (a local server)")
        return missing

    def _provider(self, *, explained: bool) -> Any:
        """The provider as requests would reach it; None if it cannot be built (a failure,
        unless the missing variables already said why)."""
        from ..errors import FailoverClientError
        from ..providers import create

        try:
            return create(self.row.name, **self.overrides)
        except FailoverClientError as exc:
            self.line("base URL", f"cannot be built: {exc}", failed=not explained)
            return None

    def _deprecation(self, model: str) -> None:
        from ..models import find
        from ..models.deprecation import describe

        row = find(model, provider=self.row.name)
        if row is None:
            self.line(f"model {model}", "not in the model registry (no price, no deprecation date known)")
        elif row.retired():
            self.line(f"model {model}", f"{describe(row)}; requests for it will fail", failed=True)
        else:
            self.line(f"model {model}", describe(row) or "current (no deprecation announced)")

    def _probe(self, provider: Any) -> None:
        """A one-token chat request, or for a service without chat (``row.chat``) one embedding."""
        from ..errors import FailoverClientError, ProviderError
        from ..types import CompletionRequest, EmbeddingRequest, Message

        model = self.models[0] if self.models else _cheapest_model(self.row.name, chat=self.row.chat)
        if model is None:
            self.line("probe", f"not sent: name a model ({self.row.name}/MODEL), the registry knows none")
            return
        timeout = self.args.timeout or PROBE_TIMEOUT
        started = time.perf_counter()
        try:
            if self.row.chat:
                provider.complete(CompletionRequest(model, [Message.user(PROBE_PROMPT)], max_tokens=1), timeout=timeout)
            else:
                provider.embed(EmbeddingRequest(model, [PROBE_PROMPT]), timeout=timeout)
        except FailoverClientError as exc:
            ms = (time.perf_counter() - started) * 1000
            status = f" {exc.status}" if isinstance(exc, ProviderError) and exc.status else ""
            self.line(f"probe {model}", f"{type(exc).__name__}{status} after {ms:.0f} ms: {str(exc)[:160]}",
                      failed=True)
            return
        self.line(f"probe {model}", f"answered in {(time.perf_counter() - started) * 1000:.0f} ms")


def _cheapest_model(provider: str, *, chat: bool = True) -> str | None:
    """The registry's cheapest current model of ``provider`` to probe with: a streaming chat
    model, or (``chat`` False) an embedding model."""
    from ..models import all_models

    def fits(row: Any) -> bool:
        if chat:
            return row.output_price is not None and row.supports("streaming")
        return row.embedding_dimensions is not None

    rows = [row for row in all_models() if row.provider == provider and not row.retired()
            and row.input_price is not None and fits(row)]
    return min(rows, key=lambda row: (row.input_price or 0) + (row.output_price or 0)).model if rows else None
