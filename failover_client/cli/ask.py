"""``failover-client ask "PROMPT" --model openai/gpt-5.5 --fallback anthropic/claude-sonnet-5``:
one question through a failover chain, the answer streamed to stdout as it arrives.

Without PROMPT the question is read from stdin (``git diff | failover-client ask -m ...``).
``-v`` writes the attempts (provider, model, outcome, milliseconds) to stderr; ``--json``
waits for the whole answer and prints the CompletionResponse as JSON (text, usage, stop
reason, provider, attempts).  Exit status 0 answered, 1 the providers failed, 2 the command was
wrong, 130 Ctrl-C (see :mod:`.chain`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .chain import OK, add_chain_options, build_client, chain_from_args, with_exit_status, write_attempts

if TYPE_CHECKING:
    from ..failover import FailoverClient
    from ..types import Attempt, CompletionRequest


def add_ask_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("ask", help="ask one question through a failover chain, streaming the answer",
                                 description=__doc__.split("\n\n")[0])
    parser.add_argument("prompt", nargs="?", help="the question (default: read from stdin)")
    add_chain_options(parser)
    add_request_options(parser)
    parser.add_argument("--json", action="store_true", help="print the whole response as JSON (no streaming)")
    parser.add_argument("-v", "--verbose", action="store_true", help="write the attempts to stderr")
    parser.set_defaults(run=with_exit_status(ask, "ask"))


def add_request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", help="a system prompt")
    parser.add_argument("--max-tokens", type=int, help="the longest answer, in tokens")
    parser.add_argument("--temperature", type=float)


def ask(args: argparse.Namespace) -> int:
    from ..errors import AllProvidersFailedError, InvalidArgumentError
    from ..types import CompletionRequest, Message

    prompt = args.prompt if args.prompt is not None else _stdin_prompt()
    if not prompt.strip():
        raise InvalidArgumentError("the prompt is empty")
    models, urls = chain_from_args(args)
    client = build_client(models, urls, args.timeout)
    request = CompletionRequest(model=client_model(models), messages=[Message.user(prompt)], system=args.system,
                                max_tokens=args.max_tokens, temperature=args.temperature)
    try:
        with client:
            attempts = _answer_json(client, request) if args.json else _answer_streamed(client, request)
    except AllProvidersFailedError as exc:
        if args.verbose:
            sys.stderr.write("attempts:\n")
            write_attempts(exc.attempts, sys.stderr)
        raise
    if args.verbose:
        sys.stderr.write("attempts:\n")
        write_attempts(attempts, sys.stderr)
    return OK


def client_model(models: list[str]) -> str:
    """The model a request names: the primary's (each fallback maps it to its own)."""
    from ..providers import resolve

    return resolve(models[0])[1]


def _stdin_prompt() -> str:
    from ..errors import InvalidArgumentError

    if sys.stdin.isatty():
        raise InvalidArgumentError("give the question as an argument, or pipe it on stdin")
    return sys.stdin.read()


def _answer_json(client: FailoverClient, request: CompletionRequest) -> list[Attempt]:
    response = client.complete(request)
    sys.stdout.write(response.to_json(indent=2) + "\n")
    return response.attempts


def _answer_streamed(client: FailoverClient, request: CompletionRequest) -> list[Attempt]:
    """Write the text as it arrives; a newline at the end if the answer lacks one."""
    out = sys.stdout
    attempts: list[Attempt] = []
    last = "\n"
    stream = client.complete_stream(request)
    try:
        for chunk in stream:
            if chunk.text:
                out.write(chunk.text)
                out.flush()
                last = chunk.text[-1]
            attempts = chunk.attempts or attempts
    finally:
        stream.close()  # on Ctrl-C or a failure: the connection is let go now, not at exit
        if last != "\n":
            out.write("\n")
            out.flush()
    return attempts
