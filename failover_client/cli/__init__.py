"""The ``failover-client`` command: one module per command group registers its sub-commands.

* ``demo`` (:mod:`.demo`): failover end to end against the built-in fake provider;
* ``models`` and ``usage`` (:mod:`.models`): the model registry and the usage in attempt logs;
* ``batch`` (:mod:`.batch`): provider Batch APIs and local batch runs;
* ``ask`` (:mod:`.ask`): one question through a failover chain;
* ``chat`` (:mod:`.chat`): a conversation in the terminal through a failover chain;
* ``doctor`` (:mod:`.doctor`): each provider's keys, base URL and (``--probe``) answer;
* ``fake-server`` (:mod:`.fake_server`): the fake provider as a process of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .ask import add_ask_command
from .batch import add_batch_commands
from .chat import add_chat_command
from .demo import add_demo_command
from .doctor import add_doctor_command
from .fake_server import add_fake_server_command
from .models import add_models_commands

# Each command module adds its sub-commands here; a sub-command sets ``run(args) -> exit code``.
COMMANDS = [
    add_demo_command,
    add_models_commands,
    add_batch_commands,
    add_fake_server_command,
    add_ask_command,
    add_chat_command,
    add_doctor_command,
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="failover-client",
                                     description="One synchronous client for many LLM providers, with failover.")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_commands in COMMANDS:
        add_commands(commands)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # the reader went away (``| head``): nothing of ours failed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        return 0
