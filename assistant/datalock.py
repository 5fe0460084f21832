"""One writing process per data folder: the embedded Chroma store does not see another process's writes.

An app and a command line (or two apps) changing the same folder would each work on a stale view: a PDF one
of them indexes is invisible to the other, and a start-up recovery in one can delete the chunks the other is
writing. The first process that writes takes an exclusive lock on `<data_dir>/writer.lock` for its lifetime
(the kernel releases it when the process ends, even by kill -9); another writer gets a message naming the
holder, and readers open the store without recovering or writing. A Chroma server needs no lock here: the
server orders the writes of all its clients.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO

from .errors import AssistantError

LOCK_NAME = "writer.lock"

_held: dict[Path, IO[str]] = {}  # folders this process writes, with the open file that holds the lock
_guard = threading.Lock()


class DataFolderBusy(AssistantError):
    """Another process is changing this data folder."""


def holds(folder: Path) -> bool:
    return Path(folder).resolve() in _held


def acquire(folder: Path) -> None:
    """Make this process the folder's writer (again: a no-op), or raise DataFolderBusy naming the holder."""
    folder = Path(folder).resolve()
    with _guard:
        if folder in _held:
            return
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / LOCK_NAME).open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            raise DataFolderBusy(
                f"The data folder {folder} is being changed by another process ({holder}). Only one process may "
                "change it at a time: add or delete documents through that process (the running app's Library "
                "tab or /upload), or stop it first.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv)[:200],
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        _held[folder] = handle


def try_acquire(folder: Path) -> bool:
    """Become the writer if nobody else is; False when another process is."""
    try:
        acquire(folder)
    except DataFolderBusy:
        return False
    return True


def _describe(note: str) -> str:
    try:
        data = json.loads(note)
        return f"pid {data['pid']}: {data['command']}, since {data['since']}"
    except (ValueError, KeyError, TypeError):
        return "unknown process"
