"""The provider-neutral request and response types.

Every provider module maps its wire JSON to and from these dataclasses by hand (the stream path
is too hot for generic machinery), so these types hold no wire shapes and do no I/O.  They are
serialisable with dataclasses-json (``to_dict``/``to_json``/``from_dict``/``from_json``) so that
requests and answers can cross a Celery queue or land in a JSONL file.  dataclasses-json is
imported on first use only: it costs ~20 ms at import time, which web workers should not pay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Iterable, Iterator, Union


class Role(str, Enum):
    USER = "user"
    ASSISTANT = "assistant"


class StopReason(str, Enum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    CONTENT_FILTER = "content_filter"
    REFUSAL = "refusal"
    PAUSE_TURN = "pause_turn"
    OTHER = "other"


class JsonMixin:
    """to_dict/to_json/from_dict/from_json through dataclasses-json, imported lazily."""

    __slots__ = ()

    def to_dict(self, encode_json: bool = False) -> dict[str, Any]:
        from dataclasses_json import DataClassJsonMixin

        return DataClassJsonMixin.to_dict(self, encode_json=encode_json)  # type: ignore[arg-type]

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(encode_json=True), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        from dataclasses_json.core import _decode_dataclass

        return _decode_dataclass(cls, data, False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Any:
        return cls.from_dict(json.loads(text))


def _codec(decoder: Any) -> dict[str, Any]:
    """Field metadata in dataclasses-json's format, written without importing it."""
    return {"dataclasses_json": {"decoder": decoder}}


@dataclass
class TextBlock(JsonMixin):
    text: str
    cache: bool = False  # a prompt-caching breakpoint after this block (Anthropic cache_control)
    type: str = "text"


@dataclass
class ImageBlock(JsonMixin):
    """An image given either inline (base64 ``data`` + ``media_type``) or by ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    cache: bool = False
    type: str = "image"

    @classmethod
    def from_base64(cls, data: str, media_type: str) -> ImageBlock:
        return cls(media_type=media_type, data=data)

    @classmethod
    def from_url(cls, url: str) -> ImageBlock:
        return cls(url=url)

    def data_url(self) -> str:
        """The image as OpenAI's ``image_url.url``: the URL itself or a ``data:`` URL."""
        return self.url if self.url else f"data:{self.media_type};base64,{self.data}"


DOCUMENT_MEDIA_TYPES = ("application/pdf", "text/plain")
_DOCUMENT_SOURCES = ("data", "text", "url", "file_id")
_DOCUMENT_URL_SCHEMES = ("https://", "http://", "gs://", "s3://")


@dataclass
class DocumentBlock(JsonMixin):
    """A document for the model to read: a PDF or plain text (``media_type``), given as
    exactly one of base64 ``data``, ``text`` (plain text only), a ``url`` (https, or gs:// and
    s3:// where Vertex and Bedrock read from buckets) or a ``file_id`` of one provider's Files
    API (an id means nothing to another vendor).  ``title`` names the document to the model
    and becomes the file name the OpenAI protocols ask for; ``citations`` asks for answers that
    cite it where the protocol can (Anthropic, Bedrock; ignored elsewhere).  A protocol that
    cannot carry a document, or this source kind, refuses it with NotSupportedError before
    sending, and a FailoverClient passes that provider over.

    Checked when made (from_dict included), so a malformed block fails at once with an
    InvalidArgumentError naming its field rather than as a provider's 400 later."""

    media_type: str = "application/pdf"
    data: str | None = None
    text: str | None = None
    url: str | None = None
    file_id: str | None = None
    title: str | None = None
    citations: bool = False
    cache: bool = False
    type: str = "document"

    def __post_init__(self) -> None:
        from .errors import InvalidArgumentError

        if self.media_type not in DOCUMENT_MEDIA_TYPES:
            raise InvalidArgumentError(
                f"DocumentBlock.media_type must be one of {DOCUMENT_MEDIA_TYPES}, got {self.media_type!r}")
        given = [name for name in _DOCUMENT_SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise InvalidArgumentError(
                f"DocumentBlock needs exactly one of data, text, url, file_id; got {given or 'none'}")
        for name in (*given, "title"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgumentError(f"DocumentBlock.{name} must be a non-empty string")
        if self.data is not None:
            _check_base64(self.data)
        if self.text is not None and self.media_type != "text/plain":
            raise InvalidArgumentError("DocumentBlock.text holds plain text: media_type must be 'text/plain' "
                                       "(pass a PDF as base64 data)")
        if self.url is not None and (not self.url.startswith(_DOCUMENT_URL_SCHEMES)
                                     or not self.url.split("://", 1)[1].strip("/")):
            raise InvalidArgumentError(
                f"DocumentBlock.url must be an https://, http://, gs:// or s3:// URL, got {self.url[:60]!r}")
        for name in ("citations", "cache"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentError(f"DocumentBlock.{name} must be True or False")

    @classmethod
    def from_bytes(cls, content: bytes, media_type: str = "application/pdf", *, title: str | None = None,
                   citations: bool = False) -> DocumentBlock:
        """A document from a file's bytes (``open(path, "rb").read()``)."""
        import base64

        return cls(media_type, data=base64.b64encode(content).decode("ascii"), title=title, citations=citations)

    @classmethod
    def from_base64(cls, data: str, media_type: str = "application/pdf", *, title: str | None = None,
                    citations: bool = False) -> DocumentBlock:
        return cls(media_type, data=data, title=title, citations=citations)

    @classmethod
    def from_text(cls, text: str, *, title: str | None = None, citations: bool = False) -> DocumentBlock:
        return cls("text/plain", text=text, title=title, citations=citations)

    @classmethod
    def from_url(cls, url: str, media_type: str = "application/pdf", *, title: str | None = None,
                 citations: bool = False) -> DocumentBlock:
        return cls(media_type, url=url, title=title, citations=citations)

    @classmethod
    def from_file_id(cls, file_id: str, media_type: str = "application/pdf", *, title: str | None = None,
                     citations: bool = False) -> DocumentBlock:
        return cls(media_type, file_id=file_id, title=title, citations=citations)

    @property
    def inline(self) -> bool:
        """Whether the document's content travels in the request (``data`` or ``text``)."""
        return self.data is not None or self.text is not None

    def base64_data(self) -> str:
        """The inline content as standard base64 (plain text encoded as UTF-8)."""
        import base64

        if self.data is not None:
            return self.data
        return base64.b64encode((self.text or "").encode("utf-8")).decode("ascii")

    def plain_text(self) -> str:
        """The inline content of a plain-text document as a string."""
        import base64

        from .errors import InvalidArgumentError

        if self.text is not None:
            return self.text
        try:
            return base64.b64decode(self.data or "").decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgumentError("DocumentBlock.data of a text/plain document is not UTF-8 text") from None

    def data_url(self) -> str:
        """The inline content as a ``data:`` URL (OpenAI's ``file_data``)."""
        return f"data:{self.media_type};base64,{self.base64_data()}"

    @property
    def filename(self) -> str:
        """The title with the media type's extension (``document.pdf`` without a title)."""
        extension = ".pdf" if self.media_type == "application/pdf" else ".txt"
        name = self.title or "document"
        return name if name.lower().endswith(extension) else name + extension


def _check_base64(data: str) -> None:
    import base64
    import binascii

    from .errors import InvalidArgumentError

    if data.startswith("data:"):
        raise InvalidArgumentError("DocumentBlock.data is base64 alone, without a 'data:...;base64,' prefix")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgumentError("DocumentBlock.data is not valid base64 (standard alphabet, padded)") from None


@dataclass
class ToolUseBlock(JsonMixin):
    id: str
    name: str
    input: dict[str, Any]
    cache: bool = False
    type: str = "tool_use"


@dataclass
class ThinkingBlock(JsonMixin):
    """Model reasoning.  ``signature`` must be sent back unchanged in tool loops; a redacted
    block has empty ``thinking`` and its opaque payload in ``redacted_data``."""

    thinking: str
    signature: str | None = None
    redacted_data: str | None = None
    type: str = "thinking"


def _decode_blocks(value: Any) -> Any:
    if isinstance(value, str) or value is None:
        return value
    return [decode_block(item) for item in value]


@dataclass
class ToolResultBlock(JsonMixin):
    tool_use_id: str
    content: str | list[TextBlock | ImageBlock] = field(metadata=_codec(_decode_blocks))
    is_error: bool = False
    cache: bool = False
    type: str = "tool_result"

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


ContentBlock = Union[TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, DocumentBlock]
_BLOCK_TYPES: dict[str, Any] = {
    "text": TextBlock,
    "image": ImageBlock,
    "document": DocumentBlock,
    "tool_use": ToolUseBlock,
    "tool_result": ToolResultBlock,
    "thinking": ThinkingBlock,
}


def decode_block(data: Any) -> ContentBlock:
    from .errors import InvalidArgumentError

    if not isinstance(data, dict) or data.get("type") not in _BLOCK_TYPES:
        raise InvalidArgumentError(f"not a content block: {str(data)[:80]!r}")
    return _BLOCK_TYPES[data["type"]].from_dict(data)  # type: ignore[no-any-return]


@dataclass
class Message(JsonMixin):
    """One turn.  ``role`` may be given as ``"user"``/``"assistant"`` and ``content`` as a plain
    string (or a list mixing strings and blocks), because histories rebuilt from JSON arrive that
    way; both are normalised here, when the message is built, so a wrong role can never reach the
    wire as another role.  System prompts go in ``CompletionRequest.system`` and tool results in
    ``Message.tool_results``: anything else as a role raises InvalidArgumentError."""

    role: Role
    content: list[ContentBlock] = field(metadata=_codec(_decode_blocks))

    def __post_init__(self) -> None:
        if self.role.__class__ is not Role:
            self.role = _as_role(self.role)
        if self.content.__class__ is not list or any(b.__class__ is str for b in self.content):
            self.content = _as_blocks(self.content)

    @classmethod
    def user(cls, content: str | Iterable[ContentBlock]) -> Message:
        return cls(Role.USER, _as_blocks(content))

    @classmethod
    def assistant(cls, content: str | Iterable[ContentBlock]) -> Message:
        return cls(Role.ASSISTANT, _as_blocks(content))

    @classmethod
    def tool_results(cls, results: Iterable[ToolResultBlock]) -> Message:
        """Tool results travel in a user message, as in the Messages format."""
        return cls(Role.USER, list(results))

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


_ROLE_HINTS = {
    "system": "put the system prompt in CompletionRequest.system",
    "developer": "put the system prompt in CompletionRequest.system",
    "tool": "send tool results with Message.tool_results([ToolResultBlock(...)])",
}


def _as_role(role: Any) -> Role:
    from .errors import InvalidArgumentError

    if isinstance(role, str):
        try:
            return Role(role)
        except ValueError:
            pass
    hint = _ROLE_HINTS.get(role) if isinstance(role, str) else None
    raise InvalidArgumentError(f"Message.role must be 'user' or 'assistant', got {role!r}"
                               + (f": {hint}" if hint else ""))


def _as_blocks(content: Any) -> list[ContentBlock]:
    """A string as one text block; strings inside a list as text blocks; other items kept for
    validate() to judge (it names the index of anything that is not a block)."""
    from .errors import InvalidArgumentError

    if isinstance(content, str):
        return [TextBlock(content)]
    if isinstance(content, (dict, bytes)) or not isinstance(content, Iterable):
        raise InvalidArgumentError(
            f"Message.content must be a string or a list of content blocks, got {type(content).__name__}")
    return [TextBlock(item) if isinstance(item, str) else item for item in content]


@dataclass
class ToolDefinition(JsonMixin):
    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    cache: bool = False


@dataclass
class ToolChoice(JsonMixin):
    """``auto`` (model decides), ``any`` (must call some tool), ``none``, or ``tool`` (``name``)."""

    mode: str = "auto"
    name: str | None = None
    disable_parallel: bool = False

    MODES: ClassVar[tuple[str, ...]] = ("auto", "any", "none", "tool")

    @classmethod
    def auto(cls) -> ToolChoice:
        return cls("auto")

    @classmethod
    def any(cls) -> ToolChoice:
        return cls("any")

    @classmethod
    def none(cls) -> ToolChoice:
        return cls("none")

    @classmethod
    def tool(cls, name: str) -> ToolChoice:
        return cls("tool", name)


@dataclass
class ThinkingConfig(JsonMixin):
    """Extended reasoning.  ``budget_tokens`` drives Anthropic/Gemini budgets; ``effort``
    (``low``/``medium``/``high``…) drives OpenAI's ``reasoning_effort``; each provider derives
    the one it needs from the other when only one is given."""

    enabled: bool = True
    budget_tokens: int | None = None
    effort: str | None = None

    def effort_level(self) -> str:
        if self.effort:
            return self.effort
        budget = self.budget_tokens or 0
        return "low" if budget and budget <= 2048 else "high" if budget > 16384 else "medium"


@dataclass
class ResponseFormat(JsonMixin):
    """Structured output: ``json_object`` (any JSON) or ``json_schema`` (``schema`` required)."""

    type: str = "json_object"
    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = True

    @classmethod
    def json(cls) -> ResponseFormat:
        return cls("json_object")

    @classmethod
    def json_schema(cls, schema: dict[str, Any], name: str = "response", strict: bool = True) -> ResponseFormat:
        return cls("json_schema", schema, name, strict)


@dataclass(slots=True)
class Usage(JsonMixin):
    """Token counts under one rule for every provider: ``input_tokens`` is the whole prompt as
    billed (cache reads and writes included), ``output_tokens`` includes ``reasoning_tokens``.
    ``estimated`` is True when the provider reported nothing and the counts are ours (see
    failover_client.tokens.estimate_usage), so trackers and budgets never read a silent zero."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


_COUNT_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_MAX_COUNT = 2**53  # beyond it a count is not exact as a JSON number: no real usage comes near


def malformed_usage_field(usage: Any) -> str | None:
    """The first count of a provider's Usage that is not a whole number in [0, 2**53), named
    (``usage.input_tokens``), or None.  Checked where wire usage enters, so NaN, Infinity,
    strings or negative counts never reach cost, budgets, rate limits or logs."""
    if usage.__class__ is not Usage:
        return "usage"
    for name in _COUNT_FIELDS:
        value = getattr(usage, name)
        if value.__class__ is not int or not 0 <= value < _MAX_COUNT:
            return f"usage.{name} ({str(value)[:40]!r})"
    return None


@dataclass
class CompletionRequest(JsonMixin):
    model: str
    messages: list[Message]
    system: str | list[TextBlock] | None = field(default=None, metadata=_codec(_decode_blocks))
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    stream: bool = False
    thinking: ThinkingConfig | None = None
    response_format: ResponseFormat | None = None
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] | None = None  # merged into the wire body as it is: vendor options

    @property
    def system_text(self) -> str:
        """The system prompt as one string, for protocols that take no blocks (or "")."""
        if self.system is None or isinstance(self.system, str):
            return self.system or ""
        return "".join(block.text for block in self.system)

    @classmethod
    def from_openai(cls, body: dict[str, Any]) -> CompletionRequest:
        """The request an OpenAI chat-completions body describes, for code that already builds
        them.  Vendor-only options go to ``extra``; anything with no neutral meaning raises
        InvalidArgumentError naming it (the rules: failover_client.compat.request_from_openai)."""
        from .compat import request_from_openai

        return cls._checked(request_from_openai(body))

    @classmethod
    def from_anthropic(cls, body: dict[str, Any]) -> CompletionRequest:
        """The request an Anthropic Messages body describes (the rules:
        failover_client.compat.request_from_anthropic)."""
        from .compat import request_from_anthropic

        return cls._checked(request_from_anthropic(body))

    @classmethod
    def _checked(cls, data: dict[str, Any]) -> CompletionRequest:
        request: CompletionRequest = cls.from_dict(data)
        request.validate()
        return request

    def with_model(self, model: str) -> CompletionRequest:
        from dataclasses import replace

        return self if model == self.model else replace(self, model=model)

    def capabilities(self) -> frozenset[str]:
        """The model capabilities this request uses, in the registry's words
        (failover_client.models.CAPABILITIES): tools, vision (an image anywhere), thinking,
        json_schema (a structured-output format) and streaming."""
        needs = set()
        if self.tools:
            needs.add("tools")
        if any(isinstance(block, ImageBlock) for message in self.messages for block in message.content):
            needs.add("vision")
        if self.thinking is not None and self.thinking.enabled:
            needs.add("thinking")
        if self.response_format is not None and self.response_format.type == "json_schema":
            needs.add("json_schema")
        if self.stream:
            needs.add("streaming")
        return frozenset(needs)

    def validate(self) -> None:
        """Raise InvalidArgumentError naming the first malformed field."""
        from .errors import InvalidArgumentError

        if not isinstance(self.model, str) or not self.model:
            raise InvalidArgumentError("CompletionRequest.model must be a non-empty string")
        if self.model in (".", ".."):  # in a URL path it would be a dot segment, reaching another endpoint
            raise InvalidArgumentError(f"CompletionRequest.model {self.model!r} is not a model name (a path segment "
                                       "of '.' or '..' would reach another endpoint)")
        if not self.messages:
            raise InvalidArgumentError("CompletionRequest.messages must hold at least one Message")
        for i, message in enumerate(self.messages):
            if not isinstance(message, Message):
                raise InvalidArgumentError(f"messages[{i}] is {type(message).__name__}, not a Message")
            for block in message.content:
                if not isinstance(block, _CONTENT_CLASSES):
                    raise InvalidArgumentError(f"messages[{i}] holds {type(block).__name__}, not a content block")
        if self.max_tokens is not None and (self.max_tokens.__class__ is not int or self.max_tokens < 1):
            raise InvalidArgumentError("CompletionRequest.max_tokens must be a positive int")
        if self.temperature is not None and not (_is_number(self.temperature) and 0 <= self.temperature <= 2):
            raise InvalidArgumentError("CompletionRequest.temperature must be a number in [0, 2]")
        if self.top_p is not None and not (_is_number(self.top_p) and 0 <= self.top_p <= 1):
            raise InvalidArgumentError("CompletionRequest.top_p must be a number in [0, 1]")
        _validate_fields(self)
        if self.tool_choice is not None:
            if self.tool_choice.mode not in ToolChoice.MODES:
                raise InvalidArgumentError(
                    f"ToolChoice.mode {self.tool_choice.mode!r} is not one of {ToolChoice.MODES}")
            if self.tool_choice.mode == "tool" and not self.tool_choice.name:
                raise InvalidArgumentError("ToolChoice.tool needs the tool's name")
        if self.response_format is not None:
            if self.response_format.type not in ("json_object", "json_schema"):
                raise InvalidArgumentError(f"ResponseFormat.type {self.response_format.type!r} is unknown")
            if self.response_format.type == "json_schema" and not self.response_format.schema:
                raise InvalidArgumentError("ResponseFormat.json_schema needs a schema")
        if self.extra is not None and not isinstance(self.extra, dict):
            raise InvalidArgumentError("CompletionRequest.extra must be a dict")


_CONTENT_CLASSES = (TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, DocumentBlock)


def _is_number(value: Any) -> bool:
    return value.__class__ in (int, float)


def _validate_fields(request: CompletionRequest) -> None:
    """The type of every field a protocol's mapping reads, so a wrong one is named here rather
    than failing deep inside a mapping (or going out unchecked).  ``tool_choice`` takes a
    ToolChoice only: ``ToolChoice.auto()``, ``.any()``, ``.none()``, ``.tool(name)``."""
    from .errors import InvalidArgumentError

    for i, message in enumerate(request.messages):
        for j, block in enumerate(message.content):
            if isinstance(block, TextBlock) and block.text.__class__ is not str:
                raise InvalidArgumentError(f"messages[{i}].content[{j}]: TextBlock.text must be a string, "
                                           f"not {type(block.text).__name__}")
    system = request.system
    if system is not None and system.__class__ is not str and not (
            isinstance(system, list) and all(isinstance(b, TextBlock) and b.text.__class__ is str for b in system)):
        raise InvalidArgumentError("CompletionRequest.system must be a string or a list of TextBlock")
    stops = request.stop_sequences
    if stops is not None and not (isinstance(stops, list) and all(s.__class__ is str for s in stops)):
        raise InvalidArgumentError("CompletionRequest.stop_sequences must be a list of strings (not one string)")
    if request.tool_choice is not None and not isinstance(request.tool_choice, ToolChoice):
        raise InvalidArgumentError("CompletionRequest.tool_choice must be a ToolChoice (ToolChoice.auto(), "
                                   f".any(), .none(), .tool(name)), not {type(request.tool_choice).__name__}")
    if request.tools is not None:
        if not isinstance(request.tools, list):
            raise InvalidArgumentError("CompletionRequest.tools must be a list of ToolDefinition")
        names: set[str] = set()
        for i, tool in enumerate(request.tools):
            if not isinstance(tool, ToolDefinition):
                raise InvalidArgumentError(f"tools[{i}] is {type(tool).__name__}, not a ToolDefinition")
            if tool.name.__class__ is not str or not tool.name:
                raise InvalidArgumentError(f"tools[{i}].name must be a non-empty string")
            if tool.name in names:
                raise InvalidArgumentError(f"tools[{i}].name {tool.name!r} is given twice")
            names.add(tool.name)
            schema = tool.input_schema
            if not isinstance(schema, dict) or str(schema.get("type", "object")).lower() != "object":  # Gemini: OBJECT
                raise InvalidArgumentError(f"tools[{i}].input_schema must be a JSON Schema object "
                                           '({"type": "object", "properties": {...}})')
            if tool.description.__class__ is not str:
                raise InvalidArgumentError(f"tools[{i}].description must be a string")


@dataclass
class Attempt(JsonMixin):
    """One try at one provider, as listed on responses and on AllProvidersFailedError."""

    provider: str
    model: str
    outcome: str  # "ok", "error", "skipped" (circuit open, held, rate limited, cannot carry the request),
    # "cancelled" (a lost hedge), "abandoned" (its consumer dropped it mid-way), "cache" (a cache hit)
    elapsed_ms: float = 0.0
    error_type: str | None = None
    error: str | None = None
    status: int | None = None


@dataclass
class CompletionResponse(JsonMixin):
    id: str
    model: str
    content: list[ContentBlock] = field(default_factory=list, metadata=_codec(_decode_blocks))
    stop_reason: StopReason = StopReason.END_TURN
    usage: Usage = field(default_factory=Usage)
    provider: str | None = None
    raw_stop_reason: str | None = None
    refusal: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    response_format: ResponseFormat | None = None  # the structured output asked for, which .parsed reads

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_calls(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @property
    def thinking(self) -> str:
        return "".join(b.thinking for b in self.content if isinstance(b, ThinkingBlock))

    @property
    def parsed(self) -> Any:
        """The JSON value of an answer to a structured-output request (``response_format``),
        checked against a ``json_schema`` format's schema; None for other answers.  Raises
        InvalidOutputError (a ResponseDecodeError) naming what is wrong: not JSON (cut off at
        max_tokens, say), a refusal, or JSON that does not match the schema.  Parsed on every
        read: keep the value rather than reading the property in a loop."""
        fmt = self.response_format
        if fmt is None:
            return None
        from .output.schema import parse_answer

        return parse_answer(self.text, fmt.schema if fmt.type == "json_schema" else None, refusal=self.refusal,
                            cut_off=self.stop_reason is StopReason.MAX_TOKENS, provider=self.provider,
                            model=self.model)

    @property
    def cost(self) -> float | None:
        """US dollars for this answer at the model registry's prices (failover_client.models);
        None when the model or a price it needs is unknown."""
        from .models import cost_of

        return cost_of(self.usage, self.model, provider=self.provider)

    def to_message(self) -> Message:
        """The answer as the assistant turn to send back in a conversation."""
        return Message(Role.ASSISTANT, list(self.content))

    def to_openai(self) -> dict[str, Any]:
        """The answer as an OpenAI ``chat.completion`` object, for apps that relay that format
        (streams: failover_client.compat.openai_chunks)."""
        from .compat import response_to_openai

        return response_to_openai(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: the answer, then the attempts as a table (all escaped)."""
        from .log.notebook import response_html

        return response_html(self)

    def _repr_markdown_(self) -> str:
        from .log.notebook import response_markdown

        return response_markdown(self)


@dataclass(slots=True)
class ToolCallDelta(JsonMixin):
    """A streamed piece of a tool call: ``id``/``name`` arrive once, ``arguments`` in fragments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class StreamChunk(JsonMixin):
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    redacted_thinking: str | None = None  # an encrypted thinking block, arriving whole
    tool_call: ToolCallDelta | None = None
    stop_reason: StopReason | None = None
    usage: Usage | None = None
    provider: str | None = None
    id: str | None = None
    model: str | None = None
    raw_stop_reason: str | None = None
    refusal: str | None = None
    attempts: list[Attempt] | None = None  # on the last chunk a FailoverClient yields
    response_format: ResponseFormat | None = None  # on a last chunk: the structured output asked for

    @property
    def has_output(self) -> bool:
        """True once the chunk carries something the caller sees as the answer."""
        return bool(self.text or self.thinking or self.tool_call or self.refusal or self.redacted_thinking)


def collect(chunks: Iterable[StreamChunk]) -> CompletionResponse:
    """Fold a stream into the CompletionResponse a plain call would have returned."""
    from .errors import ResponseDecodeError

    builder = _ResponseBuilder()
    for chunk in chunks:
        builder.add(chunk)
    try:
        return builder.build()
    except ValueError as exc:
        raise ResponseDecodeError(f"streamed tool call arguments are not JSON: {exc}") from None


class _ResponseBuilder:
    """Rebuilds content blocks in the order they began: consecutive text chunks form one text
    block, thinking chunks one thinking block until its signature closes it, tool-call fragments
    gather by index, and each redacted thinking block stands alone."""

    __slots__ = ("id", "model", "provider", "blocks", "tools", "stop", "raw_stop", "usage", "refusal", "attempts",
                 "response_format")

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.blocks: list[list[Any]] = []  # [kind, parts, extra]: extra is a signature or tool index
        self.tools: dict[int, list[Any]] = {}
        self.refusal: list[str] = []
        self.stop: StopReason | None = None
        self.raw_stop: str | None = None
        self.usage: Usage | None = None
        self.attempts: list[Attempt] = []
        self.response_format: ResponseFormat | None = None

    def _open(self, kind: str, extra: Any = None) -> list[Any]:
        block = [kind, [], extra]
        self.blocks.append(block)
        return block

    def add(self, chunk: StreamChunk) -> None:
        self.id = chunk.id or self.id
        self.model = chunk.model or self.model
        self.provider = chunk.provider or self.provider
        last = self.blocks[-1] if self.blocks else None
        if chunk.thinking or chunk.signature:
            if last is None or last[0] != "thinking" or last[2] is not None:
                last = self._open("thinking")
            if chunk.thinking:
                last[1].append(chunk.thinking)
            if chunk.signature:
                last[2] = chunk.signature
        if chunk.redacted_thinking is not None:
            self._open("redacted", chunk.redacted_thinking)
        if chunk.text:
            if last is None or last[0] != "text":
                last = self._open("text")
            last[1].append(chunk.text)
        if chunk.refusal:
            self.refusal.append(chunk.refusal)
        call = chunk.tool_call
        if call is not None:
            slot = self.tools.get(call.index)
            if slot is None:
                slot = self.tools[call.index] = self._open("tool", [None, None])
            slot[2][0] = call.id or slot[2][0]
            slot[2][1] = call.name or slot[2][1]
            slot[1].append(call.arguments)
        if chunk.stop_reason is not None:
            self.stop, self.raw_stop = chunk.stop_reason, chunk.raw_stop_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.attempts:
            self.attempts = chunk.attempts
        if chunk.response_format is not None:
            self.response_format = chunk.response_format

    def build(self) -> CompletionResponse:
        content: list[ContentBlock] = []
        for kind, parts, extra in self.blocks:
            if kind == "thinking":
                content.append(ThinkingBlock("".join(parts), extra))
            elif kind == "redacted":
                content.append(ThinkingBlock("", None, redacted_data=extra))
            elif kind == "text":
                content.append(TextBlock("".join(parts)))
            else:
                arguments = "".join(parts)
                content.append(ToolUseBlock(extra[0] or "", extra[1] or "", json.loads(arguments) if arguments else {}))
        return CompletionResponse(
            id=self.id or "", model=self.model or "", content=content,
            stop_reason=self.stop or StopReason.OTHER, usage=self.usage or Usage(),
            provider=self.provider, raw_stop_reason=self.raw_stop,
            refusal="".join(self.refusal) or None, attempts=self.attempts, response_format=self.response_format,
        )


def iter_text(chunks: Iterable[StreamChunk]) -> Iterator[str]:
    """Only the text of a stream, for callers that print as it arrives."""
    for chunk in chunks:
        if chunk.text:
            yield chunk.text


@dataclass
class TokenCountRequest(JsonMixin):
    """What a prompt would cost in input tokens: the prompt-side fields of a CompletionRequest."""

    model: str
    messages: list[Message]
    system: str | list[TextBlock] | None = field(default=None, metadata=_codec(_decode_blocks))
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None

    @classmethod
    def from_request(cls, request: CompletionRequest) -> TokenCountRequest:
        return cls(request.model, request.messages, request.system, request.tools, request.tool_choice,
                   request.thinking)

    def as_request(self) -> CompletionRequest:
        """The same prompt as a CompletionRequest, for code that maps one to the wire."""
        return CompletionRequest(self.model, self.messages, system=self.system, tools=self.tools,
                                 tool_choice=self.tool_choice, thinking=self.thinking)


@dataclass
class TokenCountResult(JsonMixin):
    """``exact`` is False when the count is a local estimate rather than the provider's own."""

    input_tokens: int
    exact: bool = True
    model: str = ""
    provider: str | None = None


# --- embeddings ----------------------------------------------------------------------------

EMBEDDING_INPUT_TYPES = ("query", "document", "classification", "clustering", "similarity")


@dataclass
class EmbeddingRequest(JsonMixin):
    """Texts to turn into vectors.  ``input_type`` says what the texts are for, in words every
    protocol that takes a hint maps to its own (Cohere ``search_query``, Gemini
    ``RETRIEVAL_QUERY``, Voyage ``query``, Jina ``retrieval.query``); protocols without one
    ignore it.  ``truncate``: None leaves the provider's default, True lets it cut an input that
    is too long, False asks for an error instead (where the protocol has the option).
    ``dimensions`` asks a model that can shorten its vectors for that many numbers."""

    model: str
    inputs: list[str]
    dimensions: int | None = None
    input_type: str | None = None
    truncate: bool | None = None
    extra: dict[str, Any] | None = None  # merged into the wire body as it is: vendor options

    def with_model(self, model: str) -> EmbeddingRequest:
        from dataclasses import replace

        return self if model == self.model else replace(self, model=model)

    def validate(self) -> None:
        """Raise InvalidArgumentError naming the first malformed field."""
        from .errors import InvalidArgumentError

        if not isinstance(self.model, str) or not self.model:
            raise InvalidArgumentError("EmbeddingRequest.model must be a non-empty string")
        if isinstance(self.inputs, str) or not isinstance(self.inputs, list) or not self.inputs:
            raise InvalidArgumentError("EmbeddingRequest.inputs must be a non-empty list of strings")
        for i, text in enumerate(self.inputs):
            if not isinstance(text, str):
                raise InvalidArgumentError(f"EmbeddingRequest.inputs[{i}] is {type(text).__name__}, not a str")
            if not text.strip():
                raise InvalidArgumentError(f"EmbeddingRequest.inputs[{i}] is empty (providers reject empty inputs)")
        if self.dimensions is not None and (isinstance(self.dimensions, bool) or not isinstance(self.dimensions, int)
                                            or self.dimensions < 1):
            raise InvalidArgumentError("EmbeddingRequest.dimensions must be a positive int")
        if self.input_type is not None and self.input_type not in EMBEDDING_INPUT_TYPES:
            raise InvalidArgumentError(
                f"EmbeddingRequest.input_type {self.input_type!r} is not one of {EMBEDDING_INPUT_TYPES}")
        if self.truncate is not None and not isinstance(self.truncate, bool):
            raise InvalidArgumentError("EmbeddingRequest.truncate must be True, False or None")
        if self.extra is not None and not isinstance(self.extra, dict):
            raise InvalidArgumentError("EmbeddingRequest.extra must be a dict")


@dataclass
class EmbeddingResponse(JsonMixin):
    """One vector per input, in input order."""

    vectors: list[list[float]]
    model: str
    provider: str | None = None
    usage: Usage = field(default_factory=Usage)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0

    @property
    def cost(self) -> float | None:
        """US dollars at the model registry's input price; None when it is unknown."""
        from .models import cost_of

        return cost_of(self.usage, self.model, provider=self.provider)


# --- batches -------------------------------------------------------------------------------


class BatchStatus(str, Enum):
    """A batch job's state in one vocabulary for every provider (``BatchJob.raw_status`` keeps
    the provider's own word).  OpenAI's statuses map one to one; Anthropic's ``in_progress`` is
    IN_PROGRESS, ``canceling`` CANCELLING, and ``ended`` is CANCELLED when a cancel was asked
    for, EXPIRED when requests expired, else COMPLETED."""

    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """True once the job will change no more (results, if any, can be read)."""
        return self in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED)


class BatchResultStatus(str, Enum):
    """What became of one request of a batch: SUCCEEDED carries a response, ERRORED an error;
    CANCELLED and EXPIRED requests never ran (or, in the thread-pool runner, never finished)."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass
class BatchRequest(JsonMixin):
    """One request of a batch, with the id its result will carry."""

    custom_id: str
    request: CompletionRequest


@dataclass
class BatchCounts(JsonMixin):
    """How many requests of a job are in each state (``total`` is their sum)."""

    total: int = 0
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    cancelled: int = 0
    expired: int = 0


@dataclass
class BatchJob(JsonMixin):
    """A provider-side batch.  Times are Unix seconds (UTC) whatever the provider sends (OpenAI
    sends epoch seconds, Anthropic RFC 3339 strings); ``ended_at`` is when it reached a final
    status.  File ids are OpenAI's, ``results_url`` Anthropic's."""

    id: str
    status: BatchStatus
    raw_status: str = ""
    provider: str | None = None
    counts: BatchCounts = field(default_factory=BatchCounts)
    created_at: float | None = None
    ended_at: float | None = None
    expires_at: float | None = None
    model: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    results_url: str | None = None
    metadata: dict[str, str] | None = None
    errors: list[str] = field(default_factory=list)  # why validation failed (status FAILED)

    @property
    def done(self) -> bool:
        return self.status.done


def _error_to_dict(exc: BaseException | None) -> dict[str, Any] | None:
    """One of our exceptions as JSON: its class name, args and the fields it carries."""
    if exc is None:
        return None
    fields: dict[str, Any] = {}
    for key, value in vars(exc).items():
        if key == "attempts" and isinstance(value, list):
            value = [attempt.to_dict(encode_json=True) for attempt in value]
        elif key == "partial" and isinstance(value, CompletionResponse):
            value = value.to_dict(encode_json=True)
        elif not isinstance(value, (str, int, float, bool, type(None))):
            continue
        fields[key] = value
    args = [arg for arg in exc.args if isinstance(arg, str)]
    return {"type": type(exc).__name__, "args": args, "fields": fields}


def _error_from_dict(data: Any) -> BaseException | None:
    """The exception _error_to_dict described, as its own class when that is one of ours."""
    from . import errors

    if data is None or isinstance(data, BaseException):
        return data  # type: ignore[no-any-return]
    cls = getattr(errors, str(data.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.FailoverClientError)):
        cls = errors.FailoverClientError
    fields = dict(data.get("fields") or {})
    if isinstance(fields.get("attempts"), list):
        fields["attempts"] = [Attempt.from_dict(attempt) for attempt in fields["attempts"]]
    if isinstance(fields.get("partial"), dict):
        fields["partial"] = CompletionResponse.from_dict(fields["partial"])
    exc = cls.__new__(cls)
    BaseException.__init__(exc, *data.get("args") or ())
    exc.__dict__.update(fields)
    return exc


@dataclass
class BatchResult(JsonMixin):
    """The outcome of one batch request, matched to it by ``custom_id``.  ``error`` is one of
    this library's exceptions (it pickles, and survives a JSON round trip as the same class)."""

    custom_id: str
    status: BatchResultStatus
    response: CompletionResponse | None = None
    error: BaseException | None = field(default=None, metadata={
        "dataclasses_json": {"encoder": _error_to_dict, "decoder": _error_from_dict}})

    @property
    def ok(self) -> bool:
        return self.status is BatchResultStatus.SUCCEEDED
