"""A picture of a PDF page, so a clinician can see the passage in its original layout, marked where it lies."""
from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from .files import read_words
from .ocr import OcrOptions, boxed_words, read_image
from .ocr import render as render_for_ocr
from .page_marks import Box, PageWord, Turn, ocr_words, passage_boxes, text_layer_words

log = logging.getLogger(__name__)
_pdfium_lock = threading.Lock()  # PDFium is not thread-safe
PASSAGE_FILL = (255, 214, 0, 70)  # translucent yellow over the passage
QUOTE_FILL = (255, 140, 0, 110)  # stronger orange over the quoted sentences
QUOTE_OUTLINE = (200, 90, 0, 255)


@lru_cache(maxsize=64)
def render_page(path: str, page: int, width: int = 900):
    """The physical page (1-based) of a PDF as a PIL image about `width` pixels wide."""
    image, _ = _render(path, page, width)
    return image


def _render(path: str, page: int, width: int) -> tuple[Any, float]:
    import pypdfium2 as pdfium

    with _pdfium_lock:
        document = pdfium.PdfDocument(Path(path))
        try:
            if not 1 <= page <= len(document):
                raise ValueError(f"page {page} is outside the document (1-{len(document)})")
            pdf_page = document[page - 1]
            scale = min(width / max(1.0, pdf_page.get_width()), 4.0)
            image = pdf_page.render(scale=scale).to_pil()
            pdf_page.close()
            return image, scale
        finally:
            document.close()


@lru_cache(maxsize=32)
def page_words(path: str, page: int, scanned: bool, ocr: OcrOptions) -> tuple[tuple[PageWord, ...], Turn]:
    """The page's words with their boxes: its text layer's, or OCR's for a page the upload read by OCR (kept at
    indexing; read again for a document indexed before they were kept). PDFium is held only to draw; tesseract
    runs without the lock, so other previews are not kept waiting."""
    import pypdfium2 as pdfium

    kept = read_words(Path(path), page) if scanned else None
    if kept is not None:  # the boxes OCR found when the document was indexed
        return tuple(ocr_words(boxed_words(kept))), Turn()
    with _pdfium_lock:
        document = pdfium.PdfDocument(Path(path))
        try:
            pdf_page = document[page - 1]
            if not (scanned and ocr.enabled):
                words, turn = text_layer_words(pdf_page)
                return tuple(words), turn
            image = render_for_ocr(pdf_page, ocr)
        finally:
            document.close()
    return tuple(ocr_words(read_image(image, ocr).words)), Turn()  # OCR read the page as drawn


def marked_page(path: str, page: int, passage: str, quotes: list[str], ocr: OcrOptions, scanned: bool = False,
                width: int = 1200) -> tuple[Any, list[Box], float]:
    """The page image with the passage marked (the quoted sentences more strongly); the boxes drawn, in PDF
    points, and the image's pixels per point. When the words cannot be had (OCR missing or failing), the page
    comes unmarked."""
    from PIL import Image, ImageDraw

    try:
        words, turn = page_words(path, page, scanned, ocr)
        boxes = [turn.box(box) for box in passage_boxes(list(words), passage, quotes)]
    except Exception as error:  # a picture without marks beats no picture
        log.warning("Could not find the words of page %d of %s: %s", page, Path(path).name, error)
        boxes = []
    image, scale = _render(path, page, width)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for box in sorted(boxes, key=lambda b: b.strong):  # quotes drawn last, on top
        left, top, right, bottom = box.scaled(scale)
        area = (left - 2, top - 2, right + 2, bottom + 2)
        if box.strong:
            draw.rectangle(area, fill=QUOTE_FILL, outline=QUOTE_OUTLINE, width=2)
        else:
            draw.rectangle(area, fill=PASSAGE_FILL)
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB"), boxes, scale
