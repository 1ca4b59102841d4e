"""Print the README's table of named providers, as reStructuredText, from the catalog itself.

    python scripts/providers_table.py > providers.rst

The README section is this output, so the table cannot drift from what ``create()`` knows.
"""

from __future__ import annotations

import sys

from failover_client.providers.catalog import CATALOG, RESPONSES_ROWS, ProviderSpec


def literal(text: str) -> str:
    return f"``{text}``"


def key_cell(row: ProviderSpec) -> str:
    """The key variable, then the variable behind each URL parameter."""
    parts = [literal(row.api_key_env) if row.api_key_env else "none" if row.local else "see notes"]
    parts += [f"{literal(variable)} for ``{{{param}}}``" for param, variable in row.params.items()]
    return "; ".join(parts)


def notes_cell(row: ProviderSpec) -> str:
    """The row's notes, and the Responses API where the row serves it too."""
    parts = [row.notes] if row.notes else []
    if row.name in RESPONSES_ROWS:
        parts.append('also the Responses API: ``create(..., api="responses")``')
    return "; ".join(parts)


def table(rows: tuple[ProviderSpec, ...] = CATALOG) -> str:
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 14 8 36 22 20",
        "",
        "   * - Name",
        "     - Protocol",
        "     - Base URL",
        "     - Key variable",
        "     - Notes",
    ]
    for row in rows:
        lines += [
            f"   * - {literal(row.name)}",
            f"     - {row.protocol}",
            f"     - {literal(row.base_url)}",
            f"     - {key_cell(row)}",
            f"     - {notes_cell(row)}" if notes_cell(row) else "     -",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
