"""Is each sentence of the model's summary stated by one passage it cites?

A small model paraphrases, and sometimes invents: a drug the passages never name, a dose with the wrong
unit, a population the recommendation does not cover. A clinician reads the first lines, so a sentence is
shown only when one passage (among those it cites; any passage when it cites none) states everything
specific it says, consistently:
- every figure: dose and unit, threshold, range, duration, frequency (assistant.figures), and every bare
  number;
- every specialist term (a drug, a test, a condition: words outside the encoder's general vocabulary) and
  every population, route or frequency word;
- not mostly other words: a sentence whose content words are mostly absent from the passage is not a
  summary of it;
- the same polarity: "do not offer" where the passage's matching sentence says "offer", or the reverse;
- a drug's dose as the passage pairs them: the drug and the figures the sentence gives it must stand
  together in the passage (in one sentence, or a figureless line and the next), not another drug's dose;
- drawn from one place: of what the sentence says beyond the question, at least half stands in one
  sentence of the passage (or two adjacent). Words gathered from across a passage can make a claim it
  never makes ("perform a blood pressure monitoring test" beside a passage that monitors blood pressure
  in one place and tests something else in another).
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from .answer_checks import cited_numbers
from .figures import UNIT_WORDS, bare_numbers, figure_supported, figures
from .records import Evidence

_WORD = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]", re.I)
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)[.!?](?:\s*\[\d{1,3}\])*(?=\s+[A-Z(\[\"]|\s*$)")
_NEGATION = re.compile(r"\b(?:not|no|never|avoid|avoided|don't|cannot|contraindicated|neither|nor)\b", re.I)
_DRUG_LIKE = re.compile(
    r"(?:cillin|mycin|micin|floxacin|cycline|azole|pril|sartan|olol|dipine|statin|parin|xaban|gatran|"
    r"tidine|prazole|mab|nib|afil|triptan|gliptin|gliflozin|glutide|formin|profen|fenac|sone|olone|"
    r"amide|azepam|oxetine|aline|amine|oxacin|vir|cept|caine|ulin|urantoin|oprim|amol|irin)s?$", re.I)

# words a summary uses to frame any answer; absent from a passage without changing what it claims
_FRAMING = set("""the and for with what which when where does should than from that this into have has are was
were who how why can may not any all per its their there about after before over under between also such these
those them they then only other more most less least each every both either whether while would could must
shall will been being very some much many first-line first-choice first choice line recommended recommend
recommends recommendation recommendations advise advised advises advice suggest suggests suggested guideline
guidelines guidance according state states stated says said provided provide evidence passage passages
document documents cover covers covered answer question information section based consider considered use
used using given give offer offered treatment treat treated therapy option options patient patients people
person clinician clinicians healthcare professional professionals include includes including following
appropriate usually typically generally recommendedly important need needs needed note""".split())

# qualifiers that change who or how a recommendation applies: stated only when the passage states them
_QUALIFIERS = [set(group.split()) for group in [
    "child children childhood paediatric pediatric kids",
    "infant infants baby babies neonate neonates newborn newborns",
    "adolescent adolescents teenager teenagers", "pregnant pregnancy pregnancies antenatal",
    "breastfeeding lactating lactation", "postpartum postnatal", "elderly older frail",
    "men male males", "women woman female females",
    "oral orally mouth", "intravenous intravenously iv", "intramuscular intramuscularly",
    "subcutaneous subcutaneously", "topical topically", "inhaled inhaler nebulised nebulized",
    "rectal rectally", "sublingual sublingually", "daily day", "weekly week", "monthly month", "nightly night",
    "hourly hour"]]


@dataclass
class SentenceCheck:
    """One sentence of the summary and the verdict on it."""

    sentence: str
    supported: bool
    source: int | None = None  # the evidence number of the passage that states it
    place: str = ""  # the sentence (or two adjacent ones) of that passage closest to it
    on_question: bool = False  # that place concerns what the question asks (assistant.relevance)
    reasons: list[str] = field(default_factory=list)  # why no passage supports it (kinds, not the words)

    def as_dict(self) -> dict[str, object]:
        return {"sentence": self.sentence, "supported": self.supported, "source": self.source,
                "place": self.place, "on_question": self.on_question, "reasons": self.reasons}


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing citation markers; the last may be unfinished."""
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        sentences.append(text[start:match.end()].strip())
        start = match.end()
    rest = text[start:].strip()
    return [s for s in sentences if s] + ([rest] if rest else [])


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _stem(word: str) -> str:
    return word[:6]


def _plain(text: str) -> str:
    """The sentence without citation markers (their numbers are not figures)."""
    return re.sub(r"\[\d{1,3}\]", " ", text)


@dataclass
class _Passage:
    number: int
    text: str
    lower: str
    stems: set[str]
    words: set[str]
    sentences: list[str]
    sentence_stems: list[set[str]]  # word stems of each sentence
    places: list[set[str]]  # the same, and of each two adjacent sentences
    place_texts: list[str]  # the text of each place

    @classmethod
    def of(cls, item: Evidence) -> _Passage:
        words = set(_words(item.text))
        sentences = split_sentences(re.sub(r"\s+", " ", item.text))
        stems = [{_stem(w) for w in _words(sentence)} for sentence in sentences]
        places = stems + [a | b for a, b in zip(stems, stems[1:])]
        place_texts = sentences + [f"{a} {b}" for a, b in zip(sentences, sentences[1:])]
        return cls(item.number, item.text, item.text.lower(), {_stem(w) for w in words}, words, sentences, stems,
                   places, place_texts)

    def place_of(self, sentence: str) -> str:
        """The place (a sentence, or two adjacent) sharing most word stems with `sentence`."""
        wanted = {_stem(w) for w in _words(sentence)}
        best = max(range(len(self.places)), key=lambda i: (len(wanted & self.places[i]), -i), default=None)
        return "" if best is None else self.place_texts[best]


class SupportChecker:
    """Checks summary sentences against the evidence given to the model."""

    def __init__(self, question: str, evidence: list[Evidence], common_words: Collection[str]) -> None:
        self.question_stems = {_stem(w) for w in _words(question)}
        self.passages = {item.number: _Passage.of(item) for item in evidence}
        self.common_words = common_words

    def check(self, sentence: str) -> SentenceCheck:
        """Supported when one passage (cited, or any when none is cited) states all the sentence says."""
        cited = [n for n in cited_numbers(sentence, max(self.passages, default=0)) if n in self.passages]
        candidates = [self.passages[n] for n in cited] or list(self.passages.values())
        best: list[str] | None = None
        for passage in candidates:
            problems = self.problems(_plain(sentence), passage)
            if not problems:
                return SentenceCheck(sentence, True, passage.number, passage.place_of(_plain(sentence)))
            if best is None or len(problems) < len(best):
                best = problems
        return SentenceCheck(sentence, False, reasons=best or ["no passage"])

    def problems(self, sentence: str, passage: _Passage) -> list[str]:
        """What the sentence states that the passage does not, as kinds of claim."""
        problems = []
        known = figures(passage.text)
        if any(not figure_supported(f, known) for f in figures(sentence)):
            problems.append("a dose, threshold, duration or frequency")
        elif not bare_numbers(sentence) <= bare_numbers(passage.text):
            problems.append("a number")
        words = [w for w in _words(sentence) if len(w) > 2 and w not in _FRAMING and w not in UNIT_WORDS]
        if any(self._term_missing(w, passage) for w in words):
            problems.append("a drug, test or condition")
        if any(group & set(words) and not group & passage.words for group in _QUALIFIERS):
            problems.append("a population, route or frequency")
        content = [w for w in words if len(w) > 3]
        novel = [w for w in content if _stem(w) not in passage.stems and _stem(w) not in self.question_stems]
        if len(content) >= 4 and len(novel) > len(content) / 2:
            problems.append("wording the passage does not contain")
        if self._polarity_differs(sentence, passage):
            problems.append("the opposite of the passage (negation)")
        if not problems and not self._paired_as_in(sentence, words, passage):
            problems.append("a dose the passage gives for another drug")
        if not problems and not self._from_one_place(content, passage):
            problems.append("words drawn from different parts of the passage")
        return problems

    def _from_one_place(self, content: list[str], passage: _Passage) -> bool:
        """At least half of the sentence's own content (beyond the question) stands in one place of the passage."""
        own = {_stem(w) for w in content if _stem(w) not in self.question_stems}
        if len(own) < 3:
            return True
        return max((len(own & place) for place in passage.places), default=0) * 2 >= len(own)

    def _paired_as_in(self, sentence: str, words: list[str], passage: _Passage) -> bool:
        """The drugs the sentence names and the figures it states stand together in one stretch of the passage."""
        drugs = {w for w in words if w not in self.common_words and _DRUG_LIKE.search(w)}
        stated = figures(sentence)
        if not drugs or not stated:
            return True
        texts = passage.sentences
        # a sentence, or a line with no figure of its own (a drug's name above its dose) and the next
        windows = texts + [f"{a} {b}" for a, b in zip(texts, texts[1:]) if not figures(a)]
        for window in windows:
            lower = window.lower()
            known = figures(window)
            if all(re.sub(r"(?:es|s)$", "", d) in lower for d in drugs) and \
                    all(figure_supported(f, known) for f in stated):
                return True
        return False

    def _term_missing(self, word: str, passage: _Passage) -> bool:
        """A specialist word the passage does not contain: a drug even when the question names it."""
        if word in self.common_words or word.isdigit() or len(word) < 4:
            return False
        singular = re.sub(r"(?:es|s)$", "", word) if len(word) > 5 else word
        if singular in passage.lower:
            return False
        if _DRUG_LIKE.search(word):
            return True  # a drug is named exactly, even when the question names it
        return _stem(word) not in passage.stems and _stem(word) not in self.question_stems  # "allergy", "allergic"

    @staticmethod
    def _polarity_differs(sentence: str, passage: _Passage) -> bool:
        """The passage sentence nearest this one is negated and this one is not, or the reverse."""
        wanted = {_stem(w) for w in _words(sentence) if len(w) > 3 and w not in _FRAMING}
        if len(wanted) < 2:
            return False
        overlap, nearest = max(((len(wanted & stems) / len(wanted), s)
                                for s, stems in zip(passage.sentences, passage.sentence_stems)), default=(0.0, ""))
        if overlap < 0.6:
            return False
        return bool(_NEGATION.search(sentence)) != bool(_NEGATION.search(nearest))
