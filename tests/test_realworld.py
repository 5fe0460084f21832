"""Every real guideline PDF in ../shared/realworld/pdfs through `parse_pdf` with the real encoder, read once: the
reading's hazards, and the gold spans of the real-guideline questions citing it (tests/realworld_set.py).

These files carry the hazards listed in ../shared/realworld/NOTES.md: encryption, no text layer, download
stamps, private-use bullets, ligatures, soft hyphens, two columns, odd page sizes. They are read in place
(most are "all rights reserved") and never copied into the project.
"""
from __future__ import annotations

import csv
import io
import re
import shutil

import pytest
from pypdf import PdfReader

import assistant.documents as ingest
from assistant.errors import DocumentError, NoTextError

from conftest import REALWORLD
from realworld_set import RECORDS, gold_span_problems

if not REALWORLD.is_dir():
    pytest.skip(reason=f"the real guideline PDFs are not available: {REALWORLD} does not exist "
                "(they are test material kept outside the project)", allow_module_level=True)

# no text layer: raster pages, and letters drawn as outlines. OCR takes seconds a page, so one page each is read
# here, with words it must find on it.
NO_TEXT_LAYER = {"india-mohfw-annual-report-2016-17-ch3.pdf": (2, ["maternal mortality ratio", "national health"]),
                 "sa-ndoh-epi-schedule-2009.pdf": (1, ["rotavirus vaccine", "hepatitis b", "intramuscular"])}
ENCRYPTED = {"who-imci-handbook-2005.pdf"}
HEAVY_PAGES = 150  # documents longer than this take seconds each: run with the slow tests
KNOWN_LABELS = {  # physical page -> printed label, checked against the PDFs by hand
    "who-postnatal-care-2013.pdf": {1: "i", 8: "viii", 9: "1", 10: "2"},  # declared /PageLabels
    "who-tb-treatment-2010.pdf": {1: "i", 15: "3"},
    "who-antenatal-care-2016.pdf": {1: "FC1", 3: "i"},
    "rcog-thyroid-pregnancy-gtg76-2025.pdf": {1: "130", 2: "131"},  # journal page numbers
    "nice-sepsis-ng51-2024.pdf": {2: "2", 50: "50", 95: "95"},  # printed "Page 2 of" / "95" on two lines
    "who-malaria-2023.pdf": {2: "2", 100: "100"},  # printed "2 of 451"
}
FORBIDDEN = re.compile("[\ue000-\uf8ff\ufb00-\ufb06\u00ad]")  # private use, ligatures, soft hyphen
WILEY_STAMP = re.compile(r"Downloaded from|onlinelibrary\.wiley\.com|Terms and Conditions", re.I)


def _page_counts() -> dict[str, int]:
    """Pages per file from MANIFEST.tsv (cheap at collection time), else from pypdf."""
    manifest = REALWORLD.parent / "MANIFEST.tsv"
    if manifest.is_file():
        with manifest.open(newline="", encoding="utf-8") as handle:
            return {row["file"]: int(row["pages"]) for row in csv.DictReader(handle, delimiter="\t")}
    return {}


def _cases():
    counts = _page_counts()
    for path in sorted(REALWORLD.glob("*.pdf")):
        heavy = counts.get(path.name, 0) > HEAVY_PAGES
        yield pytest.param(path, id=path.name, marks=[pytest.mark.slow] if heavy else [])


def _one_page(data: bytes, number: int) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(data)).pages[number - 1])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pypdf_pages(data: bytes) -> int:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        assert reader.decrypt("")
    return len(reader.pages)


@pytest.mark.parametrize("path", list(_cases()))
def test_real_guideline(path, encoder, settings, monkeypatch):
    data = path.read_bytes()
    cleaned = []

    def spy(raw_pages):  # the real clean_pages, keeping its output to check the offsets against
        pages = real_clean_pages(raw_pages)
        cleaned.extend(pages)
        return pages

    real_clean_pages = ingest.clean_pages
    monkeypatch.setattr(ingest, "clean_pages", spy)

    if path.name in NO_TEXT_LAYER:
        assert all(record["evidence"]["file"] != path.name for record in RECORDS)  # its spans are checked below
        page, phrases = NO_TEXT_LAYER[path.name]
        with pytest.raises(NoTextError) as refused:  # as before when OCR is off, with what to do
            ingest.parse_pdf(data, path.name, encoder, settings.replace(ocr=False))
        assert "Turn on the ocr setting" in str(refused.value) and "scan" in str(refused.value)
        if shutil.which("tesseract") is None:
            pytest.skip(reason="tesseract is not installed (make test installs it with apt-get): the refusal "
                        "without OCR was checked, the OCR reading cannot be")
        info, chunks = ingest.parse_pdf(_one_page(data, page), path.name, encoder, settings)
        assert chunks and all(chunk.read_by == "ocr" and chunk.ocr_confidence >= 80 for chunk in chunks)
        assert info.reading_note.startswith("1 of 1 pages read by OCR")
        text = re.sub(r"\s+", " ", " ".join(chunk.text for chunk in chunks)).lower()
        assert all(phrase in text for phrase in phrases), text[:500]
        return
    # the text layer's hazards; OCR of the odd picture page has its own tests (test_ocr.py), and would only add
    # minutes here
    settings = settings.replace(ocr=False)
    if path.name in ENCRYPTED:
        assert PdfReader(io.BytesIO(data)).is_encrypted  # the test would prove nothing otherwise
    try:
        info, chunks = ingest.parse_pdf(data, path.name, encoder, settings)
    except DocumentError as error:
        pytest.fail(f"{path.name} was refused: {error}")

    assert info.pages == len(cleaned) == _pypdf_pages(data)
    assert chunks and info.chunks == len(chunks)
    assert info.title and info.title != "None"
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))

    size = min(settings.chunk_tokens, encoder.max_tokens - 48)
    counts = encoder.count_tokens([c.text for c in chunks])
    for chunk, tokens in zip(chunks, counts):
        page = cleaned[chunk.page - 1]
        assert chunk.text.strip(), f"empty chunk on page {chunk.page}"
        assert page.text[chunk.char_start:chunk.char_end] == chunk.text
        assert tokens <= size, f"chunk {chunk.chunk_index} (page {chunk.page}) has {tokens} tokens"
        found = FORBIDDEN.findall(chunk.text)
        assert not found, f"page {chunk.page} keeps {[hex(ord(ch)) for ch in found[:5]]}"
        assert chunk.page_label and chunk.page_label == page.label
        if path.name.startswith("rcog-"):
            assert not WILEY_STAMP.search(chunk.text), f"download stamp left on page {chunk.page}"
    assert all(page.label for page in cleaned)
    for number, label in KNOWN_LABELS.get(path.name, {}).items():
        assert cleaned[number - 1].label == label, f"page {number}"
    # most pages with text give at least one chunk (nothing is silently lost)
    with_text = {page.number for page in cleaned if len(page.text) > 200}
    assert with_text <= {chunk.page for chunk in chunks}
    # the real-guideline questions citing this file are sound against this reading of it
    assert gold_span_problems(path.name, chunks) == []
