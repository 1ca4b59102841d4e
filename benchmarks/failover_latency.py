"""Time to a fallback answer while the primary answers 429, against a direct call to the fallback.

usage: python benchmarks/failover_latency.py [--calls N] [--rounds R] [--delays-ms 0,20]

Uses ../shared/bench/fake_server.js (started as benchmarks/bench.py does), whose /fail429/ paths
always answer 429 with ``retry-after: 1``.  Clients, timed in alternating rounds (the median
round is reported, as a ratio to the direct call):

* direct — the fallback provider called on its own;
* first call — primary (429), then the fallback, on every call (breaker off): what each call
  costs before the client has learnt anything about the primary;
* default settings — the primary's ``retry-after: 1`` holds it for a second, so the calls in that
  second skip it; one call a second pays the first-call price;
* circuit open — the primary's circuit is open: calls skip it without sending anything.

Each is measured with the fallback answering at once (the client's own cost against a local
server, the worst case for the ratio) and after a simulated generation time (``x-delay-ms``),
as any real model takes.  Targets (issue 5): first call <= 1.5x direct, circuit open <= 1.1x.
litellm's Router takes ~4.5 s a call here: it honours the Retry-After before falling back.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

from bench import start_server

TARGETS = {"direct": "", "first call": "<= 1.5", "default settings": "", "circuit open": "<= 1.1"}


def clients(base: str, delay_ms: int) -> dict[str, Callable[[], str]]:
    from failover_client import CompletionRequest, FailoverClient, FailoverConfig, FallbackProvider, Message
    from failover_client.providers import OpenAIProvider

    request = CompletionRequest(model="gpt-4o", messages=[Message.user("Say hello")])
    generation = {"x-delay-ms": str(delay_ms)}

    def fallback() -> OpenAIProvider:
        return OpenAIProvider(api_key="x", base_url=base + "/v1", headers=generation)

    def chain() -> FailoverConfig:
        primary = OpenAIProvider(api_key="x", base_url=base + "/fail429/v1")
        return FailoverConfig("primary", primary).add_fallback(FallbackProvider("backup", fallback()))

    direct = fallback()
    first_call = FailoverClient(chain().without_circuit_breaker())
    default = FailoverClient(chain())
    opened = FailoverClient(chain().with_circuit_breaker(failure_threshold=1, cooldown=3600))
    opened.complete(request)  # its 429 opens the circuit for the whole run
    assert opened.config.health.state("primary") == "open"
    return {
        "direct": lambda: direct.complete(request).text,
        "first call": lambda: first_call.complete(request).text,
        "default settings": lambda: default.complete(request).text,
        "circuit open": lambda: opened.complete(request).text,
    }


def per_call(fn: Callable[[], str], calls: int) -> float:
    """Microseconds per call."""
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def measure(base: str, delay_ms: int, calls: int, rounds: int) -> None:
    timed = clients(base, delay_ms)
    for fn in timed.values():  # warm up; every client reads the same answer
        assert fn().startswith("alpha beta")
    figures: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(rounds):
        for name, fn in timed.items():
            figures[name].append(per_call(fn, calls))
    direct = statistics.median(figures["direct"])
    print(f"\nfallback answers after {delay_ms} ms; {rounds} rounds x {calls} calls; median round")
    print(f"{'client':<18} {'us/call':>9} {'vs direct':>10}  target")
    for name, samples in figures.items():
        median = statistics.median(samples)
        print(f"{name:<18} {median:>9.0f} {median / direct:>10.2f}  {TARGETS[name]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--delays-ms", default="0,20", help="simulated generation times, comma-separated")
    args = parser.parse_args()
    proc, base = start_server()
    try:
        for delay_ms in (int(d) for d in args.delays_ms.split(",")):
            calls = args.calls if delay_ms == 0 else max(20, args.calls // (1 + delay_ms))
            measure(base, delay_ms, calls, args.rounds)
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
