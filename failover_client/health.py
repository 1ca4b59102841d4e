"""Which providers are healthy: a circuit breaker per provider, and the store its state lives in.

The breaker (design.md §4.9), per provider name:

* **closed** — requests flow.  Each failure that is the provider's fault is counted (server
  errors, 429s, timeouts, network failures, broken answers; never a 400, nor a 401/403 unless
  ``count_auth_errors``); a success clears the count.  ``failure_threshold`` failures within
  ``window`` seconds open the circuit.
* **open** — a FailoverClient skips the provider without sending anything, for ``cooldown``
  seconds.
* **half-open** — after the cooldown exactly one request at a time goes through as a probe
  (others keep skipping the provider).  Its success closes the circuit, its failure opens it for
  another cooldown.  A probe that never reports back (its process died) frees the slot after
  ``probe_timeout`` seconds.  A half-open circuit nobody probes is forgotten (closed) after
  ``window`` more seconds: by then its failures would have left the window anyway.

Apart from the breaker's count, a provider that asked for time (``Retry-After`` on a 429 or
503) is *held*: skipped by every caller sharing the store until that time has passed (at most
``cooldown`` seconds), because the FailoverClient moved on rather than wait for it.  A success
ends the hold.

The state lives in a :class:`HealthStore`: :class:`MemoryHealthStore` (this process, thread-safe;
the default) or :class:`RedisHealthStore`, which every process and host sharing one Redis
reads and updates atomically (one Lua script per transition, on Redis's own clock), with keys
that expire on their own.  When Redis is unreachable the Redis store carries on with local
state, says so once in the log, and goes back to Redis when it answers again.

The same store holds the per-minute counters of :mod:`failover_client.resilience.ratelimit`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from .errors import (
    AuthenticationError,
    InvalidArgumentError,
    InvalidRequestError,
    MissingCredentialsError,
    NotSupportedError,
    ProviderError,
)
from .resilience.ratelimit import TAKE_SCRIPT, WINDOW, MemoryRateWindows, RateLimit, from_script_reply

logger = logging.getLogger("failover_client")
T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class CircuitBreaker:
    """Breaker settings: ``failure_threshold`` failures within ``window`` seconds open a
    provider's circuit for ``cooldown`` seconds; then one probe at a time may test it."""

    failure_threshold: int = 5
    window: float = 60.0
    cooldown: float = 30.0
    probe_timeout: float = 30.0
    count_auth_errors: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.failure_threshold, int) or self.failure_threshold < 1:
            raise InvalidArgumentError(f"failure_threshold must be a whole number >= 1, got {self.failure_threshold!r}")
        for name in ("window", "cooldown", "probe_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgumentError(f"{name} must be a positive number of seconds, got {value!r}")

    def counts(self, exc: BaseException) -> bool:
        """Whether ``exc`` says something about the provider's health (not the caller's request)."""
        if isinstance(exc, AuthenticationError):
            return self.count_auth_errors and not isinstance(exc, MissingCredentialsError)
        return isinstance(exc, ProviderError) and not isinstance(exc, (InvalidRequestError, NotSupportedError))


@dataclass(frozen=True)
class Permit:
    """The breaker's answer before an attempt.  ``kind``: "closed" (go), "probe" (go: you are
    the half-open probe), "forced" (go: every provider is open and this one cools down first),
    "open" (skip; ``retry_in`` seconds of cooldown left), "probing" (skip: a probe is out) or
    "held" (skip: the provider asked for ``retry_in`` more seconds)."""

    kind: str
    token: str = ""
    retry_in: float = 0.0

    @property
    def allowed(self) -> bool:
        return self.kind in ("closed", "probe", "forced")


GO = Permit("closed")
FORCED = Permit("forced")


def _token() -> str:
    return os.urandom(8).hex()


class HealthStore:
    """Where breaker state and rate-limit counters live.  Transitions are returned as the new
    state's name ("open", "closed") so the caller can announce them; None means no change."""

    def acquire(self, provider: str, breaker: CircuitBreaker) -> Permit:
        raise NotImplementedError

    def record_failure(self, provider: str, permit: Permit, breaker: CircuitBreaker) -> str | None:
        raise NotImplementedError

    def record_success(self, provider: str, permit: Permit) -> str | None:
        raise NotImplementedError

    def hold(self, provider: str, seconds: float) -> None:
        """Skip ``provider`` for ``seconds`` (it asked us to wait that long)."""
        raise NotImplementedError

    def release(self, provider: str, permit: Permit) -> None:
        """The attempt ended saying nothing about health (a caller's error, a lost hedge):
        free the probe slot if it held it."""
        raise NotImplementedError

    def state(self, provider: str) -> str:
        """"closed", "open" or "half_open"."""
        raise NotImplementedError

    def failure_count(self, provider: str, breaker: CircuitBreaker) -> int:
        """Failures counted within the window (0 while the circuit is open)."""
        raise NotImplementedError

    def take_rate(self, provider: str, tokens: int, limit: RateLimit) -> float:
        """Count one request of ``tokens`` against ``limit`` if it fits (0), else seconds to wait."""
        raise NotImplementedError

    def add_tokens(self, provider: str, delta: int) -> None:
        """Correct a token reservation once the real usage is known."""
        raise NotImplementedError

    def clear(self, provider: str | None = None) -> None:
        """Forget everything about ``provider`` (or every provider)."""
        raise NotImplementedError


@dataclass
class _Circuit:
    failures: deque[float] = field(default_factory=deque)
    open_until: float | None = None
    forget_at: float = 0.0
    probe: str = ""
    probe_expires: float = 0.0
    held_until: float = 0.0


class MemoryHealthStore(HealthStore):
    """This process's breaker state and rate counters; thread-safe.  ``clock`` is injectable
    (monotonic seconds) so tests can move time without sleeping."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}
        self._rates = MemoryRateWindows(clock)

    def __repr__(self) -> str:
        return "MemoryHealthStore()"

    def _tripped(self, provider: str, now: float) -> _Circuit | None:
        """The provider's circuit if it is open or half-open (forgetting one that expired)."""
        circuit = self._circuits.get(provider)
        if circuit is None or circuit.open_until is None:
            return None
        if now >= circuit.forget_at:
            del self._circuits[provider]
            return None
        return circuit

    def acquire(self, provider: str, breaker: CircuitBreaker) -> Permit:
        now = self._clock()
        with self._lock:
            held = self._circuits.get(provider)
            if held is not None and now < held.held_until:
                return Permit("held", retry_in=held.held_until - now)
            circuit = self._tripped(provider, now)
            if circuit is None:
                return GO
            assert circuit.open_until is not None
            if now < circuit.open_until:
                return Permit("open", retry_in=circuit.open_until - now)
            if circuit.probe and now < circuit.probe_expires:
                return Permit("probing")
            circuit.probe, circuit.probe_expires = _token(), now + breaker.probe_timeout
            return Permit("probe", circuit.probe)

    def record_failure(self, provider: str, permit: Permit, breaker: CircuitBreaker) -> str | None:
        now = self._clock()
        with self._lock:
            circuit = self._tripped(provider, now)
            if circuit is not None:
                if not self._owns(circuit, permit):
                    return None  # already open: a late failure changes nothing
                self._open(circuit, now, breaker)
                return OPEN
            circuit = self._circuits.setdefault(provider, _Circuit())
            failures = circuit.failures
            failures.append(now)
            while failures and failures[0] <= now - breaker.window:
                failures.popleft()
            if len(failures) >= breaker.failure_threshold:
                self._open(circuit, now, breaker)
                return OPEN
            return None

    @staticmethod
    def _owns(circuit: _Circuit, permit: Permit) -> bool:
        return permit.kind == "forced" or (permit.kind == "probe" and circuit.probe == permit.token)

    @staticmethod
    def _open(circuit: _Circuit, now: float, breaker: CircuitBreaker) -> None:
        circuit.failures.clear()
        circuit.open_until = now + breaker.cooldown
        circuit.forget_at = circuit.open_until + breaker.window
        circuit.probe = ""

    def record_success(self, provider: str, permit: Permit) -> str | None:
        now = self._clock()
        with self._lock:
            circuit = self._tripped(provider, now)
            if circuit is None:
                self._circuits.pop(provider, None)  # a success clears the failure count and any hold
                return None
            if self._owns(circuit, permit):
                del self._circuits[provider]
                return CLOSED
            return None

    def hold(self, provider: str, seconds: float) -> None:
        now = self._clock()
        with self._lock:
            circuit = self._circuits.setdefault(provider, _Circuit())
            circuit.held_until = max(circuit.held_until, now + seconds)

    def release(self, provider: str, permit: Permit) -> None:
        if permit.kind != "probe":
            return
        with self._lock:
            circuit = self._circuits.get(provider)
            if circuit is not None and circuit.probe == permit.token:
                circuit.probe = ""

    def state(self, provider: str) -> str:
        now = self._clock()
        with self._lock:
            circuit = self._tripped(provider, now)
            if circuit is None:
                return CLOSED
            return OPEN if circuit.open_until is not None and now < circuit.open_until else HALF_OPEN

    def failure_count(self, provider: str, breaker: CircuitBreaker) -> int:
        now = self._clock()
        with self._lock:
            circuit = self._circuits.get(provider)
            if circuit is None:
                return 0
            return sum(1 for moment in circuit.failures if moment > now - breaker.window)

    def take_rate(self, provider: str, tokens: int, limit: RateLimit) -> float:
        return self._rates.take(provider, tokens, limit)

    def add_tokens(self, provider: str, delta: int) -> None:
        self._rates.add_tokens(provider, delta)

    def clear(self, provider: str | None = None) -> None:
        with self._lock:
            if provider is None:
                self._circuits.clear()
            else:
                self._circuits.pop(provider, None)


# --- Redis ------------------------------------------------------------------------------------
# Keys, per provider P under the prefix (the {P} hash tag keeps one provider's keys in one slot
# of a Redis Cluster, so each script may touch them all):
#   <prefix>:{P}:failures  sorted set of failure times (ms, Redis clock); expires after `window`
#   <prefix>:{P}:open      open-until time (ms); expires `cooldown + window` after opening
#   <prefix>:{P}:probe     the token of the probe in flight; expires after `probe_timeout`
#   <prefix>:{P}:held      present while the provider's Retry-After lasts; expires with it
#   <prefix>:{P}:rate      hash of this and the previous minute's request and token counts;
#                          expires after two minutes
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
_OWNS = ("local function owns() return ARGV[1] == 'forced' or "
         "(ARGV[1] == 'probe' and redis.call('GET', KEYS[3]) == ARGV[2]) end\n")

# KEYS: failures, open, probe, held.  ARGV: probe token, probe_timeout ms.
# Returns {0} closed, {1, ms left} open, {2} probe granted, {3} probe already out, {4, ms left} held.
ACQUIRE_SCRIPT = _NOW + """
local held = redis.call('PTTL', KEYS[4])
if held > 0 then return {4, held} end
local open_until = tonumber(redis.call('GET', KEYS[2]))
if not open_until then return {0} end
if now < open_until then return {1, open_until - now} end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {3}
"""

# KEYS: failures, open, probe.  ARGV: permit kind, permit token, threshold, window ms, cooldown ms,
# a unique member.  Returns {1 if this failure opened the circuit else 0, failures counted}.
FAILURE_SCRIPT = _NOW + _OWNS + """
local window, cooldown = tonumber(ARGV[4]), tonumber(ARGV[5])
local function open()
  redis.call('SET', KEYS[2], now + cooldown, 'PX', cooldown + window)
  redis.call('DEL', KEYS[1], KEYS[3])
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  if owns() then open() return {1, 0} end
  return {0, 0}
end
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then open() return {1, n} end
return {0, n}
"""

# KEYS: failures, open, probe, held.  ARGV: permit kind, permit token.  Returns 1 when it closed the circuit.
SUCCESS_SCRIPT = _OWNS + """
if redis.call('EXISTS', KEYS[2]) == 1 then
  if owns() then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) return 1 end
  return 0
end
redis.call('DEL', KEYS[1], KEYS[4])
return 0
"""

# KEYS: probe.  ARGV: token.  Frees the probe slot if this token holds it.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: failures, open.  ARGV: window ms.  Returns {state (0 closed, 1 open, 2 half-open), failures}.
STATE_SCRIPT = _NOW + """
local open_until = tonumber(redis.call('GET', KEYS[2]))
local n = redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
if not open_until then return {0, n} end
if now < open_until then return {1, n} end
return {2, n}
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _public(url: str) -> str:
    """The URL without credentials, for log lines and reprs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


class RedisHealthStore(HealthStore):
    """Breaker state and rate counters in Redis, shared by every process and host using ``url``.

    Needs the ``redis`` extra (``pip install failover-client[redis]``).  Nothing connects until
    the first call; the client reconnects by itself in forked children (Celery prefork,
    gunicorn).  Every operation is one Lua script (atomic; no lost increments under
    concurrency) timed on Redis's clock, so hosts with skewed clocks agree.

    If Redis cannot be reached, calls carry on with this process's local state for
    ``retry_interval`` seconds before Redis is tried again; the outage is logged once (a
    warning) and the recovery once (info).  Short socket timeouts keep a dead Redis from
    slowing calls down.
    """

    def __init__(self, url: str = "redis://localhost:6379/0", *, prefix: str = "failover_client",
                 socket_timeout: float = 0.5, retry_interval: float = 5.0, client: Any = None) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise ImportError("RedisHealthStore needs the redis package: "
                              "pip install 'failover-client[redis]'") from None
        if client is None:
            if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "unix"):
                raise InvalidArgumentError(f"RedisHealthStore url must be a redis://, rediss:// or unix:// URL, "
                                           f"got {_public(str(url))!r}")
            client = redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                                          retry=Retry(NoBackoff(), 0))  # fail fast: local state takes over
        self.url = _public(url)
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._redis = client
        self._unreachable = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._scripts = {name: client.register_script(text) for name, text in (
            ("acquire", ACQUIRE_SCRIPT), ("failure", FAILURE_SCRIPT), ("success", SUCCESS_SCRIPT),
            ("release", RELEASE_SCRIPT), ("state", STATE_SCRIPT), ("take", TAKE_SCRIPT))}
        self.local = MemoryHealthStore()
        self._lock = threading.Lock()
        self._down_until: float | None = None

    def __repr__(self) -> str:
        return f"RedisHealthStore({self.url!r}, prefix={self.prefix!r})"

    def _keys(self, provider: str, *names: str) -> list[str]:
        return [f"{self.prefix}:{{{provider}}}:{name}" for name in names]

    def _either(self, remote: Callable[[], T], local: Callable[[MemoryHealthStore], T]) -> T:
        """``remote()`` against Redis; ``local(self.local)`` while Redis is unreachable."""
        down_until = self._down_until
        if down_until is not None and time.monotonic() < down_until:
            return local(self.local)
        try:
            result = remote()
        except self._unreachable as exc:
            with self._lock:
                if self._down_until is None:
                    logger.warning("Redis at %s is unreachable (%s); using this process's local health state "
                                   "until it answers again", self.url, type(exc).__name__)
                self._down_until = time.monotonic() + self.retry_interval
            return local(self.local)
        if down_until is not None:
            with self._lock:
                if self._down_until is not None:
                    self._down_until = None
                    logger.info("Redis at %s answers again; health state is shared again", self.url)
        return result

    def acquire(self, provider: str, breaker: CircuitBreaker) -> Permit:
        token = _token()

        def remote() -> Permit:
            reply = self._scripts["acquire"](keys=self._keys(provider, "failures", "open", "probe", "held"),
                                             args=[token, _ms(breaker.probe_timeout)])
            code = int(reply[0])
            if code == 0:
                return GO
            if code in (1, 4):
                return Permit("open" if code == 1 else "held", retry_in=int(reply[1]) / 1000.0)
            return Permit("probe", token) if code == 2 else Permit("probing")

        return self._either(remote, lambda store: store.acquire(provider, breaker))

    def record_failure(self, provider: str, permit: Permit, breaker: CircuitBreaker) -> str | None:
        def remote() -> str | None:
            reply = self._scripts["failure"](
                keys=self._keys(provider, "failures", "open", "probe"),
                args=[permit.kind, permit.token, breaker.failure_threshold, _ms(breaker.window),
                      _ms(breaker.cooldown), _token()])
            return OPEN if int(reply[0]) else None

        return self._either(remote, lambda store: store.record_failure(provider, permit, breaker))

    def record_success(self, provider: str, permit: Permit) -> str | None:
        def remote() -> str | None:
            if permit.kind == "closed":  # the common case needs no script: clear the count and any hold
                self._redis.delete(*self._keys(provider, "failures", "held"))
                return None
            reply = self._scripts["success"](keys=self._keys(provider, "failures", "open", "probe", "held"),
                                             args=[permit.kind, permit.token])
            return CLOSED if int(reply) else None

        return self._either(remote, lambda store: store.record_success(provider, permit))

    def hold(self, provider: str, seconds: float) -> None:
        self._either(lambda: self._redis.set(self._keys(provider, "held")[0], 1, px=_ms(seconds)),
                     lambda store: store.hold(provider, seconds))

    def release(self, provider: str, permit: Permit) -> None:
        if permit.kind != "probe":
            return
        self._either(lambda: self._scripts["release"](keys=self._keys(provider, "probe"), args=[permit.token]),
                     lambda store: store.release(provider, permit))

    def _state(self, provider: str, breaker: CircuitBreaker) -> tuple[str, int]:
        def remote() -> tuple[str, int]:
            code, count = self._scripts["state"](keys=self._keys(provider, "failures", "open"),
                                                 args=[_ms(breaker.window)])
            return (CLOSED, OPEN, HALF_OPEN)[int(code)], int(count)

        return self._either(remote, lambda store: (store.state(provider), store.failure_count(provider, breaker)))

    def state(self, provider: str) -> str:
        return self._state(provider, CircuitBreaker())[0]

    def failure_count(self, provider: str, breaker: CircuitBreaker) -> int:
        return self._state(provider, breaker)[1]

    def take_rate(self, provider: str, tokens: int, limit: RateLimit) -> float:
        def remote() -> float:
            reply = self._scripts["take"](keys=self._keys(provider, "rate"),
                                          args=[tokens, limit.rpm or 0, limit.tpm or 0, _ms(WINDOW)])
            return from_script_reply(reply)

        return self._either(remote, lambda store: store.take_rate(provider, tokens, limit))

    def add_tokens(self, provider: str, delta: int) -> None:
        def remote() -> None:
            key = self._keys(provider, "rate")[0]
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, "tokens", delta).pexpire(key, _ms(2 * WINDOW)).execute()

        self._either(remote, lambda store: store.add_tokens(provider, delta))

    def clear(self, provider: str | None = None) -> None:
        def remote() -> None:
            pattern = f"{self.prefix}:{{{provider}}}:*" if provider is not None else f"{self.prefix}:*"
            keys = list(self._redis.scan_iter(match=pattern, count=500))
            if keys:
                self._redis.delete(*keys)

        self._either(remote, lambda store: store.clear(provider))
        self.local.clear(provider)

    def close(self) -> None:
        """Close the connections to Redis."""
        self._redis.close()
