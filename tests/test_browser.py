"""A real browser (Debian's chromium, driven by Playwright) uses the app as a clinician would."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from app_server import running_app
from conftest import MODEL_CACHE
from pdfs import GUIDELINE_PAGES, make_pdf, phrase_rects, scan_of

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_browser")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TESSERACT = shutil.which("tesseract") is not None
if not Path(CHROMIUM).exists():
    pytest.skip(reason="Debian's chromium is not installed (make test installs it with apt-get when it can)",
                allow_module_level=True)

MALARIA_PAGE = ("1 Severe malaria\nGive intravenous artesunate 2.4 mg/kg at admission, then at 12 hours and 24 hours. "
                "Continue once daily until the patient can take oral medication.")
DOCUMENTS = {  # file name -> (the PDF as a user has it, the text PDF its words were drawn from)
    "anaphylaxis-protocol.pdf": make_pdf(GUIDELINE_PAGES, title="anaphylaxis-protocol.pdf"),
    "scanned-malaria.pdf": make_pdf(["Scanned guideline", MALARIA_PAGE], title="malaria"),
}
XSS_PAGE = ("1 Malicious markup\nThe vaccine passage ends here <script>window.__pwned = 1</script> "
            "<img src=x onerror=\"window.__pwned = 2\"> and the booster is due at 18 months.")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    data = tmp_path_factory.mktemp("browser") / "data"
    data.mkdir()
    with running_app(data, MODEL_CACHE) as url:
        client = Client(url, verbose=False)
        uploads = {**DOCUMENTS, "scanned-malaria.pdf": scan_of(DOCUMENTS["scanned-malaria.pdf"]),
                   "markup.pdf": make_pdf([XSS_PAGE], title="markup.pdf")}
        if not TESSERACT:  # the scan would be refused; its test skips, the others run
            del uploads["scanned-malaria.pdf"]
        for name, data_bytes in uploads.items():
            path = data.parent / name
            path.write_bytes(data_bytes)
            assert client.predict(handle_file(str(path)), api_name="/upload")["status"] == "indexed"
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        yield page
        browser.close()


def ask(page, question: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#ask-button").click()
    page.locator("#evidence-panel .evidence-card").first.wait_for(timeout=120_000)


def test_question_shows_answer_and_evidence_card_with_file_and_page(page, tmp_path):
    assert "supports, and does not replace, clinical judgement" in page.content()
    ask(page, "What dose of intramuscular adrenaline is given to adults?")
    card = page.locator("#evidence-panel .evidence-card").first
    assert "anaphylaxis-protocol.pdf" in card.inner_text() and "page 2" in card.inner_text()
    page.get_by_text("Guideline wording").first.wait_for(timeout=120_000)
    page.locator("button", has_text="Page of [1]").click()
    page.locator("#page-preview img").first.wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)


def test_passage_with_script_is_shown_as_text(page):
    ask(page, "When is the booster due after the vaccine passage?")
    panel = page.locator("#evidence-panel")
    panel.get_by_text("<script>window.__pwned = 1</script>").first.wait_for(timeout=30_000)
    assert page.evaluate("window.__pwned") is None
    assert panel.locator("script").count() == 0 and panel.locator("img[src='x']").count() == 0


def _quote_mark(page, app_url: str):
    """The page image shown, and the box (in image pixels) of its strongly marked (quoted) area."""
    import base64
    import io
    from urllib.parse import urljoin

    from PIL import Image

    image = page.locator("#page-preview img").first
    image.wait_for(timeout=120_000)
    source = image.get_attribute("src") or ""
    data = base64.b64decode(source.split(",", 1)[1]) if source.startswith("data:") else \
        page.request.get(urljoin(app_url, source)).body()
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    # the quote's orange over white paper: red full, green and blue lowered (ink under it is darker still)
    marked = [(x, y) for x in range(0, picture.width, 2) for y in range(0, picture.height, 2)
              if (lambda r, g, b: r > 235 and 170 < g < 225 and b < 175)(*picture.getpixel((x, y)))]
    # rows crossed by a filled box, not the odd orange-ish pixel where the image's compression meets a yellow
    # mark's edge over grey ink
    rows = Counter(y for _, y in marked)
    marked = [(x, y) for x, y in marked if rows[y] >= 25]
    assert marked, "no quoted sentence is marked on the page image"
    xs, ys = [x for x, _ in marked], [y for _, y in marked]
    return picture, (min(xs), min(ys), max(xs), max(ys))


@pytest.mark.parametrize(("question", "file", "phrase"), [
    ("What dose of intramuscular adrenaline is given to adults?", "anaphylaxis-protocol.pdf",
     "adrenaline 500 micrograms intramuscularly"),
    pytest.param("What dose of intravenous artesunate is given for severe malaria?", "scanned-malaria.pdf",
                 "artesunate 2.4 mg/kg at admission", marks=pytest.mark.skipif(
                     not TESSERACT, reason="tesseract is not installed (make test installs it with apt-get)")),
])
def test_the_page_image_marks_the_quoted_words_and_the_card_opens_the_pdf_at_that_page(page, app_url, question,
                                                                                      file, phrase):
    page = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})  # a session of its own: no
    page.goto(app_url)  # earlier answer still streaming into it
    ask(page, question)
    card = page.locator("#evidence-panel .evidence-card").first.filter(has_text=file)
    card.wait_for(timeout=120_000)  # this answer's cards, not the last question's
    page.locator("blockquote", has_text=phrase.split()[0]).last.wait_for(timeout=120_000)  # its quotes are out
    assert "page 2" in card.inner_text()
    assert ("Read by OCR" in card.inner_text()) == file.startswith("scanned")
    page.locator("button", has_text="Page of [1]").click(timeout=120_000)  # shown with the finished answer
    picture, (left, top, right, bottom) = _quote_mark(page, app_url)
    # the words where PDFium finds them in the text PDF the page shows (the scan is a picture of it)
    scale = picture.width / 595.2756  # A4 width in points
    rects = phrase_rects(DOCUMENTS[file], 2, phrase)
    assert rects
    for rect_left, rect_top, rect_right, rect_bottom in rects:
        assert left < rect_right * scale and rect_left * scale < right, "the mark is not over the words"
        assert top < rect_bottom * scale and rect_top * scale < bottom, "the mark is not over the words"
    assert bottom - top < 0.25 * picture.height  # a passage's lines, not the whole page
    link = card.locator("a.ev-open")
    href = link.get_attribute("href") or ""
    assert "gradio_api/file=" in href and href.endswith("#page=2")
    served = page.request.get(urljoin_page(app_url, href.split("#")[0]))
    assert served.ok and served.body()[:5] == b"%PDF-"
    page.close()


def urljoin_page(app_url: str, href: str) -> str:
    from urllib.parse import urljoin

    return urljoin(app_url, href)
