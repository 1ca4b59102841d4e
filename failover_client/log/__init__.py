"""Observability: what a call did, told to logs, hooks, traces and usage counters.

This module is the logging: one JSON line per attempt, safe from many processes, with
credentials redacted.  Beside it: :mod:`.events` (hooks called on attempts, failovers and
circuit changes), :mod:`.otel` (OpenTelemetry spans) and :mod:`.usage` (tokens, cost and
budgets counted per process).

The library logs through ``logging.getLogger("failover_client")``, which carries only a
NullHandler: nothing is configured on import.  Each attempt of a FailoverClient call is logged
to its child ``failover_client.attempts`` by :func:`log_attempt` (INFO for an answer, WARNING for
a failure; set that logger's level to silence or narrow them) with a request id shared by
all attempts of one call, the chain's provider name, the model, the attempt number, the outcome,
the latency, the tokens and the cost from the model registry.

:func:`configure_logging` is the opt-in for applications: JSON lines into a
``ConcurrentRotatingFileHandler`` (concurrent-log-handler), whose file lock lets every Celery or
gunicorn worker process append to, and rotate, the same file without losing or interleaving
lines; or to stderr without a path.  The handler's :class:`RedactingFilter` removes API keys,
bearer tokens and ``key=`` query values from the message, its arguments, extra fields and the
exception text of every record, whoever logged it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import redact

if TYPE_CHECKING:
    from ..types import Usage

attempt_logger = logging.getLogger("failover_client.attempts")  # a child: filter or silence it on its own

# What a LogRecord has by itself; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
ATTEMPT_FIELDS = ("request_id", "provider", "model", "attempt", "outcome", "latency_ms", "input_tokens",
                  "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd",
                  "error_type", "error")


def new_request_id() -> str:
    """An id that ties the attempts of one call together in the log."""
    return os.urandom(8).hex()


def log_attempt(request_id: str, provider: str, model: str, attempt: int, outcome: str, elapsed_ms: float,
                error: BaseException | None = None, usage: Usage | None = None) -> None:
    """Log one finished attempt (cheap when the logger is not enabled for its level)."""
    level = logging.INFO if outcome in ("ok", "abandoned") else logging.WARNING  # dropping a stream is no failure
    if not attempt_logger.isEnabledFor(level):
        return
    fields: dict[str, Any] = {"request_id": request_id, "provider": provider, "model": model, "attempt": attempt,
                              "outcome": outcome, "latency_ms": round(elapsed_ms, 3)}
    if usage is not None:
        from ..models import cost_of

        fields.update(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                      cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
                      reasoning_tokens=usage.reasoning_tokens, cost_usd=cost_of(usage, model, provider=provider))
    cause = ""
    if error is not None:
        fields.update(error_type=type(error).__name__, error=str(error))
        cause = _cause(error)
    attempt_logger.log(level, "attempt %d %s: %s/%s in %.1f ms%s", attempt, outcome, provider, model, elapsed_ms,
                       cause, extra={"failover": fields})


def _cause(error: BaseException) -> str:
    """Why an attempt failed, for the text of its log line (a text log shows no ``extra``):
    `` (RateLimitError, status 429, retry-after 2s)``."""
    parts = [type(error).__name__]
    status = getattr(error, "status", None)
    if status is not None:
        parts.append(f"status {status}")
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        parts.append(f"retry-after {retry_after:g}s")
    return f" ({', '.join(parts)})"


class RedactingFilter(logging.Filter):
    """Removes credentials from every part of a record that reaches the handler: the message
    with its arguments merged in, string ``extra`` fields, exception and stack text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._clean(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, self._scrub(value))
        return True

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._clean(value)
        if isinstance(value, dict):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._scrub(item) for item in value)
        return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, process id, the attempt
    fields of :func:`log_attempt`, other ``extra`` fields, and the exception text."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(), "pid": record.process,
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES:
                if name == "failover" and isinstance(value, dict):
                    data.update(value)
                else:
                    data[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


_installed: dict[str, logging.Handler] = {}
_install_lock = threading.Lock()


def configure_logging(
    path: str | os.PathLike[str] | None = None,
    level: int | str = logging.INFO,
    json: bool = True,
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
    *,
    redact: bool = True,
    secrets: Iterable[str] = (),
    logger_name: str = "failover_client",
) -> logging.Handler:
    """Send the library's log records to ``path`` (a rotating file shared safely by every
    process that writes it) or, without a path, to stderr.  Calling it again replaces the
    handler it installed before.  ``secrets`` are extra strings to redact (e.g. your keys).
    Returns the handler, e.g. to attach it to other loggers too."""
    if path is None:
        handler: logging.Handler = logging.StreamHandler()
    else:
        # Imported here: concurrent-log-handler costs ~100 ms, which `import failover_client` must not pay.
        from concurrent_log_handler import ConcurrentRotatingFileHandler

        handler = ConcurrentRotatingFileHandler(os.fspath(path), "a", maxBytes=max_bytes, backupCount=backup_count,
                                                encoding="utf-8")
    handler.setFormatter(JsonFormatter() if json else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"))
    if redact:
        handler.addFilter(RedactingFilter(secrets))
    target = logging.getLogger(logger_name)
    with _install_lock:
        previous = _installed.pop(logger_name, None)
        if previous is not None:
            target.removeHandler(previous)
            previous.close()
        target.addHandler(handler)
        target.setLevel(level)
        _installed[logger_name] = handler
    return handler
