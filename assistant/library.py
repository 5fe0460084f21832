"""The guideline library: what an upload does, over one store and the kept PDF files.

`Library` is the one place that decides what an upload does: index it, say it is already indexed
(same bytes), replace an older version (same file name, new bytes), or refuse it with the reason.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from dataclasses import replace as replace_fields
from pathlib import Path
from typing import Any

import numpy as np

from . import lookalike
from .config import Settings
from .documents import Reader, document_id, embed_chunks, parse_pdf, safe_file_name
from .encoder import Encoder
from .errors import DocumentError
from .files import PdfFiles
from .isolation import shared_reader
from .pdf_reader import read_pdf
from .records import Chunk, DocumentInfo
from .store import GuidelineStore

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]  # (fraction done, what is happening)


def reading_message(done: int, count: int, how: str = "") -> str:
    """The progress line while pages are read: a page going to OCR takes seconds, and says so."""
    if how == "ocr":
        return f"Reading page {done + 1} of {count} by OCR (it has no text layer: a few seconds a page)"
    return f"Reading page {done} of {count}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _done(verb: str, name: str, info: DocumentInfo, seconds: float) -> str:
    """The result line of a document written: its size, time, and what OCR read or left out."""
    message = f"{verb} {name}: {_count(info.pages, 'page')}, {_count(info.chunks, 'passage')}, {seconds:.1f} s."
    if info.reading_note:
        message += f" {info.reading_note[0].upper()}{info.reading_note[1:]}."
    return message


def _quiet(fraction: float, message: str) -> None:
    """A progress callback for callers that do not show progress."""


@dataclass
class IngestResult:
    """One line of an upload report."""

    file_name: str
    status: str  # indexed | already indexed | replaced | re-indexed | refused
    message: str
    doc_id: str = ""
    title: str = ""
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_reader(settings: Settings) -> Reader:
    """The isolated worker's reader (deadline, memory ceiling), or the in-process one when switched off."""
    return shared_reader(settings.max_parse_memory_mb).read if settings.isolate_parsing else read_pdf


class Library:
    """The guideline library: uploads, replacement, deletion and re-indexing, over one store."""

    def __init__(self, settings: Settings, encoder: Encoder, store: GuidelineStore, reader: Reader | None = None,
                 files: PdfFiles | None = None) -> None:
        self.settings = settings
        self.encoder = encoder
        self.store = store
        self.reader = reader or default_reader(settings)
        self.files = files or PdfFiles(settings.files_dir)
        self._write_lock = threading.Lock()  # check-then-write must not interleave (same file twice)

    def file_path(self, doc_id: str) -> Path:
        return self.files.path(doc_id)

    def _already(self, name: str, existing: DocumentInfo, started: float) -> IngestResult:
        return IngestResult(name, "already indexed", f"{name} is already in the library (as {existing.file_name}); "
                            "nothing changed.", existing.doc_id, existing.title, existing.pages, existing.chunks,
                            round(time.perf_counter() - started, 2))

    def add_bytes(self, data: bytes, file_name: str, progress: ProgressCallback | None = None,
                  replace: bool = False) -> IngestResult:
        """Index one PDF. Never raises for a bad file: the result says why it was refused.

        A document with the same file name is replaced only when `replace` is asked for; otherwise the new
        one is added beside it under a numbered name ("name (2).pdf"), so no client can silently swap a
        trusted guideline for its own file."""
        started = time.perf_counter()
        name = safe_file_name(file_name)
        report = progress or _quiet
        doc_id = document_id(data)
        existing = self.store.get_document(doc_id)
        if existing:
            return self._already(name, existing, started)
        read = self._read(data, name, report, started)
        if isinstance(read, IngestResult):
            return read
        info, chunks, vectors, boxes = read
        report(0.95, "Saving")
        with self._write_lock:
            existing = self.store.get_document(doc_id)
            if existing:
                return self._already(name, existing, started)
            older = self.store.find_by_name(name) if replace else []
            requested, name = name, self._free_name(name) if not replace else name
            info = replace_fields(info, file_name=name)
            chunks = [replace_fields(chunk, file_name=name) for chunk in chunks]
            self.files.save(doc_id, data, name)
            try:
                self.files.save_words(doc_id, boxes)
                self.store.add_document(info, chunks, vectors)
            except BaseException:
                self.files.remove(doc_id)
                raise
            self.files.commit(doc_id)
            for old in older:
                self.delete(old.doc_id)
        seconds = round(time.perf_counter() - started, 2)
        status = "replaced" if older else "indexed"
        verb = "Replaced the earlier version of" if older else "Indexed"
        report(1.0, "Done")
        log.info("%s %s: %d pages, %d chunks in %.1f s", status, name, info.pages, info.chunks, seconds)
        message = _done(verb, name, info, seconds)
        message += lookalike.warning(name, [d.file_name for d in self.documents() if d.doc_id != doc_id])
        if name != requested:
            message += (f" The library already holds a document named {requested}, so this one was added beside "
                        f"it as {name} and nothing was replaced. To replace {requested}, upload again with "
                        "replacing chosen.")
        return IngestResult(name, status, message, doc_id, info.title, info.pages, info.chunks, seconds)

    def _free_name(self, name: str) -> str:
        """The name itself when no document has it, else "stem (n).pdf" with the smallest free n."""
        taken = {info.file_name.casefold() for info in self.store.list_documents()}
        if name.casefold() not in taken:
            return name
        stem, dot, suffix = name.rpartition(".")
        stem, suffix = (stem, dot + suffix) if dot else (name, "")
        number = 2
        while f"{stem} ({number}){suffix}".casefold() in taken:
            number += 1
        return f"{stem} ({number}){suffix}"

    def _read(self, data: bytes, name: str, report: ProgressCallback, started: float
              ) -> tuple[DocumentInfo, list[Chunk], np.ndarray, dict[int, list[list[Any]]]] | IngestResult:
        """Pages -> chunks -> vectors (and OCR's word boxes), with nothing written; a refusal comes back as the
        result to show."""
        boxes: dict[int, list[list[Any]]] = {}
        try:
            info, chunks = parse_pdf(data, name, self.encoder, self.settings,
                                     on_page=lambda i, n, how="": report(0.5 * i / n, reading_message(i, n, how)),
                                     reader=self.reader, word_boxes=boxes)
            report(0.5, f"Embedding {len(chunks)} passages")
            vectors = embed_chunks(self.encoder, chunks, self.settings.embed_batch_size,
                                   lambda done: report(0.5 + 0.45 * done / len(chunks),
                                                       f"Embedded {done} of {len(chunks)} passages"))
        except DocumentError as error:
            log.info("Refused %s: %s", name, error)
            return IngestResult(name, "refused", str(error), seconds=round(time.perf_counter() - started, 2))
        except Exception as error:  # a parser bug on a malformed file must not take the app down
            log.exception("Unexpected failure reading %s", name)
            return IngestResult(name, "refused", f"The PDF could not be processed ({type(error).__name__}). It may "
                                "be damaged: re-save it from a PDF viewer and upload it again.",
                                seconds=round(time.perf_counter() - started, 2))
        return info, chunks, vectors, boxes

    def add_path(self, path: Path, progress: ProgressCallback | None = None, replace: bool = False) -> IngestResult:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            return IngestResult(Path(path).name, "refused", f"The file could not be read: {error.strerror}.")
        return self.add_bytes(data, Path(path).name, progress, replace)

    def delete(self, name_or_id: str) -> bool:
        """Delete by document id or file name; True when something was deleted."""
        matches = [info for info in self.store.list_documents() if name_or_id in (info.doc_id, info.file_name)]
        for info in matches:
            self.files.mark_deleting(info.doc_id)
            self.store.delete_document(info.doc_id)
            self.files.remove(info.doc_id)
            log.info("Deleted %s", info.file_name)
        return bool(matches)

    def documents(self) -> list[DocumentInfo]:
        return self.store.list_documents()

    def reindex_all(self, progress: ProgressCallback | None = None) -> list[IngestResult]:
        """Re-read every stored PDF into the current store: after new chunk settings, or a new passage encoder
        (whose collection version starts empty)."""
        stored = self.files.stored()
        for info in self.documents():
            stored.setdefault(info.doc_id, info.file_name)
        results = []
        for number, (doc_id, file_name) in enumerate(sorted(stored.items(), key=lambda item: item[1]), 1):
            if progress:
                progress((number - 1) / max(1, len(stored)), f"Re-indexing {file_name}")
            path = self.files.path(doc_id)
            if not path.is_file():
                results.append(IngestResult(file_name, "refused", "The stored copy of this PDF is missing; "
                                            "upload it again."))
                continue
            results.append(self.rewrite(doc_id, path.read_bytes(), file_name))
        return results

    def rewrite(self, doc_id: str, data: bytes, file_name: str) -> IngestResult:
        """Read a kept PDF again into the store. A registered document stays registered and answerable
        throughout: its new chunks are committed beside the old ones and replace them in one step."""
        started = time.perf_counter()
        if not self.store.get_document(doc_id):
            return self.add_bytes(data, file_name)
        read = self._read(data, file_name, _quiet, started)
        if isinstance(read, IngestResult):
            return read  # the registered writing stays as it was
        info, chunks, vectors, boxes = read
        with self._write_lock:
            info = self.store.replace_document(info, chunks, vectors)
            self.files.save_words(doc_id, boxes)
        seconds = round(time.perf_counter() - started, 2)
        log.info("re-indexed %s: %d pages, %d chunks in %.1f s", file_name, info.pages, info.chunks, seconds)
        return IngestResult(file_name, "re-indexed", _done("Re-indexed", file_name, info, seconds), doc_id, info.title,
                            info.pages, info.chunks, seconds)

    def tidy(self) -> list[IngestResult]:
        """What a crash left in the kept files, settled at start-up (logged): an interrupted upload or deletion
        is removed; a committed PDF the registry lacks (an older version's re-index lost it) is restored."""
        registered = {info.doc_id for info in self.documents()}
        restored = []
        for doc_id, (name, state) in self.files.entries().items():
            if state == "pending" and doc_id in registered:
                self.files.commit(doc_id)  # the crash fell between the commit and this mark
            elif state == "pending":
                self.files.remove(doc_id)
                log.warning("Removed %s: its upload was interrupted before it was saved (upload it again)", name)
            elif state == "deleting":
                self.store.delete_document(doc_id)
                self.files.remove(doc_id)
                log.warning("Finished deleting %s: its deletion was interrupted", name)
            elif doc_id not in registered and registered:
                log.warning("Restoring %s: its PDF is kept but the library had lost it", name)
                restored.append(self.add_bytes(self.files.path(doc_id).read_bytes(), name))
        return restored

    def prepare(self, samples: Path, seed_samples: bool = True, progress: ProgressCallback | None = None
                ) -> list[IngestResult]:
        """At start-up, fill an empty collection: from the PDFs already kept in the data folder (a new encoder
        version), else from the sample guidelines (first start)."""
        restored = self.tidy()
        if self.documents():
            return restored
        if self.files.stored():
            log.info("The collection %s is empty but the data folder holds PDFs: re-indexing them", self.store.name)
            return self.reindex_all(progress)
        if not seed_samples:
            return []
        paths = sorted(Path(samples).glob("*.pdf"))
        results = []
        for number, path in enumerate(paths, 1):
            if progress:
                progress((number - 1) / max(1, len(paths)), f"Indexing sample guideline {path.name}")
            results.append(self.add_path(path))
        return results
