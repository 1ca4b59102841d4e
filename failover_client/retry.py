"""Back-off, Retry-After parsing and the overall deadline.

``RetryPolicy`` is an immutable value (as urllib3's Retry): the failover loop asks it how long to
wait before retrying the same provider, and it answers ``None`` when the wait is not worth
blocking a synchronous worker for — the caller then moves to the next provider instead.  The
clock, sleep and randomness are injectable so tests never patch internals.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping

Clock = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with full jitter, honouring server hints up to a cap.

    ``max_retry_after`` caps how long a ``Retry-After`` may make us wait: a longer hint means
    "go elsewhere" rather than "block this worker".
    """

    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 20.0
    jitter: bool = True

    def delay(self, retry_number: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait before retry number ``retry_number`` (1-based), or None to give up here."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return ceiling * rand() if self.jitter else ceiling


def parse_retry_after(headers: Mapping[str, str], now: Clock = time.time) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``retry-after`` as seconds
    or as an HTTP date (the order the official SDKs use).  None when absent or unreadable —
    negative, NaN or infinite, or a date already past, which would otherwise read as "retry at
    once" and spend every retry within milliseconds — so the normal back-off applies."""
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None or not value.strip()[:1].isalpha():
        return seconds
    from email.utils import parsedate_to_datetime  # only for the rare HTTP-date form: it is slow to import

    try:
        wait = parsedate_to_datetime(value).timestamp() - now()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return wait if wait >= 0 else None


def _seconds(text: str | None) -> float | None:
    """A finite, non-negative number of seconds (or milliseconds), or None."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


class Deadline:
    """An absolute point on the monotonic clock by which a whole call must be done."""

    __slots__ = ("_clock", "at")

    def __init__(self, seconds: float | None, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.at = None if seconds is None else clock() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None for no deadline."""
        return None if self.at is None else max(0.0, self.at - self._clock())

    def expired(self) -> bool:
        return self.at is not None and self._clock() >= self.at

    def cap(self, seconds: float) -> float:
        """``seconds``, or the time left if that is shorter."""
        left = self.remaining()
        return seconds if left is None else min(seconds, left)


NO_DEADLINE = Deadline(None)
