"""An append-only JSONL file that survives a crash: the common part of the batch runner's and
batch embedding's checkpoints (what a line holds is theirs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Iterator


class Journal:
    """Lines appended and flushed one at a time, so a crash loses at most the line being
    written; reopening after such a cut starts a fresh line, and readers skip what they
    cannot parse."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def lines(self) -> Iterator[str]:
        """The lines written so far (none when the file does not exist yet)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            yield from lines

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        if self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n"):
            self._file.write("\n")  # after a line cut short, start a fresh one

    def append(self, line: str) -> None:
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
