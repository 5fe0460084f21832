"""A summary true to a passage but about something else is not shown: it must be drawn from a passage
sentence that speaks of what the question asks."""
from __future__ import annotations

import pytest

from assistant.answering import Answerer
from assistant.relevance import QuestionFocus, question_focus
from assistant.retriever import Retriever

from models_fixtures import ScriptedModel
from pdfs import make_pdf

pytestmark = pytest.mark.xdist_group("test_relevance")

UTI_PAGES = [
    "1 Lower urinary tract infection\nOffer nitrofurantoin 100 mg modified-release twice a day for 3 days to "
    "non-pregnant women with a lower urinary tract infection. Trimethoprim 200 mg twice a day for 3 days is an "
    "alternative if the risk of resistance is low.",
    "2 Kidney function\nNitrofurantoin should be avoided if eGFR is below 45. Lower urinary tract infection in "
    "people with reduced kidney function may need a lower dose of some antibiotics.",
    "3 Interactions\nTrimethoprim should be avoided in people taking methotrexate because of a serious interaction. "
    "Check other medicines before choosing an antibiotic for a lower urinary tract infection.",
    "4 Pregnancy\nFor a pregnant woman with a lower urinary tract infection, nitrofurantoin is the first choice; it "
    "should be avoided at term.",
]
ASTHMA = ("2 Asthma\nOffer a low-dose inhaled corticosteroid with formoterol as needed to adults with newly "
          "diagnosed asthma. Review inhaler technique at every visit. Women who are pregnant should continue their "
          "asthma treatment.")
HYPERTENSION = ("3 Hypertension\nOffer an ACE inhibitor to adults under 55 with hypertension. Measure blood pressure "
                "in both arms. Women taking an ACE inhibitor who plan a pregnancy should discuss a change of drug.")
QUESTION = ("A 58-year-old woman with rheumatoid arthritis who takes weekly methotrexate has a lower UTI. Which "
            "antibiotic should be avoided because of a serious interaction, according to NICE NG109?")
OFF_QUESTION = "Nitrofurantoin should be avoided if eGFR is below 45."  # true, and about avoiding: not the question
ON_QUESTION = "Trimethoprim should be avoided in people taking methotrexate."


@pytest.fixture
def uti_library(assistant):
    assistant.library.add_bytes(make_pdf(UTI_PAGES), "uti.pdf")
    for number, text in enumerate([ASTHMA, HYPERTENSION]):
        assistant.library.add_bytes(make_pdf([text]), f"guideline-{number}.pdf")
    return assistant


def test_the_focus_is_the_rarest_question_words_that_the_evidence_holds(uti_library):
    focus = question_focus(QUESTION, UTI_PAGES, uti_library.store.term_rarity, count=6)
    assert "methotrex" in focus.terms and "methotrexate" in focus.words
    # words every question uses, the guideline's code, numbers and words no passage holds are never the focus
    assert not {"woman", "58", "ng109", "nice", "rheumatoid", "arthriti", "which", "becaus"} & set(focus.terms)
    # rarest first: "methotrexate" is on one page of the library, "avoided" on three
    assert focus.terms.index("methotrex") < focus.terms.index("avoid")
    assert focus.is_met_by("Trimethoprim should be avoided in people taking methotrexate.")
    assert not focus.is_met_by("Offer nitrofurantoin 100 mg modified-release twice a day for 3 days.")
    assert QuestionFocus().is_met_by("anything at all")  # no focus: nothing to tell questions apart by
    assert question_focus("Which should be given?", UTI_PAGES, uti_library.store.term_rarity).terms == []


def test_a_faithful_sentence_about_something_else_is_not_the_answer(uti_library, tiny_generator):
    answerer = Answerer(uti_library.settings, Retriever(uti_library.query_encoder, uti_library.store),
                        ScriptedModel(tiny_generator, OFF_QUESTION))
    final = list(answerer.ask_stream(QUESTION, top_k=4))[-1]
    check = final.summary_checks[0]
    assert check["supported"] and not check["on_question"]  # the passage states it; it is not the question
    assert final.summary == ""
    assert "Summary (" not in final.text  # the guideline's own wording stands alone
    assert "No summary is shown" in final.text and '"methotrexate"' in final.text


def test_a_sentence_waits_for_one_that_answers_the_question_and_then_both_show(uti_library, tiny_generator):
    answerer = Answerer(uti_library.settings, Retriever(uti_library.query_encoder, uti_library.store),
                        ScriptedModel(tiny_generator, f"{OFF_QUESTION} {ON_QUESTION}"))
    stream = list(answerer.ask_stream(QUESTION, top_k=4))
    final = stream[-1]
    assert [check["on_question"] for check in final.summary_checks] == [False, True]
    assert final.summary.startswith("Nitrofurantoin should be avoided") and "taking methotrexate. [" in final.summary
    # never shown alone: the first sentence appears only with the one that answers the question
    assert all(not partial.summary or "methotrexate" in partial.summary for partial in stream)
    assert "No summary is shown" not in final.text


def test_the_documents_own_name_is_not_the_focus():
    """"The Northfield protocol" names the document; the question is about the dose of adrenaline."""
    question = "What dose of intramuscular adrenaline does the Northfield anaphylaxis protocol give for adults?"
    passage = ("Northfield General Hospital anaphylaxis protocol. Give adrenaline 500 micrograms intramuscularly "
               "into the anterolateral thigh.")
    rarity = {"northfield": 3.0, "protocol": 2.9, "intramuscular": 2.0, "adrenalin": 1.5, "dose": 0.5,
              "anaphylaxi": 0.4, "adult": 0.3}.copy
    assert question_focus(question, [passage], lambda _: rarity()).terms[:1] == ["northfield"]  # unnamed
    named = question_focus(question, [passage], lambda _: rarity(),
                           names=["Northfield anaphylaxis protocol northfield-anaphylaxis.pdf"])
    assert named.terms == ["intramuscular", "adrenalin"]
