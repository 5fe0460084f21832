"""Pages with no text layer, read by OCR: rendered with pypdfium2, read by tesseract (through pytesseract).

Many ministry and hospital guidelines are scans, and some PDFs draw every letter as a vector outline: both
have pages with no extractable text. Such a page is rendered to an image and tesseract reads it, giving
words with their boxes and confidences. The page's text keeps tesseract's reading order (it finds
columns and blocks): words joined into lines, paragraphs separated by a blank line, as the chunker
expects. Marks that are not words (rules, bars of a chart read as "===") are dropped when tesseract
itself doubts them. A page whose words tesseract is on average unsure of is not indexed: passages
of misread drug names and doses would be worse than none.

At upload it runs inside the isolated reader (assistant.isolation), so a page that makes tesseract hang is
stopped by the document's deadline, and its memory counts against the reader's ceiling. The word boxes are
kept with the PDF for the page picture (assistant.preview), which reads a page again, in the app, only for a
document indexed before they were kept.
"""
from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

_HAS_WORD_CHARACTER = re.compile(r"\w")
_DOUBTFUL = 50.0  # a mark with no letter or digit below this confidence is a graphic, not text


@dataclass(frozen=True)
class OcrOptions:
    """How pages without text are read; `enabled=False` refuses them as before."""

    enabled: bool = True
    language: str = "eng"  # tesseract's language codes, "+"-joined: "eng+fra"
    dpi: int = 200
    min_confidence: float = 50.0  # a page whose mean word confidence is lower is skipped
    page_seconds: float = 90.0  # tesseract is stopped on a page that takes longer (speckle and photos can take minutes)


@dataclass
class OcrWord:
    """A word and its box, in PDF points from the page's top-left corner (as the page image is drawn)."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    confidence: float


def word_boxes(words: list[OcrWord]) -> list[list[Any]]:
    """Words as they are kept beside the PDF: [text, left, top, right, bottom] in points, to 0.1 (no confidence:
    the page was accepted at indexing)."""
    return [[w.text, round(w.left, 1), round(w.top, 1), round(w.right, 1), round(w.bottom, 1)] for w in words]


def boxed_words(boxes: list[list[Any]]) -> list[OcrWord]:
    """`word_boxes` read back."""
    return [OcrWord(text, left, top, right, bottom, 0.0) for text, left, top, right, bottom in boxes]


@dataclass
class OcrPage:
    text: str
    confidence: float  # mean word confidence, 0-100
    words: list[OcrWord] = field(default_factory=list)


class OcrUnavailable(RuntimeError):
    """Tesseract, or the language asked for, is not installed."""


class OcrTimeout(RuntimeError):
    """Tesseract did not finish the page in time."""


def check_available(language: str) -> None:
    """Raise OcrUnavailable saying what to install when tesseract or a language is missing."""
    reason = _missing(language)
    if reason:
        raise OcrUnavailable(reason)


@lru_cache(maxsize=8)
def _missing(language: str) -> str:
    import pytesseract

    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return "tesseract is not installed (Debian: `apt-get install tesseract-ocr`; `make run` installs it)"
    installed = set(pytesseract.get_languages(config=""))
    missing = [code for code in language.split("+") if code not in installed]
    if missing:
        return (f"tesseract has no {', '.join(missing)} language data (Debian: `apt-get install "
                + " ".join(f"tesseract-ocr-{code}" for code in missing) + "`)")
    return ""


def render(page: Any, options: OcrOptions) -> Any:
    """The pypdfium2 page drawn for OCR (greyscale, at the OCR resolution)."""
    return page.render(scale=options.dpi / 72.0, grayscale=True).to_pil()


def read_page(page: Any, options: OcrOptions) -> OcrPage:
    """OCR one pypdfium2 page."""
    return read_image(render(page, options), options)


def read_image(image: Any, options: OcrOptions) -> OcrPage:
    """OCR a page image drawn by `render` (boxes come back in PDF points of that page)."""
    import pytesseract

    scale = options.dpi / 72.0
    try:
        data = pytesseract.image_to_data(image, lang=options.language, config=f"--dpi {options.dpi}",
                                         output_type=pytesseract.Output.DICT, timeout=options.page_seconds)
    except RuntimeError as error:
        if "timeout" in str(error).lower():
            raise OcrTimeout(f"OCR stopped after {options.page_seconds:g} s") from None
        raise
    words: list[OcrWord] = []
    lines: dict[tuple[int, int, int], list[str]] = {}
    for index, text in enumerate(data["text"]):
        text, confidence = text.strip(), float(data["conf"][index])
        if not text or confidence < 0 or (not _HAS_WORD_CHARACTER.search(text) and confidence < _DOUBTFUL):
            continue
        left, top = data["left"][index] / scale, data["top"][index] / scale
        words.append(OcrWord(text, left, top, left + data["width"][index] / scale,
                             top + data["height"][index] / scale, confidence))
        key = (data["block_num"][index], data["par_num"][index], data["line_num"][index])
        lines.setdefault(key, []).append(text)
    paragraphs: dict[tuple[int, int], list[str]] = {}
    for (block, paragraph, _), line_words in lines.items():
        paragraphs.setdefault((block, paragraph), []).append(" ".join(line_words))
    text = "\n\n".join("\n".join(paragraph) for paragraph in paragraphs.values())
    confidence = sum(word.confidence for word in words) / len(words) if words else 0.0
    return OcrPage(text=text, confidence=round(confidence, 1), words=words)
