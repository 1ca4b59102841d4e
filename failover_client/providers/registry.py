"""Providers by name: build one from its catalog row, from the environment, or from a
``"provider/model"`` string; and the provider chain behind ``FailoverClient.from_models``.

The protocol class of a row is imported only when a provider of that protocol is built, so
``names()`` and ``resolve()`` cost no more than reading the table.
"""

from __future__ import annotations

import difflib
import os
from importlib import import_module
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import InvalidArgumentError, MissingCredentialsError
from .catalog import BUILDS_OWN_URL, CATALOG, PROTOCOLS, RESPONSES_API, RESPONSES_ROWS, ProviderSpec

if TYPE_CHECKING:
    from ..provider import Provider

_BY_NAME = {spec.name: spec for spec in CATALOG}


def names() -> list[str]:
    """Every catalog name, sorted."""
    return sorted(_BY_NAME)


def spec(name: str) -> ProviderSpec:
    """The catalog row called ``name``; an unknown name is an error that suggests close ones."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"a provider name is a string, got {name!r}")
    row = _BY_NAME.get(name)
    if row is None:
        close = difflib.get_close_matches(name.lower(), _BY_NAME, n=3, cutoff=0.6)
        hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                else "failover_client.providers.names() lists them")
        raise InvalidArgumentError(f"unknown provider {name!r}: {hint}")
    return row


def create(name: str, /, **overrides: Any) -> Provider:
    """The provider ``name`` of the catalog, built with its protocol class.

    ``overrides`` are constructor options and win over the row: ``api_key``, ``base_url``,
    ``headers``, timeouts, ``session``...; a URL parameter of the row
    (e.g. ``account_id`` for Cloudflare) may be given by name, else it is read from its
    environment variable.  Without ``api_key`` the key is read at first use from the row's
    variable (never from another provider's), so a missing key fails then, naming it.
    ``api="responses"`` speaks OpenAI's Responses API to a row whose service serves it
    (``RESPONSES_ROWS``), ``api="chat"`` the row's own protocol (the default).
    """
    row = spec(name)
    options = dict(overrides)
    cls = _api_class(row, options.pop("api", None))
    values = _param_values(row, {param: options.pop(param) for param in row.placeholders() if param in options})
    if row.protocol in BUILDS_OWN_URL:  # the class takes them as arguments, with defaults of its own
        options.update({param: row.param_value(param, value) for param, value in values.items()})
    elif "base_url" not in options:
        missing = [param for param in row.placeholders() if param not in values]
        if missing:
            raise InvalidArgumentError(f"{row.name} needs " + "; ".join(
                f"{param}: pass {param}=... or set {row.params[param]}" for param in missing))
        options["base_url"] = row.url(values)
    options.setdefault("name", row.name)
    if row.local and row.api_key_env is None:
        options.setdefault("api_key", row.name)  # the server ignores it, as the OpenAI client cannot omit it
    provider = cls(**options)
    if row.api_key_env is not None:
        provider.api_key_env = row.api_key_env
    return provider


def from_env(name: str, /, **overrides: Any) -> Provider:
    """Like :func:`create`, but everything the row needs must be in the environment now:
    a missing variable raises MissingCredentialsError naming it (local servers need none)."""
    row = spec(name)
    if "api_key" in overrides:
        raise InvalidArgumentError("from_env() reads the key from the environment; pass api_key to create()")
    missing = missing_variables(name, **overrides)
    if missing:
        raise MissingCredentialsError(f"{name} needs the environment variable(s) {', '.join(missing)}",
                                      provider=name)
    key = os.environ[row.api_key_env] if row.api_key_env else None
    return create(name, **overrides) if key is None else create(name, api_key=key, **overrides)


def missing_variables(name: str, /, **overrides: Any) -> list[str]:
    """The environment variables ``from_env(name, **overrides)`` needs and does not find."""
    row = spec(name)
    needed = [row.api_key_env] if row.api_key_env else []
    if "base_url" not in overrides and row.protocol not in BUILDS_OWN_URL:
        needed += [row.params[p] for p in row.placeholders() if p not in overrides]
    return [variable for variable in needed if not os.environ.get(variable)]


def resolve(text: str) -> tuple[str, str]:
    """``"provider/model"`` -> ``(provider, model)``.  The provider is everything before the
    first slash and must be a catalog name; the model is the rest and may contain slashes
    (``"openrouter/meta-llama/llama-3.3-70b-instruct"``)."""
    if not isinstance(text, str):
        raise InvalidArgumentError(f"expected a 'provider/model' string, got {text!r}")
    provider, _, model = text.partition("/")
    if not provider or not model or "" in model.split("/") or any(c.isspace() for c in text):
        raise InvalidArgumentError(f"{text!r} is not of the form 'provider/model' (e.g. 'openai/gpt-4o')")
    try:
        spec(provider)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{text!r}: {exc}") from None
    return provider, model


def chain(*models: str, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[tuple[str, Provider, str]]:
    """``(name, provider, model)`` for each ``"provider/model"`` string, in order, built with
    :func:`from_env`.  Every missing environment variable is named in one error.  A provider
    that appears twice gets a numbered name (``openai``, ``openai-2``).  ``overrides`` maps a
    provider name to options for it (e.g. ``{"openai": {"base_url": ...}}``)."""
    if not models:
        raise InvalidArgumentError("from_models() needs at least one 'provider/model' string")
    routes = [resolve(text) for text in models]
    overrides = dict(overrides or {})
    for provider in overrides:
        if provider not in {p for p, _ in routes}:
            raise InvalidArgumentError(f"overrides name {provider!r}, which is not among the models {list(models)}")
    missing: dict[str, list[str]] = {}
    for provider, _ in routes:
        for variable in missing_variables(provider, **overrides.get(provider, {})):
            missing.setdefault(variable, []).append(provider)
    if missing:
        listed = ", ".join(f"{variable} ({', '.join(dict.fromkeys(who))})" for variable, who in missing.items())
        raise MissingCredentialsError(f"missing environment variables: {listed}")
    entries: list[tuple[str, Provider, str]] = []
    for provider, model in routes:
        name = _unique(provider, {entry[0] for entry in entries})
        options = dict(overrides.get(provider, {}))
        if "api" not in options and provider in RESPONSES_ROWS and _responses_only(provider, model):
            options["api"] = "responses"
        entries.append((name, from_env(provider, name=name, **options), model))
    return entries


def _responses_only(provider: str, model: str) -> bool:
    """Whether the model registry marks ``provider/model`` as served only by the Responses API."""
    from ..models import find

    row = find(model, provider)
    return row is not None and row.supports("responses_only")


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def _param_values(row: ProviderSpec, given: Mapping[str, str]) -> dict[str, str]:
    """The row's URL parameters that are known: given as arguments, else from their variables."""
    values = dict(given)
    for param in row.placeholders():
        if param not in values and os.environ.get(row.params[param]):
            values[param] = os.environ[row.params[param]]
    return values


def _api_class(row: ProviderSpec, api: str | None) -> Any:
    """The class that speaks ``api`` to the row's service."""
    if api in (None, "chat"):
        module, cls = PROTOCOLS[row.protocol]
    elif api != "responses":
        raise InvalidArgumentError(f"api must be 'chat' or 'responses', got {api!r}")
    elif row.name not in RESPONSES_ROWS:
        raise InvalidArgumentError(f"{row.name} does not serve OpenAI's Responses API; "
                                   f"these do: {', '.join(sorted(RESPONSES_ROWS))}")
    else:
        module, cls = RESPONSES_API
    return getattr(import_module(f"{__package__}.{module}"), cls)
