"""Small real PDFs made in the tests: text pages with running headers and footers, page labels,
encryption, and image-only (scanned) pages: unreadable noise, or a picture of a text PDF's pages."""
from __future__ import annotations

import io
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas


def make_pdf(pages: list[str], *, title: str = "Test guideline", header: str | None = None,
             footer: str | None = "Page {label}", labels: list[str] | None = None,
             declare_labels: bool = False, font_size: int = 10) -> bytes:
    """A PDF with one text page per item; lines wrap at about 90 characters.

    `labels` are the printed page numbers (default 1..n); `declare_labels` also writes /PageLabels
    (roman numerals for pages whose label is roman).
    """
    labels = labels or [str(i) for i in range(1, len(pages) + 1)]
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    pdf.setTitle(title)
    width, height = A4
    for number, (text, label) in enumerate(zip(pages, labels)):
        if declare_labels and (number == 0 or labels[number - 1].isdigit() != label.isdigit()):
            # reportlab wants the style's name: its one-letter codes ("r") are mistaken for names
            style = "ARABIC" if label.isdigit() else "ROMAN_LOWER"
            start = int(label) if label.isdigit() else _roman_value(label)
            pdf.addPageLabel(number, style=style, start=start)
        if header:
            pdf.setFont("Helvetica", 8)
            pdf.drawString(50, height - 30, header)
        pdf.setFont("Helvetica", font_size)
        y = height - 60
        for paragraph in text.split("\n"):
            for line in _wrap(paragraph, 90):
                pdf.drawString(50, y, line)
                y -= font_size + 4
                if y < 60:
                    break
        if footer:
            pdf.setFont("Helvetica", 8)
            pdf.drawString(width / 2, 30, footer.format(label=label))
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _roman_value(label: str) -> int:
    values = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
    total = 0
    for current, following in zip(label, label[1:] + " "):
        value = values[current]
        total += -value if following != " " and values.get(following, 0) > value else value
    return total


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def encrypt(data: bytes, user_password: str, owner_password: str = "owner", algorithm: str = "AES-128") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf(pages: int = 2, speckles: int = 3000) -> bytes:
    """Pages that hold only a picture of speckled noise (or of nothing, with no speckles): a scan with nothing
    OCR can read."""
    import random

    from PIL import Image
    from reportlab.lib.utils import ImageReader

    rng = random.Random(7)
    image = Image.new("L", (300, 400), 255)
    for _ in range(speckles):
        image.putpixel((rng.randrange(300), rng.randrange(400)), rng.randrange(160))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    for _ in range(pages):
        pdf.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def scan_of(data: bytes, dpi: int = 150, keep_text: set[int] | None = None) -> bytes:
    """The PDF as a scanner would give it back: each page a picture, no text layer; pages numbered in
    `keep_text` (1-based) keep their text instead, as in a document with a few scanned pages."""
    import pypdfium2
    from pypdf import PdfReader, PdfWriter
    from reportlab.lib.utils import ImageReader

    source = pypdfium2.PdfDocument(data)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    for page in source:
        image = page.render(scale=dpi / 72, grayscale=True).to_pil()
        pdf.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
        pdf.showPage()
    pdf.save()
    if not keep_text:
        return buffer.getvalue()
    scanned, original = PdfReader(io.BytesIO(buffer.getvalue())), PdfReader(io.BytesIO(data))
    writer = PdfWriter()
    for number, (picture, text) in enumerate(zip(scanned.pages, original.pages), 1):
        writer.add_page(text if number in keep_text else picture)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def phrase_rects(data: bytes, page_number: int, phrase: str) -> list[tuple[float, float, float, float]]:
    """Where PDFium's own text search finds a phrase on a page: (left, top, right, bottom) in points from the
    top-left corner, the frame the page image is drawn in."""
    import pypdfium2

    page = pypdfium2.PdfDocument(data)[page_number - 1]
    textpage = page.get_textpage()
    index, count = textpage.search(phrase, match_case=False).get_next()
    height = page.get_height()
    rects = [textpage.get_rect(i) for i in range(textpage.count_rects(index, count))]
    return [(left, height - top, right, height - bottom) for left, bottom, right, top in rects]


GUIDELINE_PAGES = [
    "1 Scope\nThis protocol covers the emergency treatment of anaphylaxis in adults. "
    "Suspect anaphylaxis when airway, breathing or circulation problems start suddenly after a trigger.",
    "2 Adrenaline\nGive adrenaline 500 micrograms intramuscularly into the anterolateral thigh. "
    "Repeat the intramuscular dose after 5 minutes if there is no improvement.",
    "3 After the emergency\nObserve patients for at least 6 hours after symptoms resolve if they needed two doses. "
    "Give two adrenaline auto-injectors at discharge and refer to an allergy clinic.",
    "4 Hypertension\nOffer amlodipine as first-line treatment for adults of Black African origin with hypertension. "
    "Measure blood pressure at every review and record the result.",
]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
