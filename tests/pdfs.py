"""Small real PDFs made in the tests: text pages with running headers and footers, page labels,
encryption and image-only (scanned) pages."""
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


def scanned_pdf(pages: int = 2) -> bytes:
    """Pages that hold only a picture of text: what a scanner produces."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader

    image = Image.new("RGB", (600, 800), "white")
    ImageDraw.Draw(image).text((40, 40), "Scanned guideline page: give 500 mg", fill="black")
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    for _ in range(pages):
        pdf.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


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
