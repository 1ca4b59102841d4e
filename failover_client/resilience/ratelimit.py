"""Client-side rate limits: requests and tokens per minute for each provider.

A provider's published limits are enforced by the provider with a 429; enforcing our share of
them here means a call goes straight to the next provider instead of spending a round trip on
a refusal (or, with ``wait=True``, waits for room within its deadline).

Counting uses a sliding-window estimate over two fixed windows (the previous minute weighted by
how much of it still overlaps the last 60 s, plus the current minute): O(1) per call and
atomic in one Redis script, within a few percent of an exact sliding log.

Tokens are not known before the answer, so a call reserves an estimate — about four characters
a token for the prompt, plus ``max_tokens`` — and the reservation is corrected by the usage the
provider reports.  The counts live in the health store (:mod:`failover_client.health`): this
process's memory by default, Redis when several processes share one quota.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InvalidArgumentError
from ..types import CompletionRequest, Usage

WINDOW = 60.0  # seconds: limits are per minute
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class RateLimit:
    """At most ``rpm`` requests and ``tpm`` tokens a minute (None: no such limit).  Over the
    limit a call moves on to the next provider, or with ``wait=True`` waits for room (never
    past its deadline)."""

    rpm: int | None = None
    tpm: int | None = None
    wait: bool = False

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InvalidArgumentError(f"RateLimit.{name} must be a positive whole number or None, got {value!r}")
        if self.rpm is None and self.tpm is None:
            raise InvalidArgumentError("RateLimit needs rpm, tpm or both")


def estimate_tokens(request: CompletionRequest) -> int:
    """Tokens to reserve for ``request``: its prompt at ~4 characters a token, plus max_tokens."""
    inputs = getattr(request, "inputs", None)
    if inputs is not None:  # an EmbeddingRequest: its texts are all it spends
        return math.ceil(sum(len(text) for text in inputs) / CHARS_PER_TOKEN)
    chars = sum(len(getattr(block, "text", None) or repr(block))  # images, tool calls: their size as written
                for message in request.messages for block in message.content)
    if request.system:
        chars += len(request.system_text)
    if request.tools:
        chars += sum(len(json.dumps(tool.input_schema)) + len(tool.name) + len(tool.description)
                     for tool in request.tools)
    return math.ceil(chars / CHARS_PER_TOKEN) + (request.max_tokens or 0)


def used_tokens(usage: Usage | None) -> int | None:
    return None if usage is None else usage.input_tokens + usage.output_tokens


def wait_for_room(current: float, previous: float, into: float, amount: float, limit: int | None) -> float:
    """Seconds until ``amount`` more fits under ``limit`` (0: it fits now), given the counts of
    the current and previous windows and how far (0..1) we are into the current one."""
    if limit is None:
        return 0.0
    excess = previous * (1 - into) + current + amount - limit
    if excess <= 0:
        return 0.0
    if amount > limit:
        return math.inf  # a request bigger than the whole budget never fits
    if previous and excess <= previous * (1 - into):
        return excess / previous * WINDOW  # the previous window's share drains linearly
    return (1 - into) * WINDOW  # wait for the next window, then look again


class MemoryRateWindows:
    """The per-minute counters of one process, keyed by provider name.  Thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, list[float]] = {}  # name -> [index, requests, prev requests, tokens, prev tokens]

    def take(self, name: str, tokens: int, limit: RateLimit) -> float:
        """Count one request of ``tokens`` if it fits (returns 0), else the seconds to wait."""
        now = self._clock()
        index, into = divmod(now / WINDOW, 1.0)
        with self._lock:
            window = self._shifted(name, index)
            wait = max(wait_for_room(window[1], window[2], into, 1, limit.rpm),
                       wait_for_room(window[3], window[4], into, tokens, limit.tpm))
            if wait == 0:
                window[1] += 1
                window[3] += tokens
            return wait

    def add_tokens(self, name: str, delta: int) -> None:
        with self._lock:
            window = self._windows.get(name)
            if window is not None:
                window[3] += delta

    def _shifted(self, name: str, index: float) -> list[float]:
        window = self._windows.get(name)
        if window is None or window[0] < index - 1:
            window = self._windows[name] = [index, 0, 0, 0, 0]
        elif window[0] == index - 1:
            window[:] = [index, 0, window[1], 0, window[3]]
        return window


# The same algorithm as MemoryRateWindows.take, run atomically by Redis on its own clock.
# KEYS[1]: the provider's rate hash.  ARGV: tokens, rpm (0 = none), tpm (0 = none), window ms.
# Returns 0 when counted, else the milliseconds to wait (-1: never fits).
TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens, rpm, tpm, w = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local index = math.floor(now / w)
local into = (now % w) / w
local h = redis.call('HMGET', KEYS[1], 'window', 'requests', 'prev_requests', 'tokens', 'prev_tokens')
local window = tonumber(h[1]) or index
local rc, rp, tc, tp = tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
if window == index - 1 then
  rp, tp, rc, tc = rc, tc, 0, 0
elseif window ~= index then
  rp, tp, rc, tc = 0, 0, 0, 0
end
local function wait(current, previous, amount, limit)
  if limit == 0 then return 0 end
  local excess = previous * (1 - into) + current + amount - limit
  if excess <= 0 then return 0 end
  if amount > limit then return -1 end
  if previous > 0 and excess <= previous * (1 - into) then return excess / previous * w end
  return (1 - into) * w
end
local a, b = wait(rc, rp, 1, rpm), wait(tc, tp, tokens, tpm)
if a < 0 or b < 0 then return -1 end
local longest = math.max(a, b)
if longest > 0 then return math.max(1, math.ceil(longest)) end
redis.call('HSET', KEYS[1], 'window', index, 'requests', rc + 1, 'prev_requests', rp,
           'tokens', tc + tokens, 'prev_tokens', tp)
redis.call('PEXPIRE', KEYS[1], 2 * w)
return 0
"""


def from_script_reply(reply: Any) -> float:
    """TAKE_SCRIPT's answer in seconds."""
    millis = int(reply)
    return math.inf if millis < 0 else millis / 1000.0
