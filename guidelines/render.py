#!/usr/bin/env python3
"""Render guideline summaries from ``guidelines/src/*.md`` to PDF with reportlab.

Usage::

    python guidelines/render.py [--src DIR] [--out DIR] [--ascii-symbols] [names...]

``names`` are source stems (``nice-ng136-hypertension``), file names
(``nice-ng136-hypertension.md``) or paths to ``.md`` files; without names every
``*.md`` in the source directory except ``FORMAT.md`` is rendered.  Each source
is written to ``<out>/<file>`` where ``file`` comes from its front matter.

The source format is described in ``guidelines/src/FORMAT.md``.  Output is
reproducible: the same source gives a byte-identical PDF (reportlab
``invariant=1``, no timestamps).
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import pypdf
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    FrameBreak,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

log = logging.getLogger("guidelines.render")

HERE = Path(__file__).resolve().parent
DEFAULT_SRC = HERE / "src"
DEFAULT_OUT = HERE
SKIP_SOURCES = {"FORMAT.md"}

AUTHOR = "Clinical guideline assistant project"
DISCLAIMER = (
    "This document is a summary written for the Clinical guideline assistant project. "
    "It supports, and does not replace, clinical judgement. Check the full source "
    "guideline and local policy before making decisions about individual patients."
)

LAYOUTS = ("one-column", "two-column")
FRONT_MATTERS = ("none", "roman")
REQUIRED_KEYS = ("file", "title", "code", "source")

# Page geometry (A4 portrait).
PAGE_W, PAGE_H = A4
MARGIN_X = 20 * mm
MARGIN_TOP = 25 * mm
MARGIN_BOTTOM = 22 * mm
GUTTER = 8 * mm
TEXT_W = PAGE_W - 2 * MARGIN_X
TEXT_H = PAGE_H - MARGIN_TOP - MARGIN_BOTTOM
COLUMN_W = (TEXT_W - GUTTER) / 2
WHOLE_TABLE_MAX = TEXT_H / 3  # tables up to this height are never split

# Colours.
INK = colors.HexColor("#1a1a1a")
ACCENT = colors.HexColor("#1f3a5f")
MUTED = colors.HexColor("#5a6470")
RULE = colors.HexColor("#8a96a8")
HEADER_FILL = colors.HexColor("#dce6f0")
NOTE_FILL = colors.HexColor("#eef2f6")

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"

# ASCII spellings used by sources, and the glyphs they may be shown as.
SYMBOL_MAP = {">=": "\u2265", "<=": "\u2264"}
# Replacements for characters that do not survive a render/extract round trip.
ASCII_FALLBACK = {
    "\u2265": ">=", "\u2264": "<=", "\u2022": "-", "\u00d7": "x", "\u2212": "-",
    "\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"',
    "\u201d": '"', "\u2026": "...", "\u00a0": " ",
}
BULLET_CHAR = "\u2022"
BULLET_FONT = "Symbol"  # Helvetica's bullet extracts as U+007F with pypdf; Symbol's does not.

HEADING_RE = re.compile(r"^(#{1,3})\s+(.*?)\s*#*\s*$")
NUMBER_RE = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+(.*)$")
BULLET_RE = re.compile(r"^(\s*)[-*]\s+(.*)$")
ORDERED_RE = re.compile(r"^(\s*)(\d+[.)])\s+(.*)$")
BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
SEPARATOR_CELL_RE = re.compile(r"^:?-{1,}:?$")
COMMENT_RE = re.compile(r"\s+#.*$")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Meta:
    """Front-matter values of one guideline source."""

    file: str
    title: str
    short_title: str
    code: str
    source: str
    layout: str = "one-column"
    front_matter: str = "none"


@dataclass
class Block:
    """One body element: section, subsection, paragraph, bullet or table."""

    kind: str  # "section" | "subsection" | "para" | "bullet" | "table"
    text: str = ""
    number: str = ""
    level: int = 0
    marker: str = ""
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Guideline:
    """A parsed source file."""

    path: Path
    meta: Meta
    blocks: list[Block]


@dataclass(frozen=True)
class TocEntry:
    """A contents line: heading level (1 or 2), number, title and page label."""

    level: int
    number: str
    title: str
    label: str = ""


# --------------------------------------------------------------------------- parse


def split_front_matter(text: str) -> tuple[list[str], list[str]]:
    """Split source text into front-matter lines and body lines."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or lines[0].strip() != "---":
        raise ValueError("source must start with a '---' front-matter block")
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            return lines[1:end], lines[end + 1:]
    raise ValueError("front-matter block is not closed with '---'")


def parse_front_matter(lines: Iterable[str]) -> dict[str, str]:
    """Parse ``key: value`` lines, dropping trailing ``# comments`` and quotes."""
    values: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"front-matter line is not 'key: value': {raw!r}")
        value = COMMENT_RE.sub("", value).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip().lower()] = value
    return values


def make_meta(values: dict[str, str]) -> Meta:
    """Validate front-matter values and build a :class:`Meta`."""
    missing = [k for k in REQUIRED_KEYS if not values.get(k)]
    if missing:
        raise ValueError(f"front matter is missing {', '.join(missing)}")
    file = values["file"]
    if "/" in file or "\\" in file or not file.lower().endswith(".pdf"):
        raise ValueError(f"'file' must be a bare *.pdf file name, got {file!r}")
    layout = values.get("layout") or "one-column"
    front = values.get("front_matter") or "none"
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if front not in FRONT_MATTERS:
        raise ValueError(f"front_matter must be one of {FRONT_MATTERS}, got {front!r}")
    return Meta(
        file=file,
        title=values["title"],
        short_title=values.get("short_title") or values["title"],
        code=values["code"],
        source=values["source"],
        layout=layout,
        front_matter=front,
    )


def split_table_row(line: str) -> list[str]:
    """Split a pipe-table row into stripped cells (``\\|`` is a literal pipe)."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells = re.split(r"(?<!\\)\|", body)
    return [c.replace("\\|", "|").strip() for c in cells]


def is_separator_row(cells: Sequence[str]) -> bool:
    """True for a ``|---|:--:|`` alignment row."""
    return bool(cells) and all(SEPARATOR_CELL_RE.match(c.replace(" ", "")) for c in cells)


def normalise_table(rows: list[list[str]]) -> list[list[str]]:
    """Drop separator rows and pad every row to the same number of cells."""
    kept = [r for r in rows if not is_separator_row(r)]
    width = max(len(r) for r in kept)
    return [r + [""] * (width - len(r)) for r in kept]


def parse_heading(line: str) -> Block | None:
    """Parse ``# N Title`` / ``## N.M Title`` into a heading block."""
    match = HEADING_RE.match(line)
    if not match:
        return None
    hashes, rest = match.groups()
    num = NUMBER_RE.match(rest)
    number, title = (num.group(1), num.group(2)) if num else ("", rest)
    kind = "section" if len(hashes) == 1 else "subsection"
    return Block(kind=kind, text=title.strip(), number=number, level=len(hashes))


def parse_body(lines: Sequence[str]) -> list[Block]:
    """Turn body lines into blocks (headings, paragraphs, bullets, tables)."""
    blocks: list[Block] = []
    para: list[str] = []
    table: list[list[str]] = []
    open_item: Block | None = None  # bullet that may receive continuation lines

    def flush() -> None:
        nonlocal para, table, open_item
        if para:
            blocks.append(Block(kind="para", text=" ".join(para)))
        if table:
            blocks.append(Block(kind="table", rows=normalise_table(table)))
        para, table, open_item = [], [], None

    for raw in lines:
        line = raw.expandtabs(4).rstrip()
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        if stripped.startswith("|"):
            if not table:
                flush()
            table.append(split_table_row(stripped))
            continue
        if table:
            flush()
        heading = parse_heading(stripped) if not line.startswith(" ") else None
        if heading:
            flush()
            blocks.append(heading)
            continue
        bullet = BULLET_RE.match(line)
        ordered = ORDERED_RE.match(line) if not bullet else None
        if bullet or ordered:
            flush()
            indent = (bullet or ordered).group(1)
            level = 1 if len(indent) >= 2 else 0
            if bullet:
                open_item = Block(kind="bullet", text=bullet.group(2), level=level)
            else:
                open_item = Block(kind="bullet", text=ordered.group(3), level=level,
                                  marker=ordered.group(2))
            blocks.append(open_item)
            continue
        if open_item is not None:
            open_item.text += " " + stripped
            continue
        para.append(stripped)
    flush()
    return blocks


def parse_source(path: Path) -> Guideline:
    """Read and parse one ``.md`` guideline source."""
    front, body = split_front_matter(path.read_text(encoding="utf-8"))
    meta = make_meta(parse_front_matter(front))
    blocks = parse_body(body)
    if not any(b.kind == "section" for b in blocks):
        log.warning("%s: no '# N Title' sections found", path.name)
    return Guideline(path=path, meta=meta, blocks=blocks)


# --------------------------------------------------------------------------- glyphs


@functools.cache
def glyph_round_trips(char: str, font: str = FONT) -> bool:
    """True if ``char`` rendered in ``font`` is drawn and extracts back unchanged.

    Renders ``"x <char> y"`` into a throw-away PDF and reads it back with pypdf,
    which is how a user's parser will see the text.
    """
    probe = f"xq {escape(char)} qy"
    buf = io.BytesIO()
    style = ParagraphStyle("probe", fontName=font, fontSize=10, leading=12)
    SimpleDocTemplate(buf, invariant=1).build([Paragraph(probe, style)])
    text = pypdf.PdfReader(io.BytesIO(buf.getvalue())).pages[0].extract_text()
    return "".join(text.split()) == f"xq{char}qy"


@functools.cache
def symbol_map(ascii_only: bool) -> dict[str, str]:
    """ASCII sequences to replace with glyphs, keeping only glyphs that round-trip."""
    if ascii_only:
        return {}
    usable = {k: v for k, v in SYMBOL_MAP.items() if glyph_round_trips(v)}
    for k, v in SYMBOL_MAP.items():
        if k not in usable:
            log.info("keeping %r as ASCII: %r does not survive render + extract", k, v)
    return usable


def plain_text(text: str, ascii_only: bool = False) -> str:
    """Map symbols and replace characters that would not extract correctly."""
    for ascii_seq, glyph in symbol_map(ascii_only).items():
        text = text.replace(ascii_seq, glyph)
    out = []
    for ch in text:
        if ord(ch) < 128 or ch == BULLET_CHAR:
            out.append(ch)
        elif ascii_only and ch in ASCII_FALLBACK:
            out.append(ASCII_FALLBACK[ch])
        elif glyph_round_trips(ch):
            out.append(ch)
        elif ch in ASCII_FALLBACK:
            out.append(ASCII_FALLBACK[ch])
        else:
            log.warning("character %r (U+%04X) may not extract correctly", ch, ord(ch))
            out.append(ch)
    return "".join(out)


def markup(text: str, ascii_only: bool = False) -> str:
    """Convert source text to reportlab Paragraph markup (escaping, **bold**)."""
    html = escape(plain_text(text, ascii_only))
    html = BOLD_RE.sub(r"<b>\1</b>", html)
    return html.replace(BULLET_CHAR, f'<font face="{BULLET_FONT}">{BULLET_CHAR}</font>')


# --------------------------------------------------------------------------- styles


def make_styles(layout: str) -> dict[str, ParagraphStyle]:
    """Paragraph styles for a layout (two-column uses slightly smaller type)."""
    two = layout == "two-column"
    size, lead = (9.2, 12.6) if two else (10, 14)
    body = ParagraphStyle(
        "body", fontName=FONT, fontSize=size, leading=lead, textColor=INK,
        alignment=TA_LEFT, spaceAfter=size * 0.6, allowWidows=0, allowOrphans=0,
    )
    return {
        "body": body,
        "bullet": ParagraphStyle(
            "bullet", parent=body, leftIndent=12, bulletIndent=2, spaceAfter=2.5,
            bulletFontName=BULLET_FONT, bulletFontSize=size,
        ),
        "bullet2": ParagraphStyle(
            "bullet2", parent=body, leftIndent=24, bulletIndent=14, spaceAfter=2.5,
            bulletFontName=FONT, bulletFontSize=size,
        ),
        "lead_in": ParagraphStyle("lead_in", parent=body, keepWithNext=1),
        "section": ParagraphStyle(
            "section", parent=body, fontName=FONT_BOLD, fontSize=size + 3.5,
            leading=size + 7, textColor=ACCENT, spaceBefore=12, spaceAfter=5,
            keepWithNext=1,
        ),
        "subsection": ParagraphStyle(
            "subsection", parent=body, fontName=FONT_BOLD, fontSize=size + 1,
            leading=lead + 1, textColor=ACCENT, spaceBefore=8, spaceAfter=3,
            keepWithNext=1,
        ),
        "cell": ParagraphStyle(
            "cell", parent=body, fontSize=size - 1.2, leading=size + 1.2, spaceAfter=0,
            allowWidows=1, allowOrphans=1,
        ),
        "cell_head": ParagraphStyle(
            "cell_head", parent=body, fontName=FONT_BOLD, fontSize=size - 1.2,
            leading=size + 1.2, spaceAfter=0,
        ),
        "title": ParagraphStyle(
            "title", parent=body, fontName=FONT_BOLD, fontSize=20, leading=24,
            textColor=ACCENT, spaceAfter=8,
        ),
        "meta": ParagraphStyle("meta", parent=body, fontSize=9.5, leading=13, spaceAfter=2,
                               textColor=INK),
        "note": ParagraphStyle("note", parent=body, fontSize=8.8, leading=12, spaceAfter=0),
        "cover_kicker": ParagraphStyle(
            "cover_kicker", parent=body, fontName=FONT_BOLD, fontSize=10, leading=14,
            textColor=MUTED, spaceAfter=18,
        ),
        "cover_title": ParagraphStyle(
            "cover_title", parent=body, fontName=FONT_BOLD, fontSize=28, leading=34,
            textColor=ACCENT, spaceAfter=18,
        ),
        "cover_meta": ParagraphStyle("cover_meta", parent=body, fontSize=11, leading=16,
                                     spaceAfter=6),
        "contents_title": ParagraphStyle(
            "contents_title", parent=body, fontName=FONT_BOLD, fontSize=18, leading=22,
            textColor=ACCENT, spaceAfter=14,
        ),
        "toc1": ParagraphStyle("toc1", parent=body, fontName=FONT_BOLD, fontSize=10.5,
                               leading=13, spaceAfter=0),
        "toc2": ParagraphStyle("toc2", parent=body, fontSize=9.5, leading=11.5, spaceAfter=0,
                               leftIndent=14),
        "toc_page": ParagraphStyle("toc_page", parent=body, fontSize=9.5, leading=11.5,
                                   alignment=TA_RIGHT, spaceAfter=0),
    }


# --------------------------------------------------------------------------- tables


def word_widths(text: str, font: str, bold_font: str, size: float) -> list[float]:
    """Widths of the words in a cell, using the bold font inside ``**...**``."""
    widths: list[float] = []
    for i, part in enumerate(re.split(r"\*\*", text)):
        face = bold_font if i % 2 else font
        widths.extend(stringWidth(w, face, size) for w in part.split())
    return widths


def column_widths(rows: list[list[str]], avail: float, size: float, pad: float,
                  ascii_only: bool = False) -> list[float] | None:
    """Column widths that fit ``avail`` without breaking words, or None if impossible."""
    ncols = len(rows[0])
    minimum = [0.0] * ncols
    natural = [0.0] * ncols
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            text = plain_text(cell, ascii_only)
            face = FONT_BOLD if r == 0 else FONT
            widths = word_widths(text, face, FONT_BOLD, size) or [0.0]
            space = stringWidth(" ", face, size)
            minimum[c] = max(minimum[c], max(widths) + 2 * pad + 1)
            natural[c] = max(natural[c], sum(widths) + space * (len(widths) - 1) + 2 * pad + 1)
    if sum(minimum) > avail:
        return None
    if sum(natural) <= avail:
        scale = avail / sum(natural)
        return [w * scale for w in natural]
    return share_widths(minimum, natural, avail)


def share_widths(minimum: list[float], natural: list[float], avail: float) -> list[float]:
    """Give narrow columns their natural width and share the rest between wide ones."""
    widths: list[float | None] = [None] * len(natural)
    open_cols = set(range(len(natural)))
    remaining = avail
    while open_cols:
        share = remaining / len(open_cols)
        narrow = [c for c in sorted(open_cols) if natural[c] <= share]
        if not narrow:
            break
        for c in narrow:
            widths[c] = natural[c]
            remaining -= natural[c]
            open_cols.discard(c)
    if sum(minimum[c] for c in open_cols) > remaining:  # cannot honour natural widths
        widths, open_cols, remaining = [None] * len(natural), set(range(len(natural))), avail
    extra = remaining - sum(minimum[c] for c in open_cols)
    want = {c: natural[c] - minimum[c] for c in open_cols}
    total = sum(want.values()) or 1.0
    for c in open_cols:
        widths[c] = minimum[c] + extra * want[c] / total
    return [float(w) for w in widths]


class GuidelineTable(Table):
    """A Table that can be marked ``keep_whole``: it then moves to the next
    column or page instead of splitting.

    Unlike wrapping it in KeepTogether, this still lets a preceding heading's
    keepWithNext pull the heading along with it.
    """

    keep_whole = False

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        """Split by rows (repeating the header) unless the table is kept whole."""
        return [] if self.keep_whole else super().split(availWidth, availHeight)


def table_flowable(rows: list[list[str]], avail: float, styles: dict[str, ParagraphStyle],
                   ascii_only: bool) -> Flowable:
    """A grid table with a shaded header row and wrapped Paragraph cells."""
    pad = 3.5
    cell, head = styles["cell"], styles["cell_head"]
    widths = None
    for size in (cell.fontSize, cell.fontSize - 0.7, cell.fontSize - 1.4):
        widths = column_widths(rows, avail, size, pad, ascii_only)
        if widths:
            break
    if widths is None:
        log.warning("table too wide for %.0fpt; long words may wrap inside cells", avail)
        widths = [avail / len(rows[0])] * len(rows[0])
        size = cell.fontSize - 1.4
    if size != cell.fontSize:
        cell = ParagraphStyle("cell_small", parent=cell, fontSize=size, leading=size + 2.2)
        head = ParagraphStyle("head_small", parent=head, fontSize=size, leading=size + 2.2)
    data = [
        [Paragraph(markup(text, ascii_only), head if r == 0 else cell) for text in row]
        for r, row in enumerate(rows)
    ]
    table = GuidelineTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT",
                           spaceBefore=4, spaceAfter=8)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, RULE),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), pad),
        ("RIGHTPADDING", (0, 0), (-1, -1), pad),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
    ]))
    # Short tables move as a whole rather than splitting; long ones split by row
    # and repeat their header.
    table.keep_whole = measure(table, avail) <= WHOLE_TABLE_MAX
    return table


# --------------------------------------------------------------------------- flowables


def heading_flowable(block: Block, styles: dict[str, ParagraphStyle], ascii_only: bool) -> Paragraph:
    """A section/subsection heading tagged for the contents page."""
    text = f"{block.number} {block.text}".strip()
    para = Paragraph(markup(text, ascii_only), styles[block.kind])
    para._toc_entry = TocEntry(1 if block.kind == "section" else 2, block.number,
                               plain_text(block.text, ascii_only))
    return para


def bullet_flowable(block: Block, styles: dict[str, ParagraphStyle], ascii_only: bool,
                    last: bool = False) -> Paragraph:
    """A bullet (or numbered) list item; the last item of a list gets paragraph spacing."""
    style = styles["bullet2" if block.level else "bullet"]
    if last:
        style = ParagraphStyle("bullet_last", parent=style, spaceAfter=styles["body"].spaceAfter)
    if block.marker:
        style = ParagraphStyle("ordered", parent=style, bulletFontName=FONT,
                               leftIndent=style.leftIndent + 6)
        marker = block.marker
    else:
        marker = BULLET_CHAR if not block.level else "-"
    return Paragraph(markup(block.text, ascii_only), style, bulletText=marker)


def body_flowables(blocks: Sequence[Block], styles: dict[str, ParagraphStyle], width: float,
                   ascii_only: bool) -> list[Flowable]:
    """Flowables for the guideline body."""
    out: list[Flowable] = []
    for i, block in enumerate(blocks):
        if block.kind in ("section", "subsection"):
            out.append(heading_flowable(block, styles, ascii_only))
        elif block.kind == "bullet":
            last = i + 1 == len(blocks) or blocks[i + 1].kind != "bullet"
            out.append(bullet_flowable(block, styles, ascii_only, last))
        elif block.kind == "table":
            out.append(table_flowable(block.rows, width, styles, ascii_only))
        else:
            nxt = blocks[i + 1].kind if i + 1 < len(blocks) else ""
            lead_in = block.text.rstrip().endswith(":") and nxt in ("bullet", "table")
            para = Paragraph(markup(block.text, ascii_only), styles["lead_in" if lead_in else "body"])
            para._keep_with_next = lead_in
            out.append(para)
    return guard_headings(out, width)


def keeps_with_next(flowable: Flowable) -> bool:
    """True for headings and for lead-in paragraphs (ending in ':') before a list or table."""
    return getattr(flowable, "_toc_entry", None) is not None or getattr(
        flowable, "_keep_with_next", False)


def lead_height(flowable: Flowable, width: float) -> float:
    """Height of the start of a flowable that must share a column with its heading."""
    height = measure(flowable, width)
    if isinstance(flowable, Table):  # header row plus two body rows
        return sum(flowable._rowHeights[:3]) + flowable.getSpaceBefore()
    if isinstance(flowable, Paragraph):
        return min(height, 3 * flowable.style.leading)
    return height


def guard_headings(flow: list[Flowable], width: float) -> list[Flowable]:
    """Keep headings with what follows without leaving large gaps.

    Headings carry ``keepWithNext``; that is ideal when the next flowable is
    short or must move as a whole anyway (a short table).  When it is long and
    splittable (a long table or paragraph) keepWithNext would push the whole
    thing to the next column, so the heading group instead gets a CondPageBreak
    asking for room for itself plus the first lines/rows.
    """
    out: list[Flowable] = []
    i = 0
    while i < len(flow):
        if not keeps_with_next(flow[i]):
            out.append(flow[i])
            i += 1
            continue
        j = i
        while j < len(flow) and keeps_with_next(flow[j]):
            j += 1
        group, nxt = flow[i:j], (flow[j] if j < len(flow) else None)
        splittable = nxt is not None and not getattr(nxt, "keep_whole", False)
        if splittable and measure(nxt, width) > 0.25 * TEXT_H:
            for head in group:
                head.style = ParagraphStyle(head.style.name + "_free", parent=head.style,
                                            keepWithNext=0)
            need = (group[0].getSpaceBefore() + block_height(group, width)
                    + group[-1].getSpaceAfter() + lead_height(nxt, width))
            out.append(CondPageBreak(min(need, 0.5 * TEXT_H)))
        out.extend(group)
        i = j
    return out


def note_box(width: float, styles: dict[str, ParagraphStyle], ascii_only: bool) -> Table:
    """Shaded box with the 'summary, not a replacement for judgement' note."""
    note = Paragraph("<b>About this document.</b> " + markup(DISCLAIMER, ascii_only), styles["note"])
    box = Table([[note]], colWidths=[width], hAlign="LEFT", spaceBefore=6, spaceAfter=10)
    box.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, -1), NOTE_FILL),
        ("LINEBEFORE", (0, 0), (0, -1), 2.5, ACCENT),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
        ("RIGHTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 7),
    ]))
    return box


def title_block(meta: Meta, styles: dict[str, ParagraphStyle], ascii_only: bool) -> list[Flowable]:
    """Title, 'Based on:' line, code and note shown at the top of the first body page."""
    return [
        Paragraph(markup(meta.title, ascii_only), styles["title"]),
        Paragraph("<b>Based on:</b> " + markup(meta.source, ascii_only), styles["meta"]),
        Paragraph("<b>Code:</b> " + markup(meta.code, ascii_only), styles["meta"]),
        note_box(TEXT_W, styles, ascii_only),
    ]


def measure(flowable: Flowable, width: float) -> float:
    """Height of a flowable wrapped to ``width`` (outside of a document build)."""
    return flowable.wrapOn(Canvas(io.BytesIO()), width, PAGE_H * 4)[1]


def block_height(flowables: Sequence[Flowable], width: float) -> float:
    """Height the flowables need when stacked in a frame of ``width``."""
    total = 0.0
    for i, f in enumerate(flowables):
        h = measure(f, width)
        total += h
        if i:
            total += f.getSpaceBefore()
        if i < len(flowables) - 1:
            total += f.getSpaceAfter()
    return total


def cover_flowables(meta: Meta, styles: dict[str, ParagraphStyle], ascii_only: bool) -> list[Flowable]:
    """Cover page: project line, title, source and code."""
    return [
        Spacer(1, 45 * mm),
        Paragraph(markup(AUTHOR, ascii_only) + " - guideline summary", styles["cover_kicker"]),
        Paragraph(markup(meta.title, ascii_only), styles["cover_title"]),
        Paragraph("<b>Based on:</b> " + markup(meta.source, ascii_only), styles["cover_meta"]),
        Paragraph("<b>Code:</b> " + markup(meta.code, ascii_only), styles["cover_meta"]),
        Spacer(1, 20 * mm),
        note_box(TEXT_W, styles, ascii_only),
    ]


def toc_entries(blocks: Sequence[Block], ascii_only: bool) -> list[TocEntry]:
    """Contents entries for all section and subsection headings."""
    return [TocEntry(1 if b.kind == "section" else 2, b.number, plain_text(b.text, ascii_only))
            for b in blocks if b.kind in ("section", "subsection")]


def contents_flowables(entries: Sequence[TocEntry], labels: dict[tuple[int, str, str], str],
                       styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Contents page: numbered headings with their body page labels."""
    rows, cmds = [], []
    for i, e in enumerate(entries):
        style = styles["toc1" if e.level == 1 else "toc2"]
        label = labels.get((e.level, e.number, e.title), "")
        rows.append([Paragraph(escape(f"{e.number} {e.title}".strip()), style),
                     Paragraph(escape(label), styles["toc_page"])])
        if e.level == 1 and i:
            cmds += [("TOPPADDING", (0, i), (-1, i), 5), ("LINEABOVE", (0, i), (-1, i), 0.4, RULE)]
    table = Table(rows, colWidths=[TEXT_W - 18 * mm, 18 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        *cmds,
    ]))
    return [Paragraph("Contents", styles["contents_title"]), table]


def contents_page(entries: Sequence[TocEntry], labels: dict[tuple[int, str, str], str],
                  styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Contents with subsections if they fit on one page, otherwise sections only."""
    flow = contents_flowables(entries, labels, styles)
    if block_height(flow, TEXT_W) > TEXT_H:
        flow = contents_flowables([e for e in entries if e.level == 1], labels, styles)
    return flow


# --------------------------------------------------------------------------- pages


def roman(number: int) -> str:
    """Lower-case roman numeral for a positive integer."""
    parts = []
    for value, letters in ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"),
                           (90, "xc"), (50, "l"), (40, "xl"), (10, "x"), (9, "ix"),
                           (5, "v"), (4, "iv"), (1, "i")):
        count, number = divmod(number, value)
        parts.append(letters * count)
    return "".join(parts)


class GuidelineDoc(BaseDocTemplate):
    """Document template that tracks page labels and contents entries."""

    def __init__(self, target: io.BytesIO, meta: Meta, **kwargs: object) -> None:
        super().__init__(
            target, pagesize=A4, leftMargin=MARGIN_X, rightMargin=MARGIN_X,
            topMargin=MARGIN_TOP, bottomMargin=MARGIN_BOTTOM, title=meta.title,
            author=AUTHOR, subject=meta.source, creator=AUTHOR, invariant=1,
            lang="en-GB", **kwargs,
        )
        self.meta = meta
        self.body_start: int | None = None  # physical page number of body page "1"
        self.toc_labels: dict[tuple[int, str, str], str] = {}

    def page_label(self, page: int) -> str:
        """Printed label of a physical page (roman before the body starts)."""
        if self.body_start is None or page < self.body_start:
            return roman(page)
        return str(page - self.body_start + 1)

    def afterFlowable(self, flowable: Flowable) -> None:
        """Record the page label of every heading for the contents page."""
        entry = getattr(flowable, "_toc_entry", None)
        if entry is not None:
            key = (entry.level, entry.number, entry.title)
            self.toc_labels.setdefault(key, self.page_label(self.page))


def draw_header(canvas: Canvas, doc: GuidelineDoc) -> None:
    """Running header: short title on the left, code on the right."""
    canvas.saveState()
    top = PAGE_H - 14 * mm
    canvas.setFont(FONT_BOLD, 8.5)
    canvas.setFillColor(ACCENT)
    canvas.drawString(MARGIN_X, top, plain_text(doc.meta.short_title))
    canvas.setFont(FONT, 8.5)
    canvas.setFillColor(MUTED)
    canvas.drawRightString(PAGE_W - MARGIN_X, top, plain_text(doc.meta.code))
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN_X, top - 2.5 * mm, PAGE_W - MARGIN_X, top - 2.5 * mm)
    canvas.restoreState()


def draw_footer(canvas: Canvas, doc: GuidelineDoc) -> None:
    """Footer: project line on the left, printed page label on the right."""
    canvas.saveState()
    bottom = 12 * mm
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN_X, bottom + 4 * mm, PAGE_W - MARGIN_X, bottom + 4 * mm)
    canvas.setFont(FONT, 7.5)
    canvas.setFillColor(MUTED)
    canvas.drawString(MARGIN_X, bottom, f"Summary for the {AUTHOR}")
    canvas.setFont(FONT, 8.5)
    canvas.setFillColor(INK)
    canvas.drawRightString(PAGE_W - MARGIN_X, bottom, f"Page {doc.page_label(doc.page)}")
    canvas.restoreState()


def on_front_page(canvas: Canvas, doc: GuidelineDoc) -> None:
    """Page-start callback for cover and contents pages (roman labels)."""
    if doc.page == 1:
        canvas.addPageLabel(0, "ROMAN_LOWER", 1)
    draw_header(canvas, doc)


def on_first_body_page(canvas: Canvas, doc: GuidelineDoc) -> None:
    """Page-start callback for the first body page: arabic numbering restarts at 1."""
    doc.body_start = doc.page
    canvas.addPageLabel(doc.page - 1, "ARABIC", 1)
    draw_header(canvas, doc)


def body_frames(layout: str, title_height: float = 0.0) -> list[Frame]:
    """Frames of a body page; with ``title_height`` a full-width title frame comes first."""
    frames: list[Frame] = []
    top = MARGIN_BOTTOM + TEXT_H
    kw = dict(leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    if title_height:
        frames.append(Frame(MARGIN_X, top - title_height, TEXT_W, title_height, id="title", **kw))
        top -= title_height + 4 * mm
    height = top - MARGIN_BOTTOM
    if layout == "two-column":
        frames.append(Frame(MARGIN_X, MARGIN_BOTTOM, COLUMN_W, height, id="left", **kw))
        frames.append(Frame(MARGIN_X + COLUMN_W + GUTTER, MARGIN_BOTTOM, COLUMN_W, height,
                            id="right", **kw))
    else:
        frames.append(Frame(MARGIN_X, MARGIN_BOTTOM, TEXT_W, height, id="body", **kw))
    return frames


def page_templates(layout: str, title_height: float) -> list[PageTemplate]:
    """Cover/contents, first-body and body page templates."""
    single = dict(leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    front = Frame(MARGIN_X, MARGIN_BOTTOM, TEXT_W, TEXT_H, id="front", **single)
    two = layout == "two-column"
    return [
        PageTemplate(id="front", frames=[front], onPage=on_front_page, onPageEnd=draw_footer),
        PageTemplate(id="first", frames=body_frames(layout, title_height if two else 0.0),
                     onPage=on_first_body_page, onPageEnd=draw_footer),
        PageTemplate(id="body", frames=body_frames(layout), onPage=draw_header,
                     onPageEnd=draw_footer),
    ]


# --------------------------------------------------------------------------- build


def story(guide: Guideline, styles: dict[str, ParagraphStyle], labels: dict, ascii_only: bool
          ) -> tuple[list[Flowable], float]:
    """All flowables of the document and the height of the body title block."""
    meta = guide.meta
    two = meta.layout == "two-column"
    width = COLUMN_W if two else TEXT_W
    head = title_block(meta, styles, ascii_only)
    title_height = block_height(head, TEXT_W) + 6
    flow: list[Flowable] = []
    if meta.front_matter == "roman":
        entries = toc_entries(guide.blocks, ascii_only)
        flow += cover_flowables(meta, styles, ascii_only) + [PageBreak()]
        flow += contents_page(entries, labels, styles)
        flow += [NextPageTemplate("first"), PageBreak()]
    flow += head + [NextPageTemplate("body")]
    if two:
        flow.append(FrameBreak())
    flow += body_flowables(guide.blocks, styles, width, ascii_only)
    return flow, title_height


def build_once(guide: Guideline, labels: dict, ascii_only: bool) -> tuple[bytes, GuidelineDoc]:
    """Build the PDF once with the given contents labels."""
    styles = make_styles(guide.meta.layout)
    flow, title_height = story(guide, styles, labels, ascii_only)
    buf = io.BytesIO()
    doc = GuidelineDoc(buf, guide.meta)
    templates = page_templates(guide.meta.layout, title_height)
    if guide.meta.front_matter != "roman":
        templates = templates[1:]  # start directly on the first body page
    doc.addPageTemplates(templates)
    doc.build(flow)
    return buf.getvalue(), doc


def build_pdf(guide: Guideline, ascii_only: bool = False) -> bytes:
    """Build the PDF, re-running until the contents page labels are stable."""
    labels: dict = {}
    for _ in range(4):
        data, doc = build_once(guide, labels, ascii_only)
        if guide.meta.front_matter != "roman" or doc.toc_labels == labels:
            return data
        labels = doc.toc_labels
    log.warning("%s: contents page labels did not settle", guide.path.name)
    return data


def page_count(data: bytes) -> int:
    """Number of pages of a PDF given as bytes."""
    return len(pypdf.PdfReader(io.BytesIO(data)).pages)


def render_file(path: Path, out_dir: Path, ascii_only: bool = False) -> tuple[Path, int]:
    """Render one source file; return the written path and its page count."""
    guide = parse_source(path)
    data = build_pdf(guide, ascii_only)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / guide.meta.file
    target.write_bytes(data)
    pages = page_count(data)
    log.info("wrote %s (%d pages) from %s", target, pages, path.name)
    return target, pages


def resolve_sources(names: Sequence[str], src_dir: Path) -> list[Path]:
    """Source paths for the CLI names (stems, file names or paths); all if none."""
    if not names:
        return sorted(p for p in src_dir.glob("*.md") if p.name not in SKIP_SOURCES)
    paths = []
    for name in names:
        for candidate in (Path(name), src_dir / name, src_dir / f"{name}.md"):
            if candidate.is_file():
                paths.append(candidate)
                break
        else:
            raise FileNotFoundError(f"no guideline source named {name!r} in {src_dir}")
    return paths


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="source stems, file names or paths (default: all)")
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help="source directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--ascii-symbols", action="store_true",
                        help="keep >= and <= as ASCII instead of mapping them to glyphs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only log warnings")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Render the requested sources; return a process exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = resolve_sources(args.names, args.src)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 2
    if not paths:
        log.warning("no sources found in %s", args.src)
    failed = 0
    for path in paths:
        try:
            render_file(path, args.out, args.ascii_symbols)
        except Exception:  # keep rendering the other sources
            log.exception("failed to render %s", path)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
