"""Helpers for the resilience tests: failover chains over the fake server, a clock tests move
by hand, and what the kernel says about this process's sockets."""

import os

from failover_client import FailoverConfig, FallbackProvider, collect

from support import ask, make_provider


class Sleeps(list):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds):
        self.append(seconds)


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def chain(server, *names, protocol="openai", sleeps=None, **options):
    """primary -> fallbacks, each a route of the fake server, all speaking ``protocol``."""
    first, *rest = names
    config = FailoverConfig(first, make_provider(server, first, protocol, **options))
    for name in rest:
        config.add_fallback(FallbackProvider(name, make_provider(server, name, protocol, **options)))
    config.sleep = sleeps if sleeps is not None else Sleeps()
    return config


def call(client, mode, **options):
    """One call in ``mode`` ("complete" or "stream"), as a CompletionResponse."""
    if mode == "complete":
        return client.complete(ask(), **options)
    return collect(client.complete_stream(ask(stream=True), **options))


def link(server, name, protocol="openai", **options):
    return FallbackProvider(name, make_provider(server, name, protocol, **options))


def outcomes(attempts):
    return [(a.provider, a.outcome, a.error_type) for a in attempts]


def served(server):
    return [r.name for r in server.requests]


def sent_text(recorded):
    """The user text of a recorded OpenAI or Anthropic chat request."""
    content = recorded.body["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
              "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def tcp_states_to(port):
    """The state of every socket of this host connected *to* ``port`` on 127.0.0.1 (the client
    side of connections to a local server), from /proc/net/tcp."""
    states = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port:
                states.append(TCP_STATES.get(fields[3], fields[3]))
    return states


def open_sockets():
    """How many sockets this process holds open (file descriptors that are sockets)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass  # the descriptor closed while we looked
    return count
