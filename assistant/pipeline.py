"""Question -> evidence -> answer: the one path the UI, the API, the CLI and evaluation share.

An answer has two parts. The model's short answer, written from the numbered evidence and citing it,
and "Guideline wording": the sentences of the retrieved passages closest to the question, quoted
verbatim with their citation. A 135M-parameter model paraphrases imperfectly; the quotes let a
clinician check every figure against the guideline's own words.
"""
from __future__ import annotations

import logging
import re
import time
import unicodedata
from typing import Iterator

import numpy as np

from .chunking import units
from .config import Settings
from .errors import QuestionError
from .generator import Generator
from .prompts import answer_messages, context_order, looks_like_injection
from .records import Answer, Evidence
from .retriever import Retriever, retrieval_query

log = logging.getLogger(__name__)

DISCLAIMER = ("This assistant supports, and does not replace, clinical judgement. Check recommendations "
              "against the full guideline and the patient in front of you.")
_CITATION = re.compile(r"\[(\d{1,3})\]")


def clean_question(question: str, max_chars: int) -> str:
    """Validate a question; raise QuestionError with what to do when it cannot be asked."""
    text = unicodedata.normalize("NFC", str(question or ""))
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\n\t" else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    if not re.search(r"\w", text):
        raise QuestionError("Please type a question, for example: \"What is the first-line treatment for "
                            "hypertension in adults under 55?\"")
    if len(text) > max_chars:
        raise QuestionError(f"The question is {len(text):,} characters long; the limit is {max_chars:,}. "
                            "Ask the clinical question itself, without pasting whole documents or records.")
    return text


def cited_numbers(text: str, count: int) -> list[int]:
    return sorted({int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= count})


def drop_unknown_citations(text: str, count: int) -> str:
    """Remove citation markers that point at no retrieved passage: the answer may cite only evidence."""
    return _CITATION.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= count else "", text)


_FIGURE = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(mg|milligrams?|micrograms?|microgram|mcg|µg|g|grams?|kg|ml|mL|litres?|l|units?|iu|mmol/l|mmhg|"
    r"%|hours?|hrs?|minutes?|mins?|days?|weeks?|months?|years?|times)\b", re.I)
_UNIT_ALIASES = {"milligram": "mg", "milligrams": "mg", "microgram": "mcg", "micrograms": "mcg", "µg": "mcg", "gram": "g", "grams": "g", "hr": "hour",
                 "hrs": "hour", "hours": "hour", "min": "minute", "mins": "minute", "minutes": "minute",
                 "days": "day", "weeks": "week", "months": "month", "years": "year", "litre": "l", "litres": "l",
                 "units": "unit", "iu": "unit"}


def _figures(text: str) -> set[tuple[str, str]]:
    found = set()
    for number, unit in _FIGURE.findall(text):
        unit = unit.lower()
        found.add((number.replace(",", "."), _UNIT_ALIASES.get(unit, unit)))
    return found


def unsupported_figures(summary: str, evidence: list[Evidence]) -> list[str]:
    """Doses, durations and thresholds the model wrote that no retrieved passage states."""
    known = _figures(" ".join(item.text for item in evidence))
    return sorted(f"{number} {unit}" for number, unit in _figures(summary) - known)


_TERM = re.compile(r"[a-z0-9]+")
_COMMON = set("""the and for with what which when where does should than from that this into have has are was
were who how why can may not any all per its their there about after before over under between a an of to in
on is be it or by as at if do""".split())


def _stems(text: str) -> set[str]:
    """Crude stems (first five letters) of content words: "repeated" and "repeat" match."""
    return {word[:5] for word in _TERM.findall(text.lower()) if word not in _COMMON and len(word) > 1}


def term_overlap(query: str, sentence: str) -> float:
    """Share of the query's content words that the sentence contains."""
    wanted = _stems(query)
    return len(wanted & _stems(sentence)) / len(wanted) if wanted else 0.0


def choice_query(question: str, options: dict[str, str]) -> str:
    """The retrieval query of multiple-choice mode (the stem and every option); the trainer uses it too."""
    return question + "\n" + "\n".join(options.values())


class Pipeline:
    def __init__(self, settings: Settings, retriever: Retriever, generator: Generator) -> None:
        self.settings = settings
        self.retriever = retriever
        self.generator = generator

    def retrieve(self, question: str, previous_questions: list[str], top_k: int,
                 doc_ids: list[str] | None = None) -> tuple[str, list[Evidence], float]:
        query = retrieval_query(question, previous_questions, self.settings.history_turns)
        started = time.perf_counter()
        evidence = self.retriever.search(query, top_k, doc_ids)
        for item in evidence:
            item.withheld = looks_like_injection(item.text)
        return query, evidence, (time.perf_counter() - started) * 1000

    def is_covered(self, evidence: list[Evidence]) -> bool:
        return bool(evidence) and evidence[0].score >= self.settings.min_evidence_score

    def quotes(self, query: str, evidence: list[Evidence], count: int) -> list[tuple[int, str]]:
        """The sentences of the top passages nearest to the query, as (evidence number, sentence)."""
        candidates: list[tuple[int, str]] = []
        for item in [e for e in evidence if not e.withheld][:3]:
            for start, end, heading in units(item.text):
                sentence = re.sub(r"\s+", " ", item.text[start:end]).strip()
                if not heading and len(sentence) >= 25:
                    candidates.append((item.number, sentence))
        if not candidates or count <= 0:
            return []
        encoder = self.retriever.encoder
        vectors = encoder.encode([query] + [sentence for _, sentence in candidates])
        similarity = vectors[1:] @ vectors[0]
        overlap = np.array([term_overlap(query, sentence) for _, sentence in candidates])
        # a sentence cut off by the end of a page or passage reads badly as a quote
        complete = np.array([0.0 if sentence.endswith((".", "!", "?", ":", ";", ")")) else -0.15
                             for _, sentence in candidates])
        best = np.argsort(-(similarity + 0.5 * overlap + complete))[:count]
        return [candidates[i] for i in sorted(best)]

    def ask_stream(self, question: str, history: list[tuple[str, str]] | None = None, top_k: int | None = None,
                   doc_ids: list[str] | None = None, temperature: float | None = None,
                   max_new_tokens: int | None = None) -> Iterator[Answer]:
        """Yield the answer as it grows; the last item is complete (timings, citations)."""
        settings = self.settings
        history = history or []
        question = clean_question(question, settings.max_question_chars)
        top_k = max(1, min(int(top_k or settings.top_k), 20))
        started = time.perf_counter()
        query, evidence, retrieval_ms = self.retrieve(question, [user for user, _ in history], top_k, doc_ids)
        answer = Answer(question=question, text="", evidence=evidence, covered=self.is_covered(evidence),
                        timings={"retrieval_ms": round(retrieval_ms, 1)}, models=dict(self.generator.info),
                        retrieval_query=query)
        if not answer.covered:
            best = f" (best match {evidence[0].score:.2f}, threshold {settings.min_evidence_score:.2f})" if evidence \
                else ""
            answer.text = ("The loaded guidelines do not cover this question" + best + ", so no answer was "
                           "generated. The closest passages are shown for reference. Rephrase the question, or "
                           "upload a guideline that covers it.")
            answer.timings["total_s"] = round(time.perf_counter() - started, 3)
            yield answer
            return

        quotes = self.quotes(query, evidence, settings.quote_sentences)
        wording = "Guideline wording:\n" + "\n".join(f"> {sentence} [{number}]" for number, sentence in quotes) \
            if quotes else ""
        summary_head = f"\n\nSummary ({self.generator.info.get('generator', 'model')}; check it against the " \
                       "wording and evidence):\n" if quotes else ""
        answer.text = wording
        yield answer  # the verbatim wording is ready before the model writes a word

        usable = [item for item in evidence if not item.withheld]
        if not usable:
            answer.text = ("The passages found contain text that addresses the assistant with instructions, so they "
                           "were withheld from the model. Read them in the evidence panel, and check the source "
                           "document.")
            answer.timings["total_s"] = round(time.perf_counter() - started, 3)
            yield answer
            return
        messages = answer_messages(question, usable, history)
        pieces: list[str] = []
        first_token = None
        generation_started = time.perf_counter()
        for piece in self.generator.stream(messages, max_new_tokens or settings.max_new_tokens,
                                           settings.temperature if temperature is None else temperature):
            if first_token is None and piece.strip():
                first_token = time.perf_counter() - generation_started
            pieces.append(piece)
            answer.text = wording + summary_head + drop_unknown_citations("".join(pieces), len(evidence)).strip()
            yield answer
        generation_seconds = time.perf_counter() - generation_started
        summary = drop_unknown_citations("".join(pieces), len(evidence)).strip()
        new_tokens = len(self.generator.tokenizer(summary, add_special_tokens=False)["input_ids"])
        text = wording + summary_head + summary
        unsupported = unsupported_figures(summary, usable)
        if unsupported:
            text += ("\n\nCaution: the summary mentions " + ", ".join(unsupported) + ", not found in the "
                     "retrieved evidence. Rely on the guideline wording above.")
        answer.text = text
        answer.cited = cited_numbers(text, len(evidence))
        answer.timings.update({
            "first_token_s": round(first_token or generation_seconds, 3),
            "tokens_per_s": round(new_tokens / generation_seconds, 1) if generation_seconds > 0 else 0.0,
            "new_tokens": new_tokens,
            "total_s": round(time.perf_counter() - started, 3),
        })
        yield answer

    def ask(self, question: str, **kwargs) -> Answer:
        answer = None
        for answer in self.ask_stream(question, **kwargs):
            pass
        assert answer is not None
        return answer

    def choose(self, question: str, options: dict[str, str], top_k: int | None = None,
               evidence: list[Evidence] | None = None) -> tuple[str, dict[str, float], list[Evidence]]:
        """Multiple-choice mode: retrieve (unless evidence is given), then score each option.

        Retrieved evidence goes into the prompt best passage last, as in training; given evidence is used
        in the order given."""
        if evidence is None:
            found = self.retriever.search(choice_query(question, options), top_k or self.settings.top_k)
            evidence = context_order(found)
        letter, scores = self.generator.score_options(question, options, evidence)
        return letter, scores, evidence
