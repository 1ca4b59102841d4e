"""What a call did, shown in a notebook: the HTML and Markdown behind ``_repr_html_`` and
``_repr_markdown_`` of CompletionResponse and AllProvidersFailedError.

Jupyter renders these as they are, so everything that came from a model or a server (the
answer, tool arguments, error messages) is escaped: an answer holding ``<script>`` must show
as text, not run.  The attempts table is the point: it says which provider answered and why
the others did not, which a repr of nested dataclasses buries.
"""

from __future__ import annotations

import html
import json
from typing import Any, Iterable

_COLUMNS = ("provider", "model", "outcome", "elapsed_ms", "error_type", "status", "error")


def response_html(response: Any) -> str:
    parts = [f"<p>{_esc(_summary(response))}</p>"]
    if response.text:
        parts.append(f'<pre style="white-space: pre-wrap">{_esc(response.text)}</pre>')
    if response.refusal:
        parts.append(f"<p><b>refused:</b> {_esc(response.refusal)}</p>")
    parts += [f"<p><b>tool call</b> <code>{_esc(call.name)}({_esc(json.dumps(call.input))})</code></p>"
              for call in response.tool_calls]
    parts.append(attempts_html(response.attempts))
    return "\n".join(parts)


def response_markdown(response: Any) -> str:
    parts = [f"**{_md(_summary(response))}**"]
    if response.text:
        parts.append(_md(response.text))
    if response.refusal:
        parts.append(f"**refused:** {_md(response.refusal)}")
    parts += [f"**tool call** {_md(call.name)}({_md(json.dumps(call.input))})" for call in response.tool_calls]
    parts.append(attempts_markdown(response.attempts))
    return "\n\n".join(parts)


def failure_html(exc: Any) -> str:
    return f"<p><b>{_esc(type(exc).__name__)}</b>: {_esc(exc.args[0] if exc.args else '')}</p>\n" + attempts_html(
        exc.attempts)


def failure_markdown(exc: Any) -> str:
    return f"**{_md(type(exc).__name__)}**: {_md(str(exc.args[0]) if exc.args else '')}\n\n" + attempts_markdown(
        exc.attempts)


def attempts_html(attempts: Iterable[Any]) -> str:
    head = "".join(f"<th>{name}</th>" for name in _COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in _cells(a)) + "</tr>" for a in attempts)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def attempts_markdown(attempts: Iterable[Any]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(_md(cell).replace("|", "\\|").replace("\n", " ") for cell in _cells(a)) + " |"
              for a in attempts]
    return "\n".join(lines)


def _summary(response: Any) -> str:
    usage = response.usage
    cost = response.cost
    words = [response.provider or "?", response.model, response.stop_reason.value,
             f"{usage.input_tokens} in / {usage.output_tokens} out tokens"]
    if cost is not None:
        words.append(f"${cost:.6f}")
    return " · ".join(words)


def _cells(attempt: Any) -> list[str]:
    return ["" if getattr(attempt, name) is None else str(getattr(attempt, name)) for name in _COLUMNS]


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _md(text: str) -> str:
    """Text for Markdown: Jupyter's Markdown lets raw HTML through, so that is escaped."""
    return html.escape(text, quote=False)
