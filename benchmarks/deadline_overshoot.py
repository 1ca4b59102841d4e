"""How late a deadline cuts a call: the overshoot past ``with_deadline(s)`` for stalls, trickles
and retries, plain and streamed, against the local fake provider.

The README promises at most 10% + 50 ms.  The tests only prove that the deadline cuts the call
(a scheduling delay on a busy machine is not a library fault); this script measures how late the
cut comes, so run it on a quiet machine:

    python benchmarks/deadline_overshoot.py [--deadline 0.5] [--calls 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from failover_client import (
    CompletionRequest,
    FailoverClient,
    FailoverClientError,
    FailoverConfig,
    FallbackProvider,
    Message,
    collect,
)
from failover_client.providers import OpenAIProvider
from failover_client.testing import FakeProviderServer, Fault, Reply

SLOW = Reply(text="slow " * 200)
SCENARIOS = {  # name -> (primary's fault, backup's fault)
    "both stall before headers": (Fault.stall_before_headers(30), Fault.stall_before_headers(30)),
    "stall after output": (Fault.stall_mid_stream(4, 30, reply=SLOW), Fault.stall_before_headers(30)),
    "trickle past the deadline": (Fault.trickle(0.05, SLOW), Fault.trickle(0.05, SLOW)),
    "retry after 0.3 s, then stall": (Fault.rate_limit(retry_after=0.3), Fault.stall_before_headers(30)),
}


def one_call(server: FakeProviderServer, faults: tuple[Fault, Fault], deadline: float, stream: bool) -> float:
    """Seconds past the deadline at which a call facing ``faults`` ended."""
    primary, backup = faults
    server.script("primary", primary, primary)
    server.script("backup", backup)

    def provider(name: str) -> OpenAIProvider:
        return OpenAIProvider(api_key="sk-bench", base_url=server.base_url(name, "openai"), name=name)

    config = (FailoverConfig("primary", provider("primary")).retry_primary(1)
              .add_fallback(FallbackProvider("backup", provider("backup"))).with_deadline(deadline))
    request = CompletionRequest(model="gpt-4o", messages=[Message.user("hi")], stream=stream)
    started = time.monotonic()
    with FailoverClient(config) as client:
        try:
            collect(client.complete_stream(request)) if stream else client.complete(request)
        except FailoverClientError:
            pass
    return time.monotonic() - started - deadline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline", type=float, default=0.5)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    promise = args.deadline * 0.1 + 0.05
    print(f"deadline {args.deadline} s; the promise: at most {promise * 1000:.0f} ms late; {args.calls} calls each")
    print(f"{'scenario':<32} {'mode':<9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  within")
    with FakeProviderServer() as server:
        for name, faults in SCENARIOS.items():
            for stream in (False, True):
                late = sorted(one_call(server, faults, args.deadline, stream) for _ in range(args.calls))
                p95 = late[min(len(late) - 1, round(0.95 * (len(late) - 1)))]
                print(f"{name:<32} {'stream' if stream else 'complete':<9} {statistics.median(late) * 1000:>8.1f} "
                      f"{p95 * 1000:>8.1f} {late[-1] * 1000:>8.1f}  {'yes' if late[-1] <= promise else 'NO'}")


if __name__ == "__main__":
    main()
