"""Django: the process's FailoverClient, built from ``settings.FAILOVER_CLIENT``, and a
streamed answer as a response.  Django is imported here only, and only when used.

::

    # settings.py: the format is in failover_client.contrib._config
    FAILOVER_CLIENT = {"providers": [{"model": "openai/gpt-4o"},
                                     {"model": "anthropic/claude-sonnet-4-5"}], "deadline": 30}

    # views.py
    from failover_client.contrib.django import get_client, streaming_response

    def ask(request):
        return streaming_response(CompletionRequest("gpt-4o", [Message.user(request.GET["q"])]))

The client is shared by every thread of a worker process and built on its first use, in the
worker (so gunicorn's ``--preload`` is safe); it is closed when the process exits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..web import respond
from ._config import SETTING, ProcessClient, build_client

if TYPE_CHECKING:
    from ..failover import FailoverClient
    from ..types import CompletionRequest


def _from_settings() -> FailoverClient:
    from django.conf import settings

    value = getattr(settings, SETTING, None)
    if value is None:
        raise InvalidArgumentError(f"settings.{SETTING} is not set: see failover_client.contrib._config for "
                                   "its format")
    return build_client(value)


_client = ProcessClient(_from_settings)


def get_client() -> FailoverClient:
    """This process's client (built on first use from ``settings.FAILOVER_CLIENT``)."""
    return _client.get()


def close_client() -> None:
    """Close this process's client now; the next get_client() builds a new one (e.g. after
    the settings changed in a test)."""
    _client.close()


def streaming_response(request: CompletionRequest, *, as_text: bool = False, timeout: float | None = None) -> Any:
    """A StreamingHttpResponse of Server-Sent Events (or plain text with ``as_text``), or a
    JSON 502/503 when every provider failed before the answer began (failover_client.web).
    Django closes the body when the client hangs up, which closes the upstream stream."""
    from django.http import HttpResponse, StreamingHttpResponse

    status, headers, body = respond(get_client(), request, as_text=as_text, timeout=timeout)
    if status == 200:
        return StreamingHttpResponse(body, headers=headers)
    return HttpResponse(body, status=status, headers=headers)
