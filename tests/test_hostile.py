"""Hostile and broken PDFs: the library refuses them with its own messages, never hangs, never crashes,
and the store stays exactly as it was."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import hostile
from pdfs import GUIDELINE_PAGES, make_pdf

ALLOWED = {"indexed", "refused", "already indexed", "replaced"}


def _snapshot(library):
    documents = sorted((d.doc_id, d.chunks) for d in library.documents())
    return documents, library.store.count()


def _consistent(library) -> bool:
    return sum(d.chunks for d in library.documents()) == library.store.count()


@pytest.fixture
def seeded(library):
    library.add_bytes(make_pdf(GUIDELINE_PAGES), "protocol.pdf")
    return library


@pytest.mark.parametrize("name, data, words", [
    ("bomb.pdf", hostile.decompression_bomb(1024), "damaged"),
    ("cycle.pdf", hostile.cyclic_page_tree(), "damaged"),
    ("nested.pdf", hostile.deeply_nested(), "damaged"),
])
def test_structural_attacks_are_refused_quickly(seeded, name, data, words):
    before = _snapshot(seeded)
    started = time.monotonic()
    result = seeded.add_bytes(data, name)
    assert result.status == "refused" and words in result.message and "upload" in result.message
    assert time.monotonic() - started < 60
    assert _snapshot(seeded) == before


def test_too_many_pages_is_refused_before_reading_them(seeded):
    before = _snapshot(seeded)
    result = seeded.add_bytes(hostile.many_pages(2500), "huge.pdf")
    assert result.status == "refused" and "2500 pages" in result.message and "max_pages" in result.message
    assert _snapshot(seeded) == before


def test_a_single_huge_page_is_chunked_within_the_encoder_limit(library, encoder):
    text = " ".join(f"Sentence {i} says give {i % 9 + 1} mg of the drug twice daily." for i in range(2000))
    result = library.add_bytes(hostile.text_page(text), "one-page.pdf")
    assert result.status == "indexed" and result.chunks > 20
    chunks = library.store.chunks_of(result.doc_id)
    assert max(encoder.count_tokens([c.text for c in chunks])) <= library.settings.chunk_tokens


def test_a_document_over_the_time_limit_is_stopped_and_the_reader_recovers(library):
    slow = library.settings.replace(max_seconds_per_document=0.5)
    from assistant.library import Library

    limited = Library(slow, library.encoder, library.store)
    started = time.monotonic()
    result = limited.add_bytes(hostile.many_pages(1500), "slow.pdf")
    assert result.status == "refused" and "longer than" in result.message
    assert time.monotonic() - started < 30
    assert library.add_bytes(make_pdf(GUIDELINE_PAGES), "after.pdf").status == "indexed"
    assert _consistent(library)


def test_non_utf8_and_right_to_left_text(library):
    latin = hostile.text_page("Caf\xe9 na\xefve r\xe9sum\xe9: donner 500 mg deux fois par jour pendant cinq jours.")
    assert library.add_bytes(latin, "latin1.pdf").status == "indexed"
    rtl = make_pdf(["1 Dosing\nGive 500 mg twice daily. "
                    "\u05ea\u05e8\u05d5\u05e4\u05d4 \u0627\u0644\u062f\u0648\u0627\u0621 "
                    "for five days in adults with community-acquired pneumonia."])
    result = library.add_bytes(rtl, "rtl.pdf")
    assert result.status == "indexed" and _consistent(library)


_BASES = [make_pdf(GUIDELINE_PAGES[:2]), hostile.text_page("Give adrenaline 500 micrograms intramuscularly now.")]


@st.composite
def mutated_pdfs(draw):
    data = bytearray(draw(st.sampled_from(_BASES)))
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 64))]
        elif len(data) > 16:
            del data[max(16, position):]
        if len(data) < 8:
            break
    return bytes(data)


@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated_pdfs())
def test_fuzzed_pdfs_never_crash_and_never_leave_partial_documents(seeded, data):
    result = seeded.add_bytes(data, "fuzzed.pdf")
    assert result.status in ALLOWED
    if result.status == "refused":
        assert result.message.endswith((".", ")")) and len(result.message) > 30
    assert _consistent(seeded)


def test_a_process_with_over_a_thousand_open_files_still_reads_pdfs(library):
    """A long-running app holds many descriptors (database handles, sockets): the reader's pipe may be
    numbered above 1024, where select() refuses to wait on it."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(reason=f"the open-file limit here ({hard}) is below what the test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))  # within hard: checked above
    from assistant.isolation import IsolatedReader

    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    reader = IsolatedReader()  # its pipes are opened now, above the held descriptors
    try:
        from assistant.library import Library

        isolated = Library(library.settings, library.encoder, library.store, reader=reader.read)
        assert isolated.add_bytes(make_pdf(GUIDELINE_PAGES), "many-files.pdf").status == "indexed"
    finally:
        reader.close()
        for descriptor in held:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
