"""AWS Bedrock Runtime Converse (``POST /model/{modelId}/converse``) and ConverseStream
(``.../converse-stream``).

Wire facts: protocols.md §7, checked against botocore's service model.  Three things differ from
the JSON-over-SSE protocols: every request is signed (SigV4, see :mod:`failover_client.providers.sigv4`)
unless a Bedrock API key is used as a bearer token; the stream is AWS's binary event stream
(:func:`~failover_client.streaming.iter_aws_events`, both CRCs checked); and errors name their
type in the ``x-amzn-errortype`` header (non-stream) or an ``:exception-type`` header (stream).

Usage: Bedrock's ``inputTokens`` excludes cache reads and writes (AWS's prompt-caching guide:
total input = inputTokens + cacheReadInputTokens + cacheWriteInputTokens), so ours adds them,
as for Anthropic.  Converse answers carry no id and no model name: ``id`` is empty and
``model`` is the model id that was asked for.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import quote

from ..errors import (
    InvalidArgumentError,
    MissingCredentialsError,
    NetworkError,
    NotSupportedError,
    ProviderError,
    ResponseDecodeError,
    error_from_body,
    register_secrets,
)
from ..provider import HttpProvider, WireFormat
from ..streaming import AwsEvent, iter_aws_events, loads_event
from ..types import (
    CompletionRequest,
    CompletionResponse,
    ContentBlock,
    DocumentBlock,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageBlock,
    Message,
    StopReason,
    StreamChunk,
    TextBlock,
    ThinkingBlock,
    ToolCallDelta,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from .sigv4 import AwsCredentials, SigV4Signer, check_region, region_from_env

SIGNING_SERVICE = "bedrock"  # the signing name, not the endpoint prefix "bedrock-runtime"
STOP_REASONS = {
    "end_turn": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_USE,
    "max_tokens": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "guardrail_intervened": StopReason.CONTENT_FILTER,
    "content_filtered": StopReason.CONTENT_FILTER,
}
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}
DOCUMENT_FORMATS = {"application/pdf": "pdf", "text/plain": "txt"}
DOCUMENT_NAME_MAX = 200
_NAME_REFUSED = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")
INFERENCE_FIELDS = (("max_tokens", "maxTokens"), ("temperature", "temperature"), ("top_p", "topP"),
                    ("stop_sequences", "stopSequences"))  # CompletionRequest field -> inferenceConfig key
_CACHE_POINT = {"cachePoint": {"type": "default"}}


def stop_reason(raw: str | None) -> StopReason:
    return STOP_REASONS.get(raw or "", StopReason.OTHER)


def usage_from(data: dict[str, Any]) -> Usage:
    """Bedrock's ``inputTokens`` excludes cache reads and writes; ours includes them."""
    cache_read = data.get("cacheReadInputTokens") or 0
    cache_write = data.get("cacheWriteInputTokens") or 0
    return Usage(
        input_tokens=(data.get("inputTokens") or 0) + cache_read + cache_write,
        output_tokens=data.get("outputTokens") or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


# --- request ------------------------------------------------------------------------------------


def _image(block: ImageBlock) -> dict[str, Any]:
    if block.url:
        if not block.url.startswith("s3://"):
            raise NotSupportedError("Bedrock takes images as bytes or s3:// locations, not by http(s) URL",
                                    provider="bedrock")
        source: dict[str, Any] = {"s3Location": {"uri": block.url}}
        media_type = block.media_type or "image/" + block.url.rsplit(".", 1)[-1].lower()
    else:
        source = {"bytes": block.data}
        media_type = block.media_type or ""
    image_format = IMAGE_FORMATS.get(media_type.lower())
    if image_format is None:
        raise NotSupportedError(f"Bedrock takes png, jpeg, gif or webp images, not {media_type or 'unknown'!r}",
                                provider="bedrock")
    return {"image": {"format": image_format, "source": source}}


def _document(block: DocumentBlock) -> dict[str, Any]:
    """A ``document`` block: inline content as bytes (base64 in the JSON) or an s3:// location;
    Bedrock has no Files API and fetches no URLs.  ``name`` is required and allows only ASCII
    letters and digits, single spaces, hyphens, parentheses and square brackets: the title with
    anything else turned into hyphens, or, without a title, a name made from the content's
    CRC-32, so that distinct untitled documents of one request get distinct names."""
    if block.file_id is not None:
        raise NotSupportedError("Bedrock takes documents as bytes or s3:// locations, not by file id",
                                provider="bedrock")
    if block.url is not None:
        if not block.url.startswith("s3://"):
            raise NotSupportedError("Bedrock reads documents from s3:// locations only, not by URL",
                                    provider="bedrock")
        source: dict[str, Any] = {"s3Location": {"uri": block.url}}
    else:
        source = {"bytes": block.base64_data()}
    wire: dict[str, Any] = {"format": DOCUMENT_FORMATS[block.media_type], "name": _document_name(block),
                            "source": source}
    if block.citations:
        wire["citations"] = {"enabled": True}
    return {"document": wire}


def _document_name(block: DocumentBlock) -> str:
    name = " ".join(_NAME_REFUSED.sub("-", block.title or "").split())[:DOCUMENT_NAME_MAX]
    if not name:
        name = f"document-{zlib.crc32((block.url or block.base64_data()).encode()):08x}"
    return name


def _tool_result(block: ToolResultBlock) -> dict[str, Any]:
    if isinstance(block.content, str):
        content = [{"text": block.content}]
    else:
        content = [{"text": b.text} if isinstance(b, TextBlock) else _image(b) for b in block.content]
    return {"toolResult": {"toolUseId": block.tool_use_id, "content": content,
                           "status": "error" if block.is_error else "success"}}


def block_to_wire(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"text": block.text}
    if isinstance(block, ImageBlock):
        return _image(block)
    if isinstance(block, DocumentBlock):
        return _document(block)
    if isinstance(block, ToolUseBlock):
        return {"toolUse": {"toolUseId": block.id, "name": block.name, "input": block.input}}
    if isinstance(block, ToolResultBlock):
        return _tool_result(block)
    if block.redacted_data is not None:
        return {"reasoningContent": {"redactedContent": block.redacted_data}}
    text: dict[str, Any] = {"text": block.thinking}
    if block.signature:
        text["signature"] = block.signature
    return {"reasoningContent": {"reasoningText": text}}


def _blocks(blocks: Sequence[ContentBlock]) -> list[dict[str, Any]]:
    """Content blocks; a block marked ``cache`` is followed by a cache point."""
    wire = []
    for block in blocks:
        wire.append(block_to_wire(block))
        if getattr(block, "cache", False):
            wire.append(_CACHE_POINT)
    return wire


def _has_tool_blocks(messages: Sequence[Message]) -> bool:
    return any(isinstance(b, (ToolUseBlock, ToolResultBlock)) for m in messages for b in m.content)


def _tool_config(request: CompletionRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode == "none"):
        if request.tools and _has_tool_blocks(request.messages):
            raise NotSupportedError("Bedrock has no tool_choice 'none', and a conversation holding tool calls "
                                    "must declare its tools", provider="bedrock", model=request.model)
        return None  # Converse has no "none": a model that is shown no tools calls none
    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.input_schema}}
        if tool.description:
            spec["description"] = tool.description
        if tool.strict is not None:
            spec["strict"] = tool.strict
        tools.append({"toolSpec": spec})
        if tool.cache:
            tools.append(_CACHE_POINT)
    config: dict[str, Any] = {"tools": tools}
    if choice is not None:
        config["toolChoice"] = {"tool": {"name": choice.name}} if choice.mode == "tool" else {choice.mode: {}}
    return config


def _is_claude(model: str) -> bool:
    return "anthropic." in model or "claude" in model


def _thinking(request: CompletionRequest) -> dict[str, Any] | None:
    """Anthropic models take their own ``thinking`` object through additionalModelRequestFields."""
    thinking = request.thinking
    if thinking is None:
        return None
    claude = _is_claude(request.model)
    if not thinking.enabled:
        return {"type": "disabled"} if claude else None
    if not claude:
        raise NotSupportedError(
            "ThinkingConfig is mapped for Claude models on Bedrock; for other models pass the model's own "
            "fields as extra={'additionalModelRequestFields': {...}}", provider="bedrock", model=request.model)
    budget = thinking.budget_tokens
    if budget is None:
        return {"type": "adaptive"}
    if request.max_tokens is not None and budget >= request.max_tokens:
        raise InvalidArgumentError(
            f"thinking budget_tokens ({budget}) must be below max_tokens ({request.max_tokens}) for Claude")
    return {"type": "enabled", "budget_tokens": budget}


def request_to_wire(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    """The Converse body (the same for ConverseStream: the path says which).  The model id
    travels in the path, not here."""
    body: dict[str, Any] = {
        "messages": [{"role": m.role.value, "content": _blocks(m.content)} for m in request.messages],
    }
    if request.system:
        body["system"] = [{"text": request.system}] if isinstance(request.system, str) else _blocks(request.system)
    inference = {wire: value for field, wire in INFERENCE_FIELDS
                 if (value := getattr(request, field)) is not None and value != []}
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(request)
    if tool_config:
        body["toolConfig"] = tool_config
    thinking = _thinking(request)
    if thinking:
        body["additionalModelRequestFields"] = {"thinking": thinking}
    fmt = request.response_format
    if fmt is not None:
        if fmt.type != "json_schema":
            raise NotSupportedError("Bedrock has no free-form JSON mode; use ResponseFormat.json_schema(schema)",
                                    provider="bedrock", model=request.model)
        schema = {"schema": json.dumps(fmt.schema), "name": fmt.name}
        body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}
    if request.metadata:
        body["requestMetadata"] = request.metadata
    return body


# --- response -----------------------------------------------------------------------------------


def _block_from_wire(block: dict[str, Any]) -> ContentBlock | None:
    if "text" in block:
        return TextBlock(block["text"])
    if "toolUse" in block:
        use = block["toolUse"]
        return ToolUseBlock(use["toolUseId"], use["name"], use.get("input") or {})
    if "reasoningContent" in block:
        reasoning = block["reasoningContent"]
        if "redactedContent" in reasoning:
            return ThinkingBlock("", None, redacted_data=reasoning["redactedContent"])
        text = reasoning["reasoningText"]
        return ThinkingBlock(text.get("text") or "", text.get("signature"))
    return None  # citations, generated images...: no neutral form


def response_from_wire(data: dict[str, Any], provider: str, model: str = "") -> CompletionResponse:
    content = [b for b in map(_block_from_wire, data["output"]["message"]["content"]) if b is not None]
    raw = data.get("stopReason")
    if not raw:
        raise ResponseDecodeError("the answer has no stopReason: it never finished", provider=provider, model=model)
    return CompletionResponse(
        id="", model=model, content=content, stop_reason=stop_reason(raw),
        usage=usage_from(data.get("usage") or {}), provider=provider, raw_stop_reason=raw,
    )


def stream_exception(event: AwsEvent, provider: str, model: str) -> ProviderError:
    """The error an ``exception`` (or ``error``) message stands for, classified by its type as
    the same exception would be outside a stream."""
    headers = event.headers
    kind = headers.get(":exception-type") or headers.get(":error-code") or "unknown"
    body = event.payload.decode("utf-8", "replace") if event.payload else json.dumps(
        {"message": headers.get(":error-message") or kind})
    return error_from_body(None, body, code=kind, provider=provider, model=model)


def stream_from_wire(events: Iterator[AwsEvent], provider: str, model: str) -> Iterator[StreamChunk]:
    """ConverseStream messages to StreamChunks.  ``messageStop`` carries the stop reason and is
    the answer's end; ``metadata`` (usage) follows it and ends the stream, and a body that ends
    right after ``messageStop`` is complete too.  An end before ``messageStop`` raises
    NetworkError; an exception message raises its error."""
    loads = loads_event
    stopped = False
    for event in events:
        kind = event.headers.get(":event-type")
        if kind == "contentBlockDelta":
            obj = loads(event.payload.decode())
            delta = obj["delta"]
            text = delta.get("text")
            if text:
                yield StreamChunk(text=text, provider=provider)
            elif "toolUse" in delta:
                fragment = ToolCallDelta(obj["contentBlockIndex"], arguments=delta["toolUse"]["input"])
                yield StreamChunk(tool_call=fragment, provider=provider)
            elif "reasoningContent" in delta:
                reasoning = delta["reasoningContent"]
                if reasoning.get("text"):
                    yield StreamChunk(thinking=reasoning["text"], provider=provider)
                elif reasoning.get("signature"):
                    yield StreamChunk(signature=reasoning["signature"], provider=provider)
                elif "redactedContent" in reasoning:
                    yield StreamChunk(redacted_thinking=reasoning["redactedContent"], provider=provider)
        elif kind == "contentBlockStart":
            obj = loads(event.payload.decode())
            tool = obj["start"].get("toolUse")
            if tool:
                yield StreamChunk(tool_call=ToolCallDelta(obj["contentBlockIndex"], id=tool["toolUseId"],
                                                          name=tool["name"]), provider=provider)
        elif kind == "messageStart":
            yield StreamChunk(model=model, provider=provider)
        elif kind == "messageStop":
            raw = loads(event.payload.decode()).get("stopReason")
            stopped = True
            yield StreamChunk(stop_reason=stop_reason(raw), raw_stop_reason=raw, provider=provider)
        elif kind == "metadata":
            yield StreamChunk(usage=usage_from(loads(event.payload.decode()).get("usage") or {}), provider=provider)
            if stopped:
                return
        elif event.headers.get(":message-type") in ("exception", "error"):
            raise stream_exception(event, provider, model)
    if not stopped:
        raise NetworkError("the stream ended before messageStop", provider=provider, model=model)


WIRE = WireFormat(request_to_wire, response_from_wire, stream_from_wire, iter_aws_events)


class BedrockProvider(HttpProvider):
    """Bedrock Runtime's Converse API, for every model Bedrock hosts (``model`` is a model id,
    an inference profile id or an ARN).

    Credentials, first found wins: ``api_key`` (a Bedrock API key, sent as a bearer token);
    ``aws_access_key_id`` + ``aws_secret_access_key`` (+ ``aws_session_token``), signed with
    SigV4; ``AWS_BEARER_TOKEN_BEDROCK``; ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY``
    (+ ``AWS_SESSION_TOKEN``).  The region comes from ``region`` or ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION`` and picks ``https://bedrock-runtime.{region}.amazonaws.com`` unless
    ``base_url`` is given.  Missing credentials or region raise MissingCredentialsError at first use.
    """

    name = "bedrock"
    api_key_env = "AWS_BEARER_TOKEN_BEDROCK"
    wire = WIRE
    _stream_headers = {"Accept": "application/vnd.amazon.eventstream", "Accept-Encoding": "identity"}

    def __init__(self, api_key: str | None = None, *, region: str | None = None,
                 aws_access_key_id: str | None = None, aws_secret_access_key: str | None = None,
                 aws_session_token: str | None = None, base_url: str | None = None, **options: Any) -> None:
        if api_key and (aws_access_key_id or aws_secret_access_key):
            raise InvalidArgumentError("pass either api_key (a Bedrock API key) or AWS access keys, not both")
        if bool(aws_access_key_id) != bool(aws_secret_access_key) or (aws_session_token and not aws_access_key_id):
            raise InvalidArgumentError("aws_access_key_id and aws_secret_access_key go together "
                                       "(aws_session_token only with them)")
        self.region = region or region_from_env()
        self._aws_credentials = (AwsCredentials(aws_access_key_id, aws_secret_access_key, aws_session_token)
                                 if aws_access_key_id and aws_secret_access_key else None)
        self._signer: SigV4Signer | None = None
        if self.region:
            check_region(self.region)
            base_url = base_url or f"https://bedrock-runtime.{self.region}.amazonaws.com"
        super().__init__(api_key, base_url=base_url, **options)
        register_secrets(aws_secret_access_key, aws_session_token)

    def _missing_region(self) -> MissingCredentialsError:
        return MissingCredentialsError(
            f"no AWS region for {self.name}: pass region= or set AWS_REGION (or AWS_DEFAULT_REGION)",
            provider=self.name)

    def _credentials(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """A bearer header for an API key; otherwise a signer that ``_request_headers`` uses on
        every request (the signature covers its time, path and body)."""
        self._signer = None
        token = self._api_key or (None if self._aws_credentials else os.environ.get(self.api_key_env))
        if token:
            if not self.base_url:
                raise self._missing_region()
            return {"Authorization": f"Bearer {token}"}, (token,)
        credentials = self._aws_credentials or AwsCredentials.from_env()
        if credentials is None:
            raise MissingCredentialsError(
                f"no credentials for {self.name}: pass api_key= (a Bedrock API key) or aws_access_key_id= and "
                f"aws_secret_access_key=, or set {self.api_key_env} or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                provider=self.name)
        if not self.region:
            raise self._missing_region()
        self._signer = SigV4Signer(credentials, self.region, SIGNING_SERVICE)
        secrets = (credentials.secret_access_key, credentials.session_token)
        return {}, tuple(s for s in secrets if s)

    def _request_headers(self, path: str, body: bytes, stream: bool) -> Mapping[str, str] | None:
        headers = super()._request_headers(path, body, stream)
        signer = self._signer
        if signer is None:
            return headers
        return {**(headers or {}), **signer.sign("POST", self.base_url + path, body)}

    def _path(self, request: CompletionRequest, stream: bool) -> str:
        """The model id is one path segment: ``:`` and ``/`` (ARNs, profiles) are percent-encoded."""
        return f"/model/{quote(request.model, safe='')}/{'converse-stream' if stream else 'converse'}"

    def _parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        return response_from_wire(data, self.name, request.model)

    supports_embeddings = True

    def embed(self, request: EmbeddingRequest, *, timeout: float | None = None) -> EmbeddingResponse:
        """InvokeModel with the model family's body: Titan Text Embeddings or Cohere Embed."""
        from . import embeddings

        path, wire = embeddings.bedrock_route(request.model)
        return embeddings.embed(self, request, path, wire, timeout=timeout)
