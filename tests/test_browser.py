"""A real browser (Debian's chromium, driven by Playwright) uses the app as a clinician would."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from app_server import running_app
from conftest import MODEL_CACHE
from pdfs import GUIDELINE_PAGES, make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_browser")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(reason="Debian's chromium is not installed (make test installs it with apt-get when it can)",
                allow_module_level=True)

XSS_PAGE = ("1 Malicious markup\nThe vaccine passage ends here <script>window.__pwned = 1</script> "
            "<img src=x onerror=\"window.__pwned = 2\"> and the booster is due at 18 months.")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    data = tmp_path_factory.mktemp("browser") / "data"
    data.mkdir()
    with running_app(data, MODEL_CACHE) as url:
        client = Client(url, verbose=False)
        for name, pages in (("anaphylaxis-protocol.pdf", GUIDELINE_PAGES), ("markup.pdf", [XSS_PAGE])):
            path = data.parent / name
            path.write_bytes(make_pdf(pages, title=name))
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
