"""Where a passage lies on its page: boxes to draw over the page image, so a clinician sees the sentence itself.

The words of the page come with their boxes: from the PDF's text layer (pypdfium2's character boxes), or,
on a page with no text layer, from OCR (assistant.ocr). The stored passage is cleaned text (hyphens joined,
running headers removed, its own reading order), so it is not searched for as one string. Instead a page
word is marked when it begins, ends or sits inside a run of three words that the passage also has in that
order: a sentence of the passage is found wherever the PDF placed it (a second column, the next line), and a
stray common word elsewhere on the page is not. Marked words on one line join into one box.
The quoted sentences ("Guideline wording") are marked the same way, more strongly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[A-Za-z0-9]+")
RUN = 3  # consecutive words a page and a passage must share for a page word to be marked


@dataclass
class Box:
    """A rectangle in PDF points from the page's top-left corner (as the page image is drawn)."""

    left: float
    top: float
    right: float
    bottom: float
    strong: bool = False  # a quoted sentence, not only the passage

    def scaled(self, factor: float) -> tuple[float, float, float, float]:
        return self.left * factor, self.top * factor, self.right * factor, self.bottom * factor


@dataclass
class PageWord:
    text: str  # lower case, letters and digits
    box: Box


def text_layer_words(page: Any) -> tuple[list[PageWord], Turn]:
    """The words of a pypdfium2 page's text layer, with boxes from the top-left corner of its crop box, and how
    the page is turned when drawn (its /Rotate): boxes are joined into lines before they are turned."""
    import pypdfium2.raw as pdfium_c

    left, bottom, right, top = page.get_cropbox()
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        # one character per index, read by index: a text range may not line up with character indices
        text = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(count))
        found = []
        for match in _WORD.finditer(text):
            boxes = [textpage.get_charbox(i) for i in range(match.start(), match.end())]
            found.append(PageWord(match.group().lower(), Box(
                min(b[0] for b in boxes) - left, top - max(b[3] for b in boxes),
                max(b[2] for b in boxes) - left, top - min(b[1] for b in boxes))))
        return found, Turn(page.get_rotation() % 360, right - left, top - bottom)
    finally:
        textpage.close()


@dataclass(frozen=True)
class Turn:
    """How a page is drawn turned (clockwise degrees), and its unturned size in points."""

    degrees: int = 0
    width: float = 0.0
    height: float = 0.0

    def box(self, box: Box) -> Box:
        """The box as it lies on the turned page."""
        w, h = self.width, self.height
        if self.degrees == 90:
            return Box(h - box.bottom, box.left, h - box.top, box.right, box.strong)
        if self.degrees == 180:
            return Box(w - box.right, h - box.bottom, w - box.left, h - box.top, box.strong)
        if self.degrees == 270:
            return Box(box.top, w - box.right, box.bottom, w - box.left, box.strong)
        return box


def ocr_words(words: list[Any]) -> list[PageWord]:
    """OCR's words (assistant.ocr.OcrWord), split into letters-and-digits words like the text layer's."""
    found = []
    for word in words:
        for part in _WORD.findall(word.text):
            found.append(PageWord(part.lower(), Box(word.left, word.top, word.right, word.bottom)))
    return found


def _runs(text: str, size: int) -> set[tuple[str, ...]]:
    tokens = [token.lower() for token in _WORD.findall(text)]
    return {tuple(tokens[i:i + size]) for i in range(len(tokens) - size + 1)}


def _marked(words: list[PageWord], text: str) -> list[bool]:
    """Which page words stand in a run of RUN words the text also has (fewer, for a text shorter than that)."""
    size = min(RUN, len(_WORD.findall(text)))
    marked = [False] * len(words)
    if size == 0:
        return marked
    runs = _runs(text, size)
    tokens = [word.text for word in words]
    for start in range(len(tokens) - size + 1):
        if tuple(tokens[start:start + size]) in runs:
            for index in range(start, start + size):
                marked[index] = True
    return marked


def _line_boxes(words: list[PageWord], marked: list[bool], strong: bool) -> list[Box]:
    """Marked words joined into one box per line (consecutive words whose vertical extents overlap)."""
    boxes: list[Box] = []
    current: Box | None = None
    for word, is_marked in zip(words, marked):
        if not is_marked:
            current = None
            continue
        box = word.box
        same_line = current is not None and box.top < current.bottom and box.bottom > current.top \
            and box.left >= current.left - 2
        if current is not None and same_line:
            current.left, current.right = min(current.left, box.left), max(current.right, box.right)
            current.top, current.bottom = min(current.top, box.top), max(current.bottom, box.bottom)
        else:
            current = Box(box.left, box.top, box.right, box.bottom, strong)
            boxes.append(current)
    return boxes


def passage_boxes(words: list[PageWord], passage: str, quotes: list[str]) -> list[Box]:
    """Boxes over the passage's words on the page, then stronger ones over its quoted sentences."""
    boxes = _line_boxes(words, _marked(words, passage), strong=False)
    for quote in quotes:
        boxes += _line_boxes(words, _marked(words, quote), strong=True)
    return boxes
