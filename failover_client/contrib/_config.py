"""The ``FAILOVER_CLIENT`` settings dict, and one client per process: what the Django and
Flask integrations share, so both read the same format and behave the same under gunicorn.

The format (Django ``settings.FAILOVER_CLIENT``, Flask ``app.config["FAILOVER_CLIENT"]``)::

    FAILOVER_CLIENT = {
        "providers": [                                # in order: the first is the primary
            {"model": "openai/gpt-5.5"},              # catalog "provider/model"; key from OPENAI_API_KEY
            {"model": "anthropic/claude-opus-5",      # a request for gpt-5.5 is sent here as this model
             "name": "backup",                        # the chain's name for it (default: the provider)
             "models": {"gpt-5.4-mini": "claude-haiku-5-5"},  # more model mappings for this fallback
             "options": {"base_url": "https://...", "api_key": "..."}},  # constructor options
        ],
        "deadline": 30,              # seconds per call, streams included (default: none)
        "profile": "web",            # "web" (default): FailoverConfig.for_web; "script": library defaults
        "max_sleep": 2.0,            # the web profile's cap on sleeping per call
        "retry_primary": 1,          # retries of the primary (after the profile)
        "retry_policy": {"base_delay": 0.25, "max_delay": 2, "max_retry_after": 2},  # overrides the profile's
        "circuit_breaker": {"failure_threshold": 5, "cooldown": 30},  # or False to turn it off
        "health_store": "redis://localhost:6379/0",  # share breaker state and rate limits between workers
        "stream_interrupt": "raise",  # or "resume"
    }

Without ``api_key`` in ``options`` a provider's key is read from its environment variable when
the client is built, and a missing one is named in a MissingCredentialsError.  Without
``health_store`` each gunicorn worker keeps its own breaker: one worker may open the primary's
circuit while the others keep sending to it.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from ..failover import FailoverClient

SETTING = "FAILOVER_CLIENT"
_KEYS = {"providers", "deadline", "profile", "max_sleep", "retry_primary", "retry_policy", "circuit_breaker",
         "health_store", "stream_interrupt"}
_PROVIDER_KEYS = {"model", "name", "models", "options"}


def build_client(settings: Any) -> FailoverClient:
    """A FailoverClient from the settings dict described in the module docstring."""
    from ..failover import FailoverClient, FailoverConfig, FallbackProvider
    from ..retry import RetryPolicy

    if not isinstance(settings, Mapping):
        raise InvalidArgumentError(f"{SETTING} must be a dict (see failover_client.contrib._config), "
                                   f"got {type(settings).__name__}")
    unknown = set(settings) - _KEYS
    if unknown:
        raise InvalidArgumentError(f"{SETTING} has unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    (name, primary, model, _), *fallbacks = _providers(settings.get("providers"))
    config = FailoverConfig(name, primary)
    for fallback_name, provider, fallback_model, mapping in fallbacks:
        link = FallbackProvider(fallback_name, provider).with_model_mapping(model, fallback_model)
        link.model_mapping.update(mapping)
        config.add_fallback(link)
    profile = settings.get("profile", "web")
    if profile == "web":
        config.for_web(settings.get("max_sleep", 2.0))
    elif profile != "script":
        raise InvalidArgumentError(f"{SETTING}['profile'] is 'web' or 'script', not {profile!r}")
    if "retry_primary" in settings:
        config.retry_primary(settings["retry_primary"])
    if "retry_policy" in settings:
        config.with_retry_policy(RetryPolicy(**_options("retry_policy", settings["retry_policy"])))
    config.with_deadline(settings.get("deadline"))
    breaker = settings.get("circuit_breaker", {})
    if breaker is False or breaker is None:
        config.without_circuit_breaker()
    else:
        config.with_circuit_breaker(**_options("circuit_breaker", breaker))
    if settings.get("health_store"):
        from ..health import RedisHealthStore

        config.with_health_store(RedisHealthStore(settings["health_store"]))
    config.on_stream_interrupt(settings.get("stream_interrupt", "raise"))
    return FailoverClient(config)


def primary_model(settings: Mapping[str, Any]) -> str:
    """The model of the first provider: what requests should name (fallbacks map it)."""
    return str(settings["providers"][0]["model"]).partition("/")[2]


def _providers(entries: Any) -> list[tuple[str, Any, str, dict[str, str]]]:
    from ..providers import registry

    if not isinstance(entries, (list, tuple)) or not entries:
        raise InvalidArgumentError(f"{SETTING}['providers'] must be a non-empty list of "
                                   "{'model': 'provider/model', ...} dicts")
    built: list[tuple[str, Any, str, dict[str, str]]] = []
    for i, entry in enumerate(entries):
        where = f"{SETTING}['providers'][{i}]"
        if not isinstance(entry, Mapping) or "model" not in entry or set(entry) - _PROVIDER_KEYS:
            raise InvalidArgumentError(f"{where} must be a dict with 'model' and optionally "
                                       f"{sorted(_PROVIDER_KEYS - {'model'})}, got {entry!r:.100}")
        provider, model = registry.resolve(entry["model"])
        name = entry.get("name", provider)
        if name in {taken for taken, *_ in built}:
            raise InvalidArgumentError(f"{where}: the name {name!r} is taken; give this entry a 'name'")
        options = {**_options(f"providers[{i}]['options']", entry.get("options", {})), "name": name}
        make = registry.create if "api_key" in options else registry.from_env
        mapping = entry.get("models", {})
        if not isinstance(mapping, Mapping) or (i == 0 and mapping):
            raise InvalidArgumentError(f"{where}['models'] maps request models to this fallback's models "
                                       "(a dict, and only on fallbacks)")
        built.append((name, make(provider, **options), model, dict(mapping)))
    return built


def _options(what: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{SETTING}[{what!r}] must be a dict, got {type(value).__name__}")
    return dict(value)


class ProcessClient:
    """The client of this process, built on first use by ``factory``.

    Keyed by ``os.getpid()``: a client made before gunicorn's ``--preload`` fork, or Celery's
    prefork, stays the parent's; each worker builds its own on its first request, so no two
    processes share a connection pool or its sockets.  Closed when the process exits."""

    def __init__(self, factory: Callable[[], FailoverClient]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._client: FailoverClient | None = None
        self._pid: int | None = None
        self._at_exit: int | None = None  # the process that registered the exit hook

    def get(self) -> FailoverClient:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._factory()
                self._pid = os.getpid()
                if self._at_exit != self._pid:
                    atexit.register(self.close)
                    self._at_exit = self._pid
            return self._client

    def close(self) -> None:
        """Close this process's client (a client inherited from a parent is left alone)."""
        with self._lock:
            client, self._client = self._client, None
            if client is not None and self._pid == os.getpid():
                client.close()
