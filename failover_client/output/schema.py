"""The JSON value of a structured-output answer, checked against the request's JSON schema.

Providers promise schema-conforming JSON for ``ResponseFormat.json_schema`` requests, yet an
answer cut off at ``max_tokens``, a refusal, a model that wraps its JSON in a Markdown fence, or
a provider that treats the schema as a hint all reach the caller as text.  :func:`parse_answer`
turns that text into the value or an :class:`~failover_client.errors.InvalidOutputError` that
says what was wrong, so a caller never meets a bare ``json.JSONDecodeError``.

The check is :func:`check`, a small validator of our own for the part of JSON Schema that
structured output uses: ``type``, ``required``, ``properties``, ``additionalProperties``,
``items``, ``enum``, ``const``, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``s (Pydantic's
``$defs``).  Keywords it does not know (formats, lengths, ranges) pass.  Where the optional
``jsonschema`` package is installed (the ``schema`` extra), :func:`validate` uses it instead, for
the whole of JSON Schema.  Only the errors module is imported: types.py imports this one.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator, Mapping

from ..errors import InvalidOutputError

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n(.*)\n```$", re.DOTALL)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "number": (int, float), "integer": (int, float),
}
_EXCERPT = 80


def parse_answer(text: str, schema: Mapping[str, Any] | None, *, refusal: str | None = None,
                 cut_off: bool = False, provider: str | None = None, model: str | None = None) -> Any:
    """The JSON value of an answer's ``text``, checked against ``schema`` when one is given.
    A single Markdown code fence around the JSON is removed.  ``cut_off``: the answer stopped at
    ``max_tokens`` (said in the error, as it is the usual cause of broken JSON)."""

    def invalid(message: str) -> InvalidOutputError:
        return InvalidOutputError(message, provider=provider, model=model)

    if refusal:
        raise invalid(f"the model refused instead of answering with JSON: {refusal[:_EXCERPT]!r}")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    why_cut = " (the answer was cut off at max_tokens)" if cut_off else ""
    if not body:
        raise invalid(f"the answer is empty, not JSON{why_cut}")
    try:
        value = json.loads(body)
    except ValueError as exc:
        where = f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise invalid(f"the answer is not JSON{why_cut}: {where}; it begins {body[:_EXCERPT]!r}") from None
    if schema:
        problem = validate(value, schema)
        if problem:
            raise invalid(f"the answer does not match the schema{why_cut}: {problem}")
    return value


def validate(value: Any, schema: Mapping[str, Any]) -> str | None:
    """What is wrong with ``value`` under ``schema`` ("$.path: problem"), or None: by the
    ``jsonschema`` package when it is installed, else by :func:`check`."""
    try:
        from jsonschema import exceptions, validators
    except ImportError:
        return check(value, schema)
    validator = validators.validator_for(schema)(schema)
    error = exceptions.best_match(validator.iter_errors(value))
    return None if error is None else f"{error.json_path}: {error.message}"


def check(value: Any, schema: Mapping[str, Any]) -> str | None:
    """What is wrong with ``value`` under the supported part of ``schema``, or None."""
    return next(_problems(value, schema, schema, "$"), None)


def _problems(value: Any, schema: Any, root: Mapping[str, Any], path: str) -> Iterator[str]:
    """Every problem found, the outermost first (a wrong type stops the look inside)."""
    if not isinstance(schema, Mapping):
        return  # true/false schemas and malformed parts: nothing we can check
    if "$ref" in schema:
        target = _resolve(schema["$ref"], root)
        if target is None:
            yield f"{path}: the schema's $ref {schema['$ref']!r} cannot be resolved"
            return
        yield from _problems(value, target, root, path)
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, name) for name in names):
            yield f"{path}: expected {' or '.join(map(str, names))}, got {_type_name(value)} {_excerpt(value)}"
            return
    if "const" in schema and not _same(value, schema["const"]):
        yield f"{path}: expected {json.dumps(schema['const'])}, got {_excerpt(value)}"
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        yield f"{path}: {_excerpt(value)} is not one of {json.dumps(schema['enum'])[:_EXCERPT]}"
    for keyword in ("anyOf", "oneOf"):
        options = schema.get(keyword)
        if options and all(next(_problems(value, option, root, path), None) for option in options):
            yield f"{path}: matches none of the {keyword} alternatives"
    for option in schema.get("allOf") or ():
        yield from _problems(value, option, root, path)
    if isinstance(value, dict):
        yield from _object_problems(value, schema, root, path)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from _problems(item, schema["items"], root, f"{path}[{i}]")


def _object_problems(value: dict[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any],
                     path: str) -> Iterator[str]:
    for key in schema.get("required") or ():
        if key not in value:
            yield f"{path}: missing required key {key!r}"
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        where = f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"
        if key in properties:
            yield from _problems(item, properties[key], root, where)
        elif extra is False:
            yield f"{path}: unexpected key {key!r} (the schema allows no other keys)"
        elif isinstance(extra, Mapping):
            yield from _problems(item, extra, root, where)


def _resolve(ref: Any, root: Mapping[str, Any]) -> Any:
    """A local reference (``#``, ``#/$defs/Name``) in the root schema; None when it is not one."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    target: Any = root
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or part not in target:
            return None
        target = target[part]
    return target


def _is_type(value: Any, name: Any) -> bool:
    kinds = _JSON_TYPES.get(name)
    if kinds is None:
        return True  # an unknown type name: not ours to judge
    if isinstance(value, bool):
        return name == "boolean"
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, kinds)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return next((name for name, kinds in _JSON_TYPES.items() if isinstance(value, kinds)), type(value).__name__)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 and True differ (Python's == says they are equal)."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _excerpt(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."
