"""Acting out one script step on a connection: a reply, an error, or a failure half-way.

Everything here is protocol-neutral: the protocol renders the bytes (a JSON body or a list of SSE
events) and this module decides how much of them goes out, when, and how the connection ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from http import HTTPStatus

from ._http import Connection
from ._protocol import Call, HttpResponse, Protocol
from ._steps import Fault, Reply, Step

HTML_PAGE = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
SLICE = 16  # bytes per write when trickling a plain body


def play(step: Step, call: Call, protocol: Protocol, conn: Connection, fallback: Reply) -> None:
    """Answer `call` with `step`; `fallback` is the good answer faults use when they carry none."""
    if isinstance(step, Reply):
        conn.pause(step.delay)
        _whole(step, call, protocol, conn)
    elif step.is_error:
        conn.send(protocol.fault_response(step, call))
    else:
        FAULTS[step.kind](step, step.reply or fallback, call, protocol, conn)


def _whole(reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    if call.stream:
        _write(conn, _open_stream(reply, call, protocol, conn))
        conn.end()
    else:
        conn.send(protocol.ok(reply, protocol.render(reply, call)))


def _open_stream(reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> list[bytes]:
    """Send a 200 event-stream head; return the events to send."""
    conn.start(200, protocol.stream_headers(reply))
    return protocol.events(reply, call)


def _open_plain(reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> bytes:
    """Send a 200 JSON head announcing the full length; return the body to send."""
    response = protocol.ok(reply, protocol.render(reply, call))
    conn.start(200, response.headers, length=len(response.body))
    return response.body


def _write(conn: Connection, pieces: Sequence[bytes], interval: float = 0.0) -> None:
    for i, piece in enumerate(pieces):
        if i:
            conn.pause(interval)
        conn.write(piece)


def _before_end(after_events: int, events: Sequence[bytes]) -> int:
    """How many events to send so that the terminal event is never among them."""
    return max(0, min(after_events, len(events) - 1))


def _halves(body: bytes) -> tuple[bytes, bytes]:
    return body[: len(body) // 2], body[len(body) // 2 :]


def _html_error(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    code = fault.http_status or 502
    page = HTML_PAGE.format(code=code, phrase=HTTPStatus(code).phrase).encode()
    conn.send(HttpResponse(code, {"content-type": "text/html", "server": "nginx"}, page))


def _reset_before_headers(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    conn.reset()


def _reset_mid_body(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    if call.stream:
        events = _open_stream(reply, call, protocol, conn)
        _write(conn, events[: _before_end(fault.after_events, events)])
    else:
        conn.write(_halves(_open_plain(reply, call, protocol, conn))[0])
    conn.reset()


def _stall_before_headers(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    conn.pause(fault.seconds)
    _whole(reply, call, protocol, conn)


def _stall_mid_stream(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    if call.stream:
        events = _open_stream(reply, call, protocol, conn)
        _write(conn, events[: fault.after_events])
        conn.pause(fault.seconds)
        _write(conn, events[fault.after_events :])
        conn.end()
    else:
        first, rest = _halves(_open_plain(reply, call, protocol, conn))
        conn.write(first)
        conn.pause(fault.seconds)
        conn.write(rest)


def _trickle(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    if call.stream:
        _write(conn, _open_stream(reply, call, protocol, conn), fault.interval)
        conn.end()
    else:
        body = _open_plain(reply, call, protocol, conn)
        _write(conn, [body[i : i + SLICE] for i in range(0, len(body), SLICE)], fault.interval)


def _truncated_stream(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    if call.stream:
        events = _open_stream(reply, call, protocol, conn)
        _write(conn, events[: _before_end(fault.after_events, events)])
        conn.end()
    else:
        conn.send(protocol.ok(reply, protocol.render(reply, call, finished=False)))


def _malformed_json(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    if call.stream:
        events = _open_stream(reply, call, protocol, conn)
        _write(conn, [events[0], protocol.corrupt(events[1])])
        conn.end()
    else:
        conn.send(protocol.ok(reply, _halves(protocol.render(reply, call))[0]))


def _stream_error_event(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    if call.stream:
        events = _open_stream(reply, call, protocol, conn)
        _write(conn, events[: _before_end(fault.after_events, events)])
        conn.write(protocol.error_event(fault.error_type or "api_error", fault.message or "Error"))
        conn.end()
    else:
        conn.send(protocol.fault_response(fault.as_status_error(), call))


def _empty_200(fault: Fault, reply: Reply, call: Call, protocol: Protocol, conn: Connection) -> None:
    if call.stream:
        conn.start(200, protocol.stream_headers(reply))
        conn.end()
    else:
        conn.send(protocol.ok(reply, b""))


FaultPlayer = Callable[[Fault, Reply, Call, Protocol, Connection], None]
FAULTS: dict[str, FaultPlayer] = {
    "html_error": _html_error,
    "reset_before_headers": _reset_before_headers,
    "reset_mid_body": _reset_mid_body,
    "stall_before_headers": _stall_before_headers,
    "stall_mid_stream": _stall_mid_stream,
    "trickle": _trickle,
    "truncated_stream": _truncated_stream,
    "malformed_json": _malformed_json,
    "stream_error_event": _stream_error_event,
    "empty_200": _empty_200,
}
