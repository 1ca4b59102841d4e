"""The model registry: which models exist where, their limits, prices and capabilities, and cost.

Rows come from three places; a later one never hides an earlier one's row for the same
``provider/model`` except where said:

1. the built-in catalogue, ``failover_client/model_data/*.csv``: curated from the providers'
   pricing and model pages, each row with the page it came from and the date it was checked;
2. public catalogues the user fetched with ``failover-client models refresh`` (LiteLLM,
   OpenRouter, models.dev), read from the user cache directory (see
   :mod:`failover_client.model_import`); they add models the catalogue lacks;
3. rows given to :func:`register`, which win over both.

Nothing is read before the first lookup and nothing is ever downloaded here: the registry works
offline.  Prices are US dollars per million tokens; a price nobody published is ``None``, never a
guess, and a cost that needs an unknown price is ``None`` too.

The cost rule (:func:`cost`) follows the library's one Usage rule: ``input_tokens`` is the whole
prompt including cache reads and writes, so::

    (input - cache_read - cache_write) x input price + cache_read x cache-read price
      + cache_write x cache-write price + (output - reasoning) x output price
      + reasoning x (reasoning price, or the output price when the model prices it the same)

A request whose prompt exceeds a model's long-context threshold pays that tier's prices for the
whole request (OpenAI above 272K, Gemini Pro above 200K, Claude Haiku 5.5 above 100K input
tokens), and batch results are discounted by the model's batch discount.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from .types import CompletionRequest, Usage

CAPABILITIES = ("tools", "vision", "streaming", "json_schema", "thinking", "audio_in", "audio_out",
                "responses_only")  # served only by OpenAI's Responses API, not by Chat Completions
PER_MILLION = 1_000_000


class UnknownModelError(InvalidArgumentError):
    """No model of that name is in the registry; ``suggestions`` holds the closest names."""

    def __init__(self, message: str = "", *, suggestions: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.suggestions = list(suggestions)


@dataclass(frozen=True)
class LongContextPrices:
    """The prices a whole request pays once its prompt exceeds ``threshold`` input tokens."""

    threshold: int
    input_price: float | None = None
    output_price: float | None = None
    cache_read_price: float | None = None
    cache_write_price: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One model at one provider.  Prices are USD per million tokens; ``None`` is unknown."""

    provider: str
    model: str
    aliases: tuple[str, ...] = ()
    context_window: int | None = None
    max_output_tokens: int | None = None
    input_price: float | None = None
    output_price: float | None = None
    cache_read_price: float | None = None
    cache_write_price: float | None = None
    reasoning_price: float | None = None  # None: reasoning tokens are billed as output
    batch_discount: float | None = None  # the fraction taken off batch results (0.5 = half price)
    long_context: LongContextPrices | None = None
    capabilities: frozenset[str] = frozenset()
    knowledge_cutoff: str | None = None
    deprecation_date: str | None = None  # ISO date of the announced shutdown
    checked: str | None = None  # ISO date the row was last checked against its source
    source: str = ""

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"

    def supports(self, *capabilities: str) -> bool:
        return all(c in self.capabilities for c in capabilities)

    def retired(self, today: date | None = None) -> bool:
        """True once the announced shutdown date has passed."""
        shutdown = self.deprecation_date
        return shutdown is not None and shutdown[:10] < (today or date.today()).isoformat()

    def prices_for(self, prompt_tokens: int) -> ModelInfo:
        """This row with the long-context tier's prices when ``prompt_tokens`` exceeds it."""
        tier = self.long_context
        if tier is None or prompt_tokens <= tier.threshold:
            return self
        return replace(self, input_price=tier.input_price, output_price=tier.output_price,
                       cache_read_price=tier.cache_read_price, cache_write_price=tier.cache_write_price,
                       long_context=None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        data["capabilities"] = sorted(self.capabilities)
        data["name"] = self.name
        return data


# --- cost -----------------------------------------------------------------------------------

def cost(usage: Usage, model_info: ModelInfo, batch: bool = False) -> float | None:
    """US dollars for ``usage`` at ``model_info``'s prices (see the module docstring for the rule).

    ``None`` when a price needed for a non-zero token count is unknown, or ``batch`` is asked for
    a model without a published batch discount.  Inconsistent usage (more cached than input
    tokens, more reasoning than output tokens) raises InvalidArgumentError.
    """
    fresh = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    answer = usage.output_tokens - usage.reasoning_tokens
    if fresh < 0 or answer < 0 or min(usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens) < 0:
        raise InvalidArgumentError(f"inconsistent usage: {usage!r} (input_tokens must include cache reads and "
                                   "writes, output_tokens must include reasoning_tokens)")
    prices = model_info.prices_for(usage.input_tokens)
    reasoning_price = prices.reasoning_price if prices.reasoning_price is not None else prices.output_price
    parts = ((fresh, prices.input_price), (usage.cache_read_tokens, prices.cache_read_price),
             (usage.cache_write_tokens, prices.cache_write_price), (answer, prices.output_price),
             (usage.reasoning_tokens, reasoning_price))
    terms = []
    for tokens, price in parts:
        if tokens:
            if price is None:
                return None
            terms.append(tokens * price)
    total = math.fsum(terms) / PER_MILLION
    if batch:
        if model_info.batch_discount is None:
            return None
        total *= 1 - model_info.batch_discount
    return total


def cost_of(usage: Usage | None, model: str, provider: str | None = None, batch: bool = False) -> float | None:
    """The cost of ``usage`` for a model known by name; ``None`` if the model or a price is unknown."""
    if usage is None:
        return None
    info = find(model, provider=provider)
    return None if info is None else cost(usage, info, batch=batch)


# --- the registry ---------------------------------------------------------------------------

class Registry:
    """Models indexed by ``provider/model``, by bare id and by alias (exact, then case-folded).

    A bare id that several providers serve resolves to the row added first, so the built-in
    catalogue lists each model's own vendor before the clouds that resell it.
    """

    def __init__(self, rows: Iterable[ModelInfo] = ()) -> None:
        self._rows: dict[str, ModelInfo] = {}
        self._ids: dict[str, ModelInfo] = {}
        self._provider_ids: dict[tuple[str, str], ModelInfo] = {}
        self._folded: dict[str, ModelInfo] = {}
        self._lock = threading.Lock()
        self.add(rows)

    def add(self, rows: Iterable[ModelInfo], *, override: bool = False) -> int:
        """Index ``rows``; with ``override`` they replace rows and names already present."""
        added = 0
        with self._lock:
            for row in rows:
                if not isinstance(row, ModelInfo):
                    raise InvalidArgumentError(f"Registry.add takes ModelInfo rows, got {type(row).__name__}")
                if not override and row.name in self._rows:
                    continue
                added += 1
                self._rows[row.name] = row
                for key in (row.model, *row.aliases):
                    self._put(self._provider_ids, (row.provider, key), row, override)
                    self._put(self._ids, key, row, override)
                for key in (row.name, row.model, *row.aliases):
                    self._put(self._folded, key.casefold(), row, override)
        return added

    @staticmethod
    def _put(index: dict[Any, ModelInfo], key: Any, row: ModelInfo, override: bool) -> None:
        if override or key not in index:
            index[key] = row

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(list(self._rows.values()))

    def find(self, name: str, provider: str | None = None) -> ModelInfo | None:
        """The row for ``name`` ("provider/model", bare id or alias), or None.  ``provider``
        narrows a bare name to that provider when it serves it."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("a model name must be a non-empty string")
        if provider and (row := self._provider_ids.get((provider, name))):
            return row
        row = self._rows.get(name) or self._ids.get(name)
        if row is None and "/" in name:
            prefix, rest = name.split("/", 1)
            row = self._provider_ids.get((prefix, rest))
        return row or self._folded.get(name.casefold())

    def lookup(self, name: str, provider: str | None = None) -> ModelInfo:
        row = self.find(name, provider)
        if row is not None:
            return row
        suggestions = self.suggest(name)
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        raise UnknownModelError(f"unknown model {name!r}{hint}", suggestions=suggestions)

    def suggest(self, name: str, limit: int = 5) -> list[str]:
        """The registered names closest to ``name``, best first."""
        wanted = name.casefold()
        names = {key.casefold(): key for row in self._rows.values() for key in (row.name, row.model, *row.aliases)}
        close = difflib.get_close_matches(wanted, list(names), n=limit, cutoff=0.6)
        if len(close) < limit:
            close += [key for key in names if wanted in key and key not in close][: limit - len(close)]
        return [names[key] for key in close]

    def search(self, text: str, limit: int | None = None, provider: str | None = None) -> list[ModelInfo]:
        """Rows whose name or aliases contain every word of ``text`` (case-insensitive)."""
        words = text.casefold().split()
        found = [row for row in self._rows.values()
                 if (provider is None or row.provider == provider)
                 and all(w in " ".join((row.name, *row.aliases)).casefold() for w in words)]
        found.sort(key=lambda row: row.name)
        return found[:limit] if limit else found


def _price_key(row: ModelInfo) -> tuple[bool, float]:
    known = row.input_price is not None and row.output_price is not None
    return (not known, (row.input_price or 0) + (row.output_price or 0))


def needs_of(request: CompletionRequest) -> frozenset[str]:
    """The capabilities a request uses: tools, vision (an image anywhere), thinking,
    json_schema (a structured-output format) and streaming."""
    from .types import ImageBlock

    needs = set()
    if request.tools:
        needs.add("tools")
    if any(isinstance(block, ImageBlock) for message in request.messages for block in message.content):
        needs.add("vision")
    if request.thinking is not None and request.thinking.enabled:
        needs.add("thinking")
    if request.response_format is not None and request.response_format.type == "json_schema":
        needs.add("json_schema")
    if request.stream:
        needs.add("streaming")
    return frozenset(needs)


def pick_fallbacks(
    request: CompletionRequest | None = None,
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
    failing ``model``'s own window.  Every capability the request uses (:func:`needs_of`) plus
    ``needs`` is required; ``providers`` restricts the answer to providers the caller can reach;
    retired models and rows without a known context window are left out.
    """
    reg = registry or default_registry()
    required = set(needs) | (needs_of(request) if request is not None else set())
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
             and row.supports(*required) and not row.retired(today)
             and (allowed is None or row.provider in allowed)]
    found.sort(key=lambda row: (*_price_key(row), -(row.context_window or 0), row.name))
    return found[:limit] if limit else found


# --- the built-in catalogue and the default registry ----------------------------------------

# Each model's own vendor first, so a bare id resolves to it rather than to a reseller.
_CATALOGUE_ORDER = ("openai", "anthropic", "gemini", "mistral", "deepseek", "xai", "cohere", "groq", "together",
                    "fireworks", "perplexity", "deepinfra", "sambanova", "ollama", "azure", "vertex", "bedrock")


def _number(text: str) -> float | None:
    return float(text) if text else None


def _integer(text: str) -> int | None:
    return int(text) if text else None


def row_from_csv(record: dict[str, str]) -> ModelInfo:
    """A catalogue CSV record as a ModelInfo (empty cells are unknown)."""
    threshold = _integer(record["long_context_threshold"])
    long_context = None if threshold is None else LongContextPrices(
        threshold, _number(record["long_input"]), _number(record["long_output"]),
        _number(record["long_cache_read"]), _number(record["long_cache_write"]))
    return ModelInfo(
        provider=record["provider"], model=record["model"],
        aliases=tuple(a for a in record["aliases"].split("|") if a),
        context_window=_integer(record["context_window"]), max_output_tokens=_integer(record["max_output_tokens"]),
        input_price=_number(record["input"]), output_price=_number(record["output"]),
        cache_read_price=_number(record["cache_read"]), cache_write_price=_number(record["cache_write"]),
        reasoning_price=_number(record["reasoning"]), batch_discount=_number(record["batch_discount"]),
        long_context=long_context, capabilities=frozenset(record["capabilities"].split()),
        knowledge_cutoff=record["knowledge_cutoff"] or None, deprecation_date=record["deprecation_date"] or None,
        checked=record["checked"] or None, source=record["source"],
    )


def builtin_models() -> list[ModelInfo]:
    """The built-in catalogue (package data), vendors before resellers."""
    from importlib.resources import files

    folder = files(__package__).joinpath("model_data")
    tables = {entry.name[:-4]: entry for entry in folder.iterdir() if entry.name.endswith(".csv")}
    order = [p for p in _CATALOGUE_ORDER if p in tables] + sorted(set(tables) - set(_CATALOGUE_ORDER))
    rows: list[ModelInfo] = []
    for provider in order:
        text = tables[provider].read_text(encoding="utf-8")
        rows.extend(row_from_csv(record) for record in csv.DictReader(io.StringIO(text, newline="")))
    return rows


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
                from .model_import import cached_models

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
