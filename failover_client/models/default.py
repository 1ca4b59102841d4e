"""The process-wide registry: built on first use from the built-in catalogue, the user's cached
public catalogues and :func:`register`-ed rows; lookups, cost and fallback picking against it.
See :mod:`failover_client.models` for the order rows win in."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Iterable, Protocol

from ..errors import InvalidArgumentError
from .registry import CAPABILITIES, ModelInfo, Registry, TokenCounts, builtin_models, cost

if TYPE_CHECKING:
    from pathlib import Path  # pathlib costs ~5 ms to import; refresh() is rare


@dataclass
class _Default:
    registry: Registry | None = None
    registered: list[ModelInfo] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_default = _Default()


def default_registry() -> Registry:
    """The process-wide registry: built-in catalogue, then the user's cached imports, then
    :func:`register`-ed rows.  Built on first use."""
    registry = _default.registry
    if registry is None:
        with _default.lock:
            if _default.registry is None:
                from .importers import cached_models

                built = Registry(builtin_models())
                built.add(cached_models())
                built.add(_default.registered, override=True)
                _default.registry = built
            registry = _default.registry
    return registry


def reload() -> Registry:
    """Rebuild the default registry (after ``models refresh`` wrote a new cache file)."""
    with _default.lock:
        _default.registry = None
    return default_registry()


def register(*rows: ModelInfo) -> None:
    """Add or replace models in the default registry (e.g. a fine-tune, or a negotiated price)."""
    with _default.lock:
        _default.registered.extend(rows)
        registry = _default.registry
    if registry is not None:
        registry.add(rows, override=True)


def lookup(name: str, provider: str | None = None) -> ModelInfo:
    """The model called ``name`` ("provider/model", bare id or alias); UnknownModelError with
    did-you-mean suggestions when there is none."""
    return default_registry().lookup(name, provider)


def find(name: str, provider: str | None = None) -> ModelInfo | None:
    return default_registry().find(name, provider)


def all_models() -> list[ModelInfo]:
    return list(default_registry())


def search(text: str, limit: int | None = None, provider: str | None = None) -> list[ModelInfo]:
    return default_registry().search(text, limit, provider)


def suggest(name: str, limit: int = 5) -> list[str]:
    return default_registry().suggest(name, limit)


def cost_of(usage: TokenCounts | None, model: str, provider: str | None = None, batch: bool = False) -> float | None:
    """The cost of ``usage`` for a model known by name; ``None`` if the model or a price is unknown."""
    if usage is None:
        return None
    info = find(model, provider=provider)
    return None if info is None else cost(usage, info, batch=batch)


def _price_key(row: ModelInfo) -> tuple[bool, float]:
    known = row.input_price is not None and row.output_price is not None
    return (not known, (row.input_price or 0) + (row.output_price or 0))


class Prompt(Protocol):
    """What :func:`pick_fallbacks` reads of a request (a failover_client.CompletionRequest)."""

    model: str
    max_tokens: int | None

    def capabilities(self) -> frozenset[str]: ...


def pick_fallbacks(
    request: Prompt | None = None,
    *,
    model: str | None = None,
    prompt_tokens: int | None = None,
    needs: Iterable[str] = (),
    providers: Iterable[str] | None = None,
    limit: int | None = 5,
    registry: Registry | None = None,
) -> list[ModelInfo]:
    """Models that can take a request another model could not, cheapest first.

    The context needed is ``prompt_tokens`` plus the request's ``max_tokens`` when the prompt
    size is known; otherwise (the usual case after a context-length error) more than the
    failing ``model``'s own window.  Every capability the request uses (``request.capabilities()``)
    plus ``needs`` is required; ``providers`` restricts the answer to providers the caller can
    reach; retired models, embedding models and rows without a known context window are left out.
    """
    reg = registry or default_registry()
    required = set(needs) | (request.capabilities() if request is not None else set())
    unknown = required - set(CAPABILITIES)
    if unknown:
        raise InvalidArgumentError(f"unknown capabilities {sorted(unknown)}; known: {CAPABILITIES}")
    name = model or (request.model if request is not None else None)
    current = reg.find(name) if name else None
    if prompt_tokens is not None:
        min_context = prompt_tokens + ((request.max_tokens or 0) if request is not None else 0)
    elif current is not None and current.context_window:
        min_context = current.context_window + 1
    else:
        min_context = 0
    allowed = set(providers) if providers is not None else None
    today = date.today()
    found = [row for row in reg
             if row is not current and row.context_window is not None and row.context_window >= min_context
             and row.embedding_dimensions is None and row.supports(*required) and not row.retired(today)
             and (allowed is None or row.provider in allowed)]
    found.sort(key=lambda row: (*_price_key(row), -(row.context_window or 0), row.name))
    return found[:limit] if limit else found


def refresh(source: str, *, file: str | os.PathLike[str] | None = None, url: str | None = None,
            timeout: float = 60.0) -> tuple[Path, int]:
    """Store ``source``'s catalogue as the user's cached copy (see
    :func:`failover_client.models.importers.store`) and rebuild the default registry from it.
    Returns (cache path, model count)."""
    from .importers import store

    stored = store(source, file=file, url=url, timeout=timeout)
    reload()
    return stored
