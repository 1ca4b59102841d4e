"""Model rows and the registry that indexes them: limits, prices, capabilities, and cost.

This module holds no process-wide state (that is :mod:`failover_client.models`) and imports
nothing of the package but errors: pricing reads token counts from anything that carries them,
so the response types can price themselves without a circle.  The built-in catalogue,
``failover_client/models/data/*.csv``, is curated from the providers' pricing and model pages,
each row with the page it came from and the date it was checked.  Prices are US dollars per
million tokens; a price nobody published is ``None``, never a guess, and a cost that needs an
unknown price is ``None`` too.

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

import math
import threading
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any, Iterable, Iterator, Protocol

from ..errors import InvalidArgumentError

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
    cache_write_1h_price: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One model at one provider.  Prices are USD per million tokens; ``None`` is unknown."""

    provider: str
    model: str
    aliases: tuple[str, ...] = ()
    context_window: int | None = None  # tokens a model reads at once (an embedding model: one input)
    max_output_tokens: int | None = None
    input_price: float | None = None
    output_price: float | None = None
    cache_read_price: float | None = None
    cache_write_price: float | None = None  # the default (Anthropic: 5-minute) cache write
    cache_write_1h_price: float | None = None  # Anthropic's 1-hour cache write, where billed apart
    reasoning_price: float | None = None  # None: reasoning tokens are billed as output
    batch_discount: float | None = None  # the fraction taken off batch results (0.5 = half price)
    long_context: LongContextPrices | None = None
    capabilities: frozenset[str] = frozenset()
    knowledge_cutoff: str | None = None
    deprecation_date: str | None = None  # ISO date of the announced shutdown
    checked: str | None = None  # ISO date the row was last checked against its source
    source: str = ""
    successor: str | None = None  # the replacement the vendor names for a deprecated model
    # embedding models (data/embeddings.csv): vector length by default, and the per-request limits
    embedding_dimensions: int | None = None
    max_inputs: int | None = None  # texts in one request
    max_input_tokens: int | None = None  # tokens in one text

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
                       cache_write_1h_price=tier.cache_write_1h_price, long_context=None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        data["capabilities"] = sorted(self.capabilities)
        data["name"] = self.name
        return data


# --- cost -----------------------------------------------------------------------------------

class TokenCounts(Protocol):
    """What pricing reads of a usage record (failover_client.Usage has these fields)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int


def cost(usage: TokenCounts, model_info: ModelInfo, batch: bool = False) -> float | None:
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
        import difflib  # only for a name that is not there; keeps importing the registry cheap

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
        _number(record["long_cache_read"]), _number(record["long_cache_write"]),
        _number(record.get("long_cache_write_1h", "")))
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
        cache_write_1h_price=_number(record.get("cache_write_1h", "")), successor=record.get("successor") or None,
        embedding_dimensions=_integer(record.get("dimensions", "")), max_inputs=_integer(record.get("max_inputs", "")),
        max_input_tokens=_integer(record.get("max_input_tokens", "")),
    )


def builtin_models() -> list[ModelInfo]:
    """The built-in catalogue (package data), vendors before resellers."""
    import csv
    import io
    from importlib.resources import files

    folder = files(__package__).joinpath("data")
    tables = {entry.name[:-4]: entry for entry in folder.iterdir() if entry.name.endswith(".csv")}
    order = [p for p in _CATALOGUE_ORDER if p in tables] + sorted(set(tables) - set(_CATALOGUE_ORDER))
    rows: list[ModelInfo] = []
    for provider in order:
        text = tables[provider].read_text(encoding="utf-8")
        rows.extend(row_from_csv(record) for record in csv.DictReader(io.StringIO(text, newline="")))
    return rows
