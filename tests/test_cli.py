"""The command lines: `python -m assistant.ingest` and `python -m assistant ask`."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import MODEL_CACHE, ROOT
from pdfs import GUIDELINE_PAGES, make_pdf, scan_of

pytestmark = pytest.mark.slow  # each command starts a fresh interpreter that loads the models


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "assistant.toml"
    path.write_text(f'[assistant]\ndata_dir = "{tmp_path / "data"}"\nmodel_cache = "{MODEL_CACHE}"\n'
                    "index_samples_on_start = false\ngenerator_model = \"fast\"\n")
    return path


def run(*args: str, config) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args, "--config", str(config)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ingest_ask_and_delete_from_the_command_line(tmp_path, config):
    """One library through the commands a user runs in turn (each a fresh interpreter that loads the models):
    index a folder, ask with the evidence printed or as JSON, delete."""
    folder = tmp_path / "pdfs"
    folder.mkdir()
    (folder / "protocol.pdf").write_bytes(make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol"))
    (folder / "notes.pdf").write_text("not a pdf at all, just some notes")
    (folder / "scanned.pdf").write_bytes(scan_of(make_pdf(GUIDELINE_PAGES[:1])))
    indexed = run("assistant.ingest", str(folder), "--list", config=config)
    assert indexed.returncode == 1  # one file was refused, and the exit code says so
    assert "indexed  protocol.pdf" in indexed.stdout and "refused  notes.pdf" in indexed.stdout
    assert "Reading page 1 of 1 by OCR" in indexed.stderr  # the progress bar says what takes the time
    listing = [line for line in indexed.stdout.splitlines() if "\t" in line]  # --list prints after indexing
    assert len(listing) == 2 and listing[0].startswith("protocol.pdf\tAnaphylaxis protocol\t4 pages")
    assert listing[1].startswith("scanned.pdf\t")
    assert re.search(r"\t1 of 1 pages read by OCR \(page 1; mean word confidence \d+%\)$", listing[1])

    text = run("assistant", "ask", "After how many minutes can IM adrenaline be repeated?", config=config)
    assert text.returncode == 0, text.stderr
    assert "5 minutes" in text.stdout and "Evidence:" in text.stdout and "protocol.pdf, page 2" in text.stdout
    as_json = run("assistant", "ask", "After how many minutes can IM adrenaline be repeated?", "--json",
                  config=config)
    record = json.loads(as_json.stdout)
    assert record["covered"] and record["evidence"][0]["page"] == 2
    empty = run("assistant", "ask", "   ", config=config)
    assert empty.returncode == 2 and "type a question" in empty.stderr

    deleted = run("assistant.ingest", "--delete", "protocol.pdf", "--list", config=config)
    assert deleted.returncode == 0  # gone from the list printed after deleting
    assert [line.split("\t")[0] for line in deleted.stdout.splitlines()] == ["scanned.pdf"]
