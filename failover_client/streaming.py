"""Incremental byte-level decoders for streamed LLM responses.

Providers stream Server-Sent Events (OpenAI, Anthropic, Gemini, OpenRouter) or
newline-delimited JSON (Ollama). ``requests.Response.iter_lines()`` is not fit
for that job:

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
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

__all__ = ["StreamDecodeError", "iter_ndjson", "iter_sse", "loads_event"]

_BOM = b"\xef\xbb\xbf"


class StreamDecodeError(ValueError):
    """A complete line of the stream is not valid UTF-8."""


def iter_sse(chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """Yield (event_name, data) for every dispatched Server-Sent Event.

    event_name is '' when the event had no ``event:`` field. Follows the
    WHATWG parsing rules, except that text is decoded strictly: only the
    ``event`` and ``data`` values are decoded (comments, ``id``, ``retry`` and
    unknown fields are skipped undecoded), and invalid UTF-8 in them raises
    StreamDecodeError. At end of stream an unterminated partial line is
    discarded, but complete ``data`` lines still waiting for their blank line
    are dispatched.
    """
    event = ""
    data: list[bytes] = []
    # The end of the stream acts as one more blank line: pending data dispatches.
    batches = _line_batches(_crlf_to_lf(chunks), keep_tail=False)
    for lines in chain(batches, [[b""]]):
        for line in lines:
            if not line:
                if data:
                    yield event, _decode(b"\n".join(data), "SSE data")
                    data.clear()
                event = ""
            elif line[:5] == b"data:":  # slicing beats startswith() here
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[:1] != b":":  # ":" starts a comment
                field, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if field == b"event":
                    event = _decode(value, "SSE event name")
                elif field == b"data":
                    data.append(value)


def iter_ndjson(chunks: Iterable[bytes]) -> Iterator[str]:
    """Yield each non-blank line (decoded UTF-8, without its line terminator).

    Lines end in ``\\n`` (a ``\\r`` before it is dropped); a lone ``\\r`` is
    kept as part of the line. Unlike SSE, a non-blank last line without a
    trailing newline is yielded: Ollama's last line may lack one.
    """
    for lines in _line_batches(chunks, keep_tail=True):
        for line in lines:
            if line.strip():
                if line.endswith(b"\r"):
                    line = line[:-1]
                yield _decode(line, "NDJSON line")


def _crlf_to_lf(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the chunks with every ``\\r\\n`` and lone ``\\r`` turned into ``\\n``.

    A chunk ending in ``\\r`` already ends its line; a ``\\n`` opening the next
    chunk is the rest of that same CRLF and is dropped.
    """
    after_cr = False
    for chunk in chunks:
        if after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if not chunk:
            continue  # keeps after_cr: an empty chunk may sit inside a CRLF
        if b"\r" in chunk:
            after_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            after_cr = False
        yield chunk


def _line_batches(chunks: Iterable[bytes], keep_tail: bool) -> Iterator[list[bytes]]:
    """Yield, per chunk, the list of lines it completes (split on ``\\n`` only).

    The unterminated rest is kept as a list of pieces, joined once when its
    line ends, so a long line spread over many chunks costs linear time. At
    end of stream that rest is yielded only if keep_tail (and non-empty). A
    UTF-8 byte order mark opening the stream is removed.
    """
    partial: list[bytes] = []
    at_start = True
    for chunk in chunks:
        if b"\n" not in chunk:
            if chunk:
                partial.append(chunk)
            continue
        lines = chunk.split(b"\n")
        if partial:
            partial.append(lines[0])
            lines[0] = b"".join(partial)
        tail = lines.pop()
        partial = [tail] if tail else []
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


_raw_decode = json.JSONDecoder().raw_decode


def loads_event(text: str) -> Any:
    """The JSON payload of one event.  ``raw_decode`` skips the two whitespace scans of
    ``json.loads`` (measurable at 200 events a call); padding after the value is allowed, as
    Anthropic pads, and anything else that is not plain JSON goes through ``json.loads`` so the
    error says what was wrong."""
    try:
        value, end = _raw_decode(text)
    except ValueError:
        return json.loads(text)
    if end != len(text) and text[end:].strip():
        return json.loads(text)
    return value
