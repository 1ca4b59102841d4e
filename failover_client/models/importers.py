"""Grow the model registry from public catalogues: LiteLLM, OpenRouter and models.dev.

* :func:`parse_litellm` reads LiteLLM's ``model_prices_and_context_window.json`` (prices per
  token, ``litellm_provider``, ``max_input_tokens``, ``supports_*`` flags);
* :func:`parse_openrouter` reads OpenRouter's ``GET /api/v1/models`` answer (``{"data": [...]}``,
  prices as decimal strings per token, ``-1`` for "varies");
* :func:`parse_models_dev` reads models.dev's ``api.json`` (providers, each with ``models``;
  prices already per million tokens).

:func:`store` (behind :func:`failover_client.models.refresh`) is the only code in the library
that downloads a catalogue, and it runs only when asked (``failover-client models refresh
--source ...``): it fetches through the project's Transport (or reads ``--file``), checks that
the document parses, and writes it atomically to ``<cache dir>/models-<source>.json``.  The
registry reads every such file on first use (:func:`cached_models`), so lookups stay offline.  The cache directory is
``$FAILOVER_CLIENT_CACHE_DIR``, else ``$XDG_CACHE_HOME/failover_client``, else
``~/.cache/failover_client``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from ..errors import FailoverClientError, InvalidArgumentError
from .registry import PER_MILLION, LongContextPrices, ModelInfo

logger = logging.getLogger("failover_client")


class CatalogueFormatError(InvalidArgumentError):
    """A catalogue file is not in the format its source uses."""


# Provider names in the public catalogues -> the names this library uses.
_PROVIDER_NAMES = {
    "vertex_ai": "vertex", "google-vertex": "vertex", "google-vertex-anthropic": "vertex",
    "bedrock_converse": "bedrock", "amazon-bedrock": "bedrock", "google": "gemini",
    "together_ai": "together", "togetherai": "together", "fireworks_ai": "fireworks", "fireworks-ai": "fireworks",
    "cohere_chat": "cohere", "text-completion-openai": "openai", "azure_ai": "azure", "x-ai": "xai",
}
_CHAT_MODES = {None, "chat", "completion", "responses"}


def provider_name(name: str) -> str:
    if name.startswith("vertex_ai-"):
        return "vertex"
    return _PROVIDER_NAMES.get(name, name)


def _per_million(value: Any) -> float | None:
    """A per-token price (number or decimal string) per million tokens; None if absent or "varies"."""
    if value is None or value == "":
        return None
    price = float(value)
    return None if price < 0 else round(price * PER_MILLION, 10)


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def _flags(entry: dict[str, Any], names: dict[str, str]) -> frozenset[str]:
    return frozenset(capability for key, capability in names.items() if entry.get(key) is True)


def _expect_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CatalogueFormatError(f"not {what}: the document is a JSON {type(data).__name__}, not an object")
    return data


# --- LiteLLM --------------------------------------------------------------------------------

_LITELLM_FLAGS = {
    "supports_function_calling": "tools", "supports_vision": "vision", "supports_response_schema": "json_schema",
    "supports_reasoning": "thinking", "supports_audio_input": "audio_in", "supports_audio_output": "audio_out",
}


def parse_litellm(data: Any) -> list[ModelInfo]:
    """Chat/completion models of a LiteLLM ``model_prices_and_context_window.json``."""
    entries = _expect_object(data, "a LiteLLM model_prices_and_context_window.json")
    rows = []
    for key, entry in entries.items():
        if key == "sample_spec" or not isinstance(entry, dict) or "litellm_provider" not in entry:
            continue
        if entry.get("mode") not in _CHAT_MODES:
            continue
        try:
            rows.append(_litellm_row(key, entry))
        except (TypeError, ValueError) as exc:
            logger.debug("skipping LiteLLM entry %r: %s", key, exc)
    if entries and not rows and not any(isinstance(e, dict) and "litellm_provider" in e for e in entries.values()):
        raise CatalogueFormatError("not a LiteLLM model_prices_and_context_window.json: no entry has "
                                   "a 'litellm_provider'")
    return rows


def _litellm_row(key: str, entry: dict[str, Any]) -> ModelInfo:
    source = str(entry["litellm_provider"])
    model = key.split("/", 1)[1] if key.startswith(f"{source}/") else key
    input_price = _per_million(entry.get("input_cost_per_token"))
    batch_input = _per_million(entry.get("input_cost_per_token_batches"))
    batch_discount = (round(1 - batch_input / input_price, 6)
                      if batch_input is not None and input_price else None)
    return ModelInfo(
        provider=provider_name(source), model=model,
        context_window=_count(entry.get("max_input_tokens")),
        max_output_tokens=_count(entry.get("max_output_tokens") or entry.get("max_tokens")),
        input_price=input_price, output_price=_per_million(entry.get("output_cost_per_token")),
        cache_read_price=_per_million(entry.get("cache_read_input_token_cost")),
        cache_write_price=_per_million(entry.get("cache_creation_input_token_cost")),
        reasoning_price=_per_million(entry.get("output_cost_per_reasoning_token")),
        batch_discount=batch_discount,
        capabilities=_flags(entry, _LITELLM_FLAGS) | ({"streaming"} if entry.get("mode") == "chat" else set()),
        deprecation_date=entry.get("deprecation_date") or None, source="litellm",
    )


# --- OpenRouter -----------------------------------------------------------------------------

_OPENROUTER_PARAMETERS = {"tools": "tools", "reasoning": "thinking", "structured_outputs": "json_schema"}


def parse_openrouter(data: Any) -> list[ModelInfo]:
    """Models of an OpenRouter ``GET /api/v1/models`` answer."""
    models = _expect_object(data, "an OpenRouter /api/v1/models answer").get("data")
    if not isinstance(models, list):
        raise CatalogueFormatError("not an OpenRouter /api/v1/models answer: it has no 'data' list")
    rows = []
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        try:
            rows.append(_openrouter_row(entry))
        except (TypeError, ValueError, AttributeError) as exc:
            logger.debug("skipping OpenRouter entry %r: %s", entry.get("id"), exc)
    return rows


def _openrouter_row(entry: dict[str, Any]) -> ModelInfo:
    pricing = entry.get("pricing") or {}
    top = entry.get("top_provider") or {}
    architecture = entry.get("architecture") or {}
    inputs = set(architecture.get("input_modalities") or [])
    outputs = set(architecture.get("output_modalities") or [])
    parameters = set(entry.get("supported_parameters") or [])
    capabilities = {cap for param, cap in _OPENROUTER_PARAMETERS.items() if param in parameters}
    capabilities |= {"streaming"} | ({"vision"} if "image" in inputs else set())
    capabilities |= ({"audio_in"} if "audio" in inputs else set()) | ({"audio_out"} if "audio" in outputs else set())
    return ModelInfo(
        provider="openrouter", model=entry["id"],
        aliases=tuple(a for a in (entry.get("canonical_slug"),) if isinstance(a, str) and a != entry["id"]),
        context_window=_count(entry.get("context_length") or top.get("context_length")),
        max_output_tokens=_count(top.get("max_completion_tokens")),
        input_price=_per_million(pricing.get("prompt")), output_price=_per_million(pricing.get("completion")),
        cache_read_price=_per_million(pricing.get("input_cache_read")),
        cache_write_price=_per_million(pricing.get("input_cache_write")),
        reasoning_price=_nonzero(_per_million(pricing.get("internal_reasoning"))),
        capabilities=frozenset(capabilities), knowledge_cutoff=entry.get("knowledge_cutoff") or None,
        source="openrouter",
    )


def _nonzero(price: float | None) -> float | None:
    """OpenRouter writes "0" for a reasoning price that is simply the completion price."""
    return price or None


# --- models.dev -----------------------------------------------------------------------------

_MODELS_DEV_FLAGS = {"tool_call": "tools", "reasoning": "thinking", "structured_output": "json_schema"}


def parse_models_dev(data: Any) -> list[ModelInfo]:
    """Models of every provider in a models.dev ``api.json``."""
    providers = _expect_object(data, "a models.dev api.json")
    rows = []
    for provider_id, provider in providers.items():
        models = provider.get("models") if isinstance(provider, dict) else None
        if not isinstance(models, dict):
            continue
        for model_id, entry in models.items():
            if not isinstance(entry, dict):
                continue
            try:
                rows.append(_models_dev_row(provider_id, model_id, entry))
            except (TypeError, ValueError, AttributeError) as exc:
                logger.debug("skipping models.dev entry %r/%r: %s", provider_id, model_id, exc)
    if providers and not rows and not any(isinstance(p, dict) and "models" in p for p in providers.values()):
        raise CatalogueFormatError("not a models.dev api.json: no provider has 'models'")
    return rows


def _price(prices: dict[str, Any], name: str) -> float | None:
    value = prices.get(name)
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None


def _models_dev_row(provider_id: str, model_id: str, entry: dict[str, Any]) -> ModelInfo:
    prices = entry.get("cost") or {}
    limits = entry.get("limit") or {}
    modalities = entry.get("modalities") or {}
    inputs, outputs = set(modalities.get("input") or []), set(modalities.get("output") or [])
    capabilities = set(_flags(entry, _MODELS_DEV_FLAGS)) | {"streaming"}
    capabilities |= ({"vision"} if "image" in inputs or entry.get("attachment") is True else set())
    capabilities |= ({"audio_in"} if "audio" in inputs else set()) | ({"audio_out"} if "audio" in outputs else set())

    over = prices.get("context_over_200k")
    long_context = None if not isinstance(over, dict) else LongContextPrices(
        200_000, *(_price(over, name) for name in ("input", "output", "cache_read", "cache_write")))
    return ModelInfo(
        provider=provider_name(provider_id), model=str(entry.get("id") or model_id), long_context=long_context,
        context_window=_count(limits.get("context")), max_output_tokens=_count(limits.get("output")),
        input_price=_price(prices, "input"), output_price=_price(prices, "output"),
        cache_read_price=_price(prices, "cache_read"), cache_write_price=_price(prices, "cache_write"),
        reasoning_price=_price(prices, "reasoning"),
        capabilities=frozenset(capabilities), knowledge_cutoff=entry.get("knowledge") or None,
        checked=entry.get("last_updated") or None, source="models.dev",
    )


# --- sources, cache and store ---------------------------------------------------------------

SOURCES: dict[str, tuple[str, Callable[[Any], list[ModelInfo]]]] = {
    "litellm": ("https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json",
                parse_litellm),
    "openrouter": ("https://openrouter.ai/api/v1/models", parse_openrouter),
    "models.dev": ("https://models.dev/api.json", parse_models_dev),
}


def _parser(source: str) -> Callable[[Any], list[ModelInfo]]:
    if source not in SOURCES:
        raise InvalidArgumentError(f"unknown catalogue source {source!r}; sources are {', '.join(SOURCES)}")
    return SOURCES[source][1]


def cache_dir() -> Path:
    explicit = os.environ.get("FAILOVER_CLIENT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "failover_client"


def cache_file(source: str) -> Path:
    _parser(source)
    return cache_dir() / f"models-{source}.json"


def parse(source: str, raw: bytes | str) -> list[ModelInfo]:
    """The models in a catalogue document of ``source``'s format."""
    parser = _parser(source)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CatalogueFormatError(f"the {source} catalogue is not valid JSON: {exc}") from None
    return parser(data)


def load(source: str, path: str | os.PathLike[str]) -> list[ModelInfo]:
    """The models in a catalogue file of ``source``'s format."""
    _parser(source)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read the {source} catalogue {os.fspath(path)!r}: {exc.strerror}") from None
    return parse(source, raw)


def cached_models() -> list[ModelInfo]:
    """Every model in the user's cached catalogues (absent files are skipped; a broken one is
    logged and skipped, so it can never take the built-in catalogue down with it)."""
    rows: list[ModelInfo] = []
    for source in SOURCES:
        path = cache_file(source)
        if not path.is_file():
            continue
        try:
            rows.extend(load(source, path))
        except FailoverClientError as exc:
            logger.warning("ignoring the cached %s catalogue %s: %s", source, path, exc)
    return rows


def download(url: str, timeout: float = 60.0) -> bytes:
    """GET ``url`` through the project's Transport (no redirects followed, errors typed)."""
    from ..retry import Deadline
    from ..transport import Transport

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgumentError(f"a catalogue URL must be http(s), got {url!r}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    transport = Transport(f"{parts.scheme}://{parts.netloc}", provider="catalogue", read_timeout=timeout)
    try:
        return transport.request("GET", path or "/", deadline=Deadline(timeout)).read()
    finally:
        transport.close()


def store(source: str, *, file: str | os.PathLike[str] | None = None, url: str | None = None,
          timeout: float = 60.0) -> tuple[Path, int]:
    """Store ``source``'s catalogue (read from ``file``, else downloaded from ``url`` or the
    source's public address) as the user's cached copy; :func:`failover_client.models.refresh`
    then rebuilds the registry from it.  The document must parse before it replaces the cache.
    Returns (cache path, model count)."""
    _parser(source)
    if file is not None:
        try:
            raw = Path(file).read_bytes()
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read {os.fspath(file)!r}: {exc.strerror}") from None
    else:
        raw = download(url or SOURCES[source][0], timeout)
    count = len(parse(source, raw))
    if count == 0:
        raise CatalogueFormatError(f"the {source} catalogue holds no chat model; the cache was not replaced")
    target = cache_file(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(raw)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target, count
