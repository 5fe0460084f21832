"""Scanned pages are read by OCR (real tesseract): indexed, marked as OCR on their evidence, answerable; pages too
poor to read are left out with the reason; a document with nothing readable is refused with what to do."""
from __future__ import annotations

import dataclasses
import io
import shutil

import pytest
from pypdf import PdfReader, PdfWriter

from assistant.display import evidence_cards
from assistant.files import words_path
from assistant.library import Library
from assistant.ocr import OcrOptions
from assistant.preview import marked_page
from assistant.records import Answer
from assistant.retriever import Retriever

from pdfs import GUIDELINE_PAGES, make_pdf, scan_of, scanned_pdf

pytestmark = [pytest.mark.xdist_group("test_ocr"),
              pytest.mark.skipif(shutil.which("tesseract") is None,
                                 reason="tesseract is not installed (make test installs it with apt-get)")]


def library_with(assistant, **changes) -> Library:
    settings = dataclasses.replace(assistant.settings, **changes)
    return Library(settings, assistant.library.encoder, assistant.store, files=assistant.library.files)


def test_a_scanned_guideline_is_read_by_ocr_and_answers_questions(assistant):
    messages = []
    result = assistant.library.add_bytes(scan_of(make_pdf(GUIDELINE_PAGES[:2])), "scanned-anaphylaxis.pdf",
                                         progress=lambda fraction, message: messages.append(message))
    assert result.status == "indexed", result.message
    assert "2 of 2 pages read by OCR" in result.message and "mean word confidence" in result.message
    assert any("page 1 of 2 by OCR" in message for message in messages)  # said before the slow part
    chunks = assistant.store.chunks_of(result.doc_id)
    assert chunks and all(chunk.read_by == "ocr" and chunk.ocr_confidence > 80 for chunk in chunks)
    text = " ".join(chunk.text for chunk in chunks)
    assert "adrenaline 500 micrograms intramuscularly" in text  # the words themselves, read right

    found = Retriever(assistant.query_encoder, assistant.store).search("dose of intramuscular adrenaline", 3)
    best = found[0]
    assert best.file == "scanned-anaphylaxis.pdf" and best.page == 2 and best.read_by == "ocr"
    cards = evidence_cards(Answer("dose of adrenaline?", "", found, True))
    assert "Read by OCR from a scanned page" in cards
    assert assistant.library.documents()[0].reading_note.startswith("2 of 2 pages read by OCR")
    # the word boxes OCR found are kept, so the page picture is marked without reading the page again (OCR off)
    stored = assistant.library.file_path(result.doc_id)
    _, boxes, _ = marked_page(str(stored), 2, best.text, [], OcrOptions(enabled=False), scanned=True)
    assert boxes
    assert assistant.library.delete("scanned-anaphylaxis.pdf") and not words_path(stored).exists()


def test_each_page_of_a_mixed_document_uses_its_best_source(assistant):
    data = scan_of(make_pdf(GUIDELINE_PAGES[:3]), keep_text={1, 3})
    result = assistant.library.add_bytes(data, "mixed.pdf")
    assert result.status == "indexed" and "1 of 3 pages read by OCR (page 2;" in result.message
    by_page = {chunk.page: chunk.read_by for chunk in assistant.store.chunks_of(result.doc_id)}
    assert by_page == {1: "text", 2: "ocr", 3: "text"}


def test_a_page_too_poor_to_read_is_left_out_with_the_reason(assistant):
    strict = library_with(assistant, ocr_min_confidence=99.5)  # no real page reaches it
    result = strict.add_bytes(scan_of(make_pdf(GUIDELINE_PAGES[:2]), keep_text={1}), "strict.pdf")
    assert result.status == "indexed"
    assert "Page 2 left out: too poor to read (mean word confidence" in result.message
    assert "below the 99.5% of ocr_min_confidence" in result.message
    assert {chunk.page for chunk in assistant.store.chunks_of(result.doc_id)} == {1}


@pytest.mark.parametrize(("changes", "data", "phrases"), [
    # speckle keeps tesseract busy for minutes a page: it is stopped, the page left out, the document refused
    ({"ocr_page_seconds": 3}, "noise", ["could be read reliably by OCR (page 1: not readable in time (OCR stopped "
                                        "after 3 s", "300 dpi"]),
    ({"ocr": False}, "scan", ["No text could be extracted", "Turn on the ocr setting", "ocrmypdf"]),
    ({"ocr_language": "xyz"}, "scan", ["cannot be read by OCR here", "no xyz language data",
                                       "apt-get install tesseract-ocr-xyz"]),
])
def test_a_document_with_nothing_readable_is_refused_with_what_to_do(assistant, changes, data, phrases):
    assistant.library.add_bytes(make_pdf(GUIDELINE_PAGES), "kept.pdf")
    before = [info.doc_id for info in assistant.library.documents()]
    pdf = scanned_pdf(1) if data == "noise" else scan_of(make_pdf(GUIDELINE_PAGES[:1]))
    result = library_with(assistant, **changes).add_bytes(pdf, "unreadable.pdf")
    assert result.status == "refused"
    for phrase in phrases:
        assert phrase in result.message, result.message
    assert [info.doc_id for info in assistant.library.documents()] == before  # nothing stored, nothing lost


def test_a_mixed_document_names_the_pages_it_could_not_read_and_ignores_wordless_pictures(assistant):
    # tesseract lacks the language: the text pages are indexed, the scanned one named with the reason
    lacking = library_with(assistant, ocr_language="xyz")
    result = lacking.add_bytes(scan_of(make_pdf(GUIDELINE_PAGES[:2]), keep_text={1}), "half-read.pdf")
    assert result.status == "indexed"
    assert "Page 2 left out: not read: tesseract has no xyz language data" in result.message
    # a picture with no words on it (a photo, a blank scan) is neither "read by OCR" nor "left out"
    photo = scanned_pdf(1, speckles=0)
    writer = PdfWriter()
    for part in (make_pdf(GUIDELINE_PAGES[2:3]), photo):
        for page in PdfReader(io.BytesIO(part)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    result = assistant.library.add_bytes(out.getvalue(), "with-photo.pdf")
    assert result.status == "indexed" and "OCR" not in result.message and "left out" not in result.message
