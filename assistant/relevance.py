"""Does the summary answer the question that was asked, or another one its passages happen to answer?

A sentence can be true to a passage and still miss the question: the dose of nitrofurantoin when the
question asked which antibiotic clashes with methotrexate; referral for valve disease when it asked about
referral for a transplant. The support check (assistant.support) passes such a sentence, so a clinician
would read a faithful answer to a question nobody asked, beside evidence that looks right.

The question's focus: of the words it shares with the evidence (a word no passage found holds cannot be
what they answer), the few that single out the fewest passages of the library (the lexical index's idf),
leaving out the words any clinical question uses ("which", "patient", "recommended"), guideline codes
(NG51), the words of the documents' own titles and file names, and the names of the bodies that publish
guidelines. A summary is shown once one of its sentences is drawn from a passage sentence that holds a
focus word; the model repeating the question's words is not enough ("She has no red features" is the
question talking, not the passage). A summary that never is answers another question, and the
guideline's own wording stands alone.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .lexical import tokenize
from .naming import guideline_codes

# words that frame any clinical question; never its focus, however rare a library makes them
_ASKING_TERMS = frozenset(tokenize(["""which what when where who whom whose how why should would could must may
might can does did do is are was were be been first line choice most appropriate best next likely recommended
recommend recommendation recommendations advised advise suggested suggest according guideline guidelines
guidance state states stated say says patient patients person people woman women man men boy girl child adult
year years old aged age month months week weeks day days presents presenting attends history management manage
managed treatment treat treated therapy option options initial initially further following offer offered give
given start started starting use used using need needs needed consider considered right correct action step
she her hers he him his they them their you your ago now since seen again already still yet none never ever
many much done develop develops developed sent show shows shown lost fallen gone came come comes taking takes
took went goes because due despite although however also other nice who cdc sign rcog gold kdigo bts ssc
interim pocket handbook manual pathway protocol booklet chart policy standard"""])[0])

FOCUS_TERMS = 2  # how many of the question's rarest shared words make its focus
_WORD = re.compile(r"\w+")


@dataclass
class QuestionFocus:
    """The few words that say what a question is about; empty when nothing sets it apart."""

    terms: list[str] = field(default_factory=list)  # as the lexical index holds them (stemmed)
    words: list[str] = field(default_factory=list)  # as the question wrote them, for messages

    def is_met_by(self, place: str) -> bool:
        """The passage sentence holds a focus word. A question with no focus cannot be told apart from
        another, so any place meets it."""
        return not self.terms or bool(set(self.terms) & set(tokenize([place])[0]))


def question_focus(question: str, evidence_texts: list[str], rarity: Callable[[str], dict[str, float]],
                   count: int = FOCUS_TERMS, names: list[str] | None = None) -> QuestionFocus:
    """The question's `count` rarest words (in the library) among those the evidence also holds, leaving out the
    words of `names` (the evidence's document titles and file names: "the Northfield protocol" names the
    document, it does not say what is asked of it)."""
    excluded = {code.lower() for code in guideline_codes(question)}
    excluded |= set(tokenize([" ".join(names)])[0]) if names else set()
    held = set(tokenize([" ".join(evidence_texts)])[0]) if evidence_texts else set()
    weights = rarity(question)
    ranked = sorted((term for term, weight in weights.items()
                     if weight > 0 and term in held and term not in _ASKING_TERMS and term not in excluded
                     and not term.isdigit()), key=lambda term: -weights[term])
    terms = ranked[:count]
    spelled: dict[str, str] = {}
    for word in _WORD.findall(question):
        stems = tokenize([word])[0]
        if stems and stems[0] in terms:
            spelled.setdefault(stems[0], word)
    return QuestionFocus(terms, [spelled.get(term, term) for term in terms])
