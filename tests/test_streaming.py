"""Tests for failover_client.streaming: SSE and NDJSON byte-stream decoders."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from failover_client.streaming import StreamDecodeError, iter_ndjson, iter_sse


def sse(*chunks: bytes) -> list[tuple[str, str]]:
    return list(iter_sse(chunks))


def ndjson(*chunks: bytes) -> list[str]:
    return list(iter_ndjson(chunks))


def two_way_splits(stream: bytes) -> Iterator[list[bytes]]:
    """Every way of cutting the stream into two chunks."""
    for cut in range(len(stream) + 1):
        yield [stream[:cut], stream[cut:]]


def byte_chunks(stream: bytes) -> list[bytes]:
    """One byte per chunk, with empty chunks in between (iter_content can yield b'')."""
    chunks = []
    for i in range(len(stream)):
        chunks += [stream[i : i + 1], b""]
    return chunks


# A stream mixing every line ending, a split-prone CRLF, comments, named events,
# multi-line data and multi-byte characters; used by the re-chunking tests.
MIXED_SSE = (
    b"\xef\xbb\xbf: comment\r\n"
    b"event: caf\xc3\xa9\r\n"
    b"data: \xf0\x9f\x98\x80 one\r\n"
    b"data:two\r\n"
    b"\r\n"
    b"id: 1\r"
    b"data: \xc3\xa9\xe2\x80\xa8x\r"
    b"\r"
    b"event: done\n"
    b"data: [DONE]\n"
    b"\n"
)
MIXED_SSE_EVENTS = [
    ("café", "😀 one\ntwo"),
    ("", "é\u2028x"),
    ("done", "[DONE]"),
]


# --- SSE: provider formats -------------------------------------------------


def test_openai_style_data_events_and_done_marker() -> None:
    first = {"choices": [{"delta": {"content": "Hel"}}]}
    second = {"choices": [{"delta": {"content": "lo"}}]}
    stream = (f"data: {json.dumps(first)}\n\ndata: {json.dumps(second)}\n\ndata: [DONE]\n\n").encode()

    events = sse(stream)

    assert [name for name, _ in events] == ["", "", ""]
    assert json.loads(events[0][1]) == first
    assert json.loads(events[1][1]) == second
    assert events[2] == ("", "[DONE]")


def test_anthropic_named_events() -> None:
    stream = (
        b"event: message_start\n"
        b'data: {"type":"message_start"}\n\n'
        b"event: ping\n"
        b'data: {"type": "ping"}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","delta":{"text":"Hi"}}\n\n'
        b"event: message_stop\n"
        b'data: {"type":"message_stop"}\n\n'
    )

    events = sse(stream)

    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_delta",
        "message_stop",
    ]
    assert json.loads(events[2][1])["delta"]["text"] == "Hi"


def test_gemini_crlf_crlf_event_separator() -> None:
    stream = b'data: {"n": 1}\r\n\r\ndata: {"n": 2}\r\n\r\n'

    assert sse(stream) == [("", '{"n": 1}'), ("", '{"n": 2}')]


def test_comments_are_ignored_and_dispatch_nothing() -> None:
    stream = (
        b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\nevent: delta\n:keep-alive between fields\ndata: x\n\n"
    )

    assert sse(stream) == [("delta", "x")]


def test_stream_of_only_comments_yields_nothing() -> None:
    assert sse(b": ping\n\n: ping\n\n") == []
    assert sse() == []


# --- SSE: field parsing -----------------------------------------------------


def test_multiline_data_is_joined_with_newline() -> None:
    stream = b"data: first\ndata: second\ndata:\ndata: fourth\n\n"

    assert sse(stream) == [("", "first\nsecond\n\nfourth")]


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\n"])
def test_each_line_ending(eol: bytes) -> None:
    stream = eol.join([b"event: a", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])

    assert sse(stream) == [("a", "1\n2"), ("", "3")]


def test_single_leading_space_is_removed_but_not_two() -> None:
    stream = b"data: one\n\ndata:  two\n\ndata:three\n\ndata: \n\nevent:  e\ndata: x\n\n"

    assert sse(stream) == [
        ("", "one"),
        ("", " two"),
        ("", "three"),
        ("", ""),
        (" e", "x"),
    ]


def test_only_the_first_colon_splits_field_and_value() -> None:
    assert sse(b"event: a:b\ndata: c: d\n\n") == [("a:b", "c: d")]


def test_field_without_colon_has_empty_value() -> None:
    # "data" alone is an empty data line; "event" alone resets the name.
    stream = b"data\n\ndata\ndata\n\nevent: a\nevent\ndata: x\n\n"

    assert sse(stream) == [("", ""), ("", "\n"), ("", "x")]


def test_id_retry_and_unknown_fields_are_ignored() -> None:
    stream = b"id: 7\nretry: 100\nfoo: bar\nbare\nData: no\ndata : no\ndata: x\n\n"

    assert sse(stream) == [("", "x")]


def test_blank_line_without_data_resets_event_name() -> None:
    stream = b"event: orphan\n\ndata: x\n\n\n\n"

    assert sse(stream) == [("", "x")]


def test_event_name_resets_after_each_dispatch() -> None:
    assert sse(b"event: a\ndata: 1\n\ndata: 2\n\n") == [("a", "1"), ("", "2")]


def test_unicode_line_separators_inside_data_are_not_line_breaks() -> None:
    text = "a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\x1dh\x1ei"
    payload = json.dumps({"t": text}, ensure_ascii=False)

    events = sse(f"data: {payload}\n\n".encode())

    assert len(events) == 1
    assert json.loads(events[0][1]) == {"t": text}


def test_leading_bom_is_ignored_even_when_split_but_only_at_stream_start() -> None:
    bom = b"\xef\xbb\xbf"
    stream = bom + b"data: a\n\n" + bom + b"data: b\n\n"

    assert sse(stream) == [("", "a")]  # the second BOM makes an unknown field
    assert list(iter_sse(byte_chunks(stream))) == [("", "a")]


# --- SSE: chunk boundaries ---------------------------------------------------


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # iter_lines() would see "event: delta", "", ... and dispatch/reset early.
    chunks = [b"event: delta\r", b"\ndata: a\r", b"\ndata: b\r", b"\n\r", b"\n"]

    assert list(iter_sse(chunks)) == [("delta", "a\nb")]


def test_crlf_split_by_an_empty_chunk_is_still_one_line_end() -> None:
    chunks = [b"event: delta\r", b"", b"\ndata: a\r\n\r", b"", b"\n"]

    assert list(iter_sse(chunks)) == [("delta", "a")]


def test_cr_at_chunk_end_followed_by_cr_is_a_blank_line() -> None:
    assert list(iter_sse([b"data: a\r", b"\rdata: b\r", b"\r"])) == [
        ("", "a"),
        ("", "b"),
    ]


@pytest.mark.parametrize("char", ["é", "😀"])
def test_multibyte_char_split_at_every_boundary(char: str) -> None:
    stream = f"event: {char}\ndata: {char}{char}\n\n".encode()
    expected = [(char, char * 2)]

    for chunks in two_way_splits(stream):
        assert list(iter_sse(chunks)) == expected, chunks
    assert list(iter_sse(byte_chunks(stream))) == expected


def test_mixed_stream_unsplit() -> None:
    assert sse(MIXED_SSE) == MIXED_SSE_EVENTS


def test_rechunking_at_every_split_point_gives_same_events() -> None:
    for chunks in two_way_splits(MIXED_SSE):
        assert list(iter_sse(chunks)) == MIXED_SSE_EVENTS, chunks


def test_rechunking_at_every_pair_of_split_points_gives_same_events() -> None:
    stream = MIXED_SSE
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            chunks = [stream[:i], stream[i:j], stream[j:]]
            assert list(iter_sse(chunks)) == MIXED_SSE_EVENTS, chunks


def test_one_byte_per_chunk_gives_same_events() -> None:
    assert list(iter_sse(byte_chunks(MIXED_SSE))) == MIXED_SSE_EVENTS


def test_random_events_random_chunking() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    names = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=8)
    datas = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=30)

    @hypothesis.given(
        events=st.lists(st.tuples(names, datas), max_size=6),
        eol=st.sampled_from(["\n", "\r", "\r\n"]),
        bom=st.booleans(),
        cuts=st.lists(st.integers(min_value=0), max_size=8),
    )
    @hypothesis.settings(max_examples=300, deadline=None)
    def check(events: list[tuple[str, str]], eol: str, bom: bool, cuts: list[int]) -> None:
        lines = [": comment"]
        for name, data in events:
            if name:
                lines.append(f"event: {name}")
            lines += [f"data: {part}" for part in data.split("\n")]
            lines.append("")
        stream = ("\ufeff" if bom else "").encode() + eol.join(lines + [""]).encode()
        points = sorted({cut % (len(stream) + 1) for cut in cuts})
        bounds = [0, *points, len(stream)]
        chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]

        assert list(iter_sse(chunks)) == events

    check()


# --- SSE: end of stream --------------------------------------------------------


def test_unterminated_final_partial_line_is_discarded() -> None:
    assert sse(b"data: a\n\ndata: cut by the netw") == [("", "a")]
    assert sse(b"data: a\n\nevent: cut") == [("", "a")]


def test_partial_line_cut_inside_a_multibyte_char_is_discarded_without_error() -> None:
    assert sse(b"data: a\n\ndata: \xf0\x9f") == [("", "a")]


def test_pending_data_without_final_blank_line_is_dispatched() -> None:
    assert sse(b"event: end\ndata: x\ndata: y\n") == [("end", "x\ny")]
    assert sse(b"data: x\r") == [("", "x")]


def test_pending_data_is_dispatched_but_trailing_partial_line_is_not() -> None:
    assert sse(b"data: a\ndata: b") == [("", "a")]


def test_events_are_yielded_as_soon_as_they_are_complete() -> None:
    pulled: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for chunk in [b"data: 1\n\n", b"data: 2\n\n"]:
            pulled.append(chunk)
            yield chunk

    events = iter_sse(chunks())

    assert next(events) == ("", "1")
    assert len(pulled) == 1


# --- UTF-8 errors --------------------------------------------------------------


def test_invalid_utf8_in_data_raises_with_offset_not_the_line() -> None:
    secret = b"SECRET" * 40
    stream = b"data: " + secret + b"\xff tail\n\n"

    with pytest.raises(StreamDecodeError) as info:
        sse(stream)

    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert f"byte {len(secret)}" in message
    assert "\\xff" in message
    assert "SECRETSECRET" not in message


def test_truncated_multibyte_at_end_of_complete_line_raises() -> None:
    with pytest.raises(StreamDecodeError, match="data"):
        sse(b"data: \xe2\x82\n\n")


def test_invalid_utf8_in_event_name_raises() -> None:
    with pytest.raises(StreamDecodeError, match="event name"):
        sse(b"event: \xc3\x28\ndata: x\n\n")


def test_invalid_utf8_in_ignored_lines_is_not_decoded() -> None:
    assert sse(b": \xff\xfe\nid: \xff\ndata: ok\n\n") == [("", "ok")]


def test_invalid_utf8_in_ndjson_raises() -> None:
    with pytest.raises(StreamDecodeError, match="byte 6"):
        ndjson(b'{"a":1}\n{"b":"\xff"}\n')


# --- NDJSON ----------------------------------------------------------------------


def test_ndjson_skips_blank_and_whitespace_only_lines() -> None:
    stream = b'{"a":1}\n\n   \n\t\n\r\n{"b":2}\n\n'

    assert ndjson(stream) == ['{"a":1}', '{"b":2}']


def test_ndjson_strips_crlf() -> None:
    assert ndjson(b'{"a":1}\r\n{"b":2}\r\n') == ['{"a":1}', '{"b":2}']


def test_ndjson_lone_cr_is_not_a_line_break() -> None:
    assert ndjson(b'{"a":\r1}\n') == ['{"a":\r1}']


def test_ndjson_final_line_without_newline_is_yielded_if_not_blank() -> None:
    assert ndjson(b'{"a":1}\n{"done":true}') == ['{"a":1}', '{"done":true}']
    assert ndjson(b'{"a":1}\n  ') == ['{"a":1}']
    assert ndjson(b'{"a":1}\r') == ['{"a":1}']


def test_ndjson_unicode_line_separators_are_not_line_breaks() -> None:
    line = json.dumps({"t": "a\u2028b\u0085c"}, ensure_ascii=False)

    assert ndjson(f"{line}\n".encode()) == [line]


def test_ndjson_leading_bom_is_ignored() -> None:
    stream = b'\xef\xbb\xbf{"a":1}\n'

    assert ndjson(stream) == ['{"a":1}']
    assert list(iter_ndjson(byte_chunks(stream))) == ['{"a":1}']


def test_ndjson_split_at_every_boundary() -> None:
    stream = '{"m":"é😀"}\r\n\n{"m":"x"}\n{"done":true}'.encode()
    expected = ['{"m":"é😀"}', '{"m":"x"}', '{"done":true}']

    for chunks in two_way_splits(stream):
        assert list(iter_ndjson(chunks)) == expected, chunks
    assert list(iter_ndjson(byte_chunks(stream))) == expected


# --- Constant memory -----------------------------------------------------------


EVENT_COUNT = 10_000
PADDING = "x" * 480


def _sse_stream(total: list[int]) -> Iterator[bytes]:
    """Generate the stream lazily, each event cut in two mid-line; count bytes."""
    for i in range(EVENT_COUNT):
        event = f'event: delta\r\ndata: {{"i": {i}, "p": "{PADDING}"}}\r\n\r\n'.encode()
        total[0] += len(event)
        yield event[:37]
        yield event[37:]


def _ndjson_stream(total: list[int]) -> Iterator[bytes]:
    for i in range(EVENT_COUNT):
        line = f'{{"i": {i}, "p": "{PADDING}"}}\n'.encode()
        total[0] += len(line)
        yield line[:20]
        yield line[20:]


def _payloads_of_sse(chunks: Iterator[bytes]) -> Iterator[str]:
    for name, data in iter_sse(chunks):
        assert name == "delta"
        yield data


@pytest.mark.parametrize(
    ("stream", "decode"),
    [(_sse_stream, _payloads_of_sse), (_ndjson_stream, iter_ndjson)],
    ids=["sse", "ndjson"],
)
def test_long_stream_runs_in_bounded_memory(
    stream: Callable[[list[int]], Iterator[bytes]],
    decode: Callable[[Iterator[bytes]], Iterator[str]],
) -> None:
    total = [0]
    count = 0
    tracemalloc.start()
    try:
        for payload in decode(stream(total)):
            assert json.loads(payload)["i"] == count
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == EVENT_COUNT
    assert total[0] > 4 * 1024 * 1024
    assert peak < 1024 * 1024


def test_crlf_split_over_three_chunks_then_a_blank_line_dispatches():
    # "\r" | "\n" | "\n": the first LF completes the CRLF, the second is the blank line
    events = list(iter_sse([b"data: x\r", b"\n", b"\n", b"data: y\n\n"]))
    assert events == [("", "x"), ("", "y")]
