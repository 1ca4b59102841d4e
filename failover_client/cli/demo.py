"""``failover-client demo``: failover end to end with no keys and no network.

It starts the package's own fake provider on 127.0.0.1, makes the primary (OpenAI protocol)
answer 429, and streams the answer from the fallback (Anthropic protocol), then prints the trail
of attempts.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

DEMO_ANSWER = "The primary was rate limited, so this answer streamed from the fallback provider."


def demo(out: TextIO = sys.stdout) -> int:
    from ..failover import FailoverClient, FailoverConfig, FallbackProvider
    from ..providers.anthropic import AnthropicProvider
    from ..providers.openai import OpenAIProvider
    from ..testing import FakeProviderServer, Fault, Reply
    from ..types import Attempt, CompletionRequest, Message

    with FakeProviderServer() as server:
        server.script("primary", Fault.rate_limit(retry_after=30))
        server.script("fallback", Reply(text=DEMO_ANSWER))
        config = (
            FailoverConfig("primary", OpenAIProvider(api_key="demo-key", base_url=server.base_url("primary", "openai")))
            .retry_primary(1)
            .add_fallback(
                FallbackProvider("fallback", AnthropicProvider(
                    api_key="demo-key", base_url=server.base_url("fallback", "anthropic")))
                .with_model_mapping("gpt-5.5", "claude-opus-5"))
            .with_deadline(30)
        )
        request = CompletionRequest(model="gpt-5.5", messages=[Message.user("Say something about failover.")])
        attempts: list[Attempt] = []
        with FailoverClient(config) as client:
            out.write("answer: ")
            for chunk in client.complete_stream(request):
                if chunk.text:
                    out.write(chunk.text)
                    out.flush()
                attempts = chunk.attempts or attempts
        out.write("\n\nattempts:\n")
        out.write(f"  {'provider':<10} {'model':<20} {'outcome':<28} {'ms':>8}\n")
        for attempt in attempts:
            outcome = attempt.outcome if attempt.outcome == "ok" else f"{attempt.error_type} {attempt.status or ''}"
            out.write(f"  {attempt.provider:<10} {attempt.model:<20} {outcome:<28} {attempt.elapsed_ms:>8.1f}\n")
    return 0


def add_demo_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="show failover against the built-in fake provider (no keys, no network)")
    parser.set_defaults(run=lambda args: demo())
