"""The question-to-answer path over a real store and encoder, with a tiny generator (fast)."""
from __future__ import annotations

import pytest

from assistant.answer_checks import cited_numbers, drop_unknown_citations
from assistant.answering import Answerer
from assistant.choice import choice_query
from assistant.errors import QuestionError
from assistant.questions import clean_question
from assistant.quotes import term_overlap
from assistant.records import Evidence
from assistant.retriever import Retriever, is_follow_up, retrieval_query

from pdfs import GUIDELINE_PAGES, make_pdf

HYPERTENSION = [
    "1 Hypertension in adults\nOffer a calcium-channel blocker such as amlodipine as step 1 treatment for adults aged "
    "55 or over with hypertension. Confirm the diagnosis with ambulatory blood pressure monitoring.",
    "2 Hypertension in pregnancy\nIn pregnancy, offer labetalol to treat hypertension. Consider nifedipine if "
    "labetalol is not suitable. Aim for a blood pressure of 135/85 mmHg during pregnancy.",
]


@pytest.fixture
def pipeline(assistant, tiny_generator):
    assistant.library.add_bytes(make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol"), "anaphylaxis.pdf")
    assistant.library.add_bytes(make_pdf(HYPERTENSION, title="Hypertension guideline"), "hypertension.pdf")
    return Answerer(assistant.settings, Retriever(assistant.query_encoder, assistant.store), tiny_generator)


def test_answer_quotes_the_passage_that_holds_the_answer(pipeline):
    answer = pipeline.ask("What dose of intramuscular adrenaline is given in anaphylaxis?", top_k=3)
    assert answer.covered
    assert answer.evidence[0].file == "anaphylaxis.pdf" and answer.evidence[0].page == 2
    assert "Guideline wording:" in answer.text and "500 micrograms" in answer.text
    # every quote is verbatim from the passage it cites
    for line in answer.text.split("\n"):
        if line.startswith("> "):
            quote, number = line[2:].rsplit(" [", 1)
            assert quote in " ".join(answer.evidence[int(number.rstrip("]")) - 1].text.split())
    assert set(answer.cited) <= {e.number for e in answer.evidence}
    assert {"retrieval_ms", "first_token_s", "tokens_per_s", "total_s"} <= set(answer.timings)


def test_stream_shows_the_wording_before_the_model_writes(pipeline):
    first = next(iter(pipeline.ask_stream("How long should patients be observed after two doses of adrenaline?")))
    assert first.text.startswith("Guideline wording:") and "6 hours" in first.text


def test_off_topic_question_is_not_answered(pipeline):
    answer = pipeline.ask("Who won the football world cup in 1966?")
    assert not answer.covered
    assert "do not cover" in answer.text and answer.evidence  # closest passages still shown
    assert "Guideline wording" not in answer.text


def test_follow_up_retrieves_with_the_conversation(pipeline):
    first = pipeline.ask("What is the step 1 treatment for hypertension in adults over 55?")
    follow = pipeline.ask("And in pregnancy?", history=[(first.question, first.text)])
    assert "hypertension" in follow.retrieval_query.lower()
    assert "labetalol" in follow.evidence[0].text


def test_restricting_to_documents(pipeline, assistant):
    anaphylaxis = [d.doc_id for d in assistant.library.documents() if d.file_name == "anaphylaxis.pdf"]
    answer = pipeline.ask("What is the treatment for hypertension in pregnancy?", doc_ids=anaphylaxis)
    assert answer.evidence and {e.file for e in answer.evidence} == {"anaphylaxis.pdf"}


def test_multiple_choice_mode_returns_letter_scores_and_evidence(pipeline):
    options = {"A": "50 micrograms", "B": "500 micrograms", "C": "5 mg", "D": "1 g"}
    letter, scores, evidence = pipeline.choose("Adult IM adrenaline dose in anaphylaxis?", options, top_k=3)
    assert letter in options and set(scores) == set(options) and len(evidence) == 3
    # the layout the trainer uses: best passage last, nearest the question, numbered in prompt order
    retrieved = pipeline.retriever.search(choice_query("Adult IM adrenaline dose in anaphylaxis?", options), 3)
    assert [e.chunk_id for e in evidence] == [e.chunk_id for e in reversed(retrieved)]
    assert [e.number for e in evidence] == [1, 2, 3]


@pytest.mark.parametrize("question", ["", "   \n\t ", "\x00\x01", "?!"])
def test_empty_questions_get_a_message(question):
    with pytest.raises(QuestionError, match="type a question"):
        clean_question(question, 4000)


def test_huge_question_is_refused_with_the_limit():
    with pytest.raises(QuestionError, match="limit is 4,000"):
        clean_question("dose? " * 20000, 4000)


def test_control_characters_and_other_languages_are_accepted():
    assert clean_question("Dosis\x07 de adrenalina\u200b en anafilaxia?", 4000).startswith("Dosis de adrenalina")
    assert clean_question("ما هي جرعة الأدرينالين؟", 4000)


def test_follow_up_detection():
    assert is_follow_up("And in pregnancy?") and is_follow_up("what about children?")
    assert not is_follow_up("What is the first-line antibiotic for community-acquired pneumonia in adults?")
    assert retrieval_query("What dose of amoxicillin for pneumonia?", ["hypertension?"]) == \
        "What dose of amoxicillin for pneumonia?"


def test_citations_outside_the_evidence_are_removed():
    assert drop_unknown_citations("Give 5 mg [1] or [7].", 3) == "Give 5 mg [1] or ."
    assert cited_numbers("[2] and [2], [3], [9]", 3) == [2, 3]


def test_term_overlap_matches_word_forms():
    assert term_overlap("When is the dose repeated?", "Repeat the dose after 5 minutes") == 1.0
    assert term_overlap("tryptase timing", "Give fluids") == 0.0


def test_a_sentence_two_documents_share_is_quoted_once():
    from assistant.quotes import candidate_sentences

    shared = "Give intramuscular adrenaline 500 micrograms to adults with anaphylaxis."
    again = " Repeat the dose after 5 minutes if there is no improvement."
    evidence = [Evidence(1, "a", "a.pdf", "A", 1, "1", "", 0.9, shared + again),
                Evidence(2, "b", "b.pdf", "B", 3, "3", "", 0.8, "  " + shared.upper().replace(".", " .")),
                Evidence(3, "c", "c.pdf", "C", 9, "9", "References", 0.7, "Smith AB, Jones CD. Adrenaline in "
                         "anaphylaxis: a review of 500 cases. Lancet 2001;3:1-9.", kind="references")]
    sentences = candidate_sentences(evidence)
    assert [number for number, _ in sentences] == [1, 1]  # the copy in b.pdf and the reference are not offered
    assert sentences[0][1] == shared
