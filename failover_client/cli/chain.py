"""What ``ask``, ``chat`` and ``doctor`` share: the failover chain from ``--model`` and
``--fallback`` (the catalog's ``provider/model`` names, keys from each provider's environment
variable), ``--base-url PROVIDER=URL`` to point a provider elsewhere (a proxy, a local fake
server), the table of attempts, and one meaning for exit statuses:

* 0: done (answered; for doctor, nothing failed);
* 1: the providers failed (every one of the chain, or one mid-answer; a failed probe);
* 2: the command was wrong (bad arguments, unknown provider, a key variable not set);
* 130: stopped with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable, Iterable, TextIO

if TYPE_CHECKING:
    from ..failover import FailoverClient
    from ..types import Attempt

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130


def add_chain_options(parser: argparse.ArgumentParser, *, model_required: bool = True) -> None:
    parser.add_argument("-m", "--model", required=model_required, metavar="PROVIDER/MODEL",
                        help="the primary, a catalog provider and its model, e.g. openai/gpt-5.5")
    parser.add_argument("-f", "--fallback", action="append", default=[], metavar="PROVIDER/MODEL",
                        help="a fallback, tried in the order given (repeatable)")
    parser.add_argument("--base-url", action="append", default=[], metavar="PROVIDER=URL",
                        help="send a provider's requests to this base URL (repeatable)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="how long one answer may take, failover included")


def chain_from_args(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The ``provider/model`` strings of the chain and the base URLs given for its providers."""
    models = chain_models(args)
    urls = base_urls(args.base_url, models)
    check_base_urls(urls, models)
    return models, urls


def chain_models(args: argparse.Namespace) -> list[str]:
    return [args.model, *args.fallback] if args.model else list(args.fallback)


def base_urls(values: Iterable[str], models: list[str]) -> dict[str, str]:
    """``--base-url`` values as {catalog provider: URL}.  A bare URL is the primary's."""
    from ..errors import InvalidArgumentError
    from ..providers import resolve

    urls: dict[str, str] = {}
    for value in values:
        name, equals, url = value.partition("=")
        if not equals or "://" in name:
            if not models:
                raise InvalidArgumentError(f"--base-url {value!r}: say which provider (PROVIDER=URL)")
            name, url = resolve(models[0])[0], value
        if not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"--base-url {value!r}: the URL must start with http:// or https://")
        urls[name] = url
    return urls


def build_client(models: list[str], urls: dict[str, str], timeout: float | None) -> FailoverClient:
    """The chain of ``models`` (the first the primary); ``urls`` for the providers among them."""
    from ..failover import FailoverClient
    from ..providers import resolve

    providers = {resolve(model)[0] for model in models}
    client = FailoverClient.from_models(
        *models, overrides={name: {"base_url": url} for name, url in urls.items() if name in providers})
    if timeout is not None:
        client.config.with_deadline(timeout)
    return client


def check_base_urls(urls: dict[str, str], models: list[str]) -> None:
    """Refuse a ``--base-url`` naming a provider that is not in the chain (a typo, most likely)."""
    from ..errors import InvalidArgumentError
    from ..providers import resolve

    providers = {resolve(model)[0] for model in models}
    for name in urls:
        if name not in providers:
            raise InvalidArgumentError(f"--base-url names {name!r}, which is not among the models "
                                       f"({', '.join(sorted(providers))})")


def write_attempts(attempts: Iterable[Attempt], out: TextIO) -> None:
    """One line per attempt: provider, model, outcome (error class, status), milliseconds."""
    for attempt in attempts:
        outcome = attempt.outcome
        if attempt.error_type:
            outcome += f" {attempt.error_type}" + (f" {attempt.status}" if attempt.status else "")
        out.write(f"  {attempt.provider:<14} {attempt.model:<28} {outcome:<36} {attempt.elapsed_ms:>9.1f} ms\n")
    out.flush()


def with_exit_status(command: Callable[[argparse.Namespace], int], name: str) -> Callable[[argparse.Namespace], int]:
    """Our errors as one line on stderr and the exit statuses of the module doc."""
    def guarded(args: argparse.Namespace) -> int:
        from ..errors import FailoverClientError, InvalidArgumentError, MissingCredentialsError

        try:
            return command(args)
        except (InvalidArgumentError, MissingCredentialsError) as exc:
            sys.stderr.write(f"failover-client {name}: {exc}\n")
            return USAGE
        except FailoverClientError as exc:
            sys.stderr.write(f"failover-client {name}: {type(exc).__name__}: {exc}\n")
            return FAILED
        except KeyboardInterrupt:
            sys.stderr.write("\n")
            return INTERRUPTED
    return guarded
