"""Time failover_client against raw requests on the same local fake provider, in one run.

usage: python benchmarks/bench.py [--calls N] [--rounds R]

Starts ../shared/bench/fake_server.js with node (a fast server in another process keeps the
client's own cost visible; the bench peers are measured against the same server).  Modes:
plain (sequential non-streaming calls), stream (200 events per call), threads (16 threads
sharing one client), plus import time and peak memory.  Rounds alternate raw and project so
drift hits both alike; the median round is reported, as a ratio to raw.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
NODE_SERVER = HERE.parents[1] / "shared" / "bench" / "fake_server.js"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    if not (NODE_SERVER.exists() and shutil.which("node")):
        raise SystemExit(f"needs node and {NODE_SERVER}")
    port = free_port()
    proc = subprocess.Popen(["node", str(NODE_SERVER), str(port)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the fake server did not start")


def raw_client(base: str) -> tuple[Callable[[], str], Callable[[], str]]:
    import requests

    session = requests.Session()
    url = base + "/v1/chat/completions"

    def plain() -> str:
        r = session.post(url, json={"model": "gpt-4o", "messages": MESSAGES},
                         headers={"Authorization": "Bearer x"}, timeout=30)
        return str(r.json()["choices"][0]["message"]["content"])

    def stream() -> str:
        r = session.post(url, json={"model": "gpt-4o", "messages": MESSAGES, "stream": True},
                         headers={"Authorization": "Bearer x"}, timeout=30, stream=True)
        out = []
        for line in r.iter_lines():
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                choices = json.loads(line[6:])["choices"]
                if choices and choices[0]["delta"].get("content"):
                    out.append(choices[0]["delta"]["content"])
        return "".join(out)

    return plain, stream


def project_client(base: str) -> tuple[Callable[[], str], Callable[[], str]]:
    from failover_client import CompletionRequest, Message
    from failover_client.providers import OpenAIProvider

    provider = OpenAIProvider(api_key="x", base_url=base + "/v1")
    plain_request = CompletionRequest(model="gpt-4o", messages=[Message.user("Say hello")])
    stream_request = CompletionRequest(model="gpt-4o", messages=[Message.user("Say hello")], stream=True)

    def plain() -> str:
        return provider.complete(plain_request).text

    def stream() -> str:
        return "".join(chunk.text or "" for chunk in provider.complete_stream(stream_request))

    return plain, stream


def time_mode(fn: Callable[[], str], mode: str, calls: int) -> float:
    """Microseconds per call."""
    started = time.perf_counter()
    if mode == "threads":
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda _: fn(), range(calls)))
    else:
        for _ in range(calls):
            fn()
    return (time.perf_counter() - started) / calls * 1e6


def import_cost(statement: str, runs: int) -> tuple[float, float]:
    """Median wall seconds of ``statement`` in a fresh interpreter, and the resident memory it
    added in MiB (VmRSS; ru_maxrss would inherit this parent's high-water mark across exec)."""
    code = ("import time\n"
            "def rss():\n"
            "    with open('/proc/self/status') as f:\n"
            "        return next(int(l.split()[1]) for l in f if l.startswith('VmRSS'))\n"
            f"before = rss()\nt = time.perf_counter()\n{statement}\nelapsed = time.perf_counter() - t\n"
            "print(elapsed, (rss() - before) / 1024)")
    samples = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
               for _ in range(runs)]
    return statistics.median(float(s[0]) for s in samples), statistics.median(float(s[1]) for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    proc, base = start_server()
    try:
        clients = {"raw": raw_client(base), "project": project_client(base)}
        for plain, stream in clients.values():  # warm up, and check both read the same answer
            assert plain() == stream() != ""
        print(f"server: node fake_server.js; {args.rounds} rounds x {args.calls} calls; median round\n")
        print(f"{'mode':<8} {'raw us/call':>12} {'project us/call':>16} {'ratio':>7}  target")
        targets = {"plain": "<= 1.15", "stream": "<= 1.00", "threads": "<= 1.11 (>= 0.9x throughput)"}
        for mode in ("plain", "stream", "threads"):
            figures: dict[str, list[float]] = {"raw": [], "project": []}
            for _ in range(args.rounds):
                for name, (plain, stream) in clients.items():
                    figures[name].append(time_mode(stream if mode == "stream" else plain, mode, args.calls))
            raw, project = statistics.median(figures["raw"]), statistics.median(figures["project"])
            print(f"{mode:<8} {raw:>12.0f} {project:>16.0f} {project / raw:>7.2f}  {targets[mode]}")
    finally:
        proc.kill()
        proc.wait()
    print()
    base_time, base_mem = import_cost("import requests", 15)
    for statement in ("import failover_client", "from failover_client import CompletionRequest, FailoverClient",
                      "from failover_client.providers import OpenAIProvider"):
        seconds, mib = import_cost(statement, 15)
        print(f"{statement:<64} {seconds * 1000:6.1f} ms ({seconds / base_time:.2f}x import requests), "
              f"memory +{mib:.1f} MiB (requests +{base_mem:.1f} MiB)")


if __name__ == "__main__":
    main()
