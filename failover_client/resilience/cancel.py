"""Cancelling an HTTP request from another thread, at the socket.

A hedged call runs its attempts in worker threads; once one answers, the others must stop and
give their connections up *now*, even while they are blocked waiting for response headers,
where no read loop could check a flag.  Only the socket itself can wake a thread parked in
``recv``, so:

* a worker thread enters a :class:`CancelScope` (:func:`enter`);
* the connection pools of :class:`~failover_client.transport.Transport` (built with the
  :class:`TrackingPool` and :class:`TrackedConnection` mixins) note every connection they hand
  to a thread inside a scope, and forget it when it is given back;
* :meth:`CancelScope.cancel` shuts those sockets down: the blocked read returns at once,
  urllib3 discards the connection, and the worker sees an ordinary NetworkError that nobody
  is waiting for.  A connection still being opened is shut down as soon as it is connected.

Threads outside a scope (every call that is not hedged) pay one thread-local lookup per
request.  Sessions given to a provider by the caller keep their own pools, so their requests
cannot be cancelled: a losing hedge on one of them runs to its deadline and is discarded.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable

_local = threading.local()


class CancelScope:
    """The connections one attempt is using, and whether that attempt has been abandoned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self.cancelled = False

    def cancel(self) -> None:
        """Abandon the attempt: shut down every socket it holds (and any it opens later)."""
        with self._lock:
            self.cancelled = True
            for connection in self._connections:
                _shut_down(connection)

    def deliver(self, hand_over: Callable[[], None]) -> bool:
        """Run ``hand_over`` unless the attempt was cancelled; False when it was (the caller
        then disposes of its result itself, since nobody will read it)."""
        with self._lock:
            if self.cancelled:
                return False
            hand_over()
            return True

    def _track(self, connection: Any) -> None:
        with self._lock:
            if self.cancelled:
                raise ConnectionAbortedError("the attempt was cancelled (another answer won)")
            self._connections.add(connection)
            connection._cancel_scope = self

    def _forget(self, connection: Any) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _connected(self, connection: Any) -> None:
        with self._lock:
            if self.cancelled:
                _shut_down(connection)
                raise ConnectionAbortedError("the attempt was cancelled while connecting")


def enter(scope: CancelScope | None) -> None:
    """Make ``scope`` the current thread's scope (None leaves it)."""
    _local.scope = scope


def current() -> CancelScope | None:
    return getattr(_local, "scope", None)


def _shut_down(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        try:  # the plain socket call: SSLSocket.shutdown would also drop its SSL object under the reader
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class TrackedConnection:
    """Connection mixin: checks, once connected, whether its attempt was cancelled while it was
    connecting."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        scope = getattr(self, "_cancel_scope", None)
        if scope is not None:
            scope._connected(self)


class TrackingPool:
    """Connection-pool mixin: hands connections to the current thread's scope, and takes them
    back from it."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        scope = current()
        if scope is not None:
            try:
                scope._track(connection)
            except ConnectionAbortedError:
                connection.close()  # urllib3 returns an empty slot to the pool for it
                raise
        return connection

    def _put_conn(self, connection: Any) -> None:
        scope = connection.__dict__.pop("_cancel_scope", None) if connection is not None else None
        if scope is not None:
            scope._forget(connection)
        super()._put_conn(connection)  # type: ignore[misc]
