"""Replay every recorded Responses API exchange of the shared corpus (OpenAI's ``/v1/responses``
and xAI's) through OpenAIResponsesProvider, and the same bytes through the official openai SDK,
over real HTTP (tests/cassettes.py ReplayServer): the two must agree on the text, tool calls
with their arguments, reasoning summary and encrypted content, usage and stop reason.

The SDK is the oracle: its client parses the recorded bytes into its own ``Response`` type
(``output_text``, output items, ``usage``), and the expected values are read from that object.
The corpus holds no Responses recording with a function call, so the last test does the same
with streams the fake server writes (tool calls, reasoning, refusals, a cut-off answer).

One test case per recorded interaction (``<directory>/<file>#<index>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from test_corpus_compatible import NON_CHAT_CASSETTES
from test_corpus_openai_anthropic import RESPONSES_API_CASSETTES, Expected, actual_of, compare, expected_error

from failover_client import CompletionRequest, Message, ThinkingConfig, collect
from failover_client.errors import ProviderError
from failover_client.providers import OpenAIResponsesProvider
from failover_client.testing import FakeProviderServer, Reply, ToolCall

from cassettes import CassetteCase, ReplayServer, cassette_id, corpus_dir, list_cassettes, load_cassette

DIRECTORIES = ("openai", "other")
PATH = "/responses"
KEY = "test-key-0123456789"
STOP = {"max_output_tokens": "max_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True)
class Case(CassetteCase):

    @property
    def prefix(self) -> str:
        """The base URL's path: what the recorded path has before /responses."""
        return self.interaction.path[: -len(PATH)]


def _load() -> list[Case]:
    return [Case(cassette_id(path), index, interaction)
            for directory in DIRECTORIES for path in list_cassettes(directory)
            for index, interaction in enumerate(load_cassette(path)) if interaction.path.endswith(PATH)]


CASES = _load()
needs_corpus = pytest.mark.skipif(not all((corpus_dir() / d).is_dir() for d in DIRECTORIES),
                                  reason=f"cassette corpus not found at {corpus_dir()}")


# --- the oracle: the official SDK's own parse -------------------------------------------------------


def sdk_expected(response: Any) -> Expected:
    """Our neutral view of the SDK's ``Response`` object (protocols-responses.md §7)."""
    exp = Expected(id=response.id, model=response.model, text=response.output_text)
    refusals = []
    for item in response.output:
        if item.type == "function_call":
            exp.tool_calls.append((item.call_id, item.name, json.loads(item.arguments or "{}")))
        elif item.type == "reasoning":
            text = "\n\n".join(part.text for part in item.summary)
            if text or item.encrypted_content:
                exp.thinking += text
                exp.signatures.append(item.encrypted_content)
        elif item.type == "message":
            refusals += [part.refusal for part in item.content if part.type == "refusal"]
    exp.refusal = "".join(refusals) or None
    usage = response.usage
    details = usage.input_tokens_details
    exp.usage = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": details.cached_tokens or 0,
        "cache_write_tokens": getattr(details, "cache_write_tokens", None) or 0,  # absent before 2026
        "reasoning_tokens": usage.output_tokens_details.reasoning_tokens or 0,
    }
    if response.status == "incomplete":
        exp.raw_stop_reason = response.incomplete_details.reason
        exp.stop_reason = STOP.get(exp.raw_stop_reason, "other")
    else:
        exp.raw_stop_reason = response.status
        exp.stop_reason = ("tool_use" if exp.tool_calls else "refusal" if refusals else "end_turn")
    return exp


@dataclass
class SdkAnswer:
    final: Any  # the SDK's Response: the body, or the terminal event's response
    streamed_text: str | None = None  # the text deltas' concatenation (streams)
    # a stream's reasoning blobs as `response.output_item.done` carries them: the SDK's docstring
    # names them the ones to send back (OpenAI re-encrypts the copies in `response.completed`)
    done_signatures: list[str | None] | None = None


def sdk_answer(base_url: str, body: dict[str, Any]) -> SdkAnswer:
    with openai.OpenAI(api_key=KEY, base_url=base_url, max_retries=0) as client:
        if not body.get("stream"):
            return SdkAnswer(client.responses.create(**body))
        events = list(client.responses.create(**body))
    final = [e.response for e in events if e.type in ("response.completed", "response.incomplete")]
    assert len(final) == 1, [e.type for e in events]
    done = [e.item for e in events if e.type == "response.output_item.done" and e.item.type == "reasoning"]
    return SdkAnswer(final[0], "".join(e.delta for e in events if e.type == "response.output_text.delta"),
                     [item.encrypted_content for item in done if item.encrypted_content or item.summary])


def expected_of(answer: SdkAnswer) -> Expected:
    expected = sdk_expected(answer.final)
    if answer.streamed_text is not None:
        assert answer.streamed_text == expected.text, "the SDK's text deltas and its final response disagree"
        expected.signatures = answer.done_signatures
    return expected


def sdk_call_body(recorded: dict[str, Any]) -> dict[str, Any]:
    return {key: recorded[key] for key in ("model", "input", "stream") if key in recorded}


# --- rebuilding the request -----------------------------------------------------------------------


def last_user_text(body: dict[str, Any]) -> str:
    for item in reversed(body.get("input") or ()):
        if item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            return content
        return "".join(p.get("text") or "" for p in content if p.get("type") == "input_text")
    return "hello"


def rebuild_request(recorded: dict[str, Any]) -> CompletionRequest:
    effort = (recorded.get("reasoning") or {}).get("effort")
    return CompletionRequest(model=recorded["model"], messages=[Message.user(last_user_text(recorded))],
                             stream=bool(recorded.get("stream")),
                             thinking=ThinkingConfig(effort=effort) if effort else None)


def ours(provider: OpenAIResponsesProvider, request: CompletionRequest):
    return collect(provider.complete_stream(request)) if request.stream else provider.complete(request)


# --- the tests ------------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_replay_parses_as_the_official_sdk_does(case: Case) -> None:
    interaction = case.interaction
    recorded = interaction.request_json()
    request = rebuild_request(recorded)
    with ReplayServer([interaction]) as server:
        provider = OpenAIResponsesProvider(KEY, base_url=server.url + case.prefix, name="replayed")
        try:
            if interaction.ok:
                response = ours(provider, request)
            else:
                with pytest.raises(ProviderError) as info:
                    ours(provider, request)
        finally:
            provider.close()

    assert len(server.requests) == 1 and not server.unexpected, server.requests
    sent = server.requests[0]
    assert sent.path == interaction.path
    body = sent.json()
    assert body["model"] == recorded["model"] and body["store"] is False
    assert body.get("stream", False) == recorded.get("stream", False)
    assert body["input"][-1] == {"role": "user", "content": [{"type": "input_text", "text": last_user_text(recorded)}]}

    with ReplayServer([interaction]) as server:
        base_url = server.url + case.prefix
        if not interaction.ok:
            with pytest.raises(openai.APIStatusError) as sdk_info:
                sdk_answer(base_url, sdk_call_body(recorded))
            expected_cls, _ = expected_error(interaction.status, interaction.response_body)
            assert type(info.value) is expected_cls and info.value.status == sdk_info.value.status_code
            assert info.value.message == sdk_info.value.body["message"]
            return
        expected = expected_of(sdk_answer(base_url, sdk_call_body(recorded)))
    compare(case, expected, actual_of(response))
    assert response.provider == "replayed"


@needs_corpus
def test_every_responses_cassette_is_replayed_here() -> None:
    """The Chat Completions replays leave out exactly the Responses recordings, and this module
    takes every one of them."""
    here = {c.cassette for c in CASES}
    assert here == set(RESPONSES_API_CASSETTES) | set(NON_CHAT_CASSETTES)
    assert len(here) == 5 and any(c.interaction.is_streaming for c in CASES)
    assert any(not c.interaction.ok for c in CASES) and any(c.interaction.uri.startswith("https://api.x.ai/")
                                                            for c in CASES)


FAKE_REPLIES = {
    "tool calls after reasoning": Reply(thinking="Two cities, so two calls.", usage={"reasoning": 7, "output": 20},
                                        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_paris"),
                                                    ToolCall("get_weather", {"city": "Lyon", "units": "C"},
                                                             id="call_lyon")]),
    "text with cached input": Reply(text="It is sunny in Paris.", usage={"input": 40, "cache_read": 32}),
    "refusal": Reply(refusal="I can't help with that."),
    "cut by the token limit": Reply(text="The answer is long and", stop_reason="max_tokens"),
    "content filter": Reply(text="", stop_reason="content_filter"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("reply", FAKE_REPLIES)
def test_fake_server_answers_parse_as_the_official_sdk_does(reply: str, stream: bool) -> None:
    request = CompletionRequest("gpt-5", [Message.user("Weather?")], stream=stream)
    with FakeProviderServer() as server:
        server.script("p", FAKE_REPLIES[reply], FAKE_REPLIES[reply])
        base_url = server.base_url("p", "responses")
        with OpenAIResponsesProvider(KEY, base_url=base_url) as provider:
            response = ours(provider, request)
        expected = expected_of(sdk_answer(base_url, {"model": "gpt-5", "input": "Weather?", "stream": stream}))
    expected.id = response.id  # two answers, two ids
    compare(Case(reply, 0, None), expected, actual_of(response))  # type: ignore[arg-type]
