"""Other vendors' request and response shapes <-> ours.

Most code that adopts this library already builds OpenAI chat-completions bodies or Anthropic
Messages bodies, and some relays OpenAI's answer format to its own clients.  This module maps
those shapes to and from the neutral types, so such code can switch with one call:
``CompletionRequest.from_openai(body)``, ``CompletionRequest.from_anthropic(body)``,
``CompletionResponse.to_openai()`` and :func:`openai_chunks`.

It works on plain dicts and duck-typed objects and imports nothing of ours but the errors, so
``types.py`` can call it lazily without closing an import circle: the ``*_from_*`` functions
return a request in the neutral types' own ``to_dict()`` form, which ``types.py`` turns into
dataclasses.  Per-field rules (what is mapped, what passes through ``extra``, what is refused)
are in the docstrings of :func:`request_from_openai` and :func:`request_from_anthropic`.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any, Iterable, Iterator

from .errors import InvalidArgumentError

# OpenAI options that change only how the vendor serves the request, not what the neutral
# request means: they pass through ``extra`` (sent as they are to whichever provider serves it).
OPENAI_EXTRA = frozenset({
    "frequency_penalty", "presence_penalty", "seed", "logit_bias", "user", "store", "service_tier",
    "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "verbosity", "prediction",
    "web_search_options",
})
ANTHROPIC_EXTRA = frozenset({"top_k", "service_tier", "inference_geo", "speed"})
# Options whose answer this library cannot return, or that have no neutral meaning: refused.
_OPENAI_REFUSED = {
    "functions": "use tools", "function_call": "use tool_choice", "logprobs": "log probabilities are not returned",
    "top_logprobs": "log probabilities are not returned", "audio": "audio output is not supported",
}
_OPENAI_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
_ANTHROPIC_TOOL_CHOICES = frozenset({"auto", "any", "none", "tool"})
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.S)

# Our stop reasons as OpenAI finish reasons (a refusal is "stop" with ``message.refusal`` set;
# reasons OpenAI has no word for read as "stop", the only one its SDK types accept for them).
FINISH_REASONS = {"max_tokens": "length", "tool_use": "tool_calls", "content_filter": "content_filter"}


def _fail(path: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{path}: {problem}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {_shown(value)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"expected a list, got {_shown(value)}")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"expected a string, got {_shown(value)}")
    return value


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _fail(path, f"{key!r} is missing")
    return obj[key]


def _string_at(obj: dict[str, Any], key: str, path: str) -> str:
    """``obj[key]``, which must be present and a string (``path`` names ``obj`` in messages)."""
    value = _required(obj, key, path)
    if not isinstance(value, str):
        raise _fail(f"{path}.{key}" if path != "body" else key, f"expected a string, got {_shown(value)}")
    return value


def _only(obj: dict[str, Any], allowed: Iterable[str], path: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise _fail(path, f"unsupported field(s) {', '.join(unknown)}")


def _text(text: str, cache: bool = False) -> dict[str, Any]:
    return {"type": "text", "text": text, "cache": cache}


def _openai_parts(content: Any, path: str, images: bool = False) -> list[dict[str, Any]]:
    """OpenAI message content: a string or a list of text parts (and ``image_url`` parts where
    ``images``: user messages)."""
    if isinstance(content, str):
        return [_text(content)]
    blocks = []
    for i, part in enumerate(_list(content, path)):
        where = f"{path}[{i}]"
        part = _object(part, where)
        kind = part.get("type")
        if kind == "text":
            _only(part, ("type", "text"), where)
            blocks.append(_text(_string_at(part, "text", where)))
        elif kind == "image_url" and images:
            _only(part, ("type", "image_url"), where)
            blocks.append(_openai_image(_object(_required(part, "image_url", where), f"{where}.image_url"),
                                        f"{where}.image_url"))
        else:
            accepted = "text and image_url are" if images else "only text is"
            raise _fail(where, f"content part type {_shown(kind)} is not supported here ({accepted})")
    return blocks


# --- OpenAI chat completions -> ours --------------------------------------------------------


def request_from_openai(body: Any) -> dict[str, Any]:
    """An OpenAI chat-completions request body as a neutral request (``to_dict()`` form).

    Mapped: ``system``/``developer`` messages at the start become ``system`` (one message keeps
    its text parts; several are joined with blank lines); ``tool`` messages in a row become one
    ``Message.tool_results``; assistant ``tool_calls`` become ToolUseBlocks (``arguments`` must be
    a JSON object); ``image_url`` parts (URL or ``data:`` URI, ``detail`` absent or ``"auto"``)
    become ImageBlocks; ``tools`` (function format), ``tool_choice``, ``parallel_tool_calls:
    false``, ``response_format``, ``max_tokens``/``max_completion_tokens``, ``temperature``,
    ``top_p``, ``stop`` (string or list), ``stream``, ``metadata``, ``reasoning_effort``.
    ``stream_options`` is accepted and dropped (streams always ask for usage), as are ``n: 1``
    and ``modalities: ["text"]``.

    Passed through ``extra`` unchanged (plain vendor options): the names in ``OPENAI_EXTRA``.
    Refused with InvalidArgumentError naming the field: ``n`` above 1, ``logprobs``, ``audio``,
    the legacy ``functions``, a system message after the conversation started, message
    ``name``, non-text content parts other than images, an image ``detail`` other than auto,
    and any field not listed here.
    """
    body = _object(body, "body")
    request: dict[str, Any] = {"model": _string_at(body, "model", "body")}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        if key in _OPENAI_REFUSED:
            raise _fail(key, f"not supported ({_OPENAI_REFUSED[key]})")
        if key in OPENAI_EXTRA:
            extra[key] = value
        elif key not in _OPENAI_FIELDS:
            raise _fail(key, "unknown or unsupported chat-completions field")
    request["system"], request["messages"] = _openai_messages(_required(body, "messages", "body"))
    _openai_limits(body, request)
    if body.get("tools") is not None:
        request["tools"] = [_openai_tool(tool, f"tools[{i}]") for i, tool in enumerate(_list(body["tools"], "tools"))]
    choice = _openai_tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False:
        choice = {**(choice or {"mode": "auto", "name": None}), "disable_parallel": True}
    request["tool_choice"] = choice
    request["response_format"] = _openai_response_format(body.get("response_format"))
    effort = body.get("reasoning_effort")
    request["thinking"] = None if effort is None else {
        "enabled": True, "budget_tokens": None, "effort": _string(effort, "reasoning_effort")}
    request["extra"] = extra or None
    return request


_OPENAI_FIELDS = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "stream_options", "tools", "tool_choice", "parallel_tool_calls", "response_format", "metadata",
    "reasoning_effort", "n", "modalities",
})


def _openai_limits(body: dict[str, Any], request: dict[str, Any]) -> None:
    """The scalar options: token limit, sampling, stop strings, stream, metadata."""
    limits = {body.get(key) for key in ("max_tokens", "max_completion_tokens")} - {None}
    if len(limits) > 1:
        raise _fail("max_completion_tokens", "differs from max_tokens; give one of them")
    request["max_tokens"] = limits.pop() if limits else None
    request["temperature"] = body.get("temperature")
    request["top_p"] = body.get("top_p")
    stop = body.get("stop")
    request["stop_sequences"] = [stop] if isinstance(stop, str) else (
        None if stop is None else [_string(s, f"stop[{i}]") for i, s in enumerate(_list(stop, "stop"))])
    request["stream"] = bool(body.get("stream"))
    metadata = body.get("metadata")
    request["metadata"] = None if metadata is None else _object(metadata, "metadata")
    if body.get("n") not in (None, 1):
        raise _fail("n", "only one choice is read; send n: 1")
    if body.get("modalities") not in (None, ["text"]):
        raise _fail("modalities", "only text output is supported")


def _openai_messages(messages: Any) -> tuple[Any, list[dict[str, Any]]]:
    system: list[list[dict[str, Any]]] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(_list(messages, "messages")):
        path = f"messages[{i}]"
        message = _object(message, path)
        role = message.get("role")
        if role in ("system", "developer"):
            if out:
                raise _fail(path, f"a {role} message after the conversation started has no neutral form "
                                  "(the system prompt comes first)")
            _only(message, ("role", "content"), path)
            system.append(_openai_parts(_required(message, "content", path), f"{path}.content"))
        elif role == "tool":
            _only(message, ("role", "content", "tool_call_id"), path)
            result = {"type": "tool_result", "cache": False, "is_error": False,
                      "tool_use_id": _string_at(message, "tool_call_id", path),
                      "content": _tool_output(_required(message, "content", path), f"{path}.content")}
            if out and out[-1]["content"] and all(b["type"] == "tool_result" for b in out[-1]["content"]):
                out[-1]["content"].append(result)
            else:
                out.append({"role": "user", "content": [result]})
        elif role == "user":
            _only(message, ("role", "content"), path)
            out.append({"role": "user", "content": _openai_parts(_required(message, "content", path),
                                                                 f"{path}.content", images=True)})
        elif role == "assistant":
            out.append({"role": "assistant", "content": _openai_assistant_content(message, path)})
        else:
            raise _fail(f"{path}.role", f"{_shown(role)} is not one of system, developer, user, assistant, tool")
    return _openai_system(system), out


def _tool_output(content: Any, path: str) -> str | list[dict[str, Any]]:
    return content if isinstance(content, str) else _openai_parts(content, path)


def _openai_system(messages: list[list[dict[str, Any]]]) -> Any:
    if not messages:
        return None
    if len(messages) == 1:
        blocks = messages[0]
        return blocks[0]["text"] if len(blocks) == 1 else blocks
    return "\n\n".join("".join(block["text"] for block in blocks) for blocks in messages)


def _openai_image(image: dict[str, Any], path: str) -> dict[str, Any]:
    _only(image, ("url", "detail"), path)
    if image.get("detail") not in (None, "auto"):
        raise _fail(f"{path}.detail", f"{_shown(image['detail'])} has no neutral form (only 'auto')")
    url = _string_at(image, "url", path)
    inline = _DATA_URL.fullmatch(url)
    if inline:
        return {"type": "image", "media_type": inline.group(1), "data": inline.group(2), "url": None, "cache": False}
    if url.startswith("data:"):
        raise _fail(f"{path}.url", "a data URI must be data:<media type>;base64,<data>")
    return {"type": "image", "media_type": None, "data": None, "url": url, "cache": False}


def _openai_assistant_content(message: dict[str, Any], path: str) -> list[dict[str, Any]]:
    _only(message, ("role", "content", "tool_calls", "refusal"), path)
    if message.get("refusal") is not None:
        raise _fail(f"{path}.refusal", "an assistant refusal cannot be sent back")
    content = message.get("content")
    blocks = [] if content is None else [b for b in _openai_parts(content, f"{path}.content") if b["text"]]
    for i, call in enumerate(_list(message.get("tool_calls") or [], f"{path}.tool_calls")):
        where = f"{path}.tool_calls[{i}]"
        call = _object(call, where)
        _only(call, ("id", "type", "function"), where)
        if call.get("type", "function") != "function":
            raise _fail(f"{where}.type", f"{_shown(call['type'])} is not supported (function is)")
        function = _object(_required(call, "function", where), f"{where}.function")
        _only(function, ("name", "arguments"), f"{where}.function")
        arguments = _string_at(function, "arguments", f"{where}.function")
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise _fail(f"{where}.function.arguments", f"not JSON: {_shown(arguments)}") from None
        if not isinstance(parsed, dict):
            raise _fail(f"{where}.function.arguments", "must be a JSON object")
        blocks.append({"type": "tool_use", "cache": False, "input": parsed,
                       "id": _string_at(call, "id", where),
                       "name": _string_at(function, "name", f"{where}.function")})
    return blocks


def _openai_tool(tool: Any, path: str) -> dict[str, Any]:
    tool = _object(tool, path)
    _only(tool, ("type", "function"), path)
    if tool.get("type") != "function":
        raise _fail(f"{path}.type", f"{_shown(tool.get('type'))} is not supported (function is)")
    function = _object(_required(tool, "function", path), f"{path}.function")
    _only(function, ("name", "description", "parameters", "strict"), f"{path}.function")
    return {
        "name": _string_at(function, "name", f"{path}.function"),
        "description": function.get("description") or "",
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        "strict": function.get("strict"), "cache": False,
    }


def _openai_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _OPENAI_TOOL_CHOICES:
            raise _fail("tool_choice", f"{_shown(choice)} is not one of auto, none, required")
        return {"mode": _OPENAI_TOOL_CHOICES[choice], "name": None, "disable_parallel": False}
    choice = _object(choice, "tool_choice")
    if choice.get("type") != "function":
        raise _fail("tool_choice.type", f"{_shown(choice.get('type'))} is not supported (function is)")
    function = _object(_required(choice, "function", "tool_choice"), "tool_choice.function")
    name = _string_at(function, "name", "tool_choice.function")
    return {"mode": "tool", "name": name, "disable_parallel": False}


def _openai_response_format(fmt: Any) -> dict[str, Any] | None:
    if fmt is None:
        return None
    fmt = _object(fmt, "response_format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object", "schema": None, "name": "response", "strict": True}
    if kind != "json_schema":
        raise _fail("response_format.type", f"{_shown(kind)} is not one of text, json_object, json_schema")
    spec = _object(_required(fmt, "json_schema", "response_format"), "response_format.json_schema")
    _only(spec, ("name", "schema", "strict"), "response_format.json_schema")
    return {"type": "json_schema", "schema": spec.get("schema"),
            "name": _string_at(spec, "name", "response_format.json_schema"),
            "strict": bool(spec.get("strict"))}


# --- Anthropic Messages -> ours -------------------------------------------------------------


_ANTHROPIC_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "stop_sequences", "stream", "metadata",
    "tools", "tool_choice", "thinking", "output_config",
})


def request_from_anthropic(body: Any) -> dict[str, Any]:
    """An Anthropic Messages request body as a neutral request (``to_dict()`` form).

    Mapped: ``system`` (a string, or text blocks keeping their ``cache_control``), messages whose
    content is a string or ``text``/``image``/``tool_use``/``tool_result``/``thinking``/
    ``redacted_thinking`` blocks, ``cache_control`` (ephemeral, ttl absent or ``5m``) on blocks
    and tools, ``tools`` (custom tools), ``tool_choice``, ``thinking`` (enabled with a budget,
    adaptive, disabled) with ``output_config.effort``, ``output_config.format`` (a JSON schema),
    ``max_tokens``, ``temperature``, ``top_p``, ``stop_sequences``, ``stream``, ``metadata``.

    Passed through ``extra`` unchanged (plain vendor options): the names in
    ``ANTHROPIC_EXTRA``.  Refused with InvalidArgumentError naming the field: server tools,
    ``document`` and other block types, a one-hour cache ``ttl``, citations, ``effort`` without
    ``thinking``, and any field not listed here.
    """
    body = _object(body, "body")
    extra = {key: value for key, value in body.items() if key in ANTHROPIC_EXTRA}
    _only(body, _ANTHROPIC_FIELDS | ANTHROPIC_EXTRA, "body")
    messages = []
    for i, message in enumerate(_list(_required(body, "messages", "body"), "messages")):
        path = f"messages[{i}]"
        message = _object(message, path)
        _only(message, ("role", "content"), path)
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _fail(f"{path}.role", f"{_shown(role)} is not one of user, assistant")
        content = _required(message, "content", path)
        blocks = [_text(content)] if isinstance(content, str) else [
            _anthropic_block(block, f"{path}.content[{j}]")
            for j, block in enumerate(_list(content, f"{path}.content"))]
        messages.append({"role": role, "content": blocks})
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        system = [_anthropic_text(block, f"system[{i}]") for i, block in enumerate(_list(system, "system"))]
    stop = body.get("stop_sequences")
    return {
        "model": _string_at(body, "model", "body"), "messages": messages, "system": system,
        "max_tokens": body.get("max_tokens"), "temperature": body.get("temperature"), "top_p": body.get("top_p"),
        "stop_sequences": None if stop is None else [
            _string(s, f"stop_sequences[{i}]") for i, s in enumerate(_list(stop, "stop_sequences"))],
        "tools": None if body.get("tools") is None else [
            _anthropic_tool(tool, f"tools[{i}]") for i, tool in enumerate(_list(body["tools"], "tools"))],
        "tool_choice": _anthropic_tool_choice(body.get("tool_choice")), "stream": bool(body.get("stream")),
        **_anthropic_output(body.get("thinking"), body.get("output_config")),
        "metadata": None if body.get("metadata") is None else _object(body["metadata"], "metadata"),
        "extra": extra or None,
    }


def _cache(block: dict[str, Any], path: str) -> bool:
    control = block.get("cache_control")
    if control is None:
        return False
    control = _object(control, f"{path}.cache_control")
    _only(control, ("type", "ttl"), f"{path}.cache_control")
    if control.get("type") != "ephemeral" or control.get("ttl", "5m") != "5m":
        raise _fail(f"{path}.cache_control", f"{_shown(control)} has no neutral form (only ephemeral, 5m)")
    return True


def _anthropic_text(block: Any, path: str) -> dict[str, Any]:
    block = _object(block, path)
    if block.get("type") != "text":
        raise _fail(f"{path}.type", f"{_shown(block.get('type'))} is not text")
    _only(block, ("type", "text", "cache_control", "citations"), path)
    if block.get("citations"):
        raise _fail(f"{path}.citations", "citations are not supported")
    return _text(_string_at(block, "text", path), _cache(block, path))


def _anthropic_block(block: Any, path: str) -> dict[str, Any]:
    block = _object(block, path)
    kind = block.get("type")
    if kind == "text":
        return _anthropic_text(block, path)
    if kind == "image":
        _only(block, ("type", "source", "cache_control"), path)
        source = _object(_required(block, "source", path), f"{path}.source")
        image = {"type": "image", "media_type": None, "data": None, "url": None, "cache": _cache(block, path)}
        if source.get("type") == "base64":
            _only(source, ("type", "media_type", "data"), f"{path}.source")
            image["media_type"] = _string_at(source, "media_type", f"{path}.source")
            image["data"] = _string_at(source, "data", f"{path}.source")
        elif source.get("type") == "url":
            _only(source, ("type", "url"), f"{path}.source")
            image["url"] = _string_at(source, "url", f"{path}.source")
        else:
            raise _fail(f"{path}.source.type", f"{_shown(source.get('type'))} is not one of base64, url")
        return image
    if kind == "tool_use":
        _only(block, ("type", "id", "name", "input", "cache_control"), path)
        return {"type": "tool_use", "id": _string_at(block, "id", path),
                "name": _string_at(block, "name", path),
                "input": _object(_required(block, "input", path), f"{path}.input"), "cache": _cache(block, path)}
    if kind == "tool_result":
        _only(block, ("type", "tool_use_id", "content", "is_error", "cache_control"), path)
        content = block.get("content", "")
        if not isinstance(content, str):
            content = [_anthropic_block(item, f"{path}.content[{i}]")
                       for i, item in enumerate(_list(content, f"{path}.content"))]
            if any(item["type"] not in ("text", "image") for item in content):
                raise _fail(f"{path}.content", "a tool result holds only text and image blocks")
        return {"type": "tool_result", "tool_use_id": _string_at(block, "tool_use_id", path), "content": content,
                "is_error": bool(block.get("is_error")), "cache": _cache(block, path)}
    if kind == "thinking":
        _only(block, ("type", "thinking", "signature"), path)
        return {"type": "thinking", "thinking": _string_at(block, "thinking", path),
                "signature": block.get("signature"), "redacted_data": None}
    if kind == "redacted_thinking":
        _only(block, ("type", "data"), path)
        return {"type": "thinking", "thinking": "", "signature": None,
                "redacted_data": _string_at(block, "data", path)}
    raise _fail(f"{path}.type", f"block type {_shown(kind)} is not supported "
                                "(text, image, tool_use, tool_result, thinking, redacted_thinking are)")


def _anthropic_tool(tool: Any, path: str) -> dict[str, Any]:
    tool = _object(tool, path)
    if tool.get("type", "custom") not in ("custom", None):
        raise _fail(f"{path}.type", f"server tool {_shown(tool['type'])} is not supported (custom tools are)")
    _only(tool, ("type", "name", "description", "input_schema", "strict", "cache_control"), path)
    return {"name": _string_at(tool, "name", path),
            "description": tool.get("description") or "",
            "input_schema": _object(_required(tool, "input_schema", path), f"{path}.input_schema"),
            "strict": tool.get("strict"), "cache": _cache(tool, path)}


def _anthropic_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    choice = _object(choice, "tool_choice")
    _only(choice, ("type", "name", "disable_parallel_tool_use"), "tool_choice")
    mode = choice.get("type")
    if mode not in _ANTHROPIC_TOOL_CHOICES:
        raise _fail("tool_choice.type", f"{_shown(mode)} is not one of {', '.join(sorted(_ANTHROPIC_TOOL_CHOICES))}")
    return {"mode": mode, "name": choice.get("name"), "disable_parallel": bool(choice.get("disable_parallel_tool_use"))}


def _anthropic_output(thinking: Any, output: Any) -> dict[str, Any]:
    """``thinking`` and ``output_config`` together: effort belongs to the thinking config."""
    output = {} if output is None else _object(output, "output_config")
    _only(output, ("effort", "format"), "output_config")
    effort = output.get("effort")
    config = None
    if thinking is not None:
        thinking = _object(thinking, "thinking")
        kind = thinking.get("type")
        if kind == "enabled":
            _only(thinking, ("type", "budget_tokens"), "thinking")
            config = {"enabled": True, "budget_tokens": _required(thinking, "budget_tokens", "thinking")}
        elif kind == "adaptive":
            _only(thinking, ("type",), "thinking")
            config = {"enabled": True, "budget_tokens": None}
        elif kind == "disabled":
            _only(thinking, ("type",), "thinking")
            config = {"enabled": False, "budget_tokens": None}
        else:
            raise _fail("thinking.type", f"{_shown(kind)} is not one of enabled, adaptive, disabled")
        config["effort"] = effort
    elif effort is not None:
        raise _fail("output_config.effort", "has no neutral form without thinking")
    fmt = output.get("format")
    response_format = None
    if fmt is not None:
        fmt = _object(fmt, "output_config.format")
        _only(fmt, ("type", "schema"), "output_config.format")
        if fmt.get("type") != "json_schema":
            raise _fail("output_config.format.type", f"{_shown(fmt.get('type'))} is not json_schema")
        response_format = {"type": "json_schema", "name": "response", "strict": True,
                           "schema": _object(_required(fmt, "schema", "output_config.format"),
                                             "output_config.format.schema")}
    return {"thinking": config, "response_format": response_format}


# --- ours -> OpenAI chat completions --------------------------------------------------------


def finish_reason(stop_reason: Any) -> str:
    """Our stop reason (a StopReason or its value) as an OpenAI ``finish_reason``."""
    return FINISH_REASONS.get(getattr(stop_reason, "value", stop_reason), "stop")


def usage_to_openai(usage: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _tool_call(block: Any) -> dict[str, Any]:
    return {"id": block.id, "type": "function", "function": {"name": block.name, "arguments": json.dumps(block.input)}}


def response_to_openai(response: Any) -> dict[str, Any]:
    """A CompletionResponse as an OpenAI ``chat.completion`` object.  Thinking text travels as
    ``reasoning_content`` (as DeepSeek and most OpenAI-compatible relays send it)."""
    text = "".join(block.text for block in response.content if block.type == "text")
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": response.refusal}
    calls = [_tool_call(block) for block in response.content if block.type == "tool_use"]
    if calls:
        message["tool_calls"] = calls
    thinking = "".join(block.thinking for block in response.content if block.type == "thinking")
    if thinking:
        message["reasoning_content"] = thinking
    return {
        "id": response.id or _made_up_id(), "object": "chat.completion", "created": int(time.time()),
        "model": response.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(response.stop_reason),
                     "logprobs": None}],
        "usage": usage_to_openai(response.usage),
    }


def _made_up_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def openai_chunks(stream: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Our StreamChunks as OpenAI ``chat.completion.chunk`` dicts, so an app that relays
    OpenAI's stream format keeps working with any provider behind it: a first chunk with the
    role, one per piece of output, one with the ``finish_reason``, and (when usage arrived) a
    last one with empty ``choices`` and the usage, as OpenAI sends with ``include_usage``.
    Tool calls are numbered 0, 1, ... in the order they begin, whatever index the provider
    used.  The caller adds ``data: `` framing and the closing ``[DONE]`` if it relays SSE."""
    head: dict[str, Any] = {}  # id, object, created, model: filled in by the first chunk that opens the answer
    tool_index: dict[int, int] = {}
    usage = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    for piece in stream:
        if not head and (piece.id or piece.model or piece.has_output or piece.stop_reason is not None):
            head.update(id=piece.id or _made_up_id(), object="chat.completion.chunk", created=int(time.time()),
                        model=piece.model or "")
            yield chunk({"role": "assistant", "content": ""})
        if piece.usage is not None:
            usage = piece.usage
        if not head:
            continue
        if piece.thinking:
            yield chunk({"reasoning_content": piece.thinking})
        if piece.text:
            yield chunk({"content": piece.text})
        if piece.refusal:
            yield chunk({"refusal": piece.refusal})
        call = piece.tool_call
        if call is not None:
            fragment: dict[str, Any] = {"arguments": call.arguments}
            entry: dict[str, Any] = {"index": tool_index.setdefault(call.index, len(tool_index)), "function": fragment}
            if call.id:
                entry["id"], entry["type"] = call.id, "function"
            if call.name:
                fragment["name"] = call.name
            yield chunk({"tool_calls": [entry]})
        if piece.stop_reason is not None:
            yield chunk({}, finish_reason(piece.stop_reason))
    if head and usage is not None:
        yield {**head, "choices": [], "usage": usage_to_openai(usage)}
