"""Local token counts for the OpenAI Chat Completions protocol, which has no counting endpoint.

With the optional ``tiktoken`` package and the model's encoding on disk, a prompt is counted with
the model's own tokenizer, by the method OpenAI's cookbook ("How to count tokens with tiktoken")
verified against the API: every message costs 3 tokens plus its encoded string values (role,
content, name), a ``name`` one more, the reply is primed with 3; each function tool costs 7
(o200k models) or 10 (cl100k models) plus ``name:description``, its properties 3, each property
3 plus ``key:type:description`` (a trailing full stop dropped), an enum -3 plus 3 and its text
per item, and the tool list 12 in all.

``TokenCountResult.exact`` is True only when that method covers the whole request for a model
family the cookbook verified (gpt-4o, gpt-4, gpt-3.5).  Everything else is an estimate, labelled
``exact=False``: other model families (gpt-4.1, o-series and gpt-5 are counted with o200k_base,
but their prompt framing is not published), images (counted as a 1024x1024 high-detail image,
765 tokens), tool calls and tool results in the history, list-form content, tool schemas beyond
flat ``type``/``description``/``enum`` properties, a tool choice other than ``auto``, and
structured output (its ``response_format`` counted as JSON text).  Without tiktoken or its
encoding, strings are estimated at four ASCII characters, or one other character, per token.

tiktoken downloads encodings from the internet on first use.  This module never lets it: an
encoding is used only when its file is already in tiktoken's cache (``TIKTOKEN_CACHE_DIR``,
else ``DATA_GYM_CACHE_DIR``, else ``<tmp>/data-gym-cache``) and has the published SHA-256.
Fill the cache once with network access (``tiktoken.get_encoding("o200k_base")``), or offline
with :func:`install_encoding` from a copy of the ``.tiktoken`` file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import InvalidArgumentError
from .types import CompletionRequest, ImageBlock, TokenCountRequest, TokenCountResult, Usage

O200K = "o200k_base"
CL100K = "cl100k_base"
# name -> (the URL tiktoken reads it from, which names its cache file; the file's SHA-256)
ENCODING_FILES = {
    O200K: ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
            "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    CL100K: ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
             "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}
_O200K_MODELS = re.compile(r"(?:gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o[1-9])(?![0-9a-z])")
_CL100K_MODELS = re.compile(r"(?:gpt-4|gpt-3\.5|gpt-35)(?![0-9a-z.])")
_VERIFIED_MODELS = re.compile(r"(?:gpt-4o|chatgpt-4o|gpt-4|gpt-3\.5|gpt-35)(?![0-9a-z.])")
IMAGE_TOKENS = 765  # a 1024x1024 image at high detail: 85 + 4 tiles x 170
_SIMPLE_PROPERTY = frozenset({"type", "description", "enum"})

_encodings: dict[str, Any] = {}  # cache file path -> loaded tiktoken Encoding


def prompt_request(request: TokenCountRequest | CompletionRequest) -> CompletionRequest:
    """The prompt to count, as a validated CompletionRequest (what the wire mappers take)."""
    if isinstance(request, TokenCountRequest):
        request = request.as_request()
    elif not isinstance(request, CompletionRequest):
        raise InvalidArgumentError(
            f"count_tokens takes a TokenCountRequest or CompletionRequest, got {type(request).__name__}")
    request.validate()
    return request


def _model_name(model: str) -> str:
    return model.rsplit("/", 1)[-1].lower()  # "openai/gpt-4o" (a router's name) is gpt-4o


def encoding_for_model(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model (a ``vendor/`` prefix is ignored); None when the
    model is not one of OpenAI's."""
    name = _model_name(model)
    if _O200K_MODELS.match(name):
        return O200K
    if _CL100K_MODELS.match(name):
        return CL100K
    return None


def cache_dir() -> str | None:
    """Where tiktoken keeps encodings (its own rule); None when its caching is switched off."""
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return os.environ[variable] or None
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _cache_path(name: str, directory: str) -> Path:
    url, _ = ENCODING_FILES[name]
    return Path(directory) / hashlib.sha1(url.encode()).hexdigest()


def install_encoding(name: str, source: bytes | str | os.PathLike[str], directory: str | None = None) -> Path:
    """Put an encoding file where tiktoken looks for it, after checking its SHA-256: the way to
    enable exact counts on a host without internet access.  ``source`` is the ``.tiktoken``
    file (a path) or its bytes; ``directory`` defaults to tiktoken's cache directory."""
    if name not in ENCODING_FILES:
        raise InvalidArgumentError(f"unknown encoding {name!r}; known: {sorted(ENCODING_FILES)}")
    directory = directory or cache_dir()
    if directory is None:
        raise InvalidArgumentError("tiktoken's cache is switched off (TIKTOKEN_CACHE_DIR is empty); pass directory=")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    expected = ENCODING_FILES[name][1]
    if hashlib.sha256(data).hexdigest() != expected:
        raise InvalidArgumentError(f"that is not the published {name} file (its SHA-256 must be {expected})")
    path = _cache_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path


def load_encoding(name: str) -> Any:
    """The tiktoken Encoding ``name`` if tiktoken is installed and the encoding's verified file is
    in its cache; else None.  Never downloads."""
    directory = cache_dir()
    if directory is None:
        return None
    path = _cache_path(name, directory)
    key = str(path)
    encoding = _encodings.get(key)
    if encoding is not None:
        return encoding
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != ENCODING_FILES[name][1]:
        return None  # tiktoken would delete it and download a fresh copy
    encoding = _encodings[key] = tiktoken.get_encoding(name)
    return encoding


def estimate_text_tokens(text: str) -> int:
    """A tokenizer-free guess: four ASCII characters, or one other character, per token."""
    other = len(text) - len(text.encode("ascii", "ignore"))
    return -(-(len(text) - other) // 4) + other


class _Tally:
    """Tokens so far, and whether every one of them was counted rather than guessed."""

    def __init__(self, size: Callable[[str], int], exact: bool) -> None:
        self.size = size
        self.exact = exact
        self.tokens = 0

    def text(self, text: str) -> None:
        self.tokens += self.size(text)

    def guess(self, text: str, tokens: int | None = None) -> None:
        self.tokens += self.size(text) if tokens is None else tokens
        self.exact = False


def count_chat_body(body: Mapping[str, Any], *, provider: str | None = None) -> TokenCountResult:
    """Input tokens of a Chat Completions request body (as sent on the wire)."""
    model = str(body.get("model") or "")
    family = encoding_for_model(model)
    encoding = load_encoding(family or O200K)
    if encoding is None:
        tally = _Tally(estimate_text_tokens, exact=False)
    else:
        tally = _Tally(lambda text: len(encoding.encode_ordinary(text)), exact=bool(_VERIFIED_MODELS.match(
            _model_name(model))))
    for message in body.get("messages") or ():
        _count_message(tally, message)
    tally.tokens += 3  # every reply is primed with <|start|>assistant<|message|>
    if body.get("tools"):
        _count_tools(tally, body["tools"], 7 if family == O200K else 10)
    if body.get("tool_choice") not in (None, "auto"):
        tally.exact = False  # how a required or named tool choice is framed is not published
    if body.get("response_format"):
        tally.guess(json.dumps(body["response_format"]))
    return TokenCountResult(tally.tokens, exact=tally.exact, model=model, provider=provider)


def _count_message(tally: _Tally, message: Mapping[str, Any]) -> None:
    tally.tokens += 3
    if message.get("role") == "tool":
        tally.exact = False  # how a tool result is framed is not published
    for key, value in message.items():
        if isinstance(value, str):
            tally.text(value)
            if key == "name":
                tally.tokens += 1
        elif key == "content" and isinstance(value, list):
            for part in value:
                if part.get("type") == "image_url":
                    tally.guess("", IMAGE_TOKENS)
                else:
                    tally.guess(str(part.get("text") or json.dumps(part)))
        elif value is not None:
            tally.guess(json.dumps(value))  # tool calls: their JSON text


def _count_tools(tally: _Tally, tools: list[Mapping[str, Any]], per_function: int) -> None:
    for tool in tools:
        function = tool.get("function") or {}
        tally.tokens += per_function
        tally.text(f"{function.get('name', '')}:{_sentence(function.get('description'))}")
        properties = (function.get("parameters") or {}).get("properties") or {}
        if properties:
            tally.tokens += 3
        for key, prop in properties.items():
            tally.tokens += 3
            if not (set(prop) <= _SIMPLE_PROPERTY and isinstance(prop.get("type"), str) and "description" in prop):
                tally.exact = False
            if "enum" in prop:
                tally.tokens -= 3
                for item in prop["enum"]:
                    tally.tokens += 3
                    tally.text(str(item))
            tally.text(f"{key}:{prop.get('type')}:{_sentence(prop.get('description'))}")
    tally.tokens += 12


def _sentence(text: Any) -> str:
    text = str(text or "")
    return text[:-1] if text.endswith(".") else text


def estimate_usage(request: CompletionRequest, output: str) -> Usage:
    """Usage for an answer whose provider reported none, flagged ``estimated``: the prompt counted
    as a Chat Completions body would carry it (:func:`count_chat_body`) and the output text, with
    the model's tokenizer when tiktoken and its encoding are at hand (o200k_base for other vendors'
    models, which is near), else the four-characters-a-token heuristic."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": request.system_text}] if request.system else []
    for message in request.messages:
        parts = [{"type": "image_url"} if isinstance(block, ImageBlock) else {"type": "text", "text": text}
                 for block in message.content if isinstance(block, ImageBlock) or (text := _block_text(block))]
        messages.append({"role": getattr(message.role, "value", message.role), "content": parts})
    tools = [{"type": "function", "function": {"name": tool.name, "description": tool.description,
                                               "parameters": tool.input_schema}} for tool in request.tools or ()]
    prompt = count_chat_body({"model": request.model, "messages": messages, "tools": tools})
    encoding = load_encoding(encoding_for_model(request.model) or O200K)
    output_tokens = len(encoding.encode_ordinary(output)) if encoding is not None else estimate_text_tokens(output)
    return Usage(input_tokens=prompt.input_tokens, output_tokens=output_tokens, estimated=True)


def _block_text(block: Any) -> str:
    """A content block as the text a tokenizer would see: text, reasoning, or a tool call's input."""
    text = getattr(block, "text", None) or getattr(block, "thinking", None)
    if isinstance(text, str):
        return text
    tool_input = getattr(block, "input", None)
    return json.dumps(tool_input) if tool_input is not None else ""
