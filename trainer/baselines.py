"""Trivial baselines and form cues of multiple-choice questions: what a test-taker scores without medicine.

A question set where the right option is usually the longest, or the only one with a number or a hedge,
rewards learning the form of options instead of the guideline. These baselines stand beside every accuracy
table, and the dataset validator refuses a split whose longest-option baseline is far above chance.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

Record = dict[str, Any]

_WORD = re.compile(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*")
_DIGIT = re.compile(r"\d")
# Words that soften or condition a statement: test-wise readers favour the option that has them.
_HEDGES = re.compile(r"\b(?:may|might|can|could|consider|considered|usually|generally|typically|often|if|unless|"
                     r"when|where|only|provided|at least|at most|depending)\b", re.I)
_COMMON = set("a an the of in on for to and or with by at as is are be from this that what which who".split())


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON}


def longest_choice(record: Record) -> str:
    """The letter of the longest option (characters); ties go to the earlier letter."""
    options = record["options"]
    return max(sorted(options), key=lambda letter: len(options[letter]))


def most_similar_choice(record: Record) -> str:
    """The letter of the option sharing the most words with the question."""
    question, options = _words(record["question"]), record["options"]
    return max(sorted(options), key=lambda letter: len(_words(options[letter]) & question))


def evidence_overlap_choice(options: dict[str, str], evidence: str) -> str:
    """The letter of the option whose words the evidence holds the largest share of: what copying from the
    passages scores without a model (the bar a reader of the evidence must clear)."""
    held = _words(evidence)
    def share(letter: str) -> float:
        words = _words(options[letter])
        return len(words & held) / len(words) if words else 0.0
    return max(sorted(options), key=share)


def first_choice(record: Record) -> str:
    return sorted(record["options"])[0]


BASELINES: dict[str, Callable[[Record], str]] = {
    "longest option": longest_choice,
    "most similar to the question": most_similar_choice,
    "first option": first_choice,
}


def chance(records: Iterable[Record]) -> float:
    """Expected accuracy of guessing: the mean of 1 / number of options."""
    items = list(records)
    return sum(1 / len(r["options"]) for r in items) / len(items) if items else 0.0


def baseline_accuracies(records: Iterable[Record]) -> dict[str, float]:
    """Accuracy of each trivial baseline, and of chance, on these records."""
    items = list(records)
    if not items:
        return {}
    scores = {name: sum(pick(r) == r["answer"] for r in items) / len(items) for name, pick in BASELINES.items()}
    return {"chance": chance(items), **scores}


def form_cues(record: Record) -> list[str]:
    """Ways the right option stands out by form alone (empty when it does not)."""
    options, answer = record["options"], record["answer"]
    right, others = options[answer], [text for letter, text in options.items() if letter != answer]
    cues = []
    if len(right) > 1.2 * max(len(text) for text in others):
        cues.append("the right option is the longest by more than 20%")
    if _DIGIT.search(right) and not any(_DIGIT.search(text) for text in others):
        cues.append("the right option is the only one with a number")
    hedge = _HEDGES.search(right)
    if hedge and not any(_HEDGES.search(text) for text in others):
        cues.append(f"the right option is the only one with a hedge or condition ({hedge.group(0)!r})")
    return cues
