"""The verbatim "Guideline wording" that opens an answer: the retrieved sentences nearest the question.

A small model paraphrases imperfectly; quotes let a clinician check every figure against the
guideline's own words, and they are ready before the model writes a word.
"""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from .chunking import unit_texts
from .encoder import Encoder
from .records import Evidence

_TERM = re.compile(r"[a-z0-9]+")
_COMMON = set("""the and for with what which when where does should than from that this into have has are was were
who how why can may not any all per its their there about after before over under between a an of to
in on is be it or by as at if do""".split())


def _stems(text: str) -> set[str]:
    """Crude stems (first five letters) of content words: "repeated" and "repeat" match."""
    return {word[:5] for word in _TERM.findall(text.lower()) if word not in _COMMON and len(word) > 1}


def term_overlap(query: str, sentence: str) -> float:
    """Share of the query's content words that the sentence contains."""
    wanted = _stems(query)
    return len(wanted & _stems(sentence)) / len(wanted) if wanted else 0.0


def candidate_sentences(evidence: list[Evidence], passages: int = 3) -> list[tuple[int, str]]:
    """(evidence number, sentence) for the body sentences of the top guidance passages not withheld; a sentence
    two documents (or two pages) share is offered once, with its first citation."""
    candidates: list[tuple[int, str]] = []
    seen: set[str] = set()
    for item in [e for e in evidence if not e.withheld and e.kind == "body"][:passages]:
        for sentence, heading in unit_texts(item.text):
            key = re.sub(r"[^a-z0-9]+", "", sentence.lower())
            if not heading and len(sentence) >= 25 and key not in seen:
                seen.add(key)
                candidates.append((item.number, sentence))
    return candidates


def _sentence_scores(encoder: Encoder, query: str, sentences: list[str]) -> np.ndarray:
    """Nearness of each sentence to the query: embedding similarity plus shared content words."""
    vectors = encoder.encode([query] + sentences)
    overlap = np.array([term_overlap(query, sentence) for sentence in sentences])
    return np.asarray(vectors[1:] @ vectors[0]) + 0.5 * overlap


def focused_evidence(encoder: Encoder, query: str, evidence: list[Evidence], max_chars: int) -> list[Evidence]:
    """Each passage longer than `max_chars` cut to its sentences nearest the query, kept in their order: the
    model reads less (its first token comes sooner) and has less to wander in. Numbers and sources are kept."""
    if max_chars <= 0:
        return evidence
    pieces = [(index, sentence) for index, item in enumerate(evidence) if len(item.text) > max_chars
              for sentence, _ in unit_texts(item.text)]
    if not pieces:
        return evidence
    scores = _sentence_scores(encoder, query, [sentence for _, sentence in pieces])
    focused = []
    for index, item in enumerate(evidence):
        mine = [(scores[i], i) for i, (owner, _) in enumerate(pieces) if owner == index]
        if not mine:
            focused.append(item)
            continue
        kept: list[int] = []
        used = 0
        for _, i in sorted(mine, reverse=True):
            if used + len(pieces[i][1]) <= max_chars or not kept:
                kept.append(i)
                used += len(pieces[i][1]) + 1
        focused.append(replace(item, text=" ".join(pieces[i][1] for i in sorted(kept))))
    return focused


def select_quotes(encoder: Encoder, query: str, evidence: list[Evidence], count: int) -> list[tuple[int, str]]:
    """The `count` sentences nearest the query, in passage order, as (evidence number, sentence)."""
    candidates = candidate_sentences(evidence)
    if not candidates or count <= 0:
        return []
    nearness = _sentence_scores(encoder, query, [sentence for _, sentence in candidates])
    # a sentence cut off by the end of a page or passage reads badly as a quote
    complete = np.array([0.0 if sentence.endswith((".", "!", "?", ":", ";", ")")) else -0.15
                         for _, sentence in candidates])
    best = np.argsort(-(nearness + complete))[:count]
    return [candidates[i] for i in sorted(best)]


def wording_block(quotes: list[tuple[int, str]]) -> str:
    """The quotes as the answer shows them."""
    if not quotes:
        return ""
    return "Guideline wording:\n" + "\n".join(f"> {sentence} [{number}]" for number, sentence in quotes)


def quoted_sentences(answer_text: str, number: int) -> list[str]:
    """The sentences an answer quotes from evidence [number]: `wording_block` read back."""
    return re.findall(rf"^> (.+) \[{number}\]$", answer_text, flags=re.M)
