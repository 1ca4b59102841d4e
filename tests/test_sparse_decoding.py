"""The stream decoders' shortcuts: after the first event, the OpenAI decoder decodes only choice
0's delta and the Gemini decoder only the parts (its usage only once, from the last event).
They must never change what a stream means, so each is checked against the full decoder on
generated streams: wrapper fields in any order, content that imitates the markers the
shortcuts look for, usage, errors, finishes and other choices."""

import json

import hypothesis
import hypothesis.strategies as st
import pytest

from failover_client import NetworkError, StreamChunk
from failover_client.providers import gemini, openai
from failover_client.streaming import loads_event

# Text that imitates every marker either shortcut searches for; inside a JSON string the
# quotes are escaped, so none of it may be taken for structure.
TRICKY_TEXT = st.sampled_from([
    " word", "", '"usage":null', '"usage":{"prompt_tokens":9}', '"error"', '{"error":1}',
    '"choices":[{"index":0,"delta":{"content":"x"}', ',"finish_reason":null', ',"finish_reason":"stop"',
    '"usageMetadata": {"promptTokenCount": 5}', '{"candidates": [{"content": {"parts": ',
    ',"role": "model"},"index": 0}]', "naïve ☃ \\ \n", "}]}",
]) | st.text(max_size=12)


def outcome(chunks):
    """What a decoder made of a stream: its chunks, or the error it ended with."""
    made: list[StreamChunk] = []
    try:
        for chunk in chunks:
            made.append(chunk)
    except Exception as exc:  # noqa: BLE001 - the comparison covers the error's type and message
        return made, type(exc).__name__, str(exc)
    return made, None, None


# --- OpenAI Chat Completions chunks ---------------------------------------------------------

def chat_choice(draw, index: int) -> dict:
    delta = draw(st.sampled_from([
        {"content": draw(TRICKY_TEXT)},
        {"role": "assistant", "content": ""},
        {"content": None, "refusal": draw(TRICKY_TEXT)},
        {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": draw(TRICKY_TEXT)}}]},
        {"reasoning_content": draw(TRICKY_TEXT)},
        {},
    ]))
    fields = {"index": index, "delta": delta, "logprobs": None,
              "finish_reason": draw(st.sampled_from([None, None, None, "stop", "length", "tool_calls"]))}
    if draw(st.booleans()):
        fields["content_filter_results"] = {"hate": {"filtered": False, "severity": "safe"},
                                            "violence": {"filtered": False, "severity": "safe"}}
    if draw(st.booleans()):
        fields.pop("logprobs")
    return in_some_order(draw, fields)


def in_some_order(draw, fields: dict) -> dict:
    """The fields as written (the layout the shortcuts expect) half the time, else shuffled."""
    if draw(st.booleans()):
        return fields
    return {key: fields[key] for key in draw(st.permutations(list(fields)))}


@st.composite
def chat_chunk(draw) -> str:
    choices = [chat_choice(draw, 0)]
    if draw(st.integers(0, 3)) == 0:  # an n > 1 stream: another choice, first or after
        other = chat_choice(draw, 1)
        choices = [other, *choices] if draw(st.booleans()) else [*choices, other]
    fields = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
              "choices": choices}
    extras = {
        "system_fingerprint": "fp_1", "obfuscation": draw(TRICKY_TEXT), "usage": None,
        "service_tier": "default",
    }
    for key in draw(st.lists(st.sampled_from(sorted(extras)), unique=True)):
        fields[key] = extras[key]
    rare = draw(st.integers(0, 9))
    if rare == 0:
        fields["usage"] = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    elif rare == 1:
        fields["error"] = {"message": "upstream failed", "code": 502}
    elif rare == 2:
        fields["x_groq"] = {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    sort_keys = draw(st.booleans())  # Azure sorts the keys at every level
    return json.dumps(in_some_order(draw, fields), separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)


def openai_full(events, provider, model):
    """The reference: the same decoder with the shortcut turned off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(openai, "lone_delta", lambda data: None)
        yield from openai.stream_from_wire(events, provider, model)


@hypothesis.given(st.lists(chat_chunk(), min_size=1, max_size=8), st.booleans())
@hypothesis.example([  # n > 1 with keys sorted: the first delta in the text is choice 1's
    '{"choices":[{"delta":{"content":"a"},"finish_reason":null,"index":0}],"id":"c"}',
    '{"choices":[{"delta":{"content":"one"},"finish_reason":null,"index":1},'
    '{"delta":{"content":"zero"},"finish_reason":null,"index":0}],"id":"c"}',
], True)
@hypothesis.settings(max_examples=400, deadline=None)
def test_openai_shortcut_means_the_same_as_the_full_decoder(chunks, done):
    events = [("", data) for data in chunks] + ([("", "[DONE]")] if done else [])
    assert outcome(openai.stream_from_wire(iter(events), "p", "m")) == outcome(openai_full(iter(events), "p", "m"))


def test_azure_text_chunks_take_the_shortcut_and_keep_their_text():
    # Azure's layout, keys sorted at every level (crewai's recorded Azure stream in the corpus)
    chunk = ('{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},'
             '"delta":{"content":"hi \\"there\\""},"finish_reason":null,"index":0,"logprobs":null}],'
             '"created":1,"id":"c1","model":"m","obfuscation":"x","object":"chat.completion.chunk",'
             '"system_fingerprint":"fp","usage":null}')
    assert openai.lone_delta(chunk) == {"content": 'hi "there"'}
    events = [("", chunk), ("", chunk), ("", "[DONE]")]
    texts = [c.text for c in openai.stream_from_wire(iter(events), "azure", "m") if c.text]
    assert texts == ['hi "there"', 'hi "there"']


@pytest.mark.parametrize("chunk", [
    # usage with an object value, and a content string that imitates a null one
    '{"choices":[{"index":0,"delta":{"content":"\\"usage\\":null"},"finish_reason":null}],"usage":{"prompt_tokens":1}}',
    # an in-stream error beside the choices (OpenRouter)
    '{"error":{"message":"x"},"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}',
    # the finish reason comes with the delta
    '{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}',
    # another layout: finish_reason before delta, or spaces after colons
    '{"choices":[{"index":0,"finish_reason":null,"delta":{"content":"a"}}]}',
    '{"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": null}]}',
    # Azure's sorted layout: a finish, or a choice other than 0
    '{"choices":[{"content_filter_results":{},"delta":{"content":"a"},"finish_reason":"stop","index":0}]}',
    '{"choices":[{"content_filter_results":{},"delta":{"content":"a"},"finish_reason":null,"index":1}]}',
    # a truncated delta
    '{"choices":[{"index":0,"delta":{"content":"a',
])
def test_openai_chunks_the_shortcut_must_leave_to_the_full_decoder(chunk):
    assert openai.lone_delta(chunk) is None


# --- Gemini GenerateContentResponse events ---------------------------------------------------

@st.composite
def gemini_event(draw) -> str:
    part = draw(st.sampled_from([
        {"text": draw(TRICKY_TEXT)},
        {"text": draw(TRICKY_TEXT), "thought": True},
        {"functionCall": {"name": "f", "args": {"q": draw(TRICKY_TEXT)}}},
        {"text": "", "thoughtSignature": "c2ln"},
    ]))
    candidate: dict = {"content": {"parts": [part, *draw(st.lists(st.just({"text": "more"}), max_size=1))],
                                   "role": "model"}}
    shape = draw(st.integers(0, 9))
    if shape == 0:
        candidate["finishReason"] = draw(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"]))
    if shape != 1:
        candidate["index"] = draw(st.sampled_from([0, 0, 0, 1]))
    if shape == 2:
        candidate["safetyRatings"] = [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}]
    event: dict = {"candidates": [candidate]}
    if shape == 3:
        event["candidates"].append({"content": {"parts": [{"text": "other"}], "role": "model"}, "index": 1})
    usage = draw(st.sampled_from(["object", "none", "null", "empty"]))
    if usage != "none":
        event["usageMetadata"] = {"object": {"promptTokenCount": 5, "candidatesTokenCount": draw(st.integers(0, 99)),
                                             "totalTokenCount": 105},
                                  "null": None, "empty": {}}[usage]
    event["modelVersion"] = "gemini-x"
    event["responseId"] = "r1"
    rare = draw(st.integers(0, 9))
    if rare == 0:
        event = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    elif rare == 1:
        event = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}
    return json.dumps(event, separators=(",", ": "), ensure_ascii=False)  # Google's own layout


FINISH_WITHOUT_USAGE = '{"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"finishReason": "STOP"}]}'


@hypothesis.given(st.lists(gemini_event(), min_size=1, max_size=8), st.booleans())
@hypothesis.example([  # a null usage after a real one: the real one stands
    '{"candidates": [{"content": {"parts": [{"text": "a"}],"role": "model"},"index": 0}],"usageMetadata": '
    '{"promptTokenCount": 5},"responseId": "r1"}',
    '{"candidates": [{"content": {"parts": [{"text": "b"}],"role": "model"},"index": 0}],"usageMetadata": null}',
], True)
@hypothesis.settings(max_examples=400, deadline=None)
def test_gemini_shortcut_means_the_same_as_the_full_decoder(events, finish_apart):
    framed = [("", data) for data in events] + ([("", FINISH_WITHOUT_USAGE)] if finish_apart else [])

    def decode(sparse: bool):
        return gemini._decode(iter(framed), loads_event, "p", "m", NetworkError, sparse=sparse)

    assert outcome(decode(sparse=True)) == outcome(decode(sparse=False))


def test_gemini_usage_is_decoded_from_the_last_event_only_once_the_stream_ends():
    def event(text: str, count: int, finish: str = "") -> str:
        candidate = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return json.dumps({"candidates": [candidate], "usageMetadata": {"promptTokenCount": 4,
                           "candidatesTokenCount": count}, "responseId": "r"}, separators=(",", ": "))

    middle = event('"usageMetadata": {"promptTokenCount": 999}', 2)
    parts, usage_at = gemini.sparse_event(middle)
    assert parts == [{"text": '"usageMetadata": {"promptTokenCount": 999}'}]
    assert json.JSONDecoder().raw_decode(middle, usage_at)[0] == {"promptTokenCount": 4, "candidatesTokenCount": 2}
    stream = [("", event("a", 1)), ("", middle), ("", event("", 3, "STOP"))]
    last = list(gemini.stream_from_wire(iter(stream), "gemini", "m"))[-1]
    assert (last.usage.input_tokens, last.usage.output_tokens, last.raw_stop_reason) == (4, 3, "STOP")


@pytest.mark.parametrize("event", [
    '{"candidates": [{"content": {"parts": [{"text": "a"}],"role": "model"},"finishReason": "STOP","index": 0}]}',
    '{"candidates": [{"content": {"parts": [{"text": "a"}],"role": "model"},"index": 1}]}',
    '{"candidates":[{"content":{"parts":[{"text":"a"}],"role":"model"},"index":0}]}',
    '{"candidates": [{"content": {"parts": [{"text": "a"}],"role": "model"},"index": 0}],"usageMetadata": null}',
])
def test_gemini_events_the_shortcut_must_leave_to_the_full_decoder(event):
    assert gemini.sparse_event(event) is None
