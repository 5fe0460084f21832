"""The passage marked on its page image: the boxes cover the passage's words, found independently by PDFium's
own text search, on a text PDF and on a scan read by OCR."""
from __future__ import annotations

import shutil

import pypdfium2
import pytest

from assistant.handlers import page_image
from assistant.ocr import OcrOptions
from assistant.preview import marked_page, render_page
from assistant.quotes import quoted_sentences

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
    _, boxes, _ = marked_page(str(path), 2, PASSAGE, [QUOTE], OcrOptions(), scanned=True)
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


def _changed(data: bytes, change) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    change(writer.pages[1])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_marks_follow_a_cropped_or_turned_page_as_it_is_drawn(tmp_path):
    from pypdf.generic import RectangleObject

    data = make_pdf(GUIDELINE_PAGES)
    (tmp_path / "plain.pdf").write_bytes(data)
    _, plain, _ = marked_page(str(tmp_path / "plain.pdf"), 2, PASSAGE, [QUOTE], OcrOptions())
    width, height = 595.2756, 841.8898
    cases = {
        # the crop box's corner becomes the picture's corner
        "cropped": (lambda page: page.__setattr__("cropbox", RectangleObject([40, 100, width - 20, height - 30])),
                    lambda b: (b.left - 40, b.top - 30, b.right - 40, b.bottom - 30)),
        # /Rotate 90: the page is drawn turned clockwise
        "turned": (lambda page: page.rotate(90), lambda b: (height - b.bottom, b.left, height - b.top, b.right)),
    }
    for name, (change, expected) in cases.items():
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(_changed(data, change))
        _, boxes, _ = marked_page(str(path), 2, PASSAGE, [QUOTE], OcrOptions())
        for before in [b for b in plain if b.strong or name == "cropped"]:
            # each mark, moved as the page moved, is covered by a mark of the same kind. On a turned page PDFium
            # gives the characters in another order, so only the quoted sentence is held to it there
            want = expected(before)
            assert any(box.strong == before.strong and overlaps(box, want) for box in boxes), (name, before)
        assert sum(b.strong for b in boxes) >= 1 and sum(not b.strong for b in boxes) >= 1
