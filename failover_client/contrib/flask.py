"""Flask: the process's FailoverClient, built from ``app.config["FAILOVER_CLIENT"]``, and a
streamed answer as a response.  Flask is imported here only, and only when used.

::

    app = Flask(__name__)
    app.config["FAILOVER_CLIENT"] = {...}  # the format is in failover_client.contrib._config
    FailoverClientExtension(app)           # or ext = FailoverClientExtension(); ext.init_app(app)

    @app.post("/ask")
    def ask():
        return stream_response(CompletionRequest("gpt-4o", [Message.user(request.json["q"])]))

``current_client`` is the current app's client: shared by every thread of a worker process,
built on its first use in the worker (so gunicorn's ``--preload`` is safe), closed at exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.local import LocalProxy

from ..errors import InvalidArgumentError
from ..web import respond
from ._config import SETTING, ProcessClient, build_client

if TYPE_CHECKING:
    from ..failover import FailoverClient
    from ..types import CompletionRequest

EXTENSION = "failover_client"


class FailoverClientExtension:
    """Reads ``app.config["FAILOVER_CLIENT"]`` and keeps one client per process for the app."""

    def __init__(self, app: Any = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        if SETTING not in app.config:
            raise InvalidArgumentError(f'app.config["{SETTING}"] is not set: see failover_client.contrib._config '
                                       "for its format")
        app.extensions[EXTENSION] = ProcessClient(lambda: build_client(app.config[SETTING]))

    @staticmethod
    def client() -> FailoverClient:
        """The current app's client for this process."""
        from flask import current_app

        holder = current_app.extensions.get(EXTENSION)
        if holder is None:
            raise InvalidArgumentError("FailoverClientExtension was not initialised on this app")
        return holder.get()  # type: ignore[no-any-return]


current_client: Any = LocalProxy(FailoverClientExtension.client)


def stream_response(request: CompletionRequest, *, as_text: bool = False, timeout: float | None = None) -> Any:
    """A streamed Response of Server-Sent Events (or plain text with ``as_text``), or a JSON
    502/503 when every provider failed before the answer began (failover_client.web).  The WSGI
    server closes the body when the client hangs up, which closes the upstream stream."""
    from flask import Response

    status, headers, body = respond(FailoverClientExtension.client(), request, as_text=as_text, timeout=timeout)
    return Response(body, status=status, headers=headers)
