"""Raw page text -> clean page text: normalised characters, running headers and footers dropped,
words hyphenated across lines joined, and the printed page label read where the PDF does not declare it.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from .pdf_reader import RawPage

_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")  # Wingdings/Symbol bullets in many guidelines
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_ROMAN = re.compile(r"^(?=[ivxlcdm]+$)m{0,4}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})$")
_LABEL_PATTERNS = [
    re.compile(r"^(?:page\s+)?(\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,4})?$", re.I),
    re.compile(r"^(\d{1,4})\s*\|\s*p\s*a\s*g\s*e$", re.I),  # "12 | P a g e"
    re.compile(r"\bpage\s+(\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,4})?\s*$", re.I),
    re.compile(r"^(\d{1,4})\s{2,}\S|\S\s{2,}(\d{1,4})$"),
]
EDGE_LINES = 3
LONG_KEY = 40  # boilerplate this long (download stamps) is dropped wherever it sits, not only at the edges
_SPLIT_PAGE_OF = re.compile(r"(?i)\b(?:page\s+)?(?:\d{1,4}|[ivxlcdm]{1,7})\s*(?:of|/)$")


@dataclass
class CleanPage:
    number: int
    label: str
    text: str
    read_by: str = "text"  # text | ocr (assistant.pdf_reader)
    ocr_confidence: float = 0.0


def normalize_text(text: str) -> str:
    """Unicode clean-up that keeps line structure: ligatures, odd spaces, private-use bullets, controls."""
    text = text.replace("\u00ad", "")  # soft hyphen
    text = text.replace("\r\n", "\n").replace("\r", " ").replace("\x0c", "\n")
    text = unicodedata.normalize("NFKC", text)  # ﬁ -> fi, no-break space -> space, full-width forms
    text = text.replace("\u2010", "-").replace("\u2011", "-")
    text = _PRIVATE_USE.sub("•", text)
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines)


def _line_key(line: str) -> str:
    """Lines that differ only by page numbers compare equal."""
    tokens = re.sub(r"\d+", "#", line.lower()).split()
    if len(tokens) <= 6:
        tokens = ["#" if _ROMAN.match(t) else t for t in tokens]
    return " ".join(tokens)


def find_boilerplate(pages: list[list[str]]) -> set[str]:
    """Keys of lines repeated on most pages: running headers, footers, download stamps."""
    if len(pages) < 3:
        return set()
    edge: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for lines in pages:
        non_empty = [line for line in lines if line]
        edges = non_empty[:EDGE_LINES] + non_empty[-EDGE_LINES:]
        edge.update({_line_key(line) for line in edges})
        anywhere.update({_line_key(line) for line in non_empty})
    threshold = max(3, int(0.5 * len(pages) + 0.5))
    keys = {key for key, count in edge.items() if count >= threshold}
    keys |= {key for key, count in anywhere.items() if count >= threshold and len(key) >= LONG_KEY}
    return keys


def strip_boilerplate(lines: list[str], boilerplate: set[str]) -> list[str]:
    """The non-empty lines of a page without its running headers and footers.

    Short boilerplate ("12", "Page 3") is dropped only at the page edges, where it was found: the same
    key inside the page is content (a dose alone on a table line); long stamps are dropped anywhere.
    """
    non_empty = [line for line in lines if line]
    kept = []
    for index, line in enumerate(non_empty):
        key = _line_key(line)
        at_edge = index < EDGE_LINES or index >= len(non_empty) - EDGE_LINES
        if key in boilerplate and (at_edge or len(key) >= LONG_KEY):
            continue
        kept.append(line)
    return kept


def _join_split_page_numbers(lines: list[str]) -> list[str]:
    """"Page 2 of" and "95" extracted as two lines -> "Page 2 of 95", so the total is not read as a label."""
    joined: list[str] = []
    for line in lines:
        if joined and line.isdigit() and _SPLIT_PAGE_OF.search(joined[-1]):
            joined[-1] = f"{joined[-1]} {line}"
        else:
            joined.append(line)
    return joined


def _label_candidate(line: str) -> str | None:
    for pattern in _LABEL_PATTERNS:
        match = pattern.search(line)
        if match:
            value = next(group for group in match.groups() if group)
            if value.isdigit() or _ROMAN.match(value.lower()):
                return value.lower() if not value.isdigit() else str(int(value))
    return None


def read_printed_labels(pages: list[list[str]]) -> list[str | None]:
    """Printed page numbers read from header and footer lines, kept only where they are consistent.

    Arabic numbers must agree with the most common offset from the physical page, which drops stray
    numbers (a dose at the top of a table) that happen to stand at the edge of a page.
    """
    found: list[str | None] = []
    for lines in pages:
        non_empty = _join_split_page_numbers([line for line in lines if line])
        edges = non_empty[-EDGE_LINES:][::-1] + non_empty[:EDGE_LINES]
        found.append(next((c for c in map(_label_candidate, edges) if c), None))
    offsets = Counter(int(label) - number for number, label in enumerate(found, 1)
                      if label and label.isdigit())
    if not offsets:
        return [label if label and not label.isdigit() else None for label in found]
    best, support = offsets.most_common(1)[0]
    # numbers that never agree with one another (a page total, a dose) are not page numbers
    offset = best if support >= 2 or sum(offsets.values()) == 1 else None
    labels: list[str | None] = []
    for number, label in enumerate(found, 1):
        if label and label.isdigit():
            labels.append(label if int(label) - number == offset else None)
        else:
            labels.append(label)
    if offset is not None and support >= max(2, len(pages) // 3):
        # fill gaps (a page whose footer was an image) from the consistent offset
        first = next(i for i, label in enumerate(labels, 1) if label and label.isdigit())
        labels = [label if label or number < first else str(number + offset)
                  for number, label in enumerate(labels, 1)]
    return labels


def dehyphenate(pages: list[str]) -> list[str]:
    """Join words split across lines ("treat-\\nment" -> "treatment"), keeping real compounds
    ("first-\\nline" -> "first-line") when the hyphenated form appears elsewhere in the document."""
    corpus = "\n".join(pages).lower()
    hyphenated = set(re.findall(r"\b(\w+-\w+)\b", corpus))

    def join(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        if f"{left}-{right}".lower() in hyphenated or not right[0].islower():
            return f"{left}-{right}"
        return f"{left}{right}"

    return [re.sub(r"(\w+)-\n(\w+)", join, page) for page in pages]


def clean_pages(raw_pages: list[RawPage]) -> list[CleanPage]:
    """The cleaned text and printed label of every page, in order."""
    normalized = [normalize_text(page.text).split("\n") for page in raw_pages]
    boilerplate = find_boilerplate(normalized)
    printed = read_printed_labels(normalized)
    bodies = ["\n".join(strip_boilerplate(lines, boilerplate)) for lines in normalized]
    bodies = dehyphenate(bodies)
    cleaned = []
    for raw, text, printed_label in zip(raw_pages, bodies, printed):
        label = raw.label or printed_label or str(raw.number)
        cleaned.append(CleanPage(number=raw.number, label=label, text=text.strip(), read_by=raw.read_by,
                                 ocr_confidence=raw.ocr_confidence))
    return cleaned


def guess_title(pages: list[CleanPage], metadata_title: str, file_name: str) -> str:
    """The document's title: its metadata when meaningful, else the first substantial line."""
    if metadata_title:
        return metadata_title
    for page in pages[:3]:
        for line in page.text.split("\n")[:8]:
            words = re.findall(r"[A-Za-z]{2,}", line)
            if len(words) >= 2 and len(line) <= 150 and not line.lower().startswith(("page", "http")):
                return line
    stem = re.sub(r"\.pdf$", "", file_name, flags=re.I)
    return re.sub(r"[_-]+", " ", stem).strip() or file_name
