"""Tell the user, once, that a request names a model the registry says is retired or retiring.

A retired model fails at the provider with an error that rarely says why; a model about to be
retired works until the day it does not.  Every HTTP request passes
:meth:`HttpProvider._send <failover_client.provider.HttpProvider._send>`, which calls
:func:`check`: the first request for a model looks it up in the registry and logs (logger
``failover_client``) a WARNING once the model's deprecation date has passed, or an INFO line
within :data:`NOTICE_DAYS` days of it, naming the date and the successor when the registry
knows one.  Each model is noticed once per process; every later request costs one dict lookup.
"""

from __future__ import annotations

import logging
import threading
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import ModelInfo

logger = logging.getLogger("failover_client")

NOTICE_DAYS = 30

_checked: dict[tuple[str | None, str], bool] = {}  # (provider, requested name) already looked up
_noticed: set[str] = set()  # registry rows already logged, whatever name reached them
_lock = threading.Lock()


def describe(row: ModelInfo, today: date | None = None) -> str | None:
    """A sentence on ``row``'s shutdown date and successor; None if it has no date."""
    if row.deprecation_date is None:
        return None
    day = today or date.today()
    shutdown = row.deprecation_date[:10]
    successor = f"; the registry names {row.successor} as its successor" if row.successor else ""
    if row.retired(day):
        return f"model {row.name} was retired on {shutdown}{successor}"
    left = (date.fromisoformat(shutdown) - day).days
    return f"model {row.name} is deprecated and shuts down on {shutdown} (in {left} days){successor}"


def check(model: str, provider: str | None = None, today: date | None = None) -> None:
    """Log the deprecation notice for ``model`` (served by ``provider``) once per process."""
    key = (provider, model)
    if key in _checked:
        return
    with _lock:
        if key in _checked:
            return
        _checked[key] = True
    from .default import find

    row = find(model, provider=provider) if isinstance(model, str) and model else None
    if row is None or row.deprecation_date is None:
        return
    day = today or date.today()
    try:
        left = (date.fromisoformat(row.deprecation_date[:10]) - day).days
    except ValueError:  # a registered row with a date we cannot read: nothing to say
        return
    with _lock:
        if row.name in _noticed:
            return
        _noticed.add(row.name)
    if left < 0:
        logger.warning("%s; requests for it will fail", describe(row, day))
    elif left <= NOTICE_DAYS:
        logger.info("%s", describe(row, day))


def reset() -> None:
    """Forget which models were noticed (e.g. after the registry was reloaded)."""
    with _lock:
        _checked.clear()
        _noticed.clear()
