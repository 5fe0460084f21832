"""Raw page text -> clean page text: characters, running headers and footers, hyphenation, page labels."""
from __future__ import annotations

import pytest

from assistant.cleaning import clean_pages, dehyphenate, guess_title, normalize_text, read_printed_labels
from assistant.pdf_reader import Limits, RawPage, read_pdf

from pdfs import make_pdf

LIMITS = Limits(max_bytes=10**8, max_pages=100, max_chars=10**7, max_seconds=60)


def raw(*texts: str, labels: list[str | None] | None = None) -> list[RawPage]:
    labels = labels or [None] * len(texts)
    return [RawPage(number=i, label=label, text=text) for i, (text, label) in enumerate(zip(texts, labels), 1)]


TOPICS = ["fever", "cough", "diarrhoea", "malaria", "anaemia", "measles", "jaundice", "asthma", "sepsis",
          "burns", "seizures", "dehydration"]


def body(number: int) -> str:
    """A few lines of guideline text that differ from page to page (not only by their numbers, which the
    header detection ignores)."""
    topic = TOPICS[(number - 1) % len(TOPICS)]
    return (f"This part explains the assessment of {topic} in young children.\n"
            f"Measure and record the signs of {topic} at every visit.\n"
            f"Refer urgently when {topic} comes with danger signs.")


# -- characters -------------------------------------------------------------------------------

def test_ligatures_become_letters():
    assert normalize_text("\ufb01rst-line \ufb02uids, e\ufb03cacy") == "first-line fluids, efficacy"


def test_soft_hyphens_disappear_and_odd_hyphens_become_hyphens():
    assert normalize_text("treat\xadment") == "treatment"
    # the SAASP pocket guide extracts every hyphen as soft hyphen + U+2010
    assert normalize_text("anti\xad\u2010infective co\u2011trimoxazole") == "anti-infective co-trimoxazole"


def test_private_use_bullets_become_bullets():
    assert normalize_text("\uf0b7 Give oxygen\n\uf0a7 Keep warm") == "• Give oxygen\n• Keep warm"


def test_tab_return_nbsp_gaps_become_one_space():
    # how the SAASP guide extracts every gap between words
    assert normalize_text("Give\t\r \xa0amoxicillin\t\r \xa0500\t\r \xa0mg") == "Give amoxicillin 500 mg"


def test_control_and_zero_width_characters_are_removed_but_lines_kept():
    assert normalize_text("Gi\x00ve\x07 ad\u200brenaline\ufeff\x1b\r\nnow\x0cnext page") == \
        "Give adrenaline\nnow\nnext page"


def test_lines_are_trimmed_and_full_width_forms_folded():
    assert normalize_text("   ＡＢＣ   score  \n  ok  ") == "ABC score\nok"


# -- running headers and footers --------------------------------------------------------------

def test_running_header_and_footer_removed_from_every_page():
    pages = raw(*[f"National Fever Guideline 2024\n{body(n)}\nPage {n}" for n in range(1, 7)])
    cleaned = clean_pages(pages)
    for number, page in enumerate(cleaned, 1):
        assert "National Fever Guideline" not in page.text
        assert f"Page {number}" not in page.text
        assert page.text == body(number)  # the body survives intact, in order


def test_line_that_appears_once_is_kept_even_at_the_page_edge():
    texts = [f"National Fever Guideline 2024\n{body(n)}\nPage {n}" for n in range(1, 7)]
    texts[2] = "National Fever Guideline 2024\nAnnex 3: Dosing tables\n" + body(3) + "\nPage 3"
    cleaned = clean_pages(raw(*texts))
    assert cleaned[2].text.startswith("Annex 3: Dosing tables\n")


def test_short_boilerplate_inside_a_page_is_content():
    """Page numbers are bare numbers; the same kind of line inside a table is a dose, and must stay."""
    texts = [f"{body(n)}\n{n}" for n in range(1, 7)]
    texts[3] = body(4) + "\nDose (mg)\n250\nGive twice daily with food.\nContinue for five days.\n" \
        "Review after two days.\n4"
    cleaned = clean_pages(raw(*texts))
    assert "\n250\n" in cleaned[3].text
    assert not cleaned[3].text.endswith("\n4")


def test_long_stamp_is_removed_wherever_it_sits_in_the_page():
    stamp = ("Downloaded from https://obgyn.onlinelibrary.wiley.com/doi/10.1111/1471-0528.14178 by Test "
             "Library on [11/06/2025]. See the Terms and Conditions")
    texts = []
    for n in range(1, 7):
        lines = body(n).split("\n")
        lines.insert(1 + n % 2, stamp)  # in the middle of the text, as the RCOG extractions have it
        texts.append("\n".join(lines))
    for page in clean_pages(raw(*texts)):
        assert "Downloaded from" not in page.text and "Terms and Conditions" not in page.text
        assert f"assessment of {TOPICS[page.number - 1]}" in page.text


def test_two_page_document_keeps_everything():
    pages = raw("Header\nFirst page text here.\n1", "Header\nSecond page text here.\n2")
    assert [p.text for p in clean_pages(pages)] == ["Header\nFirst page text here.\n1",
                                                    "Header\nSecond page text here.\n2"]


def test_headers_and_footers_removed_from_a_real_pdf():
    data = make_pdf([body(n) for n in range(1, 6)], header="WHO Fever Protocol, 2nd edition")
    cleaned = clean_pages(read_pdf(data, LIMITS).pages)
    for number, page in enumerate(cleaned, 1):
        assert "WHO Fever Protocol" not in page.text and "Page " not in page.text
        assert page.text == body(number)
        assert page.label == str(number)


# -- hyphenation ------------------------------------------------------------------------------

def test_word_broken_at_line_end_is_joined():
    assert dehyphenate(["Start the treat-\nment at once."]) == ["Start the treatment at once."]


def test_compound_seen_elsewhere_keeps_its_hyphen():
    pages = ["Use first-\nline drugs for adults.", "A first-line drug is preferred."]
    assert dehyphenate(pages)[0] == "Use first-line drugs for adults."


def test_compound_seen_on_another_page_only_in_a_different_case_keeps_its_hyphen():
    pages = ["Start second-\nline treatment.", "SECOND-LINE REGIMENS"]
    assert dehyphenate(pages)[0] == "Start second-line treatment."


def test_capitalised_or_numeric_continuation_keeps_its_hyphen():
    assert dehyphenate(["COVID-\n19 in pregnancy", "Non-\nCommunicable"]) == \
        ["COVID-19 in pregnancy", "Non-Communicable"]


def test_dehyphenation_runs_in_clean_pages():
    cleaned = clean_pages(raw("Continue the medi-\ncation for 5 days.", "A first-line option."))
    assert cleaned[0].text == "Continue the medication for 5 days."


# -- printed page labels ----------------------------------------------------------------------

def test_printed_labels_read_from_footers_with_an_offset():
    """Cover and contents carry no number; the first numbered page (physical 3) prints 1."""
    texts = ["Cover of the guideline\nNational Department of Health", "Contents\nIntroduction 1\nDosing 2"]
    texts += [f"{body(n)}\nPage {n - 2}" for n in range(3, 9)]
    cleaned = clean_pages(raw(*texts))
    assert [p.label for p in cleaned[2:]] == ["1", "2", "3", "4", "5", "6"]
    assert cleaned[2].number == 3


def test_roman_front_matter_then_arabic():
    printed = ["i", "ii", "iii", "iv", "1", "2", "3", "4", "5"]
    cleaned = clean_pages(raw(*[f"{body(n)}\n{label}" for n, label in enumerate(printed, 1)]))
    assert [p.label for p in cleaned] == printed
    assert all(p.text == body(p.number) for p in cleaned)  # the bare numbers were footers, not text


def test_footer_styles_read_as_labels():
    lines = [[f"{body(n)}", f"{n} | P a g e"] for n in range(1, 5)]
    assert read_printed_labels(lines) == ["1", "2", "3", "4"]
    lines = [[f"{body(n)}", f"Page {n} of 4"] for n in range(1, 5)]
    assert read_printed_labels(lines) == ["1", "2", "3", "4"]


def test_page_of_total_split_over_two_lines_is_not_read_as_the_total():
    """NICE PDFs extract their footer as 'Page 2 of' and '95' on separate lines."""
    lines = [body(n).split("\n") + [f"Page {n} of", "95"] for n in range(1, 6)]
    assert read_printed_labels(lines) == ["1", "2", "3", "4", "5"]


def test_numbers_that_never_agree_are_not_labels():
    # a dose or a year at the foot of each page: no consistent offset from the physical page
    lines = [body(n).split("\n") + [value] for n, value in enumerate(["500", "250", "1000", "40"], 1)]
    assert read_printed_labels(lines) == [None, None, None, None]
    cleaned = clean_pages(raw(*["\n".join(page) for page in lines]))
    assert [p.label for p in cleaned] == ["1", "2", "3", "4"]  # physical numbers when nothing is printed


def test_stray_number_at_page_edge_is_dropped_and_gap_filled():
    printed = ["1", "2", "3", "4", "5", "6"]
    texts = [f"{body(n)}\n{label}" for n, label in enumerate(printed, 1)]
    texts[3] = f"{body(4)}\n120"  # a dose where the footer would be, and no page number on that page
    cleaned = clean_pages(raw(*texts))
    assert [p.label for p in cleaned] == printed


def test_declared_page_label_wins_over_printed_footer():
    texts = [f"{body(n)}\nPage {n}" for n in range(1, 5)]
    cleaned = clean_pages(raw(*texts, labels=["A-1", "A-2", None, "A-4"]))
    assert [p.label for p in cleaned] == ["A-1", "A-2", "3", "A-4"]


def test_declared_page_labels_from_a_real_pdf():
    labels = ["i", "ii", "1", "2", "3"]
    data = make_pdf([body(n) for n in range(1, 6)], labels=labels, declare_labels=True, footer=None)
    pages = read_pdf(data, LIMITS).pages
    assert [p.label for p in pages] == labels  # read from /PageLabels, nothing printed on the pages
    assert [p.label for p in clean_pages(pages)] == labels


# -- title ------------------------------------------------------------------------------------

def test_title_from_metadata_then_first_substantial_line_then_file_name():
    pages = clean_pages(raw("12\nManagement of Malaria in Adults\nbody text here", "more text"))
    assert guess_title(pages, "WHO malaria guideline", "x.pdf") == "WHO malaria guideline"
    assert guess_title(pages, "", "x.pdf") == "Management of Malaria in Adults"
    empty = clean_pages(raw("12", "13"))
    assert guess_title(empty, "", "sa_ndoh-epi_schedule.pdf") == "sa ndoh epi schedule"


@pytest.mark.parametrize("text", ["", "   \n\n  "])
def test_blank_pages_stay_blank(text):
    assert clean_pages(raw(text, "Some text on page two."))[0].text == ""
