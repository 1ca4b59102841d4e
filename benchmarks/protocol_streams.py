"""Per-event cost of a 200-event stream through each provider, as a ratio to OpenAIProvider's.

usage: python benchmarks/protocol_streams.py [--calls N] [--rounds R]

The package's own FakeProviderServer runs in a child process (so the client's CPU time is its
own) and streams the same 200 text deltas in each protocol's framing.  Each round runs every
provider once, in a shuffled order; the ratio to OpenAI is taken within each round and the
median (and quartiles) of those ratios is reported, with the median client CPU per wire event.
Target (issue 3): every protocol within 1.1x of OpenAI's per-event cost.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from typing import Any

SERVER = """
import time
from failover_client.testing import FakeProviderServer, Reply
with FakeProviderServer() as server:
    server.set_default("default", Reply(chunks=[f" word{i}" for i in range(200)], usage={"input": 12, "output": 200}))
    print(server.url, flush=True)
    while True:
        time.sleep(3600)
"""


def providers(url: str) -> dict[str, Any]:
    from failover_client.providers import (
        AnthropicProvider,
        AzureOpenAIProvider,
        BedrockProvider,
        CohereProvider,
        GeminiProvider,
        OllamaProvider,
        OpenAIProvider,
        OpenAIResponsesProvider,
        VertexProvider,
    )
    from failover_client.testing._bedrock import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
    from failover_client.testing._server import PROTOCOLS

    def base(url: str, name: str, protocol: str) -> str:
        """What FakeProviderServer.base_url gives, for a server running in another process."""
        return str(PROTOCOLS[protocol].base_url(url, name))

    key = "sk-bench-key-0123456789"
    return {
        "openai": OpenAIProvider(key, base_url=base(url, "default", "openai")),
        "anthropic": AnthropicProvider(key, base_url=base(url, "default", "anthropic")),
        "gemini": GeminiProvider(key, base_url=base(url, "default", "gemini")),
        "vertex": VertexProvider("p", "us-central1", access_token="ya29.bench-token",
                                 base_url=base(url, "default", "vertex")),
        "bedrock": BedrockProvider(region="us-east-1", aws_access_key_id=TEST_ACCESS_KEY_ID,
                                   aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
                                   base_url=base(url, "default", "bedrock")),
        "cohere": CohereProvider(key, base_url=base(url, "default", "cohere")),
        "ollama": OllamaProvider(base_url=base(url, "default", "ollama")),
        "azure": AzureOpenAIProvider(key, api_version="2024-10-21", base_url=base(url, "default", "azure")),
        "responses": OpenAIResponsesProvider(key, base_url=base(url, "default", "responses")),
    }


def main() -> None:
    from failover_client import CompletionRequest, Message

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        url = (server.stdout.readline() if server.stdout else "").strip()
        clients = providers(url)
        request = CompletionRequest("gemini-2.5-flash", [Message.user("hi")], stream=True, max_tokens=300)
        events = {}
        for name, provider in clients.items():  # warm up; the wire events per stream are the chunks seen
            events[name] = max(1, sum(1 for _ in provider.complete_stream(request)))
        cpu: dict[str, list[float]] = {name: [] for name in clients}
        order = list(clients)
        shuffle = random.Random(0).shuffle
        for _ in range(args.rounds):
            shuffle(order)  # no provider always runs just after another one
            for name in order:
                provider = clients[name]
                started = time.process_time()
                for _ in range(args.calls):
                    for _ in provider.complete_stream(request):
                        pass
                cpu[name].append((time.process_time() - started) / args.calls / events[name] * 1e6)
        # Each round's ratio pairs measurements taken moments apart, so drift in the machine's
        # speed over the run cancels out; the median and quartiles are over those ratios.
        print(f"{'provider':<10} {'us/event':>9} {'vs openai':>10} {'quartiles':>12}  "
              f"(client CPU, {args.rounds} rounds)")
        for name in clients:
            ratios = sorted(mine / base for mine, base in zip(cpu[name], cpu["openai"], strict=True))
            low, _, high = statistics.quantiles(ratios, n=4)
            print(f"{name:<10} {statistics.median(cpu[name]):>9.2f} {statistics.median(ratios):>10.2f} "
                  f"{low:>6.2f}-{high:<5.2f}")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
