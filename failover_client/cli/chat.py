"""``failover-client chat --model openai/gpt-5.5 --fallback anthropic/claude-sonnet-5``: a
conversation in the terminal through a failover chain, each answer streamed as it arrives.

The whole conversation is sent with each question.  Ctrl-C during an answer stops that answer
(what was shown stays in the conversation) and you stay in the session; Ctrl-D (or ``/quit``)
leaves.  Commands:

* ``/model PROVIDER/MODEL``: another primary (the fallbacks stay);
* ``/fallback [PROVIDER/MODEL ...]``: other fallbacks (none: no fallback);
* ``/attempts``: what the last answer tried (provider, model, outcome, milliseconds);
* ``/cost``: tokens and dollars so far (at the model registry's prices);
* ``/clear``: forget the conversation; ``/help``; ``/quit``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable, TextIO

from .ask import add_request_options
from .chain import OK, add_chain_options, build_client, chain_from_args, with_exit_status, write_attempts

if TYPE_CHECKING:
    from ..failover import FailoverClient
    from ..types import Attempt, CompletionResponse, Message

PROMPT = "you> "


def add_chat_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("chat", help="an interactive conversation through a failover chain",
                                 description=__doc__.split("\n\n")[0])
    add_chain_options(parser)
    add_request_options(parser)
    parser.set_defaults(run=with_exit_status(chat, "chat"))


def chat(args: argparse.Namespace) -> int:
    try:
        import readline  # noqa: F401  (line editing and history for input(), where the platform has it)
    except ImportError:
        pass
    models, urls = chain_from_args(args)
    session = Session(models, urls, args, sys.stdout)
    session.out.write(f"chatting with {session.describe()}; /help lists the commands, Ctrl-D leaves\n")
    try:
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                session.out.write("\n")
                return OK
            except KeyboardInterrupt:
                session.out.write("\n")
                continue
            if line.startswith("/"):
                if not session.command(line):
                    return OK
            elif line.strip():
                session.ask(line)
    finally:
        session.client.close()


class Session:
    """The conversation, the chain answering it and what its answers cost."""

    def __init__(self, models: list[str], urls: dict[str, str], args: argparse.Namespace, out: TextIO) -> None:
        self.models = models
        self.urls = urls
        self.args = args
        self.out = out
        self.client: FailoverClient = build_client(models, urls, args.timeout)
        self.history: list[Message] = []
        self.last_attempts: list[Attempt] = []
        self.answers: list[CompletionResponse] = []
        self.commands: dict[str, Callable[[list[str]], bool]] = {
            "/model": self.set_model, "/fallback": self.set_fallbacks, "/attempts": self.show_attempts,
            "/cost": self.show_cost, "/clear": self.clear, "/help": self.help, "/quit": self.quit,
            "/exit": self.quit}

    def describe(self) -> str:
        fallbacks = ", ".join(self.models[1:]) or "none"
        return f"{self.models[0]} (fallbacks: {fallbacks})"

    # --- questions ------------------------------------------------------------------------------

    def ask(self, text: str) -> None:
        """Stream the answer to ``text``; on Ctrl-C stop it, keeping what was shown."""
        from ..errors import FailoverClientError
        from ..types import CompletionRequest, Message, collect

        question = Message.user(text)
        request = CompletionRequest(model=self._primary_model(), messages=[*self.history, question],
                                    system=self.args.system, max_tokens=self.args.max_tokens,
                                    temperature=self.args.temperature)
        chunks = []
        stream = self.client.complete_stream(request)
        try:
            for chunk in stream:
                chunks.append(chunk)
                if chunk.text:
                    self.out.write(chunk.text)
                    self.out.flush()
        except KeyboardInterrupt:
            stream.close()
            self.last_attempts = []
            shown = collect(chunks).text
            self.out.write(("\n" if shown else "") + "[stopped]\n")
            if shown:
                self.history += [question, Message.assistant(shown)]
            return
        except FailoverClientError as exc:
            self.last_attempts = list(getattr(exc, "attempts", []) or [])
            shown = any(chunk.text for chunk in chunks)
            self.out.write(("\n" if shown else "") + f"[no answer: {type(exc).__name__}: {exc}]\n")
            return
        answer = collect(chunks)
        self.out.write("\n")
        self.history += [question, answer.to_message()]
        self.last_attempts = answer.attempts
        self.answers.append(answer)

    def _primary_model(self) -> str:
        from ..providers import resolve

        return resolve(self.models[0])[1]

    # --- commands -------------------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run a /command; False when the session should end."""
        name, *words = line.split()
        run = self.commands.get(name)
        if run is None:
            self.out.write(f"unknown command {name}; /help lists them\n")
            return True
        return run(words)

    def _rebuild(self, models: list[str]) -> None:
        from ..errors import FailoverClientError

        try:
            client = build_client(models, self.urls, self.args.timeout)
        except FailoverClientError as exc:
            self.out.write(f"[kept {self.describe()}: {exc}]\n")
            return
        self.client.close()
        self.client, self.models = client, models
        self.out.write(f"[now {self.describe()}]\n")

    def set_model(self, words: list[str]) -> bool:
        if len(words) != 1:
            self.out.write("usage: /model PROVIDER/MODEL\n")
        else:
            self._rebuild([words[0], *self.models[1:]])
        return True

    def set_fallbacks(self, words: list[str]) -> bool:
        self._rebuild([self.models[0], *words])
        return True

    def show_attempts(self, _words: list[str]) -> bool:
        if not self.last_attempts:
            self.out.write("no attempts to show (no answer yet, or the last one was stopped)\n")
        write_attempts(self.last_attempts, self.out)
        return True

    def show_cost(self, _words: list[str]) -> bool:
        costs = [answer.cost for answer in self.answers]
        known = [cost for cost in costs if cost is not None]
        tokens_in = sum(answer.usage.input_tokens for answer in self.answers)
        tokens_out = sum(answer.usage.output_tokens for answer in self.answers)
        unknown = f" ({len(costs) - len(known)} at unknown prices)" if len(known) < len(costs) else ""
        self.out.write(f"{len(self.answers)} answers, {tokens_in} tokens in, {tokens_out} out, "
                       f"${sum(known):.6f}{unknown}\n")
        return True

    def clear(self, _words: list[str]) -> bool:
        self.history.clear()
        self.out.write("[conversation forgotten]\n")
        return True

    def help(self, _words: list[str]) -> bool:
        self.out.write(__doc__.split("Commands:\n\n", 1)[1].replace("``", ""))
        return True

    def quit(self, _words: list[str]) -> bool:
        return False
