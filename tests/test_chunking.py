"""Clean page text -> chunks: headings, token budget (counted with the real encoder), overlap, sections
and character offsets."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.chunking import chunk_page, is_heading, units

pytestmark = pytest.mark.xdist_group("test_chunking")  # module-scoped fixtures: one worker builds them once

SIZE, OVERLAP = 48, 16


@pytest.fixture(scope="module")
def count(encoder):
    return encoder.count_tokens


def tokens(count, text: str) -> int:
    return count([text])[0]


def sentences(prefix: str, n: int) -> str:
    return " ".join(f"{prefix} rule {i} says give {i + 1} mg of the drug to adults." for i in range(n))


def assert_spans_valid(text: str, spans, count, size: int) -> None:
    """The invariants every chunking must keep."""
    for span in spans:
        piece = text[span.start:span.end]
        assert 0 <= span.start < span.end <= len(text)
        assert piece == piece.strip() and piece  # no empty chunks, no edge whitespace
        assert tokens(count, piece) <= size, piece
    for before, after in zip(spans, spans[1:]):
        assert after.start >= before.start and after.end > before.end  # in order, each adds new text
    covered = set()
    for span in spans:
        covered.update(range(span.start, span.end))
    # every body character is in a chunk; a heading with no body text after it on the page is carried
    # as the next chunks' section instead of becoming a chunk of its own
    headings = set()
    for match in re.finditer(r"^.*$", text, re.M):
        if is_heading(match.group()):
            headings.update(range(match.start(), match.end()))
    lost = [i for i, ch in enumerate(text) if not ch.isspace() and i not in covered and i not in headings]
    assert not lost, f"text not in any chunk: {text[lost[0]:lost[0] + 40]!r}"


def test_a_heading_alone_makes_no_chunk_but_becomes_the_section(count):
    spans, _ = chunk_page("CONTENTS\n1 Scope\n2 Dosing", count, 64, 8)
    assert len(spans) == 1  # a page of headings only keeps its text
    spans, section = chunk_page("Give 5 mg daily to adults with the condition.\n2 Monitoring", count, 64, 8)
    assert len(spans) == 1 and section == "2 Monitoring"
    spans, _ = chunk_page("3 Referral\n3.1 Urgent referral\nRefer the same day if the child is drowsy.",
                          count, 64, 8)
    assert len(spans) == 1 and spans[0].section == "3.1 Urgent referral"


# -- headings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "2.1 Dosing", "2.1.3 Dosing in renal impairment", "3. Management of severe malaria", "RECOMMENDATIONS",
    "ANNEX 2: DOSING TABLES", "Chapter 4: Tuberculosis in children", "A. Nutritional interventions",
    "12 Immunization status",
])
def test_headings_detected(line):
    assert is_heading(line)


@pytest.mark.parametrize("line", [
    "500 mg twice daily",  # a dose, not section 500
    "2 tablets twice daily for 5 days",  # a sentence wrapped after its first number
    "3 times a week",
    "4.0 mU/L in pregnancy",
    "2.1 Give the first dose in the clinic.",  # numbered, but a sentence ending with a period
    "Give adrenaline 500 micrograms intramuscularly into the thigh.",
    "Refer all children with danger signs to hospital.",
    "HIV, TB,",  # ends with a comma: a wrapped list
    "12/05/2024 100 200 300",  # numbers, not letters
    "OK",  # too short
])
def test_non_headings_rejected(line):
    assert not is_heading(line)


def test_units_mark_headings_and_split_sentences():
    text = "1 Scope\nThis covers adults. It excludes children.\n2 Dosing\nGive 500 mg."
    found = [(text[s:e], heading) for s, e, heading in units(text)]
    assert found == [("1 Scope", True), ("This covers adults.", False), ("It excludes children.", False),
                     ("2 Dosing", True), ("Give 500 mg.", False)]


def test_abbreviations_do_not_end_a_sentence():
    text = "Use a broad-spectrum drug, e.g. Ceftriaxone in high doses. Review daily."
    assert [text[s:e] for s, e, _ in units(text)] == [
        "Use a broad-spectrum drug, e.g. Ceftriaxone in high doses.", "Review daily."]


# -- token budget and overlap -----------------------------------------------------------------

def test_chunks_never_exceed_the_token_size(count):
    text = "1 Scope\n" + sentences("Scope", 30) + "\n2 Dosing\n" + sentences("Dosing", 30)
    spans, _ = chunk_page(text, count, SIZE, OVERLAP)
    assert len(spans) > 6
    assert_spans_valid(text, spans, count, SIZE)
    # and they use the budget: no chunk is much smaller than it need be, except the last of a section
    full = [tokens(count, text[s.start:s.end]) for s in spans]
    assert sum(n >= SIZE * 0.6 for n in full) >= len(spans) - 2


def test_consecutive_chunks_overlap_by_whole_sentences(count):
    text = sentences("Dosing", 40)
    spans, _ = chunk_page(text, count, SIZE, OVERLAP)
    assert len(spans) > 3
    for before, after in zip(spans, spans[1:]):
        assert after.start < before.end  # they share text
        shared = text[after.start:before.end]
        assert 0 < tokens(count, shared) <= OVERLAP
        assert re.fullmatch(r"(Dosing rule \d+ says give \d+ mg of the drug to adults\. ?)+", shared), shared


def test_zero_overlap_means_no_shared_text(count):
    text = sentences("Dosing", 40)
    spans, _ = chunk_page(text, count, SIZE, 0)
    for before, after in zip(spans, spans[1:]):
        assert after.start >= before.end


# -- sections ---------------------------------------------------------------------------------

def test_chunks_do_not_cross_headings_and_carry_their_section(count):
    text = ("1 Scope\n" + sentences("Scope", 12) + "\n2 Dosing\n" + sentences("Dosing", 12)
            + "\nRECOMMENDATIONS\n" + sentences("Advice", 12))
    spans, last = chunk_page(text, count, SIZE, OVERLAP)
    headings = [(m.start(), m.group()) for m in re.finditer(r"^(?:1 Scope|2 Dosing|RECOMMENDATIONS)$", text, re.M)]
    for span in spans:
        piece = text[span.start:span.end]
        inside = [h for pos, h in headings if span.start < pos < span.end]
        assert not inside, f"chunk crosses the heading {inside}: {piece!r}"
        expected = [h for pos, h in headings if pos <= span.start][-1]
        assert span.section == expected
        word = {"1 Scope": "Scope", "2 Dosing": "Dosing", "RECOMMENDATIONS": "Advice"}[expected]
        content = piece.split("\n", 1)[1] if piece.startswith(expected) else piece
        assert content.startswith(word)  # the text under the heading, nothing from another section
    assert last == "RECOMMENDATIONS"
    # each section's first chunk starts with its heading, so the heading is embedded with its text
    firsts = {}
    for span in spans:
        firsts.setdefault(span.section, span)
    assert all(text[s.start:s.end].startswith(name) for name, s in firsts.items())


def test_section_carries_over_to_the_next_page(count):
    spans, section = chunk_page("4.2 Severe malaria\n" + sentences("Severe", 3), count, SIZE, OVERLAP)
    assert section == "4.2 Severe malaria"
    spans, after = chunk_page(sentences("Continued", 3), count, SIZE, OVERLAP, section)
    assert spans and all(span.section == "4.2 Severe malaria" for span in spans)
    assert after == "4.2 Severe malaria"


def test_text_before_the_first_heading_has_the_carried_section(count):
    text = sentences("Before", 2) + "\n5 Referral\n" + sentences("After", 2)
    spans, _ = chunk_page(text, count, SIZE, OVERLAP, "4 Treatment")
    assert spans[0].section == "4 Treatment" and text[spans[0].start:spans[0].end].startswith("Before")
    assert spans[-1].section == "5 Referral"


# -- long lines -------------------------------------------------------------------------------

def test_long_table_like_line_is_split_within_the_budget(count):
    row = " ".join(f"Amoxicillin {w} kg {d} mg" for w, d in zip(range(3, 90), range(125, 10000, 125)))
    assert tokens(count, row) > 4 * SIZE  # one "sentence" far over the budget
    spans, _ = chunk_page(row, count, SIZE, OVERLAP)
    assert len(spans) >= 4
    assert_spans_valid(row, spans, count, SIZE)
    for span in spans:  # cut between words, never inside one
        assert span.start == 0 or row[span.start - 1] == " "
        assert span.end == len(row) or row[span.end] == " "


def test_line_of_dense_punctuation_is_split_within_the_budget(count):
    """A contents line of underscores costs a token per character: cutting by characters is not enough."""
    text = "Contents\n" + "\n".join(f"Chapter {i} {'_' * 70} {i}" for i in range(1, 12))
    spans, _ = chunk_page(text, count, SIZE, OVERLAP)
    assert_spans_valid(text, spans, count, SIZE)


def test_word_with_no_spaces_longer_than_the_budget_is_still_cut(count):
    text = "See " + "-".join(["ab1c"] * 120) + " end."
    spans, _ = chunk_page(text, count, SIZE, OVERLAP)
    assert len(spans) > 1
    assert_spans_valid(text, spans, count, SIZE)


# -- offsets ----------------------------------------------------------------------------------

def test_every_span_is_an_exact_slice_of_the_page(count):
    text = ("Intro line without a heading.\n\n1 Scope\nAdults only.   Children are excluded.\n"
            "• Give oxygen.\n• Keep warm;\n  - monitor every hour\n\n2 Dosing\n" + sentences("Dosing", 8) + "\n")
    spans, _ = chunk_page(text, count, SIZE, OVERLAP)
    assert_spans_valid(text, spans, count, SIZE)
    assert text[spans[0].start:spans[0].end].startswith("Intro line")


def test_empty_page_gives_no_chunks(count):
    assert chunk_page("", count, SIZE, OVERLAP, "3 Before") == ([], "3 Before")
    assert chunk_page("  \n\n ", count, SIZE, OVERLAP)[0] == []


WORDS = st.sampled_from(["Give", "amoxicillin", "500", "mg", "twice", "daily", "for", "5", "days", "the", "child",
                         "with", "fever", "refer", "urgently", "(IM)", "e.g.", "≥", "37.5°C", "and", "or", "HIV",
                         "TB", "dose:", "kg", "•", "-", "___", "...", "see", "table", "3"])
LINE = st.lists(WORDS, min_size=1, max_size=40).map(" ".join)
HEADING = st.sampled_from(["1 Scope", "2.3 Dosing in children", "RECOMMENDATIONS", "ANNEX 1: TABLES"])
PAGE = st.lists(st.one_of(LINE, LINE.map(lambda s: s + "."), HEADING, st.just("")), min_size=0, max_size=25) \
    .map("\n".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=PAGE, size=st.integers(16, 80), overlap_share=st.floats(0, 0.5))
def test_invariants_hold_for_any_page(count, text, size, overlap_share):
    overlap = int(size * overlap_share)
    spans, _ = chunk_page(text, count, size, overlap)
    assert_spans_valid(text, spans, count, size)
    heading_starts = [m.start() for m in re.finditer(r"^.*$", text, re.M) if is_heading(m.group())]
    if any(not heading for _, _, heading in units(text)):  # a page of headings only is chunked as text
        for span in spans:
            assert not [pos for pos in heading_starts if span.start < pos < span.end]
