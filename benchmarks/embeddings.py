"""Embed 100,000 short texts through the fake server: failover_client.batch.embed against the
openai SDK with the same thread count and the same texts per request, in one run.

usage: python benchmarks/embeddings.py [--texts N] [--threads T] [--batch B] [--dimensions D] [--rounds R]

The fake server (failover_client.testing) runs in another process so that the client's own cost
is what differs.  Both clients ask for base64 vectors (the openai SDK's default, and ours) and
decode them to lists of floats.  Rounds alternate the two so drift hits both alike; the median
round is reported, with the client process's CPU time per text (the server runs elsewhere, so
this is the client's own cost), then each client's peak Python memory (tracemalloc) over one
more run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

MODEL = "text-embedding-3-small"


def serve(ready: multiprocessing.Queue, stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    from failover_client.testing import FakeProviderServer

    with FakeProviderServer() as server:
        ready.put(server.base_url("bench", "openai"))
        stop.wait()


def ours(base_url: str, threads: int, batch: int, dimensions: int) -> Callable[[list[str]], int]:
    from failover_client import batch as runner
    from failover_client.providers import OpenAIProvider

    provider = OpenAIProvider(api_key="sk-bench", base_url=base_url, name="bench")

    def run(texts: list[str]) -> int:
        answer = runner.embed(texts, provider, model=MODEL, dimensions=dimensions, batch_size=batch,
                              workers=threads, progress=False)
        return len(answer.vectors)

    return run


def sdk(base_url: str, threads: int, batch: int, dimensions: int) -> Callable[[list[str]], int]:
    import openai

    client = openai.OpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)

    def one(chunk: list[str]) -> list[list[float]]:
        result = client.embeddings.create(model=MODEL, input=chunk, dimensions=dimensions)
        return [list(item.embedding) for item in result.data]

    def run(texts: list[str]) -> int:
        chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)]
        with ThreadPoolExecutor(threads) as pool:
            vectors = [vector for part in pool.map(one, chunks) for vector in part]  # kept, as batch.embed does
        return len(vectors)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dimensions", type=int, default=32)  # 100,000 x 1536 floats would not fit in memory
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = [f"short text number {i} about topic {i % 97}" for i in range(args.texts)]
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(ready, stop), daemon=True)
    server.start()
    base_url = ready.get(timeout=30)
    try:
        clients = {"failover_client": ours(base_url, args.threads, args.batch, args.dimensions),
                   "openai SDK": sdk(base_url, args.threads, args.batch, args.dimensions)}
        for run in clients.values():
            run(texts[: args.batch * args.threads])  # warm up: connections, imports
        rates: dict[str, list[float]] = {name: [] for name in clients}
        cpu: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, run in clients.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                assert run(texts) == len(texts)
                rates[name].append(len(texts) / (time.perf_counter() - started))
                cpu[name].append((time.process_time() - started_cpu) * 1e6 / len(texts))
        peaks = {}
        for name, run in clients.items():
            tracemalloc.start()
            run(texts)
            peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    finally:
        stop.set()
        server.join(5)
    print(f"{len(texts):,} texts, {args.threads} threads, {args.batch} texts per request, "
          f"{args.dimensions} dimensions, median of {args.rounds} rounds")
    base = statistics.median(rates["openai SDK"])
    for name in clients:
        median = statistics.median(rates[name])
        print(f"  {name:16s} {median:10,.0f} texts/s  ({median / base:.2f}x the SDK)  "
              f"client CPU {statistics.median(cpu[name]):6.1f} us/text  peak traced memory {peaks[name]:7.1f} MiB")


if __name__ == "__main__":
    main()
