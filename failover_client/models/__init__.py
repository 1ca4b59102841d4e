"""The model registry of this process: which models exist where, with limits, prices and
capabilities; lookups, cost, fallback picking and catalogue refreshes.

Rows come from three places; a later one never hides an earlier one's row for the same
``provider/model`` except where said:

1. the built-in catalogue (:func:`builtin_models`, the CSV files in ``data/``);
2. public catalogues the user fetched with ``failover-client models refresh`` (LiteLLM,
   OpenRouter, models.dev), read from the user cache directory (see
   :mod:`failover_client.models.importers`); they add models the catalogue lacks;
3. rows given to :func:`register`, which win over both.

Nothing is read before the first lookup and nothing is ever downloaded here but by
:func:`refresh`: the registry works offline.  The rows, the ``Registry`` index and the cost rule
live in :mod:`.registry`, the process-wide instance in :mod:`.default`, the cross-vendor
equivalents in :mod:`.equivalents`, deprecation notices in :mod:`.deprecation`.
"""

from .default import (
    Prompt,
    all_models,
    cost_of,
    default_registry,
    find,
    lookup,
    pick_fallbacks,
    refresh,
    register,
    reload,
    search,
    suggest,
)
from .equivalents import equivalent
from .registry import (
    CAPABILITIES,
    PER_MILLION,
    LongContextPrices,
    ModelInfo,
    Registry,
    TokenCounts,
    UnknownModelError,
    builtin_models,
    cost,
    row_from_csv,
)

__all__ = [
    "CAPABILITIES", "PER_MILLION", "LongContextPrices", "ModelInfo", "Prompt", "Registry", "TokenCounts",
    "UnknownModelError", "all_models", "builtin_models", "cost", "cost_of", "default_registry", "equivalent", "find",
    "lookup", "pick_fallbacks", "refresh", "register", "reload", "row_from_csv", "search", "suggest",
]
