"""The closest current model of another vendor, by one rule over the registry.

A cross-vendor fallback is only worth having if the request reaches a model that exists and
can do what the request needs; hand-written maps go stale as vendors retire models (a map
pointing at a retired model turns every failover into a 404).  So mappings are computed from
the registry's rows each time they are asked for, with this rule:

1. The candidates are ``provider``'s *chat* models that are not past their deprecation date:
   rows with a known input and output price, a known context window and tool calling
   (every general chat model has it; completion-only, audio and search variants do not).
2. A candidate must keep every capability of the source model among :data:`KEPT_CAPABILITIES`
   (tools, vision, thinking, structured output, audio).  No candidate left: no equivalent.
3. Among those, the best is, in order of importance:
   a. one with no announced deprecation date, over one already scheduled to go;
   b. one whose context window is at least 90% of the source model's (a prompt that fit the
      source should fit the fallback);
   c. the closest price tier: the smallest distance between the logarithms of the blended
      prices (input + output per million tokens), so $2/$10 maps near $3/$15, not near $0.10;
   d. the catalogue's order (each vendor's newest models are listed first).
"""

from __future__ import annotations

import math
from datetime import date

from ..errors import InvalidArgumentError
from .default import default_registry
from .registry import ModelInfo, Registry

KEPT_CAPABILITIES = frozenset({"tools", "vision", "thinking", "json_schema", "audio_in", "audio_out"})
WINDOW_TOLERANCE = 0.9


def chat_models(provider: str, *, registry: Registry | None = None, today: date | None = None) -> list[ModelInfo]:
    """``provider``'s current chat models (rule 1 above), in catalogue order."""
    reg = registry or default_registry()
    day = today or date.today()
    return [row for row in reg
            if row.provider == provider and not row.retired(day) and row.input_price is not None
            and row.output_price is not None and row.context_window and row.supports("tools")]


def _blended(row: ModelInfo) -> float | None:
    if row.input_price is None or row.output_price is None:
        return None
    return row.input_price + row.output_price


def _tier_distance(source: ModelInfo, candidate: ModelInfo) -> float:
    mine, theirs = _blended(source), _blended(candidate)
    if not mine or not theirs:  # an unpriced (or free) source model has no tier to match
        return 0.0
    return abs(math.log(theirs / mine))


def equivalent(model: str | ModelInfo, provider: str, *, registry: Registry | None = None,
               today: date | None = None) -> ModelInfo | None:
    """The current model of ``provider`` closest to ``model`` (see the module docstring for the
    rule), or None when ``provider`` has no current chat model with the capabilities it needs.
    An unknown ``model`` name raises UnknownModelError."""
    if not isinstance(provider, str) or not provider:
        raise InvalidArgumentError("equivalent() needs the provider to map to, e.g. 'anthropic'")
    reg = registry or default_registry()
    source = model if isinstance(model, ModelInfo) else reg.lookup(model)
    needed = source.capabilities & KEPT_CAPABILITIES
    candidates = [(index, row) for index, row in enumerate(chat_models(provider, registry=reg, today=today))
                  if row.supports(*needed)]
    if not candidates:
        return None
    window = (source.context_window or 0) * WINDOW_TOLERANCE

    def closeness(item: tuple[int, ModelInfo]) -> tuple[bool, bool, float, int]:
        index, row = item
        return (row.deprecation_date is not None, (row.context_window or 0) < window,
                _tier_distance(source, row), index)

    return min(candidates, key=closeness)[1]


def mapping(source_provider: str, target_provider: str, *, registry: Registry | None = None,
            today: date | None = None) -> dict[str, str]:
    """Every current chat model of ``source_provider`` (and each alias of one) mapped to its
    :func:`equivalent` at ``target_provider``; models without one are left out."""
    reg = registry or default_registry()
    result: dict[str, str] = {}
    for row in chat_models(source_provider, registry=reg, today=today):
        match = equivalent(row, target_provider, registry=reg, today=today)
        if match is not None:
            for name in (row.model, *row.aliases):
                result[name] = match.model
    return result


def default_model(provider: str, *, registry: Registry | None = None, today: date | None = None) -> str | None:
    """A mid-tier current chat model of ``provider`` for requests no mapping covers: among those
    with the most capabilities, the one at the median blended price (catalogue order breaks ties)."""
    rows = chat_models(provider, registry=registry, today=today)
    if not rows:
        return None
    richest = max(len(row.capabilities & KEPT_CAPABILITIES) for row in rows)
    full = [row for row in rows if len(row.capabilities & KEPT_CAPABILITIES) == richest and not row.deprecation_date]
    full = full or [row for row in rows if len(row.capabilities & KEPT_CAPABILITIES) == richest]
    ordered = sorted(full, key=lambda row: _blended(row) or 0.0)
    return ordered[(len(ordered) - 1) // 2].model
