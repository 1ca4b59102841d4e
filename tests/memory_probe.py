"""Run in a child process by test_hostile: face each oversized answer of a HostileServer with the
library's default limits, and print, per probe, the error class and how far peak RSS grew above
the baseline (a warm client that has already made one call).  A child, so the figure is clean of
the test runner's own allocations.

usage: python memory_probe.py BASE_URL PROBE...   (each probe: name:protocol:plain|stream)
"""

import json
import resource
import sys

from failover_client import CompletionRequest, FailoverClientError, Message, collect
from failover_client.providers import BedrockProvider, OllamaProvider, OpenAIProvider

KEYS = {"api_key": None, "region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLEPROBE0001",
        "aws_secret_access_key": "probe-secret-0123456789abcdef"}


def provider(base_url, protocol):
    if protocol == "bedrock":
        return BedrockProvider(base_url=base_url, **KEYS)
    cls = OllamaProvider if protocol == "ollama" else OpenAIProvider
    return cls(api_key="sk-probe-0123456789", base_url=base_url)


def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    base, probes = sys.argv[1], sys.argv[2:]
    request = CompletionRequest("m", [Message.user("hi")])
    provider(f"{base}/warm", "openai").complete(request)  # warm-up: everything imported and allocated once
    baseline = peak_kib()
    for probe in probes:
        name, protocol, mode = probe.split(":")
        client = provider(f"{base}/{name}", protocol)
        try:
            if mode == "stream":
                collect(client.complete_stream(request, timeout=30))
            else:
                client.complete(request, timeout=30)
            outcome = "answer"
        except FailoverClientError as exc:
            outcome = type(exc).__name__
        client.close()
        print(json.dumps({"probe": name, "outcome": outcome, "grew_mib": (peak_kib() - baseline) / 1024}), flush=True)


if __name__ == "__main__":
    main()
