"""A row-per-item log that lets a long job (an evaluation, a benchmark) resume where it was stopped.

An evaluation of the test split takes about half an hour per system on a CPU, longer than the time a
machine may give a process; without this log a stopped run starts again from its first question.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ProgressLog:
    """Rows appended to a JSON-lines file as each item finishes.

    `resume=False` starts afresh (the file is removed); otherwise the rows already in it are kept and
    `done(key)` says which items to skip. A row's key is the tuple of its `key_fields`. A line torn by a
    process killed while writing it is ignored, so that item is simply done again.
    """

    def __init__(self, path: Path, key_fields: Sequence[str], resume: bool) -> None:
        self.path = path
        self.key_fields = tuple(key_fields)
        if not resume:
            path.unlink(missing_ok=True)
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        text = path.read_text() if path.is_file() else ""
        # a line torn by an earlier kill must not swallow the next row: that row starts a line of its own
        self._torn_end = bool(text) and not text.endswith("\n")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is incomplete (a stopped write); that item runs again", path, number)
                continue
            self.rows[self.key(row)] = row

    def key(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.key_fields)

    def done(self, key: tuple[Any, ...]) -> bool:
        return key in self.rows

    def add(self, row: dict[str, Any]) -> None:
        """Keep the row and append it to the file, on disk before the next item starts."""
        self.rows[self.key(row)] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(("\n" if self._torn_end else "") + json.dumps(row) + "\n")
            self._torn_end = False
            handle.flush()
            os.fsync(handle.fileno())
