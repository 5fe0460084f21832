"""Question -> evidence -> answer: the one path the UI, the API, the CLI and evaluation share.

An answer has two parts. "Guideline wording": the sentences of the retrieved passages closest to the
question, quoted verbatim with their citation (assistant.quotes), ready before the model writes. Then
the model's short summary, written from the numbered evidence and citing it, checked against it
sentence by sentence (assistant.support): only what a passage states is shown.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from .answer_checks import cited_numbers, drop_unknown_citations
from .choice import choice_query, context_order
from .config import Settings
from .gate import GenerationGate
from .generator import Generator
from .injection import InjectionDetector
from .prompts import answer_messages
from .questions import clean_question
from .quotes import focused_evidence, select_quotes, wording_block
from .records import Answer, Evidence
from .relevance import QuestionFocus, question_focus
from .retriever import Retrieval, Retriever, retrieval_query
from .support import SentenceCheck, SupportChecker, split_sentences

log = logging.getLogger(__name__)

DISCLAIMER = ("This assistant supports, and does not replace, clinical judgement. Check recommendations "
              "against the full guideline and the patient in front of you.")
WITHHELD_ALL = ("The passages found contain text that addresses the assistant with instructions, so they were "
                "withheld from the model. Read them in the evidence panel, and check the source document.")


def missing_text(codes: list[str]) -> str:
    """The opening line when the question names a guideline the library does not hold."""
    if not codes:
        return ""
    named = ", ".join(codes)
    return (f"The library has no guideline {named}, which the question names: the passages below come from the "
            "other documents. Upload that guideline to get its own wording.\n\n")


def waiting_text(position: int) -> str:
    """What stands under the wording while the summary waits for the model."""
    return (f"\n\nSummary: waiting for the model (number {position} in line). The evidence and the guideline's "
            "own wording above are complete; the summary follows when the model is free.")


def not_covered_text(evidence: list[Evidence], threshold: float) -> str:
    best = f" (best match {max(e.score for e in evidence):.2f}, threshold {threshold:.2f})" if evidence else ""
    return ("The loaded guidelines do not cover this question" + best + ", so no answer was generated. The closest "
            "passages are shown for reference. Rephrase the question, or upload a guideline that covers it.")


def answers_the_question(checks: list[SentenceCheck]) -> bool:
    """One supported sentence is drawn from a passage sentence about what the question asks."""
    return any(check.supported and check.on_question for check in checks)


def shown_summary(checks: list[SentenceCheck]) -> str:
    """The sentences a passage supports, each ending with the citation of that passage; nothing until one of them
    is drawn from a passage sentence about what the question asks."""
    if not answers_the_question(checks):
        return ""
    shown = []
    for check in checks:
        if check.supported:
            cites = f"[{check.source}]" in check.sentence
            shown.append(check.sentence if cites else f"{check.sentence.rstrip()} [{check.source}]")
    return " ".join(shown)


def left_out_note(checks: list[SentenceCheck], focus: QuestionFocus) -> str:
    """Why sentences the model wrote are not shown (the kinds of claim, not the unsupported words)."""
    dropped = [check for check in checks if not check.supported]
    reasons = "; ".join(sorted({reason for check in dropped for reason in check.reasons}))
    if len(dropped) < len(checks) and not answers_the_question(checks):
        asked = " or ".join(f'"{word}"' for word in focus.words)
        stated = "part of what the model wrote" if dropped else "what the model wrote"
        return (f"\n\nNo summary is shown: the passages state {stated}, but where they say it they do not speak of "
                f"{asked}, which the question asks about; it answers another question. Rely on the guideline "
                "wording above.")
    if not dropped:
        return ""
    if len(dropped) == len(checks):
        return ("\n\nNo summary is shown: no passage states what the model wrote (" + reasons +
                "). Rely on the guideline wording above.")
    return (f"\n\n({len(dropped)} sentence{'s' if len(dropped) > 1 else ''} of the model's summary left out: "
            "the passage it cites does not state " + reasons + ".)")


class Answerer:
    """Answers questions from the library with one retriever and one generator."""

    def __init__(self, settings: Settings, retriever: Retriever, generator: Generator) -> None:
        self.settings = settings
        self.retriever = retriever
        self.generator = generator
        # words of general English (the encoder's whole-word vocabulary): a summary word outside it is a
        # specialist term (a drug, a test) that the cited passage must contain
        self.injection = InjectionDetector(retriever.encoder)
        self.common_words = frozenset(word for word in retriever.encoder.tokenizer.get_vocab() if word.isalpha())
        self.gate = GenerationGate(settings.concurrency_limit)  # summaries written at once; the rest wait in line

    def retrieve(self, question: str, previous_questions: list[str], top_k: int,
                 doc_ids: list[str] | None = None) -> tuple[str, Retrieval, float]:
        query = retrieval_query(question, previous_questions, self.settings.history_turns)
        started = time.perf_counter()
        found = self.retriever.retrieve(query, top_k, doc_ids, focus=question if query != question else "")
        for item, withheld in zip(found.evidence, self.injection.withheld([e.text for e in found.evidence])):
            item.withheld = withheld
        return query, found, (time.perf_counter() - started) * 1000

    def is_covered(self, evidence: list[Evidence]) -> bool:
        return bool(evidence) and max(item.score for item in evidence) >= self.settings.min_evidence_score

    def ask_stream(self, question: str, history: list[tuple[str, str]] | None = None, top_k: int | None = None,
                   doc_ids: list[str] | None = None, temperature: float | None = None,
                   max_new_tokens: int | None = None) -> Iterator[Answer]:
        """Yield the answer as it grows; the last item is complete (timings, citations)."""
        settings = self.settings
        history = history or []
        question = clean_question(question, settings.max_question_chars)
        top_k = max(1, min(int(top_k or settings.top_k), 20))
        started = time.perf_counter()
        query, found, retrieval_ms = self.retrieve(question, [user for user, _ in history], top_k, doc_ids)
        evidence = found.evidence
        answer = Answer(question=question, text="", evidence=evidence, covered=self.is_covered(evidence),
                        timings={"retrieval_ms": round(retrieval_ms, 1)}, models=dict(self.generator.info),
                        retrieval_query=query, missing_guidelines=found.named.missing)
        notice = missing_text(found.named.missing)
        usable = [item for item in evidence if not item.withheld]
        if not answer.covered or not usable:
            answer.text = notice + (not_covered_text(evidence, settings.min_evidence_score) if not answer.covered
                                    else WITHHELD_ALL)
            answer.timings["total_s"] = round(time.perf_counter() - started, 3)
            yield answer
            return

        wording = notice + wording_block(select_quotes(self.retriever.encoder, query, evidence,
                                                       settings.quote_sentences))
        answer.text = wording
        yield answer  # the verbatim wording is ready before the model writes a word

        with self.gate.turn() as line:  # only the summary waits for the model; the evidence is already out
            for position in line:
                answer.text = wording + waiting_text(position)
                answer.timings["queue_position"] = position
                yield answer
            answer.text = wording
            yield from self._checked_summary(answer, wording, usable, history, max_new_tokens, temperature)
        answer.cited = cited_numbers(answer.text, len(evidence))
        answer.timings["total_s"] = round(time.perf_counter() - started, 3)
        yield answer

    def sentence_checker(self, question: str, usable: list[Evidence]
                         ) -> tuple[Callable[[str], SentenceCheck], QuestionFocus]:
        """The verdict on each sentence of a summary: stated by a passage, and drawn from where that passage
        speaks of what the question asks."""
        checker = SupportChecker(question, usable, self.common_words)
        focus = question_focus(question, [item.text for item in usable], self.retriever.store.term_rarity,
                               names=[f"{item.title} {item.file}" for item in usable])

        def check(sentence: str) -> SentenceCheck:
            verdict = checker.check(sentence)
            verdict.on_question = verdict.supported and focus.is_met_by(verdict.place)
            return verdict

        return check, focus

    def _checked_summary(self, answer: Answer, wording: str, usable: list[Evidence], history: list[tuple[str, str]],
                         max_new_tokens: int | None, temperature: float | None) -> Iterator[Answer]:
        """The model writes; its sentences are shown once complete, each stated by a passage it cites, and once
        one of them comes from where a passage speaks of what the question asks."""
        head = f"\n\nSummary ({self.generator.info.get('generator', 'model')}; each sentence checked against the " \
               "passage it cites):\n"
        check, focus = self.sentence_checker(answer.question, usable)
        checks: list[SentenceCheck] = []
        partial = ""
        focused = focused_evidence(self.retriever.encoder, answer.question, usable, self.settings.evidence_chars)
        messages = answer_messages(answer.question, focused, history)
        for partial in self._summary(messages, len(answer.evidence), max_new_tokens, temperature, answer.timings):
            complete = split_sentences(partial)[:-1]  # the last sentence may still be growing
            if len(complete) > len(checks):
                checks += [check(sentence) for sentence in complete[len(checks):]]
                answer.summary = shown_summary(checks)
                answer.text = wording + (head + answer.summary if answer.summary else "")
                yield answer  # only checked sentences are ever shown
        checks += [check(sentence) for sentence in split_sentences(partial)[len(checks):]]
        answer.summary = shown_summary(checks)
        answer.summary_checks = [verdict.as_dict() for verdict in checks]
        answer.text = wording + (head + answer.summary if answer.summary else "") + left_out_note(checks, focus)

    def _summary(self, messages: list[dict[str, str]], evidence_count: int, max_new_tokens: int | None,
                 temperature: float | None, timings: dict[str, Any]) -> Iterator[str]:
        """The model's summary as it grows, citations to no passage removed; fills in the timings."""
        pieces: list[str] = []
        first_token = None
        started = time.perf_counter()
        for piece in self.generator.stream(messages, max_new_tokens or self.settings.max_new_tokens,
                                           self.settings.temperature if temperature is None else temperature):
            if first_token is None and piece.strip():
                first_token = time.perf_counter() - started
            pieces.append(piece)
            yield drop_unknown_citations("".join(pieces), evidence_count).strip()
        seconds = time.perf_counter() - started
        summary = drop_unknown_citations("".join(pieces), evidence_count).strip()
        new_tokens = len(self.generator.tokenizer(summary, add_special_tokens=False)["input_ids"])
        timings.update({"first_token_s": round(first_token or seconds, 3), "new_tokens": new_tokens,
                        "tokens_per_s": round(new_tokens / seconds, 1) if seconds > 0 else 0.0})
        yield summary

    def ask(self, question: str, **kwargs: Any) -> Answer:
        """The complete answer (the last of the stream)."""
        return deque(self.ask_stream(question, **kwargs), maxlen=1)[0]

    def choice_evidence(self, question: str, options: dict[str, str], top_k: int | None = None) -> list[Evidence]:
        """The passages multiple-choice mode reads: found for the stem and options, best passage last."""
        return context_order(self.retriever.search(choice_query(question, options), top_k or self.settings.top_k))

    def choose(self, question: str, options: dict[str, str], top_k: int | None = None,
               evidence: list[Evidence] | None = None) -> tuple[str, dict[str, float], list[Evidence]]:
        """Multiple-choice mode: retrieve (unless evidence is given), then score each option.

        Retrieved evidence goes into the prompt best passage last, as in training; given evidence is used
        in the order given."""
        if evidence is None:
            evidence = self.choice_evidence(question, options, top_k)
        letter, scores = self.generator.score_options(question, options, evidence, self.settings.choice_format)
        return letter, scores, evidence
