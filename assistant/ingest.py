"""PDF -> pages -> clean text -> chunks with provenance -> embeddings -> one atomic write to the store.

`Library` is the one place that decides what an upload does: index it, say it is already indexed
(same bytes), replace an older version (same file name, new bytes), or refuse it with the reason.
Command line: `python -m assistant.ingest PATH...` (files or folders), `--list`, `--delete NAME`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import re
import sys
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from .chunking import chunk_page
from .cleaning import clean_pages, guess_title
from .config import Settings
from .errors import DocumentError
from .models import Encoder
from .isolation import shared_reader
from .pdf_reader import Limits, RawDocument, check_bytes, read_pdf
from .records import Chunk, DocumentInfo
from .store import GuidelineStore

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


@dataclass
class IngestResult:
    """One line of an upload report."""

    file_name: str
    status: str  # indexed | already indexed | replaced | refused
    message: str
    doc_id: str = ""
    title: str = ""
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def safe_file_name(name: str) -> str:
    """A display and storage name with no directories, control characters or absurd length."""
    name = unicodedata.normalize("NFC", str(name))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    if not name:
        name = "document.pdf"
    if not name.lower().endswith(".pdf"):
        name = f"{name}.pdf"
    if len(name) > 120:
        name = name[:116].rstrip() + ".pdf"
    return name


def embedding_text(chunk: Chunk) -> str:
    """What the encoder sees for a passage: its title and section give it context it lacks alone."""
    head = " | ".join(part for part in (chunk.title, chunk.section) if part)
    return f"{head}\n{chunk.text}" if head else chunk.text


def parse_pdf(data: bytes, file_name: str, encoder: Encoder, settings: Settings,
              on_page: Callable[[int, int], None] | None = None,
              reader: Callable[..., RawDocument] = read_pdf) -> tuple[DocumentInfo, list[Chunk]]:
    """Everything short of writing: validate, extract, clean, chunk. Raises DocumentError.

    `reader` extracts the pages; the library passes an isolated worker's reader (assistant.isolation).
    """
    limits = Limits(max_bytes=int(settings.max_file_mb * 1e6), max_pages=settings.max_pages,
                    max_chars=settings.max_chars, max_seconds=settings.max_seconds_per_document)
    check_bytes(data, limits)  # cheap refusals without a round trip to the worker
    raw = reader(data, limits, on_page=on_page)
    pages = clean_pages(raw.pages)
    doc_id = hashlib.sha256(data).hexdigest()
    title = guess_title(pages, raw.metadata_title, file_name)
    size = max(16, min(settings.chunk_tokens, encoder.max_tokens - 48))
    overlap = min(settings.chunk_overlap, size // 2)
    chunks: list[Chunk] = []
    section = ""
    for page in pages:
        spans, section_after = chunk_page(page.text, encoder.count_tokens, size, overlap, section)
        for span in spans:
            chunks.append(Chunk(doc_id=doc_id, file_name=file_name, title=title, page=page.number,
                                page_label=page.label, section=span.section, chunk_index=len(chunks),
                                char_start=span.start, char_end=span.end, text=page.text[span.start:span.end]))
        section = section_after
    if not chunks:
        raise DocumentError("The PDF has pages but no text passages could be made from them. If it is a scan, "
                            "run OCR first (for example `ocrmypdf in.pdf out.pdf`).")
    info = DocumentInfo(doc_id=doc_id, file_name=file_name, title=title, pages=len(pages), chunks=len(chunks),
                        added=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    return info, chunks


class Library:
    """The guideline library: uploads, replacement, deletion and re-indexing, over one store."""

    def __init__(self, settings: Settings, encoder: Encoder, store: GuidelineStore) -> None:
        self.settings = settings
        self.encoder = encoder
        self.store = store
        self._write_lock = threading.Lock()  # check-then-write must not interleave (same file twice)
        self._reader = shared_reader(settings.max_parse_memory_mb).read if settings.isolate_parsing else read_pdf
        settings.files_dir.mkdir(parents=True, exist_ok=True)

    def file_path(self, doc_id: str) -> Path:
        return self.settings.files_dir / f"{doc_id}.pdf"

    def add_bytes(self, data: bytes, file_name: str, progress: Progress | None = None) -> IngestResult:
        """Index one PDF. Never raises for a bad file: the result says why it was refused."""
        started = time.perf_counter()
        name = safe_file_name(file_name)
        report = progress or (lambda fraction, message: None)
        doc_id = hashlib.sha256(data).hexdigest()
        existing = self.store.get_document(doc_id)
        if existing:
            return IngestResult(name, "already indexed", f"{name} is already in the library (as "
                                f"{existing.file_name}); nothing changed.", doc_id, existing.title,
                                existing.pages, existing.chunks, round(time.perf_counter() - started, 2))
        try:
            info, chunks = parse_pdf(data, name, self.encoder, self.settings,
                                     on_page=lambda i, n: report(0.5 * i / n, f"Reading page {i} of {n}"),
                                     reader=self._reader)
            report(0.5, f"Embedding {len(chunks)} passages")
            vectors = self._embed(chunks, lambda done: report(0.5 + 0.45 * done / len(chunks),
                                                                f"Embedded {done} of {len(chunks)} passages"))
        except DocumentError as error:
            log.info("Refused %s: %s", name, error)
            return IngestResult(name, "refused", str(error), seconds=round(time.perf_counter() - started, 2))
        except Exception as error:  # a parser bug on a malformed file must not take the app down
            log.exception("Unexpected failure reading %s", name)
            return IngestResult(name, "refused", f"The PDF could not be processed ({type(error).__name__}). It may "
                                "be damaged: re-save it from a PDF viewer and upload it again.",
                                seconds=round(time.perf_counter() - started, 2))
        report(0.95, "Saving")
        with self._write_lock:
            if self.store.get_document(doc_id):
                return IngestResult(name, "already indexed", f"{name} is already in the library; nothing changed.",
                                    doc_id, info.title, info.pages, info.chunks,
                                    round(time.perf_counter() - started, 2))
            older = self.store.find_by_name(name)
            self._save_file(doc_id, data, name)
            try:
                self.store.add_document(info, chunks, vectors)
            except BaseException:
                self._remove_file(doc_id)
                raise
            for old in older:
                self.delete(old.doc_id)
        seconds = round(time.perf_counter() - started, 2)
        status = "replaced" if older else "indexed"
        verb = "Replaced the earlier version of" if older else "Indexed"
        report(1.0, "Done")
        log.info("%s %s: %d pages, %d chunks in %.1f s", status, name, info.pages, info.chunks, seconds)
        return IngestResult(name, status, f"{verb} {name}: {info.pages} pages, {info.chunks} passages, {seconds:.1f} s.",
                            doc_id, info.title, info.pages, info.chunks, seconds)

    def add_path(self, path: Path, progress: Progress | None = None) -> IngestResult:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            return IngestResult(Path(path).name, "refused", f"The file could not be read: {error.strerror}.")
        return self.add_bytes(data, Path(path).name, progress)

    def _embed(self, chunks: list[Chunk], on_done: Callable[[int], None]):
        import numpy as np

        texts = [embedding_text(chunk) for chunk in chunks]
        # Longest first over the whole document, as one encode call would order them: batches of like
        # lengths pad far less than batches in page order (a fifth fewer tokens on real guidelines).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batch = self.settings.embed_batch_size * 4
        parts = []
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            parts.append(self.encoder.encode([texts[i] for i in rows], self.settings.embed_batch_size))
            on_done(min(len(texts), start + batch))
        if not parts:
            return self.encoder.encode([])
        vectors = np.empty_like(parts[0], shape=(len(texts), parts[0].shape[1]))
        vectors[order] = np.concatenate(parts)
        return vectors

    def _save_file(self, doc_id: str, data: bytes, file_name: str) -> None:
        """Keep the PDF (page previews, re-indexing) and its name, written atomically in the data folder."""
        target = self.file_path(doc_id)
        staging = target.with_suffix(".part")
        staging.write_bytes(data)
        staging.replace(target)
        manifest = target.with_suffix(".json")
        staging = target.with_suffix(".json.part")
        staging.write_text(json.dumps({"file_name": file_name}))
        staging.replace(manifest)

    def _remove_file(self, doc_id: str) -> None:
        self.file_path(doc_id).unlink(missing_ok=True)
        self.file_path(doc_id).with_suffix(".json").unlink(missing_ok=True)

    def stored_files(self) -> dict[str, str]:
        """Every PDF kept in the data folder: document id -> file name."""
        stored = {}
        for manifest in sorted(self.settings.files_dir.glob("*.json")):
            pdf = manifest.with_suffix(".pdf")
            if pdf.is_file():
                try:
                    stored[manifest.stem] = json.loads(manifest.read_text())["file_name"]
                except (OSError, ValueError, KeyError):
                    log.warning("Unreadable manifest %s; its PDF is not re-indexed", manifest)
        return stored

    def delete(self, name_or_id: str) -> bool:
        """Delete by document id or file name; True when something was deleted."""
        matches = [info for info in self.store.list_documents() if name_or_id in (info.doc_id, info.file_name)]
        for info in matches:
            self.store.delete_document(info.doc_id)
            self._remove_file(info.doc_id)
            log.info("Deleted %s", info.file_name)
        return bool(matches)

    def documents(self) -> list[DocumentInfo]:
        return self.store.list_documents()

    def reindex_all(self, progress: Progress | None = None) -> list[IngestResult]:
        """Re-read every stored PDF into the current store: after new chunk settings, or a new passage encoder
        (whose collection version starts empty)."""
        stored = self.stored_files()
        for info in self.documents():
            stored.setdefault(info.doc_id, info.file_name)
        results = []
        for number, (doc_id, file_name) in enumerate(sorted(stored.items(), key=lambda item: item[1]), 1):
            if progress:
                progress((number - 1) / max(1, len(stored)), f"Re-indexing {file_name}")
            path = self.file_path(doc_id)
            if not path.is_file():
                results.append(IngestResult(file_name, "refused", "The stored copy of this PDF is missing; "
                                            "upload it again."))
                continue
            self.store.delete_document(doc_id)
            results.append(self.add_bytes(path.read_bytes(), file_name))
        return results

    def prepare(self, samples: Path, seed_samples: bool = True, progress: Progress | None = None
                ) -> list[IngestResult]:
        """At start-up, fill an empty collection: from the PDFs already kept in the data folder (a new encoder
        version), else from the sample guidelines (first start)."""
        if self.documents():
            return []
        if self.stored_files():
            log.info("The collection %s is empty but the data folder holds PDFs: re-indexing them", self.store.name)
            return self.reindex_all(progress)
        if not seed_samples:
            return []
        files = sorted(Path(samples).glob("*.pdf"))
        results = []
        for number, path in enumerate(files, 1):
            if progress:
                progress((number - 1) / max(1, len(files)), f"Indexing sample guideline {path.name}")
            results.append(self.add_path(path))
        return results


def expand_paths(paths: Iterable[str]) -> list[Path]:
    """Files as given, folders expanded to the PDFs inside them (recursively)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        found.extend(sorted(path.rglob("*.pdf")) if path.is_dir() else [path])
    return found


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from .service import build_library

    parser = argparse.ArgumentParser(prog="python -m assistant.ingest", description="Index guideline PDFs.")
    parser.add_argument("paths", nargs="*", help="PDF files or folders")
    parser.add_argument("--list", action="store_true", help="list the indexed documents")
    parser.add_argument("--delete", metavar="NAME", help="delete a document by file name or id")
    parser.add_argument("--config", help="settings TOML file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    library = build_library(args.config)
    status = 0
    if args.delete:
        deleted = library.delete(args.delete)
        log.info("%s %s", "Deleted" if deleted else "No document named", args.delete)
        status = 0 if deleted else 1
    files = expand_paths(args.paths)
    for path in tqdm(files, desc="Indexing", unit="file", disable=not files):
        result = library.add_path(path)
        tqdm.write(f"{result.status:>16}  {result.file_name}: {result.message}")
        status = status or (1 if result.status == "refused" else 0)
    if args.list or not (files or args.delete):
        for info in library.documents():
            sys.stdout.write(f"{info.file_name}\t{info.title}\t{info.pages} pages\t{info.chunks} chunks\t"
                             f"{info.added}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
