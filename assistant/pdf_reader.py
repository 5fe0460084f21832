"""PDF bytes -> raw page texts, refusing what cannot be indexed with a message that says what to do."""
from __future__ import annotations

import codecs
import io
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import CorruptPdfError, EncryptedPdfError, NotAPdfError, NoTextError, TooLargeError
from .ocr import OcrOptions, OcrTimeout, OcrUnavailable, OcrWord, check_available
from .ocr import read_page as ocr_page

log = logging.getLogger(__name__)

# Magic numbers of files people upload by mistake, to say what the file really is.
_OTHER_FORMATS = [
    (b"PK\x03\x04", "a ZIP archive or an Office document (.docx, .xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.doc, .xls)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"{\\rtf", "an RTF document"),
]
_REDO = "Download it again, or re-save it from a PDF viewer (or print it to PDF), and upload the new copy."
MIN_CHARS_PER_PAGE = 25  # below this on average, the PDF is treated as scanned; a page below it is read by OCR
MIN_OUTLINE_SHAPES = 50  # drawn shapes on a page without text that suggest letters drawn as outlines


@dataclass
class RawPage:
    number: int  # physical page, 1-based
    label: str | None  # printed label from the PDF's /PageLabels, when the PDF declares them
    text: str
    read_by: str = "text"  # text (the PDF's text layer) | ocr (a scanned or outlined page, read by tesseract)
    ocr_confidence: float = 0.0  # mean word confidence (0-100) when read by OCR
    ocr_words: list[OcrWord] = field(default_factory=list)  # the words and their boxes, when read by OCR
    skipped: str = ""  # why the page's text was left out (too poor to read), when it was


@dataclass
class RawDocument:
    pages: list[RawPage]
    metadata_title: str

    @property
    def reading_note(self) -> str:
        """Which pages OCR read, and which it could not: for the upload report and the library table."""
        read = [page for page in self.pages if page.read_by == "ocr"]
        skipped = [page for page in self.pages if page.skipped]
        parts = []
        if read:
            mean = sum(page.ocr_confidence for page in read) / len(read)
            parts.append(f"{len(read)} of {len(self.pages)} pages read by OCR ({_pages(read)}; mean word "
                         f"confidence {mean:.0f}%)")
        if skipped:
            parts.append(f"{_pages(skipped)} left out: {skipped[0].skipped}"
                         + (" (and similar)" if len(skipped) > 1 else ""))
        return "; ".join(parts)


def _pages(pages: list[RawPage]) -> str:
    numbers = [str(page.number) for page in pages]
    shown = ", ".join(numbers[:8]) + (f" and {len(numbers) - 8} more" if len(numbers) > 8 else "")
    return ("page " if len(numbers) == 1 else "pages ") + shown


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pages: int
    max_chars: int
    max_seconds: float


def _describe_non_pdf(head: bytes) -> str | None:
    """What a non-PDF file really is, when that can be told from its first bytes."""
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            return name
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "a web page (HTML), perhaps a download or login page saved by mistake"
    try:  # an incremental decoder tolerates a character cut at the end of the head
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return None
    if text and all(ch.isprintable() or ch in "\t\r\n" for ch in text):
        return "a plain text file"
    return None


def _megabytes(size: int) -> str:
    """1.5 for 1,500,000 bytes; small limits keep their digits (0.002, not 0)."""
    return f"{size / 1e6:.1f}" if size >= 1e6 else f"{size / 1e6:.2g}"


def check_bytes(data: bytes, limits: Limits) -> None:
    """Cheap checks before parsing: empty, too big, not a PDF at all."""
    if not data:
        raise NotAPdfError("The file is empty (0 bytes). Save or download the PDF again and upload the new copy.")
    if len(data) > limits.max_bytes:
        raise TooLargeError(
            f"The file is {_megabytes(len(data))} MB, over the limit of {_megabytes(limits.max_bytes)} MB. "
            "Split it into parts (for example by chapter) or raise the max_file_mb setting.")
    if b"%PDF-" not in data[:1024]:
        kind = _describe_non_pdf(data[:64])
        what = f"This file is {kind}, not a PDF" if kind else "This file is not a PDF"
        raise NotAPdfError(f"{what}, even if its name ends in .pdf. "
                           "Export or print the guideline to PDF and upload that file.")


def _open(data: bytes):
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError,
            OSError, AssertionError) as error:
        raise CorruptPdfError(f"The PDF could not be read ({_short(error)}): it is damaged or incomplete. "
                              f"{_REDO}") from None
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception as error:  # unsupported handlers raise their own types
            raise EncryptedPdfError(f"The PDF is encrypted in a way that cannot be opened here ({_short(error)}). "
                                    "Save an unprotected copy and upload that.") from None
        if not opened:
            raise EncryptedPdfError("The PDF is protected by a password. Open it with the password, save a copy "
                                    "without protection (print to PDF), and upload that copy.")
    return reader


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return re.sub(r"[^\x20-\x7e]", "?", text[:120])  # parser messages may quote raw bytes of the file


def _declared_page_count(reader) -> int | None:
    try:
        return int(reader.trailer["/Root"]["/Pages"]["/Count"])
    except Exception:
        return None


def _check_contents(page) -> None:
    """Raise when the page names a content stream that is missing (lost to damage): not a blank page."""
    from pypdf.generic import ArrayObject, NullObject

    if "/Contents" not in page:
        return
    contents = page["/Contents"]  # resolved: a dangling reference reads as None or a null object
    parts = list(contents) if isinstance(contents, ArrayObject) else [contents]
    for part in parts:
        part = part.get_object() if part is not None else None
        if part is None or isinstance(part, NullObject):
            raise ValueError("its content stream is missing")


def _declared_labels(reader) -> list[str] | None:
    try:
        if "/PageLabels" not in reader.trailer["/Root"]:
            return None
        return list(reader.page_labels)
    except Exception:  # a broken label tree: fall back to labels read from the page text
        return None


def _metadata_title(reader) -> str:
    try:
        # .title resolves indirect references; a dangling one gives None, not the text "None"
        title = (reader.metadata.title if reader.metadata else None) or ""
    except Exception:
        return ""
    title = re.sub(r"\s+", " ", str(title)).strip()
    if re.match(r"(?i)^(untitled|microsoft word|document\d*$|\S+\.(docx?|pdf|indd)$)", title):
        return ""
    return title[:200]


def _page_count(reader: Any, limits: Limits) -> int:
    """The number of pages, refusing a damaged page list or too many pages."""
    try:
        count = len(reader.pages)
    except Exception as error:
        raise CorruptPdfError(f"The PDF's page list is damaged ({_short(error)}): the file is damaged or "
                              f"incomplete. {_REDO}") from None
    if count == 0:
        raise CorruptPdfError("The PDF has no pages. Download it again and upload the new copy.")
    declared = _declared_page_count(reader)
    if declared is not None and declared != count:
        raise CorruptPdfError(f"The PDF's page list is damaged: it declares {declared} pages but {count} could be "
                              f"found, so the file is damaged or incomplete. {_REDO}")
    if count > limits.max_pages:
        raise TooLargeError(f"The PDF has {count} pages, over the limit of {limits.max_pages}. "
                            "Split it into parts or raise the max_pages setting.")
    return count


def read_pdf(data: bytes, limits: Limits, on_page: Callable[..., None] | None = None,
             ocr: OcrOptions | None = None) -> RawDocument:
    """Extract the text of every page, within the byte, page, character and time limits. A page without a text
    layer is read by OCR when `ocr` is enabled; `on_page(i, n, "ocr")` says so before the page is read, and
    `on_page(i, n)` follows every page."""
    check_bytes(data, limits)
    reader = _open(data)
    count = _page_count(reader, limits)
    labels = _declared_labels(reader)
    started = time.monotonic()
    pages: list[RawPage] = []
    total_chars = 0
    rendered = _Renderer(data)
    unavailable = ""
    for index in range(count):
        try:
            page = reader.pages[index]
            _check_contents(page)
            text = page.extract_text() or ""
        except Exception as error:  # indexing the rest would silently leave this page's guidance out
            raise CorruptPdfError(f"Page {index + 1} of the PDF is damaged and could not be read "
                                  f"({_short(error)}). {_REDO}") from None
        label = labels[index] if labels and index < len(labels) else None
        raw = RawPage(number=index + 1, label=label, text=text)
        if len(text.strip()) < MIN_CHARS_PER_PAGE and ocr is not None and ocr.enabled:
            unavailable = _ocr_if_pictured(raw, rendered, index, count, ocr, unavailable, on_page)
        total_chars += len(raw.text)
        if total_chars > limits.max_chars:
            raise TooLargeError(f"The PDF holds more than {limits.max_chars:,} characters of text, over the limit. "
                                "Split it into parts or raise the max_chars setting.")
        if time.monotonic() - started > limits.max_seconds:
            raise TooLargeError(f"Reading the PDF took longer than {limits.max_seconds:.0f} s, the limit for one "
                                "document. Split it into parts or raise max_seconds_per_document.")
        pages.append(raw)
        if on_page:
            on_page(index + 1, count)
    if sum(len(p.text.strip()) for p in pages) < MIN_CHARS_PER_PAGE * max(1, min(count, 4)):
        raise NoTextError(_no_text_message(pages, ocr, unavailable))
    return RawDocument(pages=pages, metadata_title=_metadata_title(reader))


class _Renderer:
    """The PDF opened by pypdfium2 only when a page needs OCR (most documents never do)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.document: Any = None

    def page(self, index: int) -> Any:
        if self.document is None:
            import pypdfium2

            try:
                self.document = pypdfium2.PdfDocument(self.data)
            except Exception as error:
                raise CorruptPdfError(f"The PDF's pages could not be drawn for OCR ({_short(error)}). {_REDO}") \
                    from None
        return self.document[index]


def _has_pictures(page: Any) -> bool:
    """The page holds something OCR could read: an image (a scan, a chart), or many drawn shapes (letters drawn as
    outlines). A blank page, or one with a rule and a page number, is not worth seconds of OCR."""
    import pypdfium2.raw as pdfium_c

    shapes = 0
    for item in page.get_objects(max_depth=3):
        if item.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            return True
        shapes += item.type == pdfium_c.FPDF_PAGEOBJ_PATH
    return shapes >= MIN_OUTLINE_SHAPES


def _ocr_if_pictured(raw: RawPage, rendered: _Renderer, index: int, count: int, ocr: OcrOptions, unavailable: str,
                     on_page: Callable[..., None] | None) -> str:
    """OCR a page with too little text when it holds a picture; returns why OCR cannot run here, once known (the
    pages after that are named as left out for that reason, without trying again)."""
    try:
        page = rendered.page(index)
        if not _has_pictures(page):
            return unavailable
    except Exception as error:  # PDFium cannot draw a page pypdf could read: keep what the text layer had
        raw.skipped = f"could not be drawn for OCR ({_short(error)})"
        return unavailable
    if unavailable:
        raw.skipped = f"not read: {unavailable}"
        return unavailable
    if on_page:
        on_page(index, count, "ocr")
    try:
        _read_by_ocr(raw, page, ocr)
    except OcrUnavailable as error:
        raw.skipped = f"not read: {error}"
        return str(error)
    return unavailable


def _read_by_ocr(raw: RawPage, page: Any, ocr: OcrOptions) -> None:
    """Fill in the page's text from OCR, or say why it was left out. A page OCR finds no words on (a photo, a
    diagram) is not counted as read; a poor reading is dropped, and named only when the page has no text of
    its own to fall back on."""
    check_available(ocr.language)
    try:
        result = ocr_page(page, ocr)
    except OcrTimeout as error:
        raw.skipped = f"not readable in time ({error}, the ocr_page_seconds limit)"
        return
    except Exception as error:  # tesseract failing on one image must not lose the rest of the document
        log.warning("OCR of page %d failed: %s", raw.number, _short(error))
        raw.skipped = f"OCR failed ({_short(error)})"
        return
    if not result.words:
        return
    if result.confidence < ocr.min_confidence:
        if not raw.text.strip():
            raw.skipped = (f"too poor to read (mean word confidence {result.confidence:.0f}%, below the "
                           f"{ocr.min_confidence:g}% of ocr_min_confidence)")
        return
    raw.read_by, raw.ocr_confidence = "ocr", result.confidence
    raw.text, raw.ocr_words = result.text, result.words


def _no_text_message(pages: list[RawPage], ocr: OcrOptions | None, unavailable: str) -> str:
    """What to do about a PDF with nothing readable, given what OCR could and could not do."""
    if ocr is None or not ocr.enabled:
        return ("No text could be extracted from this PDF: it is probably a scan (pictures of pages). Turn on "
                "the ocr setting to read it here, or run it through OCR first (for example `ocrmypdf in.pdf "
                "out.pdf`) and upload the result.")
    if unavailable:
        return (f"No text could be extracted from this PDF, and its pages cannot be read by OCR here: {unavailable}. "
                "Or run it through OCR elsewhere (for example `ocrmypdf in.pdf out.pdf`) and upload the result.")
    skipped = [page for page in pages if page.skipped]
    if skipped:
        return (f"Nothing in this PDF could be read reliably by OCR (page {skipped[0].number}: {skipped[0].skipped}). "
                "Scan the paper again at 300 dpi or more, straight and in good light, or find a copy with a text "
                "layer.")
    return ("No text could be found in this PDF, even by OCR: its pages hold no readable words (blank pages or "
            "pictures only). Check that this is the right file.")
