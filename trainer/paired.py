"""Two systems scored on the same questions, compared question by question.

Their accuracy intervals overlap long before a difference is unlikely to be chance: the paired view counts
only the questions the two systems disagree on. Per pair: the difference in accuracy, the exact McNemar p on
the discordant questions, and a 95% paired bootstrap interval of the difference (questions resampled).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

# (d) against (c) and (b) is what the method claims; (c) against (b) and (b) against (a) say what fine-tuning
# and retrieval alone do
PAIRS = (("jmlr", "frozen"), ("jmlr", "rag"), ("frozen", "rag"), ("rag", "base"))
RESAMPLES = 2000


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p from the discordant counts (right only for a, right only for b)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def bootstrap_interval(differences: list[int], resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean per-question difference (each -1, 0 or 1), questions drawn with replacement."""
    values = np.asarray(differences, dtype=float)
    if values.size == 0:
        return (math.nan, math.nan)
    draws = np.random.default_rng(seed).integers(0, values.size, size=(resamples, values.size))
    means = values[draws].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def compare(correct_a: dict[str, bool], correct_b: dict[str, bool]) -> dict[str, Any]:
    """a minus b on the questions both answered: n, both accuracies, the difference, discordant counts, p, CI."""
    shared = sorted(correct_a.keys() & correct_b.keys())
    differences = [int(correct_a[q]) - int(correct_b[q]) for q in shared]
    only_a, only_b = differences.count(1), differences.count(-1)
    n = len(shared)
    return {"n": n, "accuracy_a": sum(correct_a[q] for q in shared) / n if n else math.nan,
            "accuracy_b": sum(correct_b[q] for q in shared) / n if n else math.nan,
            "difference": sum(differences) / n if n else math.nan, "only_a": only_a, "only_b": only_b,
            "mcnemar_p": mcnemar_p(only_a, only_b), "bootstrap_ci95": list(bootstrap_interval(differences))}


def paired_comparisons(correct: dict[str, dict[str, bool]], parts: dict[str, str]) -> dict[str, Any]:
    """Every pair of PAIRS that was scored, on all questions and on each part (seen / unseen documents).

    correct: system -> question id -> right or not; parts: question id -> its part ("" when none)."""
    results: dict[str, Any] = {}
    for a, b in PAIRS:
        if a not in correct or b not in correct:
            continue
        entry = {"a": a, "b": b, **compare(correct[a], correct[b])}
        for part in sorted({part for part in parts.values() if part}):
            entry[part] = compare({q: v for q, v in correct[a].items() if parts.get(q) == part},
                                  {q: v for q, v in correct[b].items() if parts.get(q) == part})
        results[f"{a}-{b}"] = entry
    return results


def paired_table(comparisons: dict[str, Any], names: dict[str, str]) -> str:
    """Markdown: one row per pair and question set, the difference in points with its interval and p."""
    rows = ["| comparison | questions | n | a % | b % | a - b, points | 95% paired bootstrap | right only for a / "
            "only for b | exact McNemar p |", "|---|---|---|---|---|---|---|---|---|"]
    for entry in comparisons.values():
        label = f"{names.get(entry['a'], entry['a']).split(' ')[0]} - {names.get(entry['b'], entry['b']).split(' ')[0]}"
        for part, figures in [("all", entry)] + [(p, entry[p]) for p in ("seen", "unseen") if p in entry]:
            low, high = figures["bootstrap_ci95"]
            rows.append(f"| {label} | {part} | {figures['n']} | {100 * figures['accuracy_a']:.1f} | "
                        f"{100 * figures['accuracy_b']:.1f} | {100 * figures['difference']:+.1f} | "
                        f"{100 * low:+.1f} to {100 * high:+.1f} | {figures['only_a']} / {figures['only_b']} | "
                        f"{figures['mcnemar_p']:.3f} |")
    return "\n".join(rows)
