"""The passage marked on its page image: the boxes cover the passage's words, found independently by PDFium's
own text search, on a text PDF and on a scan read by OCR."""
from __future__ import annotations

import shutil

import pypdfium2
import pytest

from assistant.handlers import page_image, quoted_sentences
from assistant.ocr import OcrOptions
from assistant.preview import marked_page, render_page

from pdfs import GUIDELINE_PAGES, make_pdf, phrase_rects, scan_of

PASSAGE = GUIDELINE_PAGES[1]  # "2 Adrenaline ... Repeat the intramuscular dose after 5 minutes ..."
QUOTE = "Give adrenaline 500 micrograms intramuscularly into the anterolateral thigh."


def overlaps(box, rect) -> bool:
    left, top, right, bottom = rect
    return box.left < right and left < box.right and box.top < bottom and top < box.bottom


def check_marks(boxes, data: bytes) -> None:
    """The strong boxes cover the quoted words; the passage's other sentence is marked, but not strongly."""
    strong = [box for box in boxes if box.strong]
    plain = [box for box in boxes if not box.strong]
    for rect in phrase_rects(data, 2, "adrenaline 500 micrograms intramuscularly"):
        assert any(overlaps(box, rect) for box in strong), (rect, strong)
    for rect in phrase_rects(data, 2, "if there is no improvement"):
        assert any(overlaps(box, rect) for box in plain) and not any(overlaps(box, rect) for box in strong)
    page_height = pypdfium2.PdfDocument(data)[1].get_height()
    assert all(box.bottom < page_height - 60 for box in boxes)  # the footer ("Page 2") is not the passage


def test_the_passage_and_its_quote_are_marked_on_a_text_page(tmp_path):
    data = make_pdf(GUIDELINE_PAGES)
    path = tmp_path / "protocol.pdf"
    path.write_bytes(data)
    image, boxes, scale = marked_page(str(path), 2, PASSAGE, [QUOTE], OcrOptions())
    check_marks(boxes, data)
    # drawn: inside a quoted box the image is tinted where the plain page is white paper or black ink
    box = next(b for b in boxes if b.strong)
    plain = render_page(str(path), 2, 1200)
    x, y = int((box.left + 1) * scale), int((box.top + box.bottom) / 2 * scale)
    assert image.getpixel((x, y)) != plain.convert("RGB").getpixel((x, y))
    assert image.width == 1200


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed (make test installs it)")
def test_the_passage_is_marked_on_a_scanned_page_from_ocr_word_boxes(tmp_path):
    original = make_pdf(GUIDELINE_PAGES)
    path = tmp_path / "scanned.pdf"
    path.write_bytes(scan_of(original))
    _, boxes, _ = marked_page(str(path), 2, PASSAGE, [QUOTE], OcrOptions())
    check_marks(boxes, original)  # the scan is a picture of the same page: the words stand where they stood


def test_the_evidence_page_comes_marked_with_a_caption_that_says_so(assistant):
    library = assistant.library
    library.add_bytes(make_pdf(GUIDELINE_PAGES), "protocol.pdf")
    chunk = next(c for c in library.store.chunks_of(library.documents()[0].doc_id) if c.page == 2)
    evidence = {"number": 1, "doc_id": chunk.doc_id, "file": "protocol.pdf", "title": "t", "page": 2,
                "page_label": "2", "section": "", "score": 0.5, "text": chunk.text}
    answer = {"evidence": [evidence], "text": f"Guideline wording:\n> {QUOTE} [1]\n> Call for help. [2]"}
    assert quoted_sentences(answer["text"], 1) == [QUOTE]
    image, caption = page_image(assistant, answer, 1)
    assert caption == "[1] protocol.pdf, page 2: the passage is marked, the quoted sentence more strongly"
    assert image.width == 1200
    assert page_image(assistant, answer, 2) is None
