"""Clean pages -> sentence-aware chunks of about N encoder tokens, each tagged with its section heading.

Chunks never cross a page (so each one has exactly one page to show) nor a section heading (so the
section shown is the one the passage sits under).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# The title must start with a capital: "2 tablets twice daily" is a wrapped sentence, not section 2.
_NUMBERED_HEADING = re.compile(
    r"^(?:(?:\d{1,2}(?:\.\d{1,2}){0,3})\.?|[A-Z]\.|(?i:chapter|section|part|annex|appendix)\s+[\dA-Z]{1,3}[.:]?)"
    r"\s+([A-Z][^\n]{1,90})$")
_CAPS_HEADING = re.compile(r"^[A-Z][A-Z0-9 ,&/()'’:-]{3,70}$")
# Section names that stand alone on a line in any case: "References", "Table of contents"...
_NAMED_SECTION = re.compile(r"(?i)^(?:references|bibliography|further reading|(?:table of )?contents|index|glossary|"
                            r"abbreviations|acknowledge?ments|appendix(?: [a-z0-9]{1,3})?|annex(?: [a-z0-9]{1,3})?)$")
_BULLET_START = re.compile(r"^(?:[•▪●◦‣∙·*–—-]|o\s|\(?[a-z0-9]{1,2}[.)]\s)")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[\"'(\[]?[A-Z0-9•])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "approx.", "dr.", "vs.", "fig.", "no.", "et al.")

TokenCounter = Callable[[list[str]], list[int]]


@dataclass
class Span:
    start: int
    end: int
    section: str


def is_heading(line: str) -> bool:
    """A line that looks like a section heading: numbered, or short and in capitals."""
    line = line.strip()
    if not 3 <= len(line) <= 100 or line.endswith((",", ";")) or re.search(r"\.{4,}|…{2,}", line):
        return False  # a wrapped sentence, or a line of a table of contents
    letters = sum(ch.isalpha() for ch in line)
    if letters < 0.5 * len(line.replace(" ", "")):
        return False
    if _NAMED_SECTION.match(line):
        return True
    match = _NUMBERED_HEADING.match(line)
    if match:
        number = re.match(r"\d+", line)
        title = match.group(1)
        # "11. Royal College of Obstetricians. Antepartum haemorrhage": a numbered reference, not a heading
        return (number is None or int(number.group()) <= 40) and not title.rstrip().endswith(".") \
            and len(title.split()) <= 14 and not re.search(r"\.\s+[A-Z][a-z]", title)
    return bool(_CAPS_HEADING.match(line)) and len(re.findall(r"[A-Z]{2,}", line)) >= 1 \
        and len(line.split()) <= 10


def _sentence_cuts(block: str) -> list[int]:
    """Offsets inside a block where a new sentence (or list item) starts."""
    cuts = []
    for match in _SENTENCE_END.finditer(block):
        before = block[:match.start()].lower()
        if before.endswith(_ABBREVIATIONS):
            continue
        cuts.append(match.end())
    for match in re.finditer(r"\n", block):
        following = block[match.end():match.end() + 4]
        if _BULLET_START.match(following) or block[:match.start()].rstrip().endswith((".", ":", ";")):
            cuts.append(match.end())
    return sorted(set(cuts))


def units(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is_heading) for every sentence, list item and heading of a page, in order."""
    position = 0
    block_start: int | None = None
    for line in text.split("\n"):
        line_start, line_end = position, position + len(line)
        position = line_end + 1
        if is_heading(line):
            if block_start is not None:
                yield from _split_block(text, block_start, line_start - 1)
                block_start = None
            yield line_start, line_end, True
        elif line.strip() and block_start is None:
            block_start = line_start
    if block_start is not None:
        yield from _split_block(text, block_start, len(text))


def _split_block(text: str, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    block = text[start:end]
    edges = [0, *_sentence_cuts(block), len(block)]
    for left, right in zip(edges, edges[1:]):
        piece = block[left:right]
        stripped = piece.strip()
        if stripped:
            offset = left + (len(piece) - len(piece.lstrip()))
            yield start + offset, start + offset + len(stripped), False


def _split_long(text: str, start: int, end: int, tokens: int, limit: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence (a table dumped as one line) at spaces into pieces under the limit."""
    parts = math.ceil(tokens / limit)
    size = math.ceil((end - start) / parts)
    pieces, cursor = [], start
    while cursor < end:
        stop = min(end, cursor + size)
        if stop < end:
            space = text.rfind(" ", cursor + 1, stop)
            stop = space if space > cursor else stop
        if text[cursor:stop].strip():
            pieces.append((cursor, stop))
        cursor = stop
        while cursor < end and text[cursor] == " ":
            cursor += 1
    return pieces


def _fit(text: str, start: int, end: int, tokens: int, limit: int,
         count_tokens: TokenCounter) -> list[tuple[int, int, int]]:
    """(start, end, tokens) pieces of a unit, each within the limit. Pieces cut by characters can still
    be over it (a run of "____" costs a token per character), so those are cut again."""
    if tokens <= limit or end - start <= 1:
        return [(start, end, tokens)]
    pieces = _split_long(text, start, end, tokens, limit)
    fitted: list[tuple[int, int, int]] = []
    for (s, e), n in zip(pieces, count_tokens([text[s:e] for s, e in pieces])):
        fitted.extend(_fit(text, s, e, n, limit, count_tokens))
    return fitted


Unit = tuple[int, int, int, bool]  # (start, end, tokens, is_heading) of one sentence, list item or heading


def unit_texts(text: str) -> list[tuple[str, bool]]:
    """(text with its whitespace collapsed, is_heading) for every non-empty unit of a page, in order."""
    found = [(re.sub(r"\s+", " ", text[start:end]).strip(), heading) for start, end, heading in units(text)]
    return [(unit, heading) for unit, heading in found if unit]


def _sized_units(text: str, count_tokens: TokenCounter, size: int, headings_as_body: bool) -> list[Unit]:
    """Every unit of the page with its token count; body units over the size are cut into pieces under it."""
    pieces = [(s, e, h and not headings_as_body) for s, e, h in units(text)]
    counts = count_tokens([text[s:e] for s, e, _ in pieces])
    sized: list[Unit] = []
    for (start, end, heading), tokens in zip(pieces, counts):
        if tokens > size and not heading:
            sized.extend((s, e, n, False) for s, e, n in _fit(text, start, end, tokens, size, count_tokens))
        else:
            sized.append((start, end, tokens, heading))
    return sized


def _overlap_tail(current: list[Unit], overlap: int, next_tokens: int, size: int) -> list[Unit]:
    """The last units of a finished chunk that open the next one: up to `overlap` tokens, and never so many
    that the next unit would not fit beside them."""
    tail: list[Unit] = []
    for item in reversed(current[1:]):
        if sum(t[2] for t in tail) + item[2] > overlap:
            break
        tail.insert(0, item)
    while tail and sum(t[2] for t in tail) + next_tokens > size:
        tail.pop(0)
    return tail


def chunk_page(text: str, count_tokens: TokenCounter, size: int, overlap: int,
               section: str = "", headings_as_body: bool = False) -> tuple[list[Span], str]:
    """Chunk one page. Returns the spans and the section heading in force at the end of the page.

    A page whose every line looks like a heading (a contents page, a table set in capitals) is chunked
    with its "headings" as text, so nothing on it is lost from the index.
    """
    sized = _sized_units(text, count_tokens, size, headings_as_body)
    spans: list[Span] = []
    current: list[Unit] = []  # the chunk being built
    current_section = section
    last_end = -1  # end of the last emitted chunk: units before it are overlap, not new text

    def has_new_text() -> bool:
        """New body text since the last chunk: a heading alone is not worth a chunk (it lives on as the section)."""
        return any(end > last_end and not is_head for _, end, _, is_head in current)

    def emit() -> None:
        nonlocal last_end
        spans.append(Span(current[0][0], current[-1][1], current_section))
        last_end = current[-1][1]

    for start, end, tokens, heading in sized:
        if heading:
            if has_new_text():
                emit()
            current_section = re.sub(r"\s+", " ", text[start:end]).strip()
            current = [(start, end, tokens, True)]
            continue
        if current and sum(item[2] for item in current) + tokens > size:
            # full: emit it (unless it holds only a heading or overlap) and start the next from its tail
            if has_new_text():
                emit()
                current = _overlap_tail(current, overlap, tokens, size)
            else:
                current = []
        current.append((start, end, tokens, False))
    if has_new_text():
        emit()
    if not spans and sized and not headings_as_body:
        return chunk_page(text, count_tokens, size, overlap, section, headings_as_body=True)[0], current_section
    return spans, current_section
