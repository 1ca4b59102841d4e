"""Incremental byte-level decoders for streamed LLM responses.

Providers stream Server-Sent Events (OpenAI, Anthropic, Gemini, OpenRouter),
newline-delimited JSON (Ollama) or AWS's binary event stream (Bedrock, see
:func:`iter_aws_events`). ``requests.Response.iter_lines()`` is not fit for the
text ones:

* it splits each chunk on its own, so a ``\\r\\n`` cut between two chunks
  becomes two line ends, i.e. a spurious blank line that dispatches an SSE
  event too early and drops its event name;
* decoding it to text per chunk (``decode_unicode=True``) and ``str.splitlines``
  also break lines at U+2028, U+2029, U+0085 and friends, which are legal
  inside JSON strings;
* it yields the network's truncated last line as if it were complete.

These decoders split only on CR/LF bytes, keep just the current partial line
and the current event (so memory stays bounded however long the stream is),
and decode each complete line's payload to text exactly once, strictly. They
are pure: no I/O, stdlib only, fed any iterable of raw byte chunks.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["MAX_EVENT_BYTES", "MAX_RESPONSE_BYTES", "AwsEvent", "StreamDecodeError", "StreamTooLargeError",
           "iter_aws_events", "iter_ndjson", "iter_sse", "loads_event"]

_BOM = b"\xef\xbb\xbf"

# What one answer may cost in memory, by default (each is settable per provider).  Real answers
# stay far below: a long completion is a few hundred KiB, the biggest single stream events
# (Azure's, with content-filter verdicts; a whole tool call's arguments) tens of KiB.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # a plain body, and what a compressed body expands to
MAX_EVENT_BYTES = 16 * 1024 * 1024  # one SSE line or event, one NDJSON line, one AWS frame


class StreamDecodeError(ValueError):
    """The stream's bytes do not decode: a complete line that is not valid UTF-8, or an AWS
    event-stream message with a bad checksum, impossible lengths or malformed headers."""


class StreamTooLargeError(StreamDecodeError):
    """One line, event or frame of the stream grew past its limit (``max_event``): raised when
    the limit is crossed, before the bytes are kept."""


def _too_large(what: str, limit: int) -> StreamTooLargeError:
    return StreamTooLargeError(f"one {what} exceeds the limit of {limit} bytes (max_event_bytes)")


def iter_sse(chunks: Iterable[bytes], max_event: int = MAX_EVENT_BYTES) -> Iterator[tuple[str, str]]:
    """Yield (event_name, data) for every dispatched Server-Sent Event.

    event_name is '' when the event had no ``event:`` field. Follows the
    WHATWG parsing rules, except that text is decoded strictly: only the
    ``event`` and ``data`` values are decoded (comments, ``id``, ``retry`` and
    unknown fields are skipped undecoded), and invalid UTF-8 in them raises
    StreamDecodeError. At end of stream an unterminated partial line is
    discarded, but complete ``data`` lines still waiting for their blank line
    are dispatched.  A line, or the data of one event, longer than ``max_event``
    bytes raises StreamTooLargeError.
    """
    event = ""
    data: list[bytes] = []
    size = 0  # bytes of data the pending event holds
    # The end of the stream acts as one more blank line: pending data dispatches.
    batches = _line_batches(chunks, keep_tail=False, cr_ends_lines=True, max_line=max_event)
    for lines in chain(batches, [[b""]]):
        for line in lines:
            if not line:
                if data:
                    yield event, _decode(b"\n".join(data), "SSE data")
                    data.clear()
                    size = 0
                event = ""
            elif line[:5] == b"data:":  # slicing beats startswith() here
                size += len(line)
                if size > max_event:
                    raise _too_large("SSE event", max_event)
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[:1] != b":":  # ":" starts a comment
                field, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if field == b"event":
                    event = _decode(value, "SSE event name")
                elif field == b"data":
                    size += len(line)
                    if size > max_event:
                        raise _too_large("SSE event", max_event)
                    data.append(value)


def iter_ndjson(chunks: Iterable[bytes], max_event: int = MAX_EVENT_BYTES) -> Iterator[str]:
    """Yield each non-blank line (decoded UTF-8, without its line terminator).

    Lines end in ``\\n`` (a ``\\r`` before it is dropped); a lone ``\\r`` is
    kept as part of the line. Unlike SSE, a non-blank last line without a
    trailing newline is yielded: Ollama's last line may lack one.  A line
    longer than ``max_event`` bytes raises StreamTooLargeError.
    """
    for lines in _line_batches(chunks, keep_tail=True, max_line=max_event):
        for line in lines:
            if line.strip():
                if line.endswith(b"\r"):
                    line = line[:-1]
                yield _decode(line, "NDJSON line")


def _line_batches(chunks: Iterable[bytes], keep_tail: bool, cr_ends_lines: bool = False,
                  max_line: int = MAX_EVENT_BYTES) -> Iterator[list[bytes]]:
    """Yield, per chunk, the list of lines it completes (ended by ``\\n``).

    With cr_ends_lines (SSE), every ``\\r\\n`` and lone ``\\r`` counts as ``\\n``, which is
    exactly where ``bytes.splitlines`` splits, in one pass (Gemini ends every line with CRLF,
    and rewriting the chunk first cost more than the rest of the split). A chunk ending in
    ``\\r`` already ends its line, so a ``\\n`` opening the next chunk is the rest of that same
    CRLF and is dropped (an empty chunk between them changes nothing).

    The unterminated rest is kept as a list of pieces, joined once when its
    line ends, so a long line spread over many chunks costs linear time, and
    counted, so a line that outgrows ``max_line`` raises StreamTooLargeError
    before it is held. At end of stream that rest is yielded only if keep_tail
    (and non-empty). A UTF-8 byte order mark opening the stream is removed.
    Chunks are read-sized (64 KiB), so a line complete within one is bounded
    by it.
    """
    partial: list[bytes] = []
    pending = 0  # bytes in partial
    at_start = True
    after_cr = False
    for chunk in chunks:
        if cr_ends_lines:
            if after_cr and chunk[:1] == b"\n":
                chunk = chunk[1:]
                after_cr = False
            if not chunk:
                continue
            last = chunk[-1:]
            after_cr = last == b"\r"
            lines = chunk.splitlines()
            tail = b"" if after_cr or last == b"\n" else lines.pop()
        else:
            if b"\n" not in chunk:
                if chunk:
                    pending += len(chunk)
                    if pending > max_line:
                        raise _too_large("line", max_line)
                    partial.append(chunk)
                continue
            lines = chunk.split(b"\n")
            tail = lines.pop()
        if not lines:
            pending += len(tail)
            if pending > max_line:
                raise _too_large("line", max_line)
            partial.append(tail)
            continue
        if partial:
            if pending + len(lines[0]) > max_line:
                raise _too_large("line", max_line)
            partial.append(lines[0])
            lines[0] = b"".join(partial)
        partial = [tail] if tail else []
        pending = len(tail)
        if at_start:
            lines[0] = _strip_bom(lines[0])
            at_start = False
        yield lines
    if keep_tail and partial:
        tail = b"".join(partial)
        yield [_strip_bom(tail) if at_start else tail]


def _strip_bom(line: bytes) -> bytes:
    return line[3:] if line.startswith(_BOM) else line


def _decode(raw: bytes, where: str) -> str:
    """Decode strictly; on error name the offset and bad bytes, never the line."""
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.end]
        raise StreamDecodeError(f"invalid UTF-8 in {where} at byte {exc.start}: {bad!r} ({exc.reason})") from None


# One JSON value from an offset of a string, and where it ends: lets a decoder read one field
# of an event without decoding the rest.
raw_decode = json.JSONDecoder().raw_decode


def loads_event(text: str) -> Any:
    """The JSON payload of one event.  ``raw_decode`` skips the two whitespace scans of
    ``json.loads`` (measurable at 200 events a call); padding after the value is allowed, as
    Anthropic pads, and anything else that is not plain JSON goes through ``json.loads`` so the
    error says what was wrong."""
    try:
        value, end = raw_decode(text)
    except ValueError:
        return json.loads(text)
    if end != len(text) and text[end:].strip():
        return json.loads(text)
    return value


# --- AWS event stream (application/vnd.amazon.eventstream) ------------------------------------

# Limits botocore enforces: a length above them is corruption, not a message to wait for.
AWS_MAX_HEADERS_LENGTH = 128 * 1024
AWS_MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
_PRELUDE = struct.Struct(">III")  # total length, headers length, CRC32 of the first 8 bytes
_CRC = struct.Struct(">I")
_MIN_MESSAGE = _PRELUDE.size + _CRC.size


class AwsEvent(NamedTuple):
    """One event-stream message: its headers (``:event-type``, ``:message-type``...), read-only
    because messages with the same header bytes share them, and its raw payload bytes (JSON for
    Bedrock)."""

    headers: Mapping[str, Any]
    payload: bytes


def iter_aws_events(chunks: Iterable[bytes], max_event: int = MAX_EVENT_BYTES) -> Iterator[AwsEvent]:
    """Yield each message of an AWS event stream, fed raw bytes cut anywhere.

    Framing (big-endian): total length (4), headers length (4), CRC32 of those 8 bytes (4),
    headers, payload, CRC32 of everything before it (4).  Both checksums are verified; a
    mismatch, an impossible length, malformed headers or a stream that ends inside a message
    raises StreamDecodeError.  Only the unfinished message is kept between chunks (as a list of
    pieces joined once it is complete, so a message spread over many reads costs linear time),
    and lengths above botocore's limits are refused before waiting for them, a message longer
    than ``max_event`` bytes with StreamTooLargeError: memory stays bounded by one message
    however long the stream runs.
    """
    pieces: list[bytes] = []  # an unfinished message
    have = 0
    need = _PRELUDE.size  # bytes the unfinished message must reach before it is worth parsing
    number = 0  # messages decoded so far, to say which one was bad
    headers_seen: dict[bytes, Mapping[str, Any]] = {}  # streams repeat a handful of header blocks
    for chunk in chunks:
        if pieces:
            pieces.append(chunk)
            have += len(chunk)
            if have < need:
                continue
            data = b"".join(pieces)
        else:
            data = chunk
        pos = 0
        size = len(data)
        while True:
            left = size - pos
            if left < _PRELUDE.size:
                need = _PRELUDE.size
                break
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(data, pos)
            _check_prelude(data, pos, total, headers_length, prelude_crc, number)
            if total > max_event:
                raise _too_large("AWS event-stream message", max_event)
            if left < total:
                need = total
                break
            end = pos + total
            if zlib.crc32(memoryview(data)[pos : end - 4]) != _CRC.unpack_from(data, end - 4)[0]:
                raise StreamDecodeError(
                    f"AWS event stream message {number}: message CRC32 mismatch (the message is corrupt)")
            payload_at = pos + 12 + headers_length
            raw_headers = data[pos + 12 : payload_at]
            headers = headers_seen.get(raw_headers)
            if headers is None:
                headers = MappingProxyType(_aws_headers(raw_headers, number))
                if len(headers_seen) < 64:
                    headers_seen[raw_headers] = headers
            yield AwsEvent(headers, data[payload_at : end - 4])
            number += 1
            pos = end
        rest = data[pos:] if pos else data
        pieces = [rest] if rest else []
        have = len(rest)
    if pieces:
        raise StreamDecodeError(
            f"AWS event stream ended inside message {number} ({have} bytes of an unfinished message)")


def _check_prelude(data: bytes, pos: int, total: int, headers_length: int, crc: int, number: int) -> None:
    """Reject a prelude whose checksum or lengths are wrong, before waiting for its message."""
    if zlib.crc32(data[pos : pos + 8]) != crc:
        raise StreamDecodeError(f"AWS event stream message {number}: prelude CRC32 mismatch (the stream is corrupt)")
    payload_length = total - headers_length - _MIN_MESSAGE
    if headers_length > AWS_MAX_HEADERS_LENGTH or not 0 <= payload_length <= AWS_MAX_PAYLOAD_LENGTH:
        raise StreamDecodeError(
            f"AWS event stream message {number}: impossible lengths (total {total}, headers {headers_length})")


# Header value types 2-5 and 8 are fixed-size signed big-endian integers (8: a timestamp in ms).
_HEADER_INTS = {2: struct.Struct(">b"), 3: struct.Struct(">h"), 4: struct.Struct(">i"), 5: struct.Struct(">q"),
                8: struct.Struct(">q")}
_LENGTH16 = struct.Struct(">H")


def _aws_headers(raw: bytes, number: int) -> dict[str, Any]:
    """Decode a header block: name length (1), name, type (1), typed value.  Types: 0 true,
    1 false, 2 int8, 3 int16, 4 int32, 5 int64, 6 bytes, 7 string, 8 timestamp (int64 ms since
    the epoch), 9 UUID (16 bytes)."""
    headers: dict[str, Any] = {}
    pos = 0
    try:
        while pos < len(raw):
            name_end = pos + 1 + raw[pos]
            name = raw[pos + 1 : name_end].decode()
            kind = raw[name_end]
            pos = name_end + 1
            value: Any
            if kind == 7 or kind == 6:
                size = _LENGTH16.unpack_from(raw, pos)[0]
                data = raw[pos + 2 : pos + 2 + size]
                if len(data) != size:
                    raise IndexError
                value = data.decode() if kind == 7 else data
                pos += 2 + size
            elif kind in _HEADER_INTS:
                codec = _HEADER_INTS[kind]
                value = codec.unpack_from(raw, pos)[0]
                pos += codec.size
            elif kind == 0 or kind == 1:
                value = kind == 0
            elif kind == 9:
                import uuid  # rare: imported only when a stream carries a UUID

                value = uuid.UUID(bytes=raw[pos : pos + 16])
                pos += 16
            else:
                raise StreamDecodeError(f"AWS event stream message {number}: unknown header type {kind} for {name!r}")
            if name in headers:
                raise StreamDecodeError(f"AWS event stream message {number}: header {name!r} appears twice")
            headers[name] = value
    except (IndexError, ValueError, struct.error) as exc:
        if isinstance(exc, StreamDecodeError):
            raise
        detail = exc or "truncated"
        raise StreamDecodeError(f"AWS event stream message {number}: malformed headers ({detail})") from None
    return headers
