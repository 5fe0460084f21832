"""OCR benchmark: how fast and how right tesseract reads scanned guideline pages, and whether the answer's
passage is still found when a guideline arrives as a scan.

    .venv/bin/python bench/ocr.py [--questions 40] [--sweep-pages 8] [--no-write]

The truth is the text layer of real guideline PDFs (../shared/realworld). For an evenly spaced sample of the
real-guideline questions (bench/data/realworld.jsonl), each gold page and the page after it are cut out of
their PDF, once as they are (the peer: the text layer) and once as a scanner would give them back (each
page a 150 dpi greyscale picture, no text layer). Both go through the app's own ingestion into two fresh
libraries; the scanned one is read by OCR at the app's `ocr_dpi`.
- Speed: seconds of OCR per page (tesseract and the page's rendering), pages per second.
- Word accuracy per page against the text layer: word error rate (edit distance over the words, in reading
  order; two-column pages are read in a different order by the two, which counts against OCR) and, free of
  order, the share of the text layer's words that OCR found and the share of OCR's words that are in it.
- Retrieval: recall@5 of the gold page for the same questions, the question as a clinician types it,
  against each library (the app's hybrid retrieval).
- A resolution sweep on a few of the pages: OCR at 150, 200 and 300 dpi side by side (speed and accuracy).
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import re
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import benchlib
from benchlib import REALWORLD_PDFS, ROOT, markdown_table

log = logging.getLogger("bench.ocr")
SCAN_DPI = 150  # the pictures' own resolution, as an office scanner or fax gives them
SWEEP_DPI = (150, 200, 300)
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_error_rate(truth: list[str], read: list[str]) -> float:
    """Edits (substitutions, insertions, deletions) to turn `read` into `truth`, per word of the truth."""
    if not truth:
        return 0.0 if not read else 1.0
    previous = list(range(len(read) + 1))
    for i, word in enumerate(truth, 1):
        current = [i] + [0] * len(read)
        for j, other in enumerate(read, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
        previous = current
    return previous[-1] / len(truth)


def overlap(truth: list[str], read: list[str]) -> tuple[float, float]:
    """Order-free: the share of the truth's words OCR found, and the share of OCR's words in the truth."""
    common = sum((Counter(truth) & Counter(read)).values())
    return common / max(1, len(truth)), common / max(1, len(read))


def page_subsets(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per file, the gold pages of the questions and the page after each (a neighbour to be confused with)."""
    from pypdf import PdfReader

    pages: dict[str, set[int]] = {}
    for record in records:
        file, page = record["evidence"]["file"], record["evidence"]["page"]
        count = len(PdfReader(REALWORLD_PDFS / file).pages)
        pages.setdefault(file, set()).update(p for p in (page, page + 1) if p <= count)
    return {file: sorted(numbers) for file, numbers in pages.items()}


def cut(file: str, numbers: list[int], scanned: bool) -> bytes:
    """The chosen pages of a real PDF, as they are or as pictures only."""
    import pypdfium2
    from pypdf import PdfReader, PdfWriter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    if not scanned:
        writer = PdfWriter()
        reader = PdfReader(REALWORLD_PDFS / file)
        for number in numbers:
            writer.add_page(reader.pages[number - 1])
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
    source = pypdfium2.PdfDocument(REALWORLD_PDFS / file)
    out = io.BytesIO()
    pdf = canvas.Canvas(out, invariant=1)
    for number in numbers:
        page = source[number - 1]
        width, height = page.get_size()
        pdf.setPageSize((width, height))
        image = page.render(scale=SCAN_DPI / 72, grayscale=True).to_pil()
        pdf.drawImage(ImageReader(image), 0, 0, width=width, height=height)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


class RecordingReader:
    """The app's reader, in this process, keeping each page's text and how long its OCR took."""

    def __init__(self) -> None:
        self.pages: dict[str, list[Any]] = {}
        self.ocr_seconds: list[float] = []
        self.current = ""

    def __call__(self, data: bytes, limits: Any, on_page: Any = None, ocr: Any = None) -> Any:
        from assistant.pdf_reader import read_pdf

        started: list[float] = []

        def timed(done: int, count: int, how: str = "") -> None:
            if how == "ocr":
                started.append(time.perf_counter())
            elif started:
                self.ocr_seconds.append(time.perf_counter() - started.pop())

        document = read_pdf(data, limits, on_page=timed, ocr=ocr)
        self.pages[self.current] = document.pages
        return document


def build_library(label: str, subsets: dict[str, list[int]], scanned: bool, data_dir: Path) -> tuple[Any, Any]:
    from assistant.config import load_settings
    from assistant.library import Library
    from assistant.service import build_assistant

    settings = load_settings(env={}, config_file=None, data_dir=data_dir, index_samples_on_start=False)
    assistant = build_assistant(settings)
    reader = RecordingReader()
    library = Library(replace(settings, isolate_parsing=False), assistant.library.encoder, assistant.store,
                      reader=reader, files=assistant.library.files)
    for file, numbers in subsets.items():
        reader.current = file
        result = library.add_bytes(cut(file, numbers, scanned), file)
        log.info("%s: %s", label, result.message)
    return assistant, reader


def recall_at_5(assistant: Any, records: list[dict[str, Any]], subsets: dict[str, list[int]]) -> float:
    retriever = assistant.retriever()
    hits = 0
    for record in records:
        file, page = record["evidence"]["file"], record["evidence"]["page"]
        found = retriever.retrieve(record["question"], 5).evidence
        hits += any(item.file == file and subsets[file][item.page - 1] == page for item in found)
    return hits / len(records)


def sweep(files: list[tuple[str, int]]) -> list[list[object]]:
    """OCR of the same scanned pages at each resolution, side by side."""
    import pypdfium2

    from assistant.ocr import OcrOptions, read_page

    rows = []
    for dpi in SWEEP_DPI:
        seconds, errors, found = [], [], []
        for file, number in files:
            truth = words(cut_text(file, number))
            page = pypdfium2.PdfDocument(cut(file, [number], scanned=True))[0]
            started = time.perf_counter()
            result = read_page(page, OcrOptions(dpi=dpi))
            seconds.append(time.perf_counter() - started)
            errors.append(word_error_rate(truth, words(result.text)))
            found.append(overlap(truth, words(result.text))[0])
        rows.append([dpi, len(files), f"{statistics.median(seconds):.2f}", f"{len(files) / sum(seconds):.3f}",
                     f"{100 * statistics.median(errors):.1f}%", f"{100 * statistics.mean(found):.1f}%"])
    return rows


def cut_text(file: str, number: int) -> str:
    from pypdf import PdfReader

    return PdfReader(REALWORLD_PDFS / file).pages[number - 1].extract_text() or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=40, help="real-guideline questions, evenly spaced")
    parser.add_argument("--sweep-pages", type=int, default=8, help="pages OCR'd at each resolution of the sweep")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    before = benchlib.load_average()
    rows = [json.loads(line) for line in (ROOT / "bench/data/realworld.jsonl").read_text().splitlines() if line]
    records = [rows[i * len(rows) // args.questions] for i in range(min(args.questions, len(rows)))]
    subsets = page_subsets(records)
    pages = sum(len(numbers) for numbers in subsets.values())

    with tempfile.TemporaryDirectory() as text_dir, tempfile.TemporaryDirectory() as scan_dir:
        text_library, text_reader = build_library("text layer", subsets, False, Path(text_dir))
        scan_library, scan_reader = build_library("scanned", subsets, True, Path(scan_dir))
        text_recall = recall_at_5(text_library, records, subsets)
        scan_recall = recall_at_5(scan_library, records, subsets)

    errors, found, correct, confidences = [], [], [], []
    for file, text_pages in text_reader.pages.items():
        for truth_page, read_page in zip(text_pages, scan_reader.pages.get(file, [])):
            truth, read = words(truth_page.text), words(read_page.text)
            if len(truth) < 30:
                continue  # a near-empty page says nothing about accuracy
            errors.append(word_error_rate(truth, read))
            recall, precision = overlap(truth, read)
            found.append(recall)
            correct.append(precision)
            confidences.append(read_page.ocr_confidence)
    seconds = scan_reader.ocr_seconds
    sweep_pages = [(file, number) for file, numbers in subsets.items() for number in numbers[:1]][:args.sweep_pages]
    sweep_rows = sweep(sweep_pages)
    after = benchlib.load_average()

    text = "\n".join([
        "## OCR of scanned guidelines (bench/ocr.py)", "",
        f"{benchlib.machine_description()}; {benchlib.load_note(before, after)} Command: `{benchlib.command_line()}`.",
        "",
        f"{len(records)} real-guideline questions; their gold pages and the page after each: {pages} pages of "
        f"{len(subsets)} real PDFs, once with their text layer and once as {SCAN_DPI} dpi greyscale pictures "
        "read by the app's OCR (tesseract 5, `ocr_dpi` 200).", "",
        markdown_table(["measure", "text layer (peer)", "scanned, read by OCR"], [
            ["pages", pages, f"{len(seconds)} read by OCR"],
            ["OCR seconds per page, p50 / p95", "-",
             f"{statistics.median(seconds):.2f} / {benchlib.percentile(seconds, 95):.2f}" if seconds else "-"],
            ["pages per second (OCR only)", "-", f"{len(seconds) / sum(seconds):.3f}" if seconds else "-"],
            ["word error rate against the text layer, median (pages with 30+ words)", "0 (the truth)",
             f"{100 * statistics.median(errors):.1f}% ({len(errors)} pages)" if errors else "-"],
            ["text layer's words OCR found (order-free), mean", "100%",
             f"{100 * statistics.mean(found):.1f}%" if found else "-"],
            ["OCR's words that are in the text layer, mean", "100%",
             f"{100 * statistics.mean(correct):.1f}%" if correct else "-"],
            ["mean word confidence", "-", f"{statistics.mean(confidences):.1f}" if confidences else "-"],
            ["gold page in the top 5 (recall@5)", f"{100 * text_recall:.1f}%", f"{100 * scan_recall:.1f}%"],
        ]), "",
        f"Resolution sweep ({len(sweep_pages)} of the same scanned pages, OCR alone, side by side):", "",
        markdown_table(["ocr_dpi", "pages", "seconds per page, p50", "pages per second", "word error rate, median",
                        "text layer's words found, mean"], sweep_rows),
    ])
    print(text)
    if not args.no_write:
        benchlib.replace_section("ocr", text)


if __name__ == "__main__":
    main()
