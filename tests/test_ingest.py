"""Uploads through `Library.add_bytes` into a real embedded Chroma: provenance, page labels, titles,
duplicates and replacement, deletion, atomic writes, crash recovery and every kind of bad input."""
from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile

import pytest
from pypdf import PdfReader

from assistant.cleaning import clean_pages
from assistant.library import Library
from assistant.pdf_reader import Limits, read_pdf
from assistant.records import Chunk
from assistant.store import GuidelineStore, make_client

from conftest import REALWORLD
from pdfs import GUIDELINE_PAGES, encrypt, make_pdf, scanned_pdf

LIMITS = Limits(max_bytes=10**9, max_pages=10_000, max_chars=10**9, max_seconds=600)
QUERY = "How much adrenaline is given intramuscularly in anaphylaxis?"

LONG_PAGES = [
    "1 Recognition\n" + " ".join(
        f"Sign {i}: watch for sudden wheeze, stridor or hypotension after exposure to trigger {i}." for i in range(14)),
    "2 Adrenaline\n" + " ".join(
        f"Step {i}: give adrenaline 500 micrograms IM and reassess the airway after {i} minutes." for i in range(14)),
    "3 Fluids\n" + " ".join(f"Rule {i}: give a crystalloid bolus of 20 mL/kg and check the pulse again, round {i}."
                            for i in range(14)),
]


def variant(number: int) -> bytes:
    """A valid guideline PDF whose bytes (and so document id) differ with `number`."""
    pages = list(GUIDELINE_PAGES)
    pages[0] = pages[0] + f" Local version {number}."
    return make_pdf(pages, title=f"Anaphylaxis protocol v{number}")


def with_settings(library: Library, **changes) -> Library:
    """Another library over the same store, with some settings changed."""
    return Library(library.settings.replace(**changes), library.encoder, library.store)


_QUERY_VECTORS: dict[int, object] = {}


def _query_vector(encoder):
    """The query's embedding, computed once per encoder (encoding is the slow part of these tests)."""
    if id(encoder) not in _QUERY_VECTORS:
        _QUERY_VECTORS[id(encoder)] = encoder.encode([QUERY])[0]
    return _QUERY_VECTORS[id(encoder)]


def _items(metadata: dict) -> tuple:
    return tuple(sorted(metadata.items()))


def snapshot(library: Library) -> dict:
    """Everything observable about the store and the data folder."""
    store = library.store
    stored = store.chunks.get(include=["documents", "metadatas"])
    registry = store.registry.get(include=["metadatas"])
    files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
             for path in library.settings.data_dir.rglob("*") if path.is_file() and "chroma" not in path.parts}
    vector = _query_vector(library.encoder)
    return {
        "documents": [info.as_dict() for info in store.list_documents()],
        "count": store.count(),
        "chunks": sorted(zip(stored["ids"], stored["documents"], map(_items, stored["metadatas"]))),
        "registry": sorted(zip(registry["ids"], map(_items, registry["metadatas"]))),
        "files": files,
        "query": [(chunk.chunk_id, round(score, 5)) for chunk, score in store.query(vector, 5)],
    }


def stored_files(library: Library, doc_id: str) -> list[str]:
    """Files the library keeps in its data folder for one document."""
    return sorted(p.name for p in library.settings.files_dir.glob(f"{doc_id}.*"))


def cleaned_pages(data: bytes):
    return clean_pages(read_pdf(data, LIMITS).pages)


# -- provenance -------------------------------------------------------------------------------

def test_each_chunk_points_at_its_exact_text(library):
    small = with_settings(library, chunk_tokens=48, chunk_overlap=12)
    data = make_pdf(LONG_PAGES, header="Resuscitation Council protocol 2024", title="Anaphylaxis in adults")
    progress = []
    result = small.add_bytes(data, "anaphylaxis.pdf", lambda fraction, message: progress.append(fraction))
    assert result.status == "indexed", result.message
    assert result.pages == 3 and result.doc_id == hashlib.sha256(data).hexdigest()
    assert progress == sorted(progress) and progress[-1] == 1.0

    chunks = library.store.chunks_of(result.doc_id)
    assert len(chunks) == result.chunks > 3 * 3  # several chunks per page
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    pages = cleaned_pages(data)
    reader = PdfReader(io.BytesIO(data))
    for chunk in chunks:
        page_text = pages[chunk.page - 1].text
        assert page_text[chunk.char_start:chunk.char_end] == chunk.text
        raw = reader.pages[chunk.page - 1].extract_text()
        missing = [word for word in re.findall(r"\w+", chunk.text) if word not in raw]
        assert not missing, f"words of chunk {chunk.chunk_index} not on physical page {chunk.page}: {missing}"
        assert "Resuscitation Council" not in chunk.text  # the running header was dropped
        assert (chunk.file_name, chunk.title, chunk.doc_id) == ("anaphylaxis.pdf", "Anaphylaxis in adults",
                                                                 result.doc_id)
        assert chunk.page_label == str(chunk.page)
    sections = {chunk.page: chunk.section for chunk in chunks}
    assert sections == {1: "1 Recognition", 2: "2 Adrenaline", 3: "3 Fluids"}
    # the stored copy of the PDF is the uploaded file
    assert small.file_path(result.doc_id).read_bytes() == data


def test_query_finds_the_uploaded_passage(library):
    result = library.add_bytes(make_pdf(GUIDELINE_PAGES), "protocol.pdf")
    hits = library.store.query(_query_vector(library.encoder), 3)
    assert hits and hits[0][0].page == 2 and "500 micrograms" in hits[0][0].text
    assert hits[0][0].doc_id == result.doc_id and 0.3 < hits[0][1] <= 1.0


@pytest.mark.parametrize("declare", [False, True], ids=["printed", "declared"])
def test_page_label_differs_from_physical_page_with_roman_front_matter(library, declare):
    labels = ["i", "ii", "1", "2", "3", "4"]
    pages = ["Foreword by the Minister of Health about this protocol and its use in clinics.",
             "Contents and the list of abbreviations used in this anaphylaxis protocol."] + GUIDELINE_PAGES
    data = make_pdf(pages, labels=labels, declare_labels=declare, footer=None if declare else "Page {label}")
    result = library.add_bytes(data, "labelled.pdf")
    assert result.status == "indexed", result.message
    by_page = {chunk.page: chunk.page_label for chunk in library.store.chunks_of(result.doc_id)}
    assert by_page == dict(zip(range(1, 7), labels))
    adrenaline = [c for c in library.store.chunks_of(result.doc_id) if "500 micrograms" in c.text]
    assert [(c.page, c.page_label) for c in adrenaline] == [(4, "2")]


# -- titles -----------------------------------------------------------------------------------

def test_title_from_metadata(library):
    result = library.add_bytes(make_pdf(GUIDELINE_PAGES, title="Emergency treatment of anaphylaxis"), "x.pdf")
    assert result.title == "Emergency treatment of anaphylaxis"
    assert library.store.get_document(result.doc_id).title == result.title


TITLED_PAGES = ["Emergency treatment of anaphylaxis in adults\n" + GUIDELINE_PAGES[0]] + GUIDELINE_PAGES[1:]


@pytest.mark.parametrize("title", ["", "Microsoft Word - anaphylaxis_v3.docx", "untitled"])
def test_meaningless_metadata_title_falls_back_to_the_first_line(library, title):
    result = library.add_bytes(make_pdf(TITLED_PAGES, title=title), "x.pdf")
    assert result.title == "Emergency treatment of anaphylaxis in adults"


def test_dangling_title_reference_is_not_shown_as_none(library):
    """The SAASP guide's /Title points at an object that does not exist."""
    data = make_pdf(TITLED_PAGES, title="Test guideline")
    dangling = b"/Title 999 0 R".ljust(len(b"/Title (Test guideline)"))
    data = data.replace(b"/Title (Test guideline)", dangling)  # same length: the xref stays valid
    result = library.add_bytes(data, "dangling.pdf")
    assert result.status == "indexed", result.message
    assert result.title == "Emergency treatment of anaphylaxis in adults"


# -- duplicates, replacement, deletion ----------------------------------------------------------

def test_same_bytes_twice_is_already_indexed_and_changes_nothing(library):
    data = variant(1)
    first = library.add_bytes(data, "protocol.pdf")
    before = snapshot(library)
    again = library.add_bytes(data, "protocol.pdf")
    assert again.status == "already indexed"
    assert "already in the library" in again.message and "nothing changed" in again.message
    assert (again.doc_id, again.chunks) == (first.doc_id, first.chunks)
    other_name = library.add_bytes(data, "copy of protocol.pdf")
    assert other_name.status == "already indexed" and "protocol.pdf" in other_name.message
    assert snapshot(library) == before


def test_same_name_is_added_beside_unless_replacing_is_asked_for(library):
    """A same-named upload never silently swaps a document out (any client could replace a trusted guideline
    with its own file): it is added beside it under a numbered name, and the message says so."""
    first = library.add_bytes(variant(1), "download.pdf")
    second = library.add_bytes(variant(2), "download.pdf")
    third = library.add_bytes(variant(3), "DOWNLOAD.pdf")
    assert (second.status, second.file_name) == ("indexed", "download (2).pdf")
    assert "already holds a document named download.pdf" in second.message and "nothing was replaced" in second.message
    assert third.file_name == "DOWNLOAD (3).pdf"
    assert sorted(i.file_name for i in library.documents()) == ["DOWNLOAD (3).pdf", "download (2).pdf", "download.pdf"]
    assert library.store.get_document(first.doc_id) is not None
    assert {c.file_name for c in library.store.chunks_of(second.doc_id)} == {"download (2).pdf"}
    assert library.files.entries()[second.doc_id][0] == "download (2).pdf"


def test_same_name_with_new_bytes_replaces_the_old_version_when_asked(library):
    old = library.add_bytes(variant(1), "protocol.pdf")
    other = library.add_bytes(variant(9), "other.pdf")
    new = library.add_bytes(variant(2), "protocol.pdf", replace=True)
    assert new.status == "replaced" and "Replaced" in new.message
    assert new.doc_id != old.doc_id
    assert library.store.get_document(old.doc_id) is None
    assert library.store.chunks_of(old.doc_id) == []
    assert stored_files(library, old.doc_id) == []
    assert sorted(info.file_name for info in library.documents()) == ["other.pdf", "protocol.pdf"]
    assert library.store.count() == new.chunks + other.chunks
    texts = [c.text for c in library.store.chunks_of(new.doc_id)]
    assert any(re.search(r"Local\s+version\s+2\.", text) for text in texts)
    vector = library.encoder.encode(["Local version 1"])[0]
    assert all(chunk.doc_id != old.doc_id for chunk, _ in library.store.query(vector, 10))


@pytest.mark.parametrize("by", ["name", "id"])
def test_delete_by_name_or_id_removes_chunks_and_stored_copy(library, by):
    keep = library.add_bytes(variant(1), "keep.pdf")
    gone = library.add_bytes(variant(2), "gone.pdf")
    assert library.file_path(gone.doc_id).is_file()
    assert library.delete("gone.pdf" if by == "name" else gone.doc_id) is True
    assert [info.file_name for info in library.documents()] == ["keep.pdf"]
    assert library.store.chunks_of(gone.doc_id) == []
    assert stored_files(library, gone.doc_id) == []  # the PDF copy and anything kept beside it
    assert library.file_path(keep.doc_id).is_file()
    assert library.store.count() == keep.chunks
    hits = library.store.query(_query_vector(library.encoder), 10)
    assert hits and {chunk.doc_id for chunk, _ in hits} == {keep.doc_id}
    assert library.delete("gone.pdf") is False and library.delete("no-such-id") is False


# -- atomic writes and recovery -----------------------------------------------------------------

class InjectedFailure(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["second chunk batch", "registry commit"])
@pytest.mark.parametrize("replacing", [False, True], ids=["new", "replacement"])
def test_failed_write_leaves_the_store_exactly_as_before(library, monkeypatch, where, replacing):
    library.add_bytes(variant(1), "protocol.pdf")
    before = snapshot(library)
    store = library.store
    monkeypatch.setattr(store.client, "get_max_batch_size", lambda: 2)  # 4 chunks -> 2 batches
    if where == "second chunk batch":
        real_add, calls = store.chunks.add, []

        def add(**kwargs):
            calls.append(len(kwargs["ids"]))
            if len(calls) == 2:
                raise InjectedFailure("disk full")
            return real_add(**kwargs)

        monkeypatch.setattr(store.chunks, "add", add)
    else:
        def upsert(**kwargs):
            raise InjectedFailure("server went away")

        monkeypatch.setattr(store.registry, "upsert", upsert)

    data = make_pdf(LONG_PAGES + GUIDELINE_PAGES[:1])
    with pytest.raises(InjectedFailure):
        library.add_bytes(data, "protocol.pdf" if replacing else "new.pdf", replace=replacing)
    if where == "second chunk batch":
        assert calls[0] == 2  # the first batch really was written before the failure
    assert snapshot(library) == before
    assert not list(library.settings.files_dir.glob("*.part"))

    monkeypatch.undo()  # the store is not wedged: the same upload now succeeds
    result = library.add_bytes(data, "protocol.pdf" if replacing else "new.pdf", replace=replacing)
    assert result.status == ("replaced" if replacing else "indexed")
    assert library.file_path(result.doc_id).is_file()


def test_orphan_chunks_are_invisible_and_removed_on_reopen(library, settings, encoder):
    kept = library.add_bytes(variant(1), "protocol.pdf")
    before = snapshot(library)
    store = library.store
    orphan_id = "f" * 64
    orphans = [Chunk(doc_id=orphan_id, file_name="crashed.pdf", title="Crashed", page=1, page_label="1",
                     section="", chunk_index=i, char_start=0, char_end=10, text=f"Adrenaline orphan passage {i}")
               for i in range(3)]
    vectors = encoder.encode([c.text for c in orphans])
    store.chunks.add(ids=[c.chunk_id for c in orphans], embeddings=vectors, documents=[c.text for c in orphans],
                     metadatas=[c.metadata() for c in orphans])  # written, then the process died: no commit
    assert store.count() == kept.chunks + 3
    hits = store.query(encoder.encode(["Adrenaline orphan passage"])[0], 10)
    assert all(chunk.doc_id != orphan_id for chunk, _ in hits)  # never served before it is committed
    assert all(info.doc_id != orphan_id for info in store.list_documents())

    reopened = GuidelineStore(make_client(settings), store.name)
    assert reopened.count() == kept.chunks
    assert reopened.chunks_of(orphan_id) == []
    assert reopened.recover() == 0
    library.store = reopened
    assert snapshot(library) == before


def test_chunks_being_written_never_crowd_the_library_out_of_answers(library, encoder):
    """While a long guideline is being written, its many chunks sit in the collection uncommitted; they
    must not take the places of committed passages in a query."""
    kept = library.add_bytes(make_pdf(GUIDELINE_PAGES), "protocol.pdf")
    store = library.store
    pending = [Chunk(doc_id="d" * 64, file_name="big.pdf", title="Big", page=1, page_label="1", section="",
                     chunk_index=i, char_start=0, char_end=10, text=f"{QUERY} Variant {i}.") for i in range(40)]
    store.chunks.add(ids=[c.chunk_id for c in pending], embeddings=encoder.encode([c.text for c in pending]),
                     documents=[c.text for c in pending], metadatas=[c.metadata() for c in pending])
    hits = store.query(_query_vector(encoder), 3)
    assert len(hits) == 3 and {chunk.doc_id for chunk, _ in hits} == {kept.doc_id}
    assert "500 micrograms" in hits[0][0].text
    assert store.query(_query_vector(encoder), 3, doc_ids=[kept.doc_id, "d" * 64]) == hits


def test_recover_reports_how_many_chunks_it_removed(library, encoder):
    store = library.store
    orphan = Chunk(doc_id="e" * 64, file_name="x.pdf", title="", page=1, page_label="1", section="",
                   chunk_index=0, char_start=0, char_end=4, text="text")
    store.chunks.add(ids=[orphan.chunk_id], embeddings=encoder.encode([orphan.text]), documents=[orphan.text],
                     metadatas=[orphan.metadata()])
    assert store.recover() == 1 and store.count() == 0


# -- bad input ----------------------------------------------------------------------------------

def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def _png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, "PNG")
    return buffer.getvalue()


def _overwrite(data: bytes, at: int, junk: bytes) -> bytes:
    return data[:at] + junk + data[at + len(junk):]


def _nth(data: bytes, needle: bytes, n: int) -> int:
    at = -1
    for _ in range(n):
        at = data.index(needle, at + 1)
    return at


GOOD = make_pdf(GUIDELINE_PAGES)
BIG = make_pdf(LONG_PAGES * 3)

BAD_INPUTS = {
    # name: (bytes, phrases the message must hold: what happened, then what to do)
    "html page": (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Log in</body></html>",
                  ["web page (HTML)", "Export or print the guideline to PDF"]),
    "png image": (_png_bytes(), ["PNG image", "Export or print the guideline to PDF"]),
    "docx zip": (_zip_bytes(), ["Office document (.docx", "Export or print the guideline to PDF"]),
    "plain text": (b"Anaphylaxis protocol\nGive adrenaline 500 micrograms IM.\n",
                   ["plain text file, not a PDF", "Export or print the guideline to PDF"]),
    "binary junk": (bytes(range(256)) * 4, ["This file is not a PDF", "Export or print"]),
    "empty": (b"", ["empty (0 bytes)", "upload the new copy"]),
    "truncated": (BIG[:len(BIG) // 2], ["damaged or incomplete", "Download it again"]),
    "garbled content stream": (_overwrite(GOOD, _nth(GOOD, b">>\nstream\n", 2) + 60, b"\x00\xff" * 8),
                               ["Page 2 of the PDF is damaged", "Download it again"]),
    "garbled page tree": (_overwrite(GOOD, GOOD.index(b"/Kids [") + 7, b"#%&*" * 3),
                          ["declares 4 pages but 1 could be found", "Download it again"]),
    "zeros in the middle": (_overwrite(GOOD, len(GOOD) // 2, b"\x00" * 256), ["damaged", "Download it again"]),
    "password": (encrypt(GOOD, user_password="s3cret"), ["protected by a password", "without protection"]),
    "blank scan": (scanned_pdf(2, speckles=0), ["No text could be found in this PDF, even by OCR", "right file"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_a_specific_message(library, case):
    data, phrases = BAD_INPUTS[case]
    library.add_bytes(variant(1), "existing.pdf")
    before = snapshot(library)
    result = library.add_bytes(data, "upload.pdf")
    assert result.status == "refused"
    for phrase in phrases:
        assert phrase in result.message, result.message
    assert "not a PDF, not a PDF" not in result.message
    assert not re.search(r"[\x00-\x1f\x7f-\xff]", result.message)  # no raw bytes of the file quoted back
    assert (result.doc_id, result.chunks) == ("", 0)
    assert snapshot(library) == before


@pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"real guideline PDFs not found at {REALWORLD}")
def test_first_half_of_a_real_guideline_is_refused(library):
    data = (REALWORLD / "nice-sepsis-ng51-2024.pdf").read_bytes()
    before = snapshot(library)
    result = library.add_bytes(data[:len(data) // 2], "nice-sepsis.pdf")
    assert result.status == "refused"
    assert "damaged or incomplete" in result.message and "Download it again" in result.message
    assert snapshot(library) == before


def test_repairable_damage_is_indexed(library):
    """A broken cross-reference table is rebuilt by the reader: no text is lost, so the file is accepted."""
    damaged = _overwrite(GOOD, GOOD.rindex(b"\nxref") + 1, b"\x00" * 100)
    result = library.add_bytes(damaged, "repaired.pdf")
    assert result.status == "indexed", result.message
    expected = [c.text for c in library.store.chunks_of(library.add_bytes(GOOD, "good.pdf").doc_id)]
    assert [c.text for c in library.store.chunks_of(result.doc_id)] == expected


def test_over_max_pages_is_refused(library):
    limited = with_settings(library, max_pages=3)
    before = snapshot(library)
    result = limited.add_bytes(GOOD, "four-pages.pdf")
    assert result.status == "refused"
    assert "4 pages, over the limit of 3" in result.message and "max_pages" in result.message
    assert snapshot(library) == before


def test_over_max_file_mb_is_refused(library):
    limited = with_settings(library, max_file_mb=len(GOOD) / 2e6)
    before = snapshot(library)
    result = limited.add_bytes(GOOD, "big.pdf")
    assert result.status == "refused"
    shown = re.search(r"over the limit of ([\d.]+) MB", result.message)
    assert shown and float(shown.group(1)) > 0  # a small limit is not rounded to "0 MB"
    assert "Split it into parts" in result.message and "max_file_mb" in result.message
    assert snapshot(library) == before


@pytest.mark.parametrize("algorithm", ["RC4-40", "AES-128", "AES-256"])
def test_encrypted_with_empty_user_password_is_indexed(library, algorithm, encoder):
    plain = library.add_bytes(GOOD, "plain.pdf")
    data = encrypt(GOOD, user_password="", algorithm=algorithm)
    assert PdfReader(io.BytesIO(data)).is_encrypted
    result = library.add_bytes(data, "locked.pdf")
    assert result.status == "indexed", result.message
    assert [c.text for c in library.store.chunks_of(result.doc_id)] == \
        [c.text for c in library.store.chunks_of(plain.doc_id)]


# -- file names ---------------------------------------------------------------------------------

NAMES = ["../../etc/passwd.pdf", "a/b\\c.pdf", "dose\x00\x1b\x07\n\r\tplan.pdf", "x" * 300 + ".pdf",
         "\u202egnp.exe\u202c guideline.pdf", "ملف الإرشادات.pdf", "🩺 guide 😀.pdf",
         "Pre\u0301-e\u0301clampsia.pdf", "..", "", "...pdf", ".hidden.pdf", "C:\\Users\\me\\guide.pdf",
         "protocol.PDF", "report.docx"]


@pytest.mark.parametrize("name", NAMES)
def test_hostile_file_names_are_made_safe(library, settings, tmp_path, name):
    data = variant(NAMES.index(name) + 10)
    result = library.add_bytes(data, name)
    assert result.status == "indexed", result.message
    stored = result.file_name
    assert "/" not in stored and "\\" not in stored
    assert not any(unicodedata.category(ch).startswith("C") for ch in stored)  # no control or bidi characters
    assert unicodedata.is_normalized("NFC", stored)
    assert 5 <= len(stored) <= 120 and stored.lower().endswith(".pdf") and not stored.startswith(".")
    assert [info.file_name for info in library.documents()] == [stored]
    assert {c.file_name for c in library.store.chunks_of(result.doc_id)} == {stored}
    # nothing written outside the data folder; the PDF is stored under its hash, not its name
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and settings.data_dir not in p.parents]
    assert outside == []
    assert not (tmp_path / "etc").exists()
    kept = sorted(p.name for p in settings.files_dir.iterdir())
    assert f"{result.doc_id}.pdf" in kept and all(name.startswith(f"{result.doc_id}.") for name in kept)


def test_readable_parts_of_names_survive(library):
    cases = {"../../etc/passwd.pdf": "passwd.pdf", "a/b\\c.pdf": "c.pdf", "protocol.PDF": "protocol.PDF",
             "report.docx": "report.docx.pdf", "": "document.pdf", "Pre\u0301-e\u0301clampsia.pdf": "Pré-éclampsia.pdf",
             "dose\x00\x1b plan.pdf": "dose plan.pdf"}
    for number, (name, expected) in enumerate(cases.items()):
        assert library.add_bytes(variant(100 + number), name).file_name == expected


def test_a_look_alike_name_is_accepted_with_a_warning_and_marked_in_the_table(library):
    from assistant.display import documents_rows

    real = library.add_bytes(variant(1), "nice-ng109-lower-uti.pdf")
    cyrillic = library.add_bytes(variant(2), "nic\u0435-ng109-lower-uti.pdf")  # Cyrillic "е"
    hyphen = library.add_bytes(variant(3), "nice\u2011ng109-lower-uti.pdf")  # non-breaking hyphen
    plain = library.add_bytes(variant(4), "nice-ng136-hypertension.pdf")
    assert real.status == cyrillic.status == hyphen.status == "indexed"
    assert "reads like nice-ng109-lower-uti.pdf" in cyrillic.message
    assert "CYRILLIC SMALL LETTER IE (character 4)" in cyrillic.message
    assert "NON-BREAKING HYPHEN (character 5)" in hyphen.message
    assert "Warning" not in plain.message and "Warning" not in real.message
    rows = {row[1] for row in documents_rows(library.documents())}
    assert "nice-ng136-hypertension.pdf" in rows
    assert any(r.startswith("nic\u0435-ng109") and "look-alike name" in r and "CYRILLIC" in r for r in rows)
    assert any(r.startswith("nice-ng109-lower-uti.pdf  [look-alike name: plain ASCII]") for r in rows)
