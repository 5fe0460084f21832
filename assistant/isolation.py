"""Read PDFs in a separate worker process, so a hostile file cannot hang or exhaust the app.

A decompression bomb or a pathological page can make a PDF parser run for hours or allocate gigabytes
inside a single call that no check between pages can interrupt. The worker (`python -m
assistant.isolation`) runs `read_pdf` under an address-space limit; the app waits for each answer with a
deadline and kills the worker when the deadline passes. The worker is started once and reused, so a
normal upload pays no start-up cost; a killed or crashed worker is replaced on the next upload.

It is a plain subprocess speaking length-prefixed pickles over stdin/stdout, not `multiprocessing`,
so it works from any host program (scripts, notebooks, servers) without main-module guards.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from .errors import CorruptPdfError, DocumentError, TooLargeError
from .ocr import OcrOptions
from .pdf_reader import Limits, RawDocument, read_pdf

log = logging.getLogger(__name__)
_HEADER = struct.Struct("!Q")


def _send(stream: IO[bytes], message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(fd: int, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("worker closed its output")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> Any:
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    return pickle.loads(_read_exact(fd, size))


def serve(memory_bytes: int) -> None:
    """Worker loop: one request (bytes, limits, OCR options) at a time; page progress and the result sent back."""
    import resource

    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the pipe
    while True:
        try:
            data, limits, ocr = _receive(requests.fileno())
        except EOFError:
            return
        try:
            document = read_pdf(data, limits, on_page=lambda *progress: _send(replies, ("page", *progress)), ocr=ocr)
            _send(replies, ("done", document))
        except DocumentError as error:
            _send(replies, ("refused", error))
        except MemoryError:
            _send(replies, ("refused", TooLargeError(
                "Reading this PDF needed more memory than one document may use: its contents expand far beyond "
                "its file size (a damaged file or a decompression bomb). Re-save it from a PDF viewer, or split it.")))
        except Exception as error:  # a parser bug: report it as a damaged file, keep serving
            _send(replies, ("refused", CorruptPdfError(
                f"The PDF could not be read ({type(error).__name__}). It may be damaged: re-save it from a PDF "
                "viewer and upload it again.")))


class IsolatedReader:
    """Calls `read_pdf` in a worker process with a deadline and a memory ceiling."""

    def __init__(self, memory_mb: int = 2048) -> None:
        self.memory_mb = memory_mb
        self._lock = threading.Lock()  # one document at a time per worker
        self._process: subprocess.Popen | None = None

    def _worker(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "assistant.isolation", str(self.memory_mb)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
                start_new_session=True)  # its own process group: tesseract, its child, is stopped with it
        return self._process

    def _kill(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)  # the worker and any tesseract it started
            self._process.wait(5)
        self._process = None

    def read(self, data: bytes, limits: Limits, on_page: Callable[..., None] | None = None,
             ocr: OcrOptions | None = None) -> RawDocument:
        with self._lock:
            worker = self._worker()
            deadline = time.monotonic() + limits.max_seconds
            assert worker.stdin is not None and worker.stdout is not None  # both are pipes
            try:
                _send(worker.stdin, (data, limits, ocr))
                output = worker.stdout.fileno()
                # selectors (poll/epoll), not select(): a busy app's pipe may be numbered above 1024
                with selectors.DefaultSelector() as waiting:
                    waiting.register(output, selectors.EVENT_READ)
                    while True:
                        if not waiting.select(max(0.0, deadline - time.monotonic())):
                            self._kill()
                            raise TooLargeError(
                                f"Reading the PDF took longer than {limits.max_seconds:.0f} s, the limit for one "
                                "document. Split it into parts, or raise max_seconds_per_document.")
                        message = _receive(output)
                        if message[0] == "page":
                            if on_page:
                                on_page(*message[1:])
                            continue
                        if message[0] == "done":
                            return message[1]
                        raise message[1]
            except (EOFError, BrokenPipeError, ConnectionResetError, pickle.UnpicklingError):
                self._kill()
                raise CorruptPdfError("Reading the PDF crashed the reader process: the file is damaged or hostile. "
                                      "Re-save it from a PDF viewer and upload it again.") from None

    def close(self) -> None:
        with self._lock:
            self._kill()


_shared: dict[int, IsolatedReader] = {}
_shared_lock = threading.Lock()


def shared_reader(memory_mb: int) -> IsolatedReader:
    """One worker per memory limit for the whole process: libraries and tests share it."""
    with _shared_lock:
        if memory_mb not in _shared:
            _shared[memory_mb] = IsolatedReader(memory_mb)
        return _shared[memory_mb]


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    serve(int(sys.argv[1]) * 1024 * 1024 if len(sys.argv) > 1 else 0)
