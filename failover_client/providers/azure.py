"""Azure OpenAI: OpenAI's Chat Completions wire format behind Azure's URLs and credentials.

Wire facts: protocols.md §1.7, checked against openai-python's ``lib/azure.py``.  Only the
addressing and the authentication differ from :mod:`.openai`, whose mapping is reused as is
(its stream decoder already skips Azure's opening chunk with empty ``choices`` and
``prompt_filter_results``; ``finish_reason: content_filter`` and the 400 ``content_filter``
error map to CONTENT_FILTER and ContentFilteredError there and in ``errors``).

Two URL styles:

* classic: ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``,
  chosen when an API version is given (``api_version=`` or ``OPENAI_API_VERSION``); the
  deployment is ``deployment=`` or else the request's model;
* the v1 API: ``{endpoint}/openai/v1/chat/completions`` without a version, chosen when no
  version is configured, ``api_version="v1"``, or an endpoint ending in ``/openai/v1``; the
  body's ``model`` names the deployment.

Credentials, in this order: ``api_key=`` (sent as the ``api-key`` header), ``azure_ad_token=``
or ``azure_ad_token_provider=`` (a callable asked for a fresh Entra ID token before every
request; sent as a bearer token), then the environment as the SDK reads it:
``AZURE_OPENAI_AD_TOKEN``, then ``AZURE_OPENAI_API_KEY``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping
from urllib.parse import quote

from ..errors import AuthenticationError, InvalidArgumentError, MissingCredentialsError, register_secrets
from ..types import CompletionRequest, EmbeddingRequest, EmbeddingResponse
from .openai import OpenAIProvider

V1 = "v1"
ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
VERSION_ENV = "OPENAI_API_VERSION"
TOKEN_ENV = "AZURE_OPENAI_AD_TOKEN"
# Dated API versions before this one reject stream_options (include_usage arrived in 2024-09-01-preview).
STREAM_OPTIONS_SINCE = "2024-09-01"
_V1_SUFFIX = "/openai/v1"


def _resource(endpoint: str) -> tuple[str, bool]:
    """(the resource URL, whether the endpoint itself names the v1 API)."""
    endpoint = endpoint.rstrip("/")
    if endpoint.endswith(_V1_SUFFIX):
        return endpoint[: -len(_V1_SUFFIX)], True
    return endpoint.removesuffix("/openai"), False


class AzureOpenAIProvider(OpenAIProvider):
    """A deployment on an Azure OpenAI (or Azure AI Foundry) resource.

    ``azure_endpoint`` (or ``base_url``, or ``AZURE_OPENAI_ENDPOINT``) is the resource URL,
    e.g. ``https://my-resource.openai.azure.com``.
    """

    name = "azure"
    api_key_env = "AZURE_OPENAI_API_KEY"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        deployment: str | None = None,
        azure_ad_token: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        base_url: str | None = None,
        **options: Any,
    ) -> None:
        if sum(x is not None for x in (api_key, azure_ad_token, azure_ad_token_provider)) > 1:
            raise InvalidArgumentError("api_key, azure_ad_token and azure_ad_token_provider are mutually "
                                       "exclusive: pass one")
        if azure_endpoint and base_url:
            raise InvalidArgumentError("azure_endpoint and base_url name the same thing: pass one")
        endpoint = azure_endpoint or base_url or os.environ.get(ENDPOINT_ENV)
        if not endpoint:
            raise InvalidArgumentError(f"no Azure OpenAI endpoint: pass azure_endpoint= or set {ENDPOINT_ENV}")
        resource, v1_endpoint = _resource(endpoint)
        if api_version is None and not v1_endpoint:
            api_version = os.environ.get(VERSION_ENV)
        if v1_endpoint and api_version not in (None, V1):
            raise InvalidArgumentError(f"the {_V1_SUFFIX} API takes no api-version (got {api_version!r})")
        self.api_version = None if api_version in (None, V1) else api_version
        self.deployment = deployment
        self._ad_token = azure_ad_token
        self._token_provider = azure_ad_token_provider
        super().__init__(api_key, base_url=resource + "/openai", **options)
        register_secrets(azure_ad_token)

    def _credentials(self) -> tuple[dict[str, str], tuple[str, ...]]:
        if self._token_provider is not None:
            return {}, ()  # a fresh token goes on every request instead
        explicit_key = self._api_key
        token = self._ad_token or (None if explicit_key else os.environ.get(TOKEN_ENV))
        if token:
            return {"Authorization": f"Bearer {token}"}, (token,)
        key = explicit_key or os.environ.get(self.api_key_env)
        if not key:
            raise MissingCredentialsError(
                f"no credentials for {self.name}: pass api_key=, azure_ad_token= or azure_ad_token_provider=, "
                f"or set {self.api_key_env} or {TOKEN_ENV}", provider=self.name)
        return {"api-key": key}, (key,)

    def _request_headers(self, path: str, body: bytes, stream: bool) -> Mapping[str, str] | None:
        headers = super()._request_headers(path, body, stream)
        if self._token_provider is None:
            return headers
        try:
            token = self._token_provider()
        except Exception as exc:
            raise AuthenticationError(f"azure_ad_token_provider failed: {type(exc).__name__}: {exc}",
                                      provider=self.name) from exc
        if not token or not isinstance(token, str):
            raise MissingCredentialsError("azure_ad_token_provider returned no token", provider=self.name)
        return {**(headers or {}), "Authorization": f"Bearer {token}"}

    def _path(self, request: CompletionRequest, stream: bool) -> str:
        if self.api_version is None:
            return "/v1" + self.chat_path
        return f"/deployments/{quote(self.deployment or request.model, safe='')}{self.chat_path}"

    def _params(self, request: CompletionRequest, stream: bool) -> Mapping[str, str] | None:
        return None if self.api_version is None else {"api-version": self.api_version}

    supports_embeddings = True

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """OpenAI's embeddings at the deployment's URL; the v1 API finds the deployment by ``model``."""
        if self.api_version is None and self.deployment:
            request = request.with_model(self.deployment)
        return super().embed(request, timeout=timeout)

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        body = super()._body(request, stream)
        if self.api_version is None and self.deployment:
            body["model"] = self.deployment  # the v1 API finds the deployment by this name
        if stream and self.api_version is not None and self.api_version[:10] < STREAM_OPTIONS_SINCE:
            del body["stream_options"]  # rejected as an unrecognized argument: usage is estimated instead
        return body
