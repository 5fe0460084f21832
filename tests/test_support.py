"""The summary check: figures in one normal form, and each sentence shown only when a passage it cites
states it."""
from __future__ import annotations

import pytest

from assistant.answering import Answerer, left_out_note, shown_summary
from assistant.figures import figures, unsupported_figures
from assistant.records import Evidence
from assistant.relevance import QuestionFocus
from assistant.retriever import Retriever
from assistant.support import SupportChecker, split_sentences

from models_fixtures import ScriptedModel
from pdfs import make_pdf

pytestmark = pytest.mark.xdist_group("test_support")  # module-scoped fixtures: one worker builds them once

UTI = ("Offer nitrofurantoin 100 mg modified-release twice a day for 3 days to non-pregnant women with a lower "
       "urinary tract infection if eGFR is 45 ml/minute or more. Trimethoprim 200 mg twice a day for 3 days is an "
       "alternative if the risk of resistance is low.")
MIXED = ("Do not give aspirin to children under 16 years. Gentamicin 5 mg/kg once daily. Treat blood pressure to "
         "below 135/85 mmHg. Diagnose diabetes at an HbA1c of 48 mmol/mol (6.5%) or above. Review after 2 to 4 weeks.")


def passage(number: int, text: str) -> Evidence:
    return Evidence(number, f"doc{number}", f"g{number}.pdf", "Guideline", 1, "1", "", 0.6, text)


@pytest.fixture(scope="module")
def checker(encoder):
    common = {word for word in encoder.tokenizer.get_vocab() if word.isalpha()}
    return SupportChecker("What is the first-choice antibiotic for a lower UTI in non-pregnant women?",
                          [passage(1, UTI), passage(2, MIXED)], common)


def test_figures_understand_compound_units_pairs_ranges_and_spelled_units():
    assert {str(f) for f in figures("gentamicin 5 mg/kg")} == {"5 mg/kg"}
    assert figures("5 milligrams per kilogram") == figures("5mg/kg")
    assert {str(f) for f in figures("HbA1c 48 mmol/mol (6.5 %)")} == {"48 mmol/mol", "6.5 %"}
    assert figures("6.5% of adults") == figures("6.5 per cent of adults") == figures("6.5 percent")
    assert figures("2 to 4 weeks") == figures("2–4 weeks") == figures("two to four weeks") \
        == figures("2 weeks to 4 weeks")
    assert {str(f) for f in figures("titrate to 88% to 92%")} == {"88-92 %"}  # one range, not a lone 88%
    assert {str(f) for f in figures("160/90 mmHg")} == {"160/90 mmhg"}
    assert figures("500 micrograms") == figures("0.5 mg") and figures("48 hours") == figures("2 days")
    assert figures("twice a day") == figures("two times daily") != figures("once daily")


def test_the_figure_checks_the_issue_found_broken():
    assert [str(f) for f in unsupported_figures("Give gentamicin 5 mg once daily", "gentamicin 5 mg/kg once daily")] \
        == ["5 mg"]
    assert [str(f) for f in unsupported_figures("HbA1c above 6.5 % is diagnostic", "an HbA1c of 7 % or above")] \
        == ["6.5 %"]
    assert [str(f) for f in unsupported_figures("HbA1c of 53 mmol/mol", "HbA1c of 48 mmol/mol")] == ["53 mmol/mol"]
    # the whole pair is checked, not only its second number
    assert [str(f) for f in unsupported_figures("below 160/90 mmHg", "below 140/90 mmHg")] == ["160/90 mmhg"]
    assert unsupported_figures("review in 2-4 weeks", "review after 2 weeks or 4 weeks") == []


@pytest.mark.parametrize("sentence", [
    "Offer nitrofurantoin 100 mg modified-release twice a day for 3 days [1].",
    "Trimethoprim 200 mg twice daily for three days is an alternative [1].",
    "Aspirin should not be given to children under 16 [2].",
    "Aim for a blood pressure below 135/85 mmHg [2].",
    "Diabetes is diagnosed at an HbA1c of 48 mmol/mol or 6.5 % [2].",
    "Gentamicin is given at 5 milligrams per kilogram once a day.",  # uncited: passage 2 states it
])
def test_sentences_a_passage_states_are_supported(checker, sentence):
    check = checker.check(sentence)
    assert check.supported, check.reasons


@pytest.mark.parametrize(("sentence", "reason"), [
    ("The first-choice antibiotic is amoxicillin 500 mg twice daily for 3 days [1].", "a drug, test or condition"),
    ("Give gentamicin 5 mg once daily [2].", "a dose, threshold, duration or frequency"),
    ("Aim for a blood pressure below 140/90 mmHg [2].", "a dose, threshold, duration or frequency"),
    ("Give aspirin to children under 16 years [2].", "the opposite of the passage (negation)"),
    ("In pregnant women, offer nitrofurantoin [1].", "a population, route or frequency"),
    ("Nitrofurantoin is given intravenously [1].", "a population, route or frequency"),
    ("Review after 6 weeks [2].", "a dose, threshold, duration or frequency"),
    ("Do not treat children under 12 [2].", "a number"),
    # true of passage 2, but it cites passage 1: both figures must stand in one cited passage
    ("Gentamicin 5 mg/kg once daily [1].", "a dose, threshold, duration or frequency"),
])
def test_sentences_no_cited_passage_states_are_not(checker, sentence, reason):
    check = checker.check(sentence)
    assert not check.supported and reason in check.reasons


def test_a_claim_pieced_together_from_distant_sentences_is_not_supported(encoder):
    """Every word is in the passage, but no one place says it: the shape of a plausible wrong answer."""
    antenatal = ("Measure blood pressure at every antenatal visit. Record the heart rate and temperature. Weigh the "
                 "woman at booking. Offer a urine dipstick test for protein.")
    common = {word for word in encoder.tokenizer.get_vocab() if word.isalpha()}
    checker = SupportChecker("What is the most appropriate next step?", [passage(3, antenatal)], common)
    pieced = checker.check("Perform a blood pressure monitoring test [3].")
    assert not pieced.supported and pieced.reasons == ["words drawn from different parts of the passage"]
    assert checker.check("Measure blood pressure at every antenatal visit [3].").supported
    # two adjacent sentences joined into one is still one place
    assert checker.check("Weigh the woman at booking and offer a urine dipstick test [3].").supported


def test_sentence_split_keeps_citations_decimals_and_abbreviations():
    assert split_sentences("Give 2.5 mg, e.g. orally [1]. Review at 6 weeks. [2] Then") == \
        ["Give 2.5 mg, e.g. orally [1].", "Review at 6 weeks. [2]", "Then"]


def test_shown_summary_and_note_leave_out_unsupported_sentences_without_repeating_them(checker):
    checks = [checker.check("Offer nitrofurantoin 100 mg modified-release twice a day for 3 days."),
              checker.check("The first-choice antibiotic is amoxicillin 500 mg [1].")]
    checks[0].on_question = True
    assert shown_summary(checks) == "Offer nitrofurantoin 100 mg modified-release twice a day for 3 days. [1]"
    note = left_out_note(checks, QuestionFocus())
    assert "1 sentence" in note and "amoxicillin" not in note and "500" not in note
    assert "No summary is shown: no passage states" in left_out_note(checks[1:], QuestionFocus())
    # supported, but not about what was asked: nothing shown, and the note says what the question asked about
    checks[0].on_question = False
    assert shown_summary(checks) == ""
    note = left_out_note(checks, QuestionFocus(["methotrex"], ["methotrexate"]))
    assert "No summary is shown" in note and '"methotrexate"' in note and "part of what the model wrote" in note


def test_the_answer_shows_only_supported_sentences_as_they_stream(assistant, tiny_generator):
    assistant.library.add_bytes(make_pdf(["1 Urinary tract infection\n" + UTI]), "uti.pdf")
    model = ScriptedModel(tiny_generator, "Offer nitrofurantoin 100 mg modified-release twice a day for 3 days [1]. "
                          "Amoxicillin 500 mg three times a day for 5 days is first choice [1]. Trimethoprim 200 mg "
                          "twice a day is an alternative [1].")
    answerer = Answerer(assistant.settings, Retriever(assistant.query_encoder, assistant.store), model)
    stream = list(answerer.ask_stream("First-choice antibiotic for lower UTI in non-pregnant women?", top_k=3))
    final = stream[-1]
    assert "Amoxicillin" not in final.summary and "Amoxicillin" not in final.text
    assert all("moxicillin" not in partial.text for partial in stream)
    assert final.summary.startswith("Offer nitrofurantoin 100 mg") and "Trimethoprim 200 mg" in final.summary
    assert [check["supported"] for check in final.summary_checks] == [True, False, True]
    assert "1 sentence of the model's summary left out" in final.text


def test_the_model_reads_each_long_passage_cut_to_the_sentences_nearest_the_question(encoder):
    from assistant.quotes import focused_evidence

    filler = " ".join(f"Section {i} describes the audit of service {i} in the region." for i in range(12))
    long = passage(1, filler + " Give intramuscular adrenaline 500 micrograms and repeat after 5 minutes. " + filler)
    short = passage(2, "Call for help.")
    focused = focused_evidence(encoder, "What dose of intramuscular adrenaline?", [long, short], 200)
    assert "adrenaline 500 micrograms" in focused[0].text and len(focused[0].text) <= 200
    assert focused[0].number == 1 and focused[1] is short and long.text != focused[0].text
    assert focused_evidence(encoder, "adrenaline", [long], 0)[0] is long


def test_a_dose_is_checked_against_the_drug_the_passage_gives_it_to(encoder):
    common = {word for word in encoder.tokenizer.get_vocab() if word.isalpha()}
    cap = passage(1, "Give amoxicillin 500 mg three times a day for 5 days. If the person is allergic to penicillin, "
                     "give clarithromycin 250 mg twice a day for 5 days.")
    checker = SupportChecker("Which antibiotic for pneumonia?", [cap], common)
    assert checker.check("Give amoxicillin 500 mg three times a day for 5 days [1].").supported
    assert checker.check("Clarithromycin 250 mg twice a day is the choice in penicillin allergy [1].").supported
    swapped = checker.check("Give clarithromycin 500 mg three times a day [1].")
    assert not swapped.supported and swapped.reasons == ["a dose the passage gives for another drug"]
