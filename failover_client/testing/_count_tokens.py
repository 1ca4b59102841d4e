"""Anthropic's token counting route (`POST /v1/messages/count_tokens`), played from the same
per-name script as the chat routes: a Reply answers `{"input_tokens": reply.usage["input"]}`,
a Fault fails the count the way it fails a message.

It is registered as a protocol of its own so the server's checks, scripts, faults and request
log apply unchanged; clients reach it through the ordinary Anthropic base URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._anthropic import AnthropicProtocol
from ._protocol import Call, ErrorSpec, dumps
from ._steps import Reply

COUNTED_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                            "mcp_servers", "cache_control", "context_management"})


class AnthropicCountTokens(AnthropicProtocol):
    name = "anthropic-count-tokens"
    route = "/v1/messages/count_tokens"

    def reject(self, headers: Mapping[str, str], body: Any, json_ok: bool) -> ErrorSpec | None:
        """The Messages checks, except that max_tokens is not wanted: fields that only matter to
        generation (max_tokens, temperature, stream...) are refused, as the real API does."""
        spec = super().reject(headers, {**body, "max_tokens": 1} if json_ok else body, json_ok)
        extra = sorted(set(body) - COUNTED_FIELDS) if spec is None else []
        if extra:
            spec = ErrorSpec(400, "invalid_request_error", f"{extra[0]}: Extra inputs are not permitted")
        return spec

    def render(self, reply: Reply, call: Call, *, finished: bool = True) -> bytes:
        return dumps({"input_tokens": reply.usage["input"]}).encode()


PROTOCOL = AnthropicCountTokens()
