"""Re-indexing never takes a document out of the library: new chunk settings are written beside the live
chunks and switched to in one registry record; a crash at any moment leaves one complete writing live."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from assistant.config import load_settings
from assistant.library import Library
from assistant.store import GuidelineStore, open_store

from app_server import ROOT
from pdfs import GUIDELINE_PAGES, make_pdf


def _library(settings, encoder, **changes) -> Library:
    settings = settings.replace(**changes)
    return Library(settings, encoder, open_store(settings, encoder))


def _consistent(store: GuidelineStore) -> bool:
    stored, promised = store.integrity()
    return stored == promised


def test_reindex_writes_new_chunks_and_keeps_every_document(settings, encoder):
    library = _library(settings, encoder)
    for name, words in (("one.pdf", "anaphylaxis"), ("two.pdf", "asthma")):
        pages = [" ".join([p] * 4) + f" About {words}." for p in GUIDELINE_PAGES]  # several chunks a page
        assert library.add_bytes(make_pdf(pages), name).status == "indexed"
    before = {info.doc_id: info.chunks for info in library.documents()}

    smaller = _library(settings, encoder, chunk_tokens=60, chunk_overlap=10)  # new chunk settings, same store
    results = smaller.reindex_all()
    assert [r.status for r in results] == ["re-indexed", "re-indexed"]
    after = {info.doc_id: info for info in smaller.documents()}
    assert set(after) == set(before)
    assert all(after[d].chunks > before[d] and after[d].generation == 1 for d in before)
    assert _consistent(smaller.store)  # the earlier writing is gone
    for doc_id, info in after.items():
        chunks = smaller.store.chunks_of(doc_id)
        assert len(chunks) == info.chunks and {c.generation for c in chunks} == {1}
    hits = smaller.store.query(encoder.encode(["adrenaline dose in anaphylaxis"])[0], 5)
    assert hits and all(chunk.generation == 1 for chunk, _ in hits)
    assert smaller.store.lexical_query("adrenaline anaphylaxis", 5)


def test_a_failure_while_rewriting_leaves_the_live_writing_answerable(settings, encoder, monkeypatch):
    library = _library(settings, encoder)
    library.add_bytes(make_pdf(GUIDELINE_PAGES), "one.pdf")
    [info] = library.documents()
    smaller = _library(settings, encoder, chunk_tokens=60, chunk_overlap=10)

    def fail(self, info):
        raise OSError("disk full")
    monkeypatch.setattr(GuidelineStore, "_commit", fail)
    with pytest.raises(OSError):
        smaller.reindex_all()
    monkeypatch.undo()
    [still] = smaller.documents()
    assert still == info and _consistent(smaller.store)
    assert len(smaller.store.chunks_of(info.doc_id)) == info.chunks
    assert smaller.store.query(encoder.encode(["adrenaline"])[0], 3)


def test_earlier_writings_left_by_a_crash_after_the_switch_are_removed_at_start(settings, encoder, monkeypatch):
    library = _library(settings, encoder)
    library.add_bytes(make_pdf(GUIDELINE_PAGES), "one.pdf")
    smaller = _library(settings, encoder, chunk_tokens=60, chunk_overlap=10)
    real = GuidelineStore._delete_generations
    calls = []

    def crash_after_switch(self, doc_id, keep):
        calls.append(keep)
        if len(calls) == 2:  # the clean-up after the registry switched: the process "dies" here
            return 0
        return real(self, doc_id, keep)
    monkeypatch.setattr(GuidelineStore, "_delete_generations", crash_after_switch)
    smaller.reindex_all()
    monkeypatch.undo()
    [info] = smaller.documents()
    assert not _consistent(smaller.store)  # both writings stored...
    assert all(c.generation == 1 for c, _ in smaller.store.query(encoder.encode(["adrenaline"])[0], 20))  # ...one live
    reopened = open_store(smaller.settings, encoder)  # start-up recovery
    assert _consistent(reopened)
    assert len(reopened.chunks_of(info.doc_id)) == info.chunks


CHILD = textwrap.dedent("""
    import sys
    from assistant.config import load_settings
    from assistant.service import build_assistant

    settings = load_settings(env={}, config_file=None, data_dir=sys.argv[1], index_samples_on_start=False,
                             chunk_tokens=int(sys.argv[2]), chunk_overlap=10)
    assistant = build_assistant(settings)
    if sys.argv[3] == "add":
        for path in sys.argv[4:]:
            print(assistant.library.add_path(__import__("pathlib").Path(path)).status, flush=True)
    else:
        assistant.library.reindex_all(lambda fraction, message: print(message, flush=True))
        print("finished", flush=True)
""")


@pytest.mark.slow
def test_sigkill_during_reindex_all_loses_no_document(tmp_path):
    """Kill -9 the process re-indexing the library in the middle of a large document; every document is still
    listed, answerable and consistent when the library opens again."""
    data_dir = tmp_path / "data"
    paths = []
    for number in range(5):
        pages = GUIDELINE_PAGES * (40 if number == 2 else 1)  # the third (by name) is long: the kill lands in it
        path = tmp_path / f"guideline-{number}.pdf"
        path.write_bytes(make_pdf([p + f" Guideline {number}, page {i}." for i, p in enumerate(pages)]))
        paths.append(str(path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    run = [sys.executable, "-c", CHILD, str(data_dir)]
    added = subprocess.run(run + ["200", "add", *paths], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert added.stdout.split() == ["indexed"] * 5, added.stderr[-2000:]

    child = subprocess.Popen(run + ["60", "reindex"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        for line in child.stdout:
            if "guideline-2.pdf" in line:
                time.sleep(3)  # well into reading and embedding the long one
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()

    settings = load_settings(env={}, config_file=None, data_dir=data_dir, index_samples_on_start=False)
    from assistant.encoder import load_encoder

    encoder = load_encoder("packaged", "cpu")
    store = open_store(settings, encoder)  # recovers as the app does at start-up
    names = sorted(info.file_name for info in store.list_documents())
    assert names == [f"guideline-{n}.pdf" for n in range(5)]
    assert _consistent(store)
    for info in store.list_documents():
        assert len(store.chunks_of(info.doc_id)) == info.chunks > 0
    vector = encoder.encode(["Guideline 2 adrenaline"])[0]
    assert any(chunk.file_name == "guideline-2.pdf" for chunk, _ in store.query(np.asarray(vector), 10))


def test_start_up_settles_what_a_crash_left_in_the_kept_files(settings, encoder, caplog):
    """An interrupted upload (kept PDF marked pending, never registered) and an interrupted deletion are
    removed; a committed PDF the registry lost (an older version's re-index) is restored; all logged."""
    import logging

    library = _library(settings, encoder)
    kept = library.add_bytes(make_pdf(GUIDELINE_PAGES), "kept.pdf")
    lost = library.add_bytes(make_pdf([p + " Lost once." for p in GUIDELINE_PAGES]), "lost.pdf")
    deleting = library.add_bytes(make_pdf([p + " Being deleted." for p in GUIDELINE_PAGES]), "deleting.pdf")
    library.store.delete_document(lost.doc_id)  # what the old re-index did before it was killed
    library.files.mark_deleting(deleting.doc_id)  # killed in the middle of a deletion
    interrupted = make_pdf([p + " Interrupted upload." for p in GUIDELINE_PAGES])
    library.files.save("f" * 64, interrupted, "interrupted.pdf")  # killed after saving, before the commit
    assert {name for name, _ in library.files.entries().values()} == {"kept.pdf", "lost.pdf", "deleting.pdf",
                                                                      "interrupted.pdf"}
    with caplog.at_level(logging.WARNING, logger="assistant.library"):
        restored = _library(settings, encoder).prepare(settings.guidelines_dir, seed_samples=False)
    assert [r.file_name for r in restored] == ["lost.pdf"] and restored[0].status == "indexed"
    assert sorted(info.file_name for info in library.documents()) == ["kept.pdf", "lost.pdf"]
    assert sorted(name for name, _ in library.files.entries().values()) == ["kept.pdf", "lost.pdf"]
    assert all(state == "" for _, state in library.files.entries().values())
    assert library.store.get_document(kept.doc_id) and _consistent(library.store)
    logged = caplog.text
    assert "interrupted.pdf" in logged and "deleting.pdf" in logged and "Restoring lost.pdf" in logged
