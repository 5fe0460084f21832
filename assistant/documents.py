"""PDF bytes -> a document record and its chunks with provenance, and chunks -> embeddings.

Everything short of writing to the store, so the library, the trainer's re-embedding and the benchmarks
all read and embed documents the same way.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np

from .chunking import chunk_page
from .cleaning import clean_pages, guess_title
from .config import Settings
from .encoder import Encoder
from .errors import DocumentError
from .naming import document_names
from .ocr import OcrOptions
from .ocr import word_boxes as ocr_word_boxes
from .passage_kinds import classify
from .pdf_reader import Limits, RawDocument, check_bytes, read_pdf
from .records import Chunk, DocumentInfo

PageCallback = Callable[..., None]  # (pages done, pages in all), and (index, pages in all, "ocr") before OCR
Reader = Callable[..., RawDocument]  # read_pdf, or an isolated worker's reader with the same signature


def document_id(data: bytes) -> str:
    """A document is its bytes: the same file uploaded twice is one document."""
    return hashlib.sha256(data).hexdigest()


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


def limits_of(settings: Settings) -> Limits:
    return Limits(max_bytes=int(settings.max_file_mb * 1e6), max_pages=settings.max_pages,
                  max_chars=settings.max_chars, max_seconds=settings.max_seconds_per_document)


def ocr_options(settings: Settings) -> OcrOptions:
    return OcrOptions(enabled=settings.ocr, language=settings.ocr_language, dpi=settings.ocr_dpi,
                      min_confidence=settings.ocr_min_confidence, page_seconds=settings.ocr_page_seconds)


def parse_pdf(data: bytes, file_name: str, encoder: Encoder, settings: Settings,
              on_page: PageCallback | None = None, reader: Reader = read_pdf,
              word_boxes: dict[int, list[list[Any]]] | None = None) -> tuple[DocumentInfo, list[Chunk]]:
    """Validate, extract, clean and chunk one PDF. Raises DocumentError with what to do. `word_boxes`, when
    given, receives the OCR word boxes of each page read by OCR ([text, left, top, right, bottom] in points)."""
    limits = limits_of(settings)
    check_bytes(data, limits)  # cheap refusals without a round trip to the worker
    raw = reader(data, limits, on_page=on_page, ocr=ocr_options(settings))
    if word_boxes is not None:
        word_boxes.update({page.number: ocr_word_boxes(page.ocr_words) for page in raw.pages if page.ocr_words})
    pages = clean_pages(raw.pages)
    doc_id = document_id(data)
    title = guess_title(pages, raw.metadata_title, file_name)
    size = max(16, min(settings.chunk_tokens, encoder.max_tokens - 48))
    overlap = min(settings.chunk_overlap, size // 2)
    chunks: list[Chunk] = []
    section = ""
    for page in pages:
        spans, section = chunk_page(page.text, encoder.count_tokens, size, overlap, section)
        for span in spans:
            text = page.text[span.start:span.end]
            chunks.append(Chunk(doc_id=doc_id, file_name=file_name, title=title, page=page.number,
                                page_label=page.label, section=span.section, chunk_index=len(chunks),
                                char_start=span.start, char_end=span.end, text=text,
                                kind=classify(text, span.section), read_by=page.read_by,
                                ocr_confidence=page.ocr_confidence))
    if not chunks:
        raise DocumentError("The PDF has pages but no text passages could be made from them. Check that this is "
                            "the right file.")
    codes, name_text = document_names(file_name, title, pages)
    info = DocumentInfo(doc_id=doc_id, file_name=file_name, title=title, pages=len(pages), chunks=len(chunks),
                        added=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), codes=codes,
                        name_text=name_text, reading_note=raw.reading_note)
    return info, chunks


def embedding_text(chunk: Chunk) -> str:
    """What the encoder sees for a passage: its title and section give it context it lacks alone."""
    head = " | ".join(part for part in (chunk.title, chunk.section) if part)
    return f"{head}\n{chunk.text}" if head else chunk.text


def embed_chunks(encoder: Encoder, chunks: list[Chunk], batch_size: int,
                 on_done: Callable[[int], None] | None = None) -> np.ndarray:
    """One unit vector per chunk, in chunk order; `on_done(n)` reports progress."""
    texts = [embedding_text(chunk) for chunk in chunks]
    # Longest first over the whole document, as one encode call would order them: batches of like
    # lengths pad far less than batches in page order (a fifth fewer tokens on real guidelines).
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    step = batch_size * 4
    parts = []
    for start in range(0, len(order), step):
        rows = order[start:start + step]
        parts.append(encoder.encode([texts[i] for i in rows], batch_size))
        if on_done:
            on_done(min(len(texts), start + step))
    if not parts:
        return encoder.encode([])
    vectors = np.empty_like(parts[0], shape=(len(texts), parts[0].shape[1]))
    vectors[order] = np.concatenate(parts)
    return vectors
