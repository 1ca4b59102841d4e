"""Google Vertex AI: Gemini models (``publishers/google``, the Gemini wire format of gemini.py)
and Anthropic's Claude models (``publishers/anthropic``, the Messages format of anthropic.py),
behind one project/location URL and one OAuth bearer token.

* Gemini: ``…/publishers/google/models/{model}:generateContent``,
  ``:streamGenerateContent?alt=sse``, ``:countTokens``.
* Claude (a model id starting with ``claude``): ``…/publishers/anthropic/models/{model}:rawPredict``
  and ``:streamRawPredict`` with the Messages body minus ``model``, plus
  ``"anthropic_version": "vertex-2023-10-16"``; counting via ``models/count-tokens:rawPredict``.

The host is ``{location}-aiplatform.googleapis.com``, or ``aiplatform.googleapis.com`` for the
``global`` location.  Both wire mappings are imported, not restated.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping
from urllib.parse import quote

from ..errors import AuthenticationError, InvalidArgumentError, MissingCredentialsError, ResponseDecodeError
from ..provider import HttpProvider, WireFormat, dumps
from ..retry import Deadline
from ..types import (
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamChunk,
    TokenCountRequest,
    TokenCountResult,
)
from . import anthropic, gemini

if TYPE_CHECKING:
    from ..transport import HttpResponse

PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
LOCATION_ENV = "GOOGLE_CLOUD_LOCATION"
DEFAULT_LOCATION = "global"
ANTHROPIC_VERSION = "vertex-2023-10-16"
# The Messages fields that make up the prompt, for Anthropic's token count.
_ANTHROPIC_PROMPT = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def default_base_url(location: str) -> str:
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}/v1"


def is_claude(model: str) -> bool:
    return model.lower().startswith("claude")


def anthropic_request_to_wire(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    """The Messages body as rawPredict takes it: the model is in the URL, the version in the body."""
    body = anthropic.request_to_wire(request, stream)
    del body["model"]
    body["anthropic_version"] = ANTHROPIC_VERSION
    return body


class VertexProvider(HttpProvider):
    """Gemini and Claude models on Vertex AI.

    Authentication is an OAuth access token: ``access_token=`` (used as it is), or
    ``token_provider=``, a callable returning the current token, **called before every request**
    so that a refreshed token is always the one sent.  It should therefore be cheap: return a
    cached token and refresh it only near expiry, as google-auth credentials do, e.g.
    ``lambda: creds.token if creds.valid else (creds.refresh(Request()), creds.token)[1]``.
    The token never appears in a repr, log line or error message.  ``project`` and ``location``
    default to ``GOOGLE_CLOUD_PROJECT`` and ``GOOGLE_CLOUD_LOCATION`` (else ``global``).
    """

    name = "vertex"
    supports_token_counting = True

    def __init__(self, project: str | None = None, location: str | None = None, *,
                 access_token: str | None = None, token_provider: Callable[[], str] | None = None,
                 api_key: None = None, **options: Any) -> None:
        if api_key is not None:
            raise InvalidArgumentError("Vertex AI takes an OAuth access token: pass access_token= or token_provider=")
        if access_token is not None and token_provider is not None:
            raise InvalidArgumentError("pass access_token= or token_provider=, not both")
        if token_provider is not None and not callable(token_provider):
            raise InvalidArgumentError("token_provider must be a callable returning an access token")
        self.location = location or os.environ.get(LOCATION_ENV) or DEFAULT_LOCATION
        options["base_url"] = options.get("base_url") or default_base_url(self.location)
        super().__init__(None, **options)
        self._project = project
        self._access_token = access_token
        self._token_provider = token_provider

    @property
    def project(self) -> str:
        project = self._project or os.environ.get(PROJECT_ENV)
        if not project:
            raise MissingCredentialsError(f"no Google Cloud project for {self.name}: pass project= or set "
                                          f"{PROJECT_ENV}", provider=self.name)
        return project

    def access_token(self) -> str:
        if self._token_provider is None:
            token = self._access_token
        else:
            try:
                token = self._token_provider()
            except Exception as exc:  # whatever the credentials library raises: a typed error, no secrets
                raise AuthenticationError(f"token_provider failed ({type(exc).__name__})",
                                          provider=self.name) from None
        if not token or not isinstance(token, str):
            where = "token_provider returned none" if self._token_provider else "pass access_token= or token_provider="
            raise MissingCredentialsError(f"no access token for {self.name}: {where}", provider=self.name)
        return token

    # --- HttpProvider hooks: the token is fetched per request, so nothing is fixed at first use

    def _credentials(self) -> tuple[dict[str, str], tuple[str, ...]]:
        return {}, ()

    def _request_headers(self, path: str, body: bytes, stream: bool) -> Mapping[str, str] | None:
        headers = {"Authorization": f"Bearer {self.access_token()}"}
        return {**self._stream_headers, **headers} if stream else headers

    def _model_path(self, publisher: str, model: str) -> str:
        return (f"/projects/{quote(self.project, safe='')}/locations/{quote(self.location, safe='')}"
                f"/publishers/{publisher}/models/{quote(model, safe='@')}")

    def _path(self, request: CompletionRequest, stream: bool) -> str:
        if is_claude(request.model):
            return self._model_path("anthropic", request.model) + (":streamRawPredict" if stream else ":rawPredict")
        return self._model_path("google", request.model) + (gemini.STREAM if stream else gemini.GENERATE)

    def _params(self, request: CompletionRequest, stream: bool) -> dict[str, str] | None:
        return gemini.SSE if stream and not is_claude(request.model) else None

    def _wire(self, model: str) -> WireFormat:
        return ANTHROPIC_WIRE if is_claude(model) else gemini.WIRE

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        return self._wire(request.model).request(request, stream)

    def _parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        return self._wire(request.model).response(data, self.name)

    def _parse_stream(self, response: HttpResponse, request: CompletionRequest) -> Iterator[StreamChunk]:
        wire = self._wire(request.model)
        return wire.stream(wire.frames(response.iter_bytes(), response.max_event_bytes), self.name, request.model)

    supports_embeddings = True

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """Google's embedding models: ``:predict``, or ``:embedContent`` for the Gemini ones."""
        from . import embeddings

        method, wire = embeddings.vertex_route(request.model)
        return embeddings.embed(self, request, self._model_path("google", request.model) + method, wire,
                                timeout=timeout)

    # --- token counting

    def count_tokens(self, request: TokenCountRequest | CompletionRequest, *,
                     timeout: float | None = None) -> TokenCountResult:
        """The model's own count: Gemini's ``countTokens``, or Anthropic's count-tokens endpoint."""
        prompt = gemini.token_count_request(request)
        read: Callable[[Any, str, str], TokenCountResult]
        if is_claude(prompt.model):
            wire = anthropic.request_to_wire(prompt, False)
            body = {key: wire[key] for key in _ANTHROPIC_PROMPT if key in wire}
            body["anthropic_version"] = ANTHROPIC_VERSION
            path, read = self._model_path("anthropic", "count-tokens") + ":rawPredict", _anthropic_count
        else:
            body = gemini.prompt_to_wire(prompt)
            path, read = self._model_path("google", prompt.model) + gemini.COUNT, gemini.count_from_wire
        payload = dumps(body)
        response = self.transport().request("POST", path, body=payload, deadline=Deadline(timeout),
                                            headers=self._request_headers(path, payload, False), model=prompt.model)
        return read(response.json(), self.name, prompt.model)

def _anthropic_count(data: Any, provider: str, model: str) -> TokenCountResult:
    tokens = data.get("input_tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, int):
        raise ResponseDecodeError("the count-tokens answer has no input_tokens", provider=provider, model=model)
    return TokenCountResult(tokens, exact=True, model=model, provider=provider)


ANTHROPIC_WIRE = WireFormat(anthropic_request_to_wire, anthropic.response_from_wire, anthropic.stream_from_wire,
                            anthropic.WIRE.frames)
