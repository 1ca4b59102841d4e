"""Replay every recorded Gemini API and Vertex AI exchange of the shared corpus (google/) through
the real providers, over real HTTP (tests/cassettes.py ReplayServer): GeminiProvider for
generativelanguage.googleapis.com, VertexProvider for aiplatform.googleapis.com.

Every expected value is computed here from the recording by a deliberately naive decoder (split
the SSE body on blank lines, json.loads each data line, walk candidate 0's parts) that shares no
code with the library's parsers.  The request side is checked too: the conversation of each
recorded request is rebuilt as our Messages (a thought signature as an empty ThinkingBlock just
before the part that carried it, our convention), sent, and what went on the wire must have the
recorded roles and parts: the same texts, the same function calls with the same signatures on
the same parts, answered by the same function names.

The llm-gemini cassettes were recorded with the JSON-array form of streamGenerateContent
(no ``alt=sse``: one array delivered piece by piece).  GeminiProvider only speaks ``alt=sse``,
so those bodies cannot be replayed over HTTP: the test decodes the array and feeds the recorded
objects, as the SSE events they would have been, to the module-level mapping
(``gemini.stream_from_wire``), and checks the request side with ``gemini.request_to_wire``.

One test case per recorded interaction (``google/<file>#<index>``).
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_corpus_openai_anthropic import compare

from failover_client.errors import (
    AuthenticationError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from failover_client.providers import gemini as wire
from failover_client.providers.gemini import GeminiProvider
from failover_client.providers.vertex import VertexProvider
from failover_client.types import (
    CompletionRequest,
    CompletionResponse,
    ContentBlock,
    ImageBlock,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    collect,
)

from cassettes import CassetteCase, Interaction, ReplayServer, cassette_id, corpus_dir, list_cassettes, load_cassette

KEY = "AIza-replay-key-0000000000000000"
TOKEN = "ya29.replay-token-000000000000"
JSON_ARRAY_STREAMS = (  # streamGenerateContent without alt=sse: mapped, not replayed (see above)
    "google/llm-gemini__test_prompt.yaml",
    "google/llm-gemini__test_tools.yaml",
    "google/llm-gemini__test_tools_with_gemini_3_thought_signatures.yaml",
)


@dataclass(frozen=True)
class Case(CassetteCase):  # cassette: "google/<file>"

    @property
    def route(self) -> dict[str, str]:
        """What the recorded URL says: version, project/location (Vertex), model and method."""
        path = urlsplit(self.interaction.uri).path
        head, _, method = path.rpartition(":")
        parts = head.strip("/").split("/")
        route = {"version": parts[0], "model": parts[-1], "method": method, "path": path}
        if "projects" in parts:
            route.update(project=parts[parts.index("projects") + 1], location=parts[parts.index("locations") + 1])
        return route

    @property
    def vertex(self) -> bool:
        return "aiplatform.googleapis.com" in urlsplit(self.interaction.uri).netloc

    @property
    def stream(self) -> bool:
        return self.route["method"] == "streamGenerateContent"


def _load() -> list[Case]:
    return [Case(cassette_id(path), index, interaction)
            for path in list_cassettes("google") for index, interaction in enumerate(load_cassette(path))]


CASES = _load()
REPLAYED = [c for c in CASES if c.cassette not in JSON_ARRAY_STREAMS]
MAPPED = [c for c in CASES if c.cassette in JSON_ARRAY_STREAMS]
needs_corpus = pytest.mark.skipif(not (corpus_dir() / "google").is_dir(),
                                  reason=f"cassette corpus not found at {corpus_dir()}")


# --- naive, independent decoding of the recordings ----------------------------------------------


def recorded_objects(interaction: Interaction) -> list[dict[str, Any]]:
    """The GenerateContentResponse objects of a body: SSE data events, a JSON array, or one object."""
    body = interaction.response_body.decode("utf-8")
    if interaction.content_type == "text/event-stream":
        blocks = body.replace("\r\n", "\n").split("\n\n")
        return [json.loads(block[len("data:"):]) for block in blocks if block.startswith("data:")]
    data = json.loads(body)
    return data if isinstance(data, list) else [data]


FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


@dataclass
class Expected:
    id: str = ""
    model: str = ""
    text: str = ""
    thinking: str = ""
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, arguments)
    signatures: list[str] = field(default_factory=list)  # every thoughtSignature, in order
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str = "other"
    raw_stop_reason: str | None = None


def expected_answer(objects: list[dict[str, Any]]) -> Expected:
    exp = Expected()
    meta: dict[str, Any] = {}
    for obj in objects:
        exp.id = exp.id or obj.get("responseId", "")
        exp.model = exp.model or obj.get("modelVersion", "")
        for candidate in obj.get("candidates", []):
            if candidate.get("index", 0) != 0:
                continue
            for part in (candidate.get("content") or {}).get("parts", []):
                if "thoughtSignature" in part:
                    exp.signatures.append(part["thoughtSignature"])
                if part.get("thought"):
                    exp.thinking += part.get("text", "")
                elif "functionCall" in part:
                    call = part["functionCall"]
                    call_id = call.get("id") or f"call_{exp.id}_{len(exp.tool_calls)}"  # our naming rule
                    exp.tool_calls.append((call_id, call["name"], call.get("args", {})))
                else:
                    exp.text += part.get("text", "")
            exp.raw_stop_reason = candidate.get("finishReason") or exp.raw_stop_reason
        meta = obj.get("usageMetadata") or meta
    thoughts = meta.get("thoughtsTokenCount", 0)
    exp.usage = {  # our one rule: thoughts are output, tool-use prompt tokens are input
        "input_tokens": meta.get("promptTokenCount", 0) + meta.get("toolUsePromptTokenCount", 0),
        "output_tokens": meta.get("candidatesTokenCount", 0) + thoughts,
        "cache_read_tokens": meta.get("cachedContentTokenCount", 0),
        "cache_write_tokens": 0,
        "reasoning_tokens": thoughts,
    }
    raw = exp.raw_stop_reason
    exp.stop_reason = ("tool_use" if exp.tool_calls else "end_turn") if raw == "STOP" else \
        "max_tokens" if raw == "MAX_TOKENS" else "content_filter" if raw in FILTERED else "other"
    return exp


def actual_answer(response: CompletionResponse) -> Expected:
    return Expected(
        id=response.id, model=response.model, text=response.text, thinking=response.thinking,
        tool_calls=[(b.id, b.name, b.input) for b in response.tool_calls],
        signatures=[b.signature for b in response.content if isinstance(b, ThinkingBlock) and b.signature],
        usage={name: getattr(response.usage, name) for name in
               ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")},
        stop_reason=response.stop_reason.value, raw_stop_reason=response.raw_stop_reason)


def expected_error(status: int, body: bytes) -> tuple[type[ProviderError], str, str, float | None]:
    """(class, message, Google status, retry delay) that our contract gives this recorded error."""
    data = json.loads(body)
    error = (data[0] if isinstance(data, list) else data)["error"]
    details = error.get("details") or []
    reasons = {d.get("reason") for d in details}
    delays = [float(d["retryDelay"].rstrip("s")) for d in details if d["@type"].endswith("google.rpc.RetryInfo")]
    cls: type[ProviderError]
    if status in (401, 403) or "API_KEY_INVALID" in reasons:
        cls = AuthenticationError
    elif status == 400 and "exceeds the maximum number of tokens" in error["message"]:
        cls = ContextLengthExceededError
    elif status == 404:
        cls = ModelNotFoundError
    elif status == 400:
        cls = InvalidRequestError
    elif status == 429:
        cls = RateLimitError  # Google's RESOURCE_EXHAUSTED is a rate limit, whatever its wording
    elif status == 503:
        cls = OverloadedError
    elif status >= 500:
        cls = ServerError
    else:
        raise AssertionError(f"no contract for HTTP {status}")
    return cls, error["message"], error["status"], delays[0] if delays else None


# --- rebuilding the request ---------------------------------------------------------------------


def _call_of(part: dict[str, Any]) -> dict[str, Any] | None:
    return part.get("functionCall") or part.get("function_call")


def _result_of(part: dict[str, Any]) -> dict[str, Any] | None:
    return part.get("functionResponse") or part.get("function_response")


def recorded_conversation(body: dict[str, Any]) -> list[Message]:
    """The recorded contents as our Messages; a call without an id gets one, and its response is
    matched to it by function name."""
    open_calls: dict[str, list[str]] = defaultdict(list)
    messages = []
    for content in body["contents"]:
        blocks: list[ContentBlock] = []
        for part in content["parts"]:
            if part.get("thoughtSignature"):
                blocks.append(ThinkingBlock("", part["thoughtSignature"]))
            call, result = _call_of(part), _result_of(part)
            if call:
                call_id = call.get("id") or f"{call['name']}-{len(messages)}"
                open_calls[call["name"]].append(call_id)
                blocks.append(ToolUseBlock(call_id, call["name"], call.get("args", {})))
            elif result:
                call_id = result.get("id") or open_calls[result["name"]].pop(0)
                blocks.append(ToolResultBlock(call_id, json.dumps(result["response"])))
            elif "inlineData" in part:
                blocks.append(ImageBlock.from_base64(part["inlineData"]["data"], part["inlineData"]["mimeType"]))
            elif part.get("thought"):
                blocks.append(ThinkingBlock(part["text"]))
            else:
                blocks.append(TextBlock(part["text"]))
        messages.append(Message(Role.ASSISTANT if content.get("role") == "model" else Role.USER, blocks))
    return messages


def recorded_request(case: Case) -> CompletionRequest:
    body = case.interaction.request_json()
    system = body.get("systemInstruction") or body.get("system_instruction")
    tools = [ToolDefinition(d["name"], d.get("description") or "",
                            d.get("parameters") or d.get("parameters_json_schema") or {"type": "object"})
             for tool in body.get("tools", []) for d in tool.get("functionDeclarations", [])]
    return CompletionRequest(case.route["model"], recorded_conversation(body), stream=case.stream,
                             system="".join(p["text"] for p in system["parts"]) if system else None,
                             tools=tools or None)


def part_shape(part: dict[str, Any]) -> tuple[Any, ...]:
    call, result = _call_of(part), _result_of(part)
    if call:
        return ("call", call["name"], call.get("args", {}), part.get("thoughtSignature"))
    if result:
        return ("result", result["name"])
    if "inlineData" in part:
        return ("inline", part["inlineData"]["mimeType"], part["inlineData"]["data"])
    return ("thought" if part.get("thought") else "text", part["text"], part.get("thoughtSignature"))


def contents_shape(body: dict[str, Any]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    return [(content.get("role", "user"), [part_shape(p) for p in content["parts"]]) for content in body["contents"]]


def make_provider(case: Case, server: ReplayServer) -> GeminiProvider | VertexProvider:
    options: dict[str, Any] = dict(base_url=f"{server.url}/{case.route['version']}", read_timeout=30.0)
    if case.vertex:
        return VertexProvider(case.route["project"], case.route["location"], access_token=TOKEN, **options)
    return GeminiProvider(api_key=KEY, **options)


# --- the tests -------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("case", REPLAYED, ids=[c.id for c in REPLAYED])
def test_replay(case: Case) -> None:
    interaction = case.interaction
    request = recorded_request(case)
    with ReplayServer([interaction]) as server:
        provider = make_provider(case, server)
        try:
            if interaction.ok:
                response = collect(provider.complete_stream(request)) if case.stream else provider.complete(request)
            else:
                with pytest.raises(ProviderError) as info:
                    collect(provider.complete_stream(request)) if case.stream else provider.complete(request)
        finally:
            provider.close()

    # What the provider sent: one POST to the recorded path, credentials in a header only, and
    # the recorded conversation (roles, texts, calls with their signatures, answered names).
    assert len(server.requests) == 1 and not server.unexpected, server.requests
    sent = server.requests[0]
    path, _, query = sent.path.partition("?")
    assert sent.method == "POST" and path == case.route["path"]
    assert query == ("alt=sse" if case.stream else "")
    if case.vertex:
        assert sent.headers["authorization"] == f"Bearer {TOKEN}" and "x-goog-api-key" not in sent.headers
    else:
        assert sent.headers["x-goog-api-key"] == KEY and KEY not in sent.path
    body = sent.json()
    assert "model" not in body and "stream" not in body
    recorded = interaction.request_json()
    if all(c.get("role", "user") in ("user", "model") for c in recorded["contents"]):
        assert contents_shape(body) == contents_shape(recorded)

    if not interaction.ok:
        cls, message, status, delay = expected_error(interaction.status, interaction.response_body)
        exc = info.value
        assert type(exc) is cls, f"{case.id}: {type(exc).__name__} for HTTP {interaction.status}: {exc}"
        assert (exc.status, exc.message, exc.code, exc.retry_after) == (interaction.status, message, status, delay)
        assert KEY not in str(exc) and TOKEN not in str(exc)
        return
    compare(case, expected_answer(recorded_objects(interaction)), actual_answer(response))


@needs_corpus
@pytest.mark.parametrize("case", MAPPED, ids=[c.id for c in MAPPED])
def test_json_array_stream_through_the_mapping(case: Case) -> None:
    interaction = case.interaction
    assert interaction.ok and interaction.response_body.lstrip().startswith(b"[")
    objects = recorded_objects(interaction)
    events = iter([("", json.dumps(obj)) for obj in objects])
    response = collect(wire.stream_from_wire(events, "gemini", case.route["model"]))
    compare(case, expected_answer(objects), actual_answer(response))
    body = wire.request_to_wire(recorded_request(case), True)
    assert contents_shape(body) == contents_shape(interaction.request_json())


@needs_corpus
def test_signatures_go_back_on_the_part_they_came_on() -> None:
    """Across each recorded tool loop: the signature our answer holds for a function call is the
    one the client sent back on that call (pydantic-ai re-encodes it as URL-safe base64)."""
    loops = 0
    for cassette in {c.cassette for c in CASES}:
        turns = [c for c in CASES if c.cassette == cassette]
        for answer, follow_up in zip(turns, turns[1:], strict=False):
            if not answer.interaction.ok:
                continue
            objects = recorded_objects(answer.interaction)
            events = iter([("", json.dumps(obj)) for obj in objects])
            response = collect(wire.stream_from_wire(events, "gemini", answer.route["model"]))
            ours = wire.request_to_wire(CompletionRequest(answer.route["model"],
                                                          [Message.user("q"), response.to_message()]), False)
            sent_back = [p for p in follow_up.interaction.request_json()["contents"][-2]["parts"] if _call_of(p)]
            our_calls = [p for p in ours["contents"][1]["parts"] if _call_of(p)]
            if not any(p.get("thoughtSignature") for p in sent_back):
                continue
            loops += 1
            assert [(_call_of(p)["name"], _bytes(p.get("thoughtSignature"))) for p in our_calls] == \
                [(_call_of(p)["name"], _bytes(p.get("thoughtSignature"))) for p in sent_back], cassette
    assert loops == 4  # llm-gemini x2, mirascope, pydantic-ai


def _bytes(signature: str | None) -> bytes | None:
    return None if signature is None else base64.urlsafe_b64decode(signature.replace("+", "-").replace("/", "_"))


@needs_corpus
def test_every_google_cassette_is_covered() -> None:
    on_disk = {cassette_id(p) for p in list_cassettes("google")}
    assert {c.cassette for c in REPLAYED} | {c.cassette for c in MAPPED} == on_disk
    assert set(JSON_ARRAY_STREAMS) <= on_disk and not {c.cassette for c in REPLAYED} & set(JSON_ARRAY_STREAMS)
    assert len(on_disk) == 16 and len(CASES) == 24
