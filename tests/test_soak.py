"""Soak: 32 threads share one FailoverClient for 5,000 calls while every fake provider answers
~30% of requests with a random fault.  Afterwards every call either returned a response or
raised one of our errors; the fake server's request log holds exactly the requests each call's
attempts list (none lost, none duplicated; compared as multisets, since handler threads log in
scheduling order); no socket or thread outlives the run; urllib3 never said "Connection pool is
full".  Prints the figures."""

import collections
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from failover_client import (
    CompletionRequest,
    FailoverClient,
    FailoverClientError,
    FailoverConfig,
    FallbackProvider,
    Message,
    StreamInterruptedError,
    collect,
)
from failover_client.testing import FakeProviderServer, Fault, RandomFaults, Reply

from chains import sent_text
from support import make_provider

CALLS = 5000
THREADS = 32
FAULT_RATE = 0.3
REPLY = Reply(chunks=["All", " is", " well", " here", "."])
FAULTS = [  # short ones only: the soak is about volume, not waiting
    Fault.rate_limit(), Fault.rate_limit(retry_after=1), Fault.status(500), Fault.status(502),
    Fault.status(503), Fault.status(529), Fault.html_error(502), Fault.reset_before_headers(),
    Fault.reset_mid_body(after_events=0), Fault.reset_mid_body(after_events=3),
    Fault.truncated_stream(after_events=0), Fault.truncated_stream(after_events=3), Fault.malformed_json(),
    Fault.stream_error_event(0, "overloaded_error"), Fault.stream_error_event(3, "api_error"), Fault.empty_200(),
    Fault.stall_before_headers(1.0),  # a timeout: read_timeout is 0.25 s
]
CHAIN = (("a", "openai"), ("b", "anthropic"), ("c", "openai"))


def socket_inodes():
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:"):
            inodes.add(target)
    return inodes


def attempts_of(outcome):
    if isinstance(outcome, StreamInterruptedError):
        return outcome.partial.attempts
    return outcome.attempts


def one_call(client, i):
    request = CompletionRequest(model="gpt-4o", messages=[Message.user(f"soak call {i}")], stream=i % 2 == 1)
    try:
        if request.stream:
            return collect(client.complete_stream(request))
        return client.complete(request)
    except FailoverClientError as exc:
        return exc


def test_soak(caplog, capsys):
    threads_before = set(threading.enumerate())
    sockets_before = socket_inodes()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        with FakeProviderServer() as server:
            for seed, (name, _protocol) in enumerate(CHAIN):
                server.set_default(name, RandomFaults(FAULT_RATE, FAULTS, seed=seed, reply=REPLY))
            (first, protocol), *rest = CHAIN
            config = FailoverConfig(first, make_provider(server, first, protocol, read_timeout=0.25))
            for name, protocol in rest:
                config.add_fallback(FallbackProvider(name, make_provider(server, name, protocol, read_timeout=0.25)))
            # a short cooldown: circuits open, half-open and close many times during the run
            client = FailoverClient(config.with_deadline(10).with_circuit_breaker(cooldown=0.5))
            changes = []
            client.config.on("circuit", lambda **payload: changes.append(payload["state"]))
            with ThreadPoolExecutor(THREADS) as pool:
                results = list(pool.map(lambda i: one_call(client, i), range(CALLS)))
            client.close()
            # An attempt cut by the client's read timeout may still wait in the listen queue for a
            # starved accept loop: let the server take in what was sent before stopping it.
            sent = sum(a.outcome in ("ok", "error") for r in results for a in attempts_of(r))
            patience = time.monotonic() + 30
            while len(server.requests) < sent and time.monotonic() < patience:
                time.sleep(0.05)
    log = server.requests  # read once the server has stopped: every handler has logged its request
    elapsed = time.monotonic() - started
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(5)  # server connection threads finish as their sockets close
    leaked_threads = set(threading.enumerate()) - threads_before
    leaked_sockets = socket_inodes() - sockets_before

    # every call returned a response or raised one of ours
    assert len(results) == CALLS
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, FailoverClientError) for e in errors)
    assert all(r.text == "All is well here." for r in results if not isinstance(r, BaseException))
    # none lost, none duplicated: each call's requests are exactly the attempts it lists.  Compared
    # as multisets: the server logs a request when its handler thread gets to it, so a stalled
    # attempt cut by the client's read timeout may be logged after the next one under CPU load.
    logged = collections.defaultdict(collections.Counter)
    for recorded in log:
        logged[int(sent_text(recorded).rsplit(" ", 1)[1])][recorded.name] += 1
    for i, result in enumerate(results):
        sent = collections.Counter(a.provider for a in attempts_of(result) if a.outcome in ("ok", "error"))
        received = logged.pop(i, collections.Counter())
        assert received == sent, (f"call {i}: the server received {dict(received)}, the client lists "
                                  f"{[(a.provider, a.outcome, a.error_type, a.error) for a in attempts_of(result)]}")
    assert not logged  # no request the client does not account for
    assert not leaked_threads and not leaked_sockets
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]

    faults = collections.Counter(r.step for r in log if r.step != "reply")
    outcome = collections.Counter(
        type(r).__name__ if isinstance(r, BaseException) else f"served by {r.provider}" for r in results)
    skipped = sum(a.outcome == "skipped" for r in results for a in attempts_of(r))
    circuit_changes = ", ".join(f"{k} {v}" for k, v in sorted(collections.Counter(changes).items()))
    with capsys.disabled():  # the figures belong in the test output
        print(f"\nsoak: {CALLS} calls from {THREADS} threads in {elapsed:.1f} s; {len(log)} requests, "
              f"{sum(faults.values())} faults injected ({sum(faults.values()) / len(log):.0%}), "
              f"{skipped} attempts skipped (open circuits, Retry-After holds)")
        print(f"  circuit changes: {circuit_changes}")
        print("  faults: " + ", ".join(f"{k} {v}" for k, v in faults.most_common()))
        print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())))
        print(f"  leaked sockets: {len(leaked_sockets)}, leaked threads: {len(leaked_threads)}")
