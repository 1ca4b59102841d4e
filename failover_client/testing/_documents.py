"""Document content in requests, checked as each real API checks it (protocols-documents-errors.md
part A): what the API accepts passes, and what it refuses gets its error, so a client that maps a
document wrongly fails here as it would there.  Each function returns a problem or None; the
protocol modules shape it into their own error."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ._protocol import ErrorSpec

INVALID = "invalid_request_error"
PDF_DATA_URL = "data:application/pdf;base64,"
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.DOTALL)
ANTHROPIC_SOURCES = {  # source type -> required fields (with the one allowed media type, if any)
    "base64": {"media_type": "application/pdf", "data": None},
    "text": {"media_type": "text/plain", "data": None},
    "url": {"url": None},
    "file": {"file_id": None},
    "content": {"content": None},
}
# MIME types Gemini reads as documents, besides images, audio and video (A.4).
GEMINI_DOCUMENT_TYPES = frozenset({"application/pdf", "text/plain", "text/html", "text/css", "text/csv", "text/xml",
                                   "text/markdown", "text/rtf", "application/json", "application/x-javascript",
                                   "text/javascript", "application/x-python", "text/x-python"})
BEDROCK_FORMATS = frozenset({"pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"})
BEDROCK_SOURCES = frozenset({"bytes", "s3Location", "text", "content"})
_BEDROCK_NAME = re.compile(r"^(?!.*\s\s)[A-Za-z0-9\s\-()\[\]]{1,200}$")


def _is_base64(data: Any, urlsafe: bool = False) -> bool:
    if not isinstance(data, str) or not data:
        return False
    try:
        if urlsafe:
            base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            return re.fullmatch(r"[A-Za-z0-9_\-+/]*=*", data) is not None
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _parts(messages: Any, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, part) for every dict part in ``messages[i][key]`` lists."""
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get(key) if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict):
                yield f"{i}.{key}.{j}", part


def anthropic(body: Mapping[str, Any]) -> ErrorSpec | None:
    """``document`` blocks: a known source type with its fields; base64 only for PDFs."""
    for path, block in _parts(body.get("messages"), "content"):
        if block.get("type") != "document":
            continue
        source = block.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        if kind not in ANTHROPIC_SOURCES:
            return ErrorSpec(400, INVALID, f"messages.{path}.document.source: Input tag {kind!r} found using "
                                           f"'type' does not match any of the expected tags: "
                                           f"{', '.join(map(repr, ANTHROPIC_SOURCES))}")
        for field, expected in ANTHROPIC_SOURCES[kind].items():
            value = source.get(field)
            if value in (None, "", []) or (expected is not None and value != expected):
                wanted = f"Input should be {expected!r}" if expected else "Field required"
                return ErrorSpec(400, INVALID, f"messages.{path}.document.source.{kind}.{field}: {wanted}")
        if kind == "base64" and not _is_base64(source["data"]):
            return ErrorSpec(400, INVALID, f"messages.{path}.pdf.source.base64.data: The PDF specified was not valid.")
    return None


def openai_chat(body: Mapping[str, Any]) -> ErrorSpec | None:
    """``file`` parts: a PDF data URL with its file name, or a file id; nothing else."""
    for path, part in _parts(body.get("messages"), "content"):
        if part.get("type") != "file":
            continue
        where = "messages[{}].content[{}].file".format(*path.split(".")[::2])
        file = part.get("file") if isinstance(part.get("file"), dict) else {}
        unknown = sorted(set(file) - {"file_data", "file_id", "filename"})
        if unknown:
            return ErrorSpec(400, INVALID, f"Unknown parameter: '{where}.{unknown[0]}'.", code="unknown_parameter",
                             param=f"{where}.{unknown[0]}")
        if "file_id" in file:
            continue
        if "file_data" not in file or "filename" not in file:
            return ErrorSpec(400, INVALID, f"Missing required parameter: '{where}.file_id'.",
                             code="missing_required_parameter", param=f"{where}.file_id")
        problem = _data_url_problem(file["file_data"], "application/pdf")
        if problem:
            return ErrorSpec(400, INVALID, f"Invalid file data: '{where}.file_data'. Expected a base64-encoded data "
                                           f"URL with an application/pdf MIME type (e.g. '{PDF_DATA_URL}...'), but "
                                           f"got {problem}.", code="invalid_value", param=f"{where}.file_data")
    return None


def responses(body: Mapping[str, Any]) -> ErrorSpec | None:
    """``input_file`` items: exactly one of a data URL (any type), a file id or a file URL."""
    for path, part in _parts(body.get("input"), "content"):
        if part.get("type") != "input_file":
            continue
        where = "input[{}].content[{}]".format(*path.split(".")[::2])
        given = [key for key in ("file_data", "file_id", "file_url") if part.get(key)]
        if len(given) != 1:
            return ErrorSpec(400, INVALID, f"Invalid '{where}': exactly one of file_data, file_id or file_url must "
                                           "be given.", code="invalid_value", param=where)
        if given == ["file_data"]:
            problem = _data_url_problem(part["file_data"], None)
            if problem:
                return ErrorSpec(400, INVALID, f"Invalid file data: '{where}.file_data'. Expected a base64-encoded "
                                               "data URL with a valid file MIME type (e.g. 'data:text/plain;base64,"
                                               f"...'), but got {problem}.", code="invalid_value",
                                 param=f"{where}.file_data")
    return None


def _data_url_problem(value: Any, media_type: str | None) -> str | None:
    match = _DATA_URL.match(value) if isinstance(value, str) else None
    if match is None or not _is_base64(match.group(2)):
        return "an invalid base64-encoded value"
    if media_type is not None and match.group(1) != media_type:
        return f"unsupported MIME type '{match.group(1)}'"
    return None


def gemini(contents: Any) -> str | None:
    """``inlineData``/``fileData`` parts (either spelling) of a document type: a readable MIME
    type, and base64 in either alphabet for inline data."""
    for path, part in _parts(contents, "parts"):
        for key in ("inlineData", "inline_data", "fileData", "file_data"):
            blob = part.get(key)
            if not isinstance(blob, dict):
                continue
            mime = blob.get("mimeType") or blob.get("mime_type")
            if not mime:
                if key.startswith("file"):
                    continue  # a Files API URI carries its own type
                return f"* GenerateContentRequest.contents[{path.split('.')[0]}].parts[{path.split('.')[2]}]" \
                       f".inline_data.mime_type: mime_type is not specified\n"
            if not mime.startswith(("image/", "audio/", "video/")) and mime not in GEMINI_DOCUMENT_TYPES:
                return f"Unsupported MIME type: {mime}"
            if key.startswith("inline") and not _is_base64(blob.get("data"), urlsafe=True):
                return f"Invalid value at 'contents[{path.split('.')[0]}].parts[{path.split('.')[2]}].inline_data" \
                       ".data' (TYPE_BYTES), Base64 decoding failed"
    return None


def bedrock(messages: Any) -> str | None:
    """``document`` blocks: a known format, a name of the allowed characters, one source member."""
    for path, block in _parts(messages, "content"):
        document = block.get("document")
        if not isinstance(document, dict):
            continue
        where = f"messages.{path.split('.')[0]}.member.content.{path.split('.')[2]}.member.document"
        if document.get("format") not in BEDROCK_FORMATS:
            return f"1 validation error detected: Value '{document.get('format')}' at '{where}.format' failed to " \
                   f"satisfy constraint: Member must satisfy enum value set: {sorted(BEDROCK_FORMATS)}"
        if not isinstance(document.get("name"), str) or not _BEDROCK_NAME.match(document["name"]):
            return "The format of the value at messages.{}.content.{}.document.name is invalid. Provide a name " \
                   "containing only alphanumeric characters, whitespace characters, hyphens, parentheses, or " \
                   "square brackets, with no consecutive whitespace.".format(*path.split(".")[::2])
        source = document.get("source")
        if not isinstance(source, dict) or len(source) != 1 or next(iter(source)) not in BEDROCK_SOURCES:
            return f"{where}.source: exactly one of {sorted(BEDROCK_SOURCES)} must be set"
        if "bytes" in source and not _is_base64(source["bytes"]):
            return f"{where}.source.bytes: the value is not valid base64"
    return None
