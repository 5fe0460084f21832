"""The paired comparison of two systems on the same questions (trainer.paired), and its place in the report."""
from __future__ import annotations

import json
import math

import pytest

from trainer.evaluate import SYSTEMS, Prediction, write_report
from trainer.paired import bootstrap_interval, compare, mcnemar_p, paired_comparisons, paired_table


def test_exact_mcnemar_p_matches_the_binomial_by_hand():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(3, 3) == 1.0
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)  # both tails of Binomial(6, 1/2) at 0
    assert mcnemar_p(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_p(9, 1) == mcnemar_p(1, 9)


def test_bootstrap_interval_brackets_the_difference_and_separates_a_clear_one():
    assert bootstrap_interval([0] * 50) == (0.0, 0.0)
    clear = [1] * 30 + [0] * 70  # a right on 30 questions b missed, never the other way
    low, high = bootstrap_interval(clear)
    assert 0 < low < 0.3 < high < 0.5
    mixed = [1] * 10 + [-1] * 10 + [0] * 80  # as many won as lost: the interval straddles 0
    low, high = bootstrap_interval(mixed)
    assert low < 0 < high
    assert bootstrap_interval(mixed) == bootstrap_interval(mixed)  # seeded: a report can be regenerated
    assert all(math.isnan(v) for v in bootstrap_interval([]))


def test_compare_counts_only_the_questions_both_answered():
    a = {"q1": True, "q2": True, "q3": False, "q4": True}
    b = {"q1": True, "q2": False, "q3": True, "q5": False}
    result = compare(a, b)
    assert result["n"] == 3 and (result["only_a"], result["only_b"]) == (1, 1)
    assert result["difference"] == 0 and result["accuracy_a"] == pytest.approx(2 / 3)


def test_pairs_are_reported_overall_and_per_part():
    ids = [f"q{i}" for i in range(40)]
    parts = {q: "seen" if i < 20 else "unseen" for i, q in enumerate(ids)}
    correct = {"rag": {q: i % 2 == 0 for i, q in enumerate(ids)},
               "jmlr": {q: i % 2 == 0 or i >= 30 for i, q in enumerate(ids)},  # 5 more right, all unseen
               "base": {q: False for q in ids}}
    result = paired_comparisons(correct, parts)
    assert set(result) == {"jmlr-rag", "rag-base"}  # frozen was not scored: no pair with it
    jmlr = result["jmlr-rag"]
    assert (jmlr["only_a"], jmlr["only_b"]) == (5, 0) and jmlr["difference"] == pytest.approx(5 / 40)
    assert jmlr["seen"]["difference"] == 0 and jmlr["unseen"]["only_a"] == 5
    table = paired_table(result, SYSTEMS)
    assert "| (d) - (b) | unseen | 20 |" in table and "+25.0" in table


def test_the_report_carries_the_paired_differences(tmp_path):
    def predictions(right: set[int]) -> list[Prediction]:
        return [Prediction(id=f"q{i}", part="seen", answer="A", chosen="A" if i in right else "B",
                           correct=i in right, gold_rank=1, scores={}) for i in range(12)]

    items = {"rag": predictions({0, 1, 2, 3}), "jmlr": predictions({0, 1, 2, 3, 4, 5, 6, 7})}
    results = {name: {"system": SYSTEMS[name], "checkpoint": "", "n": 12, "accuracy": len(
        [p for p in found if p.correct]) / 12, "ci95": [0.1, 0.9], "recall@1": 1.0, "recall@5": 1.0,
        "recall@20": 1.0} for name, found in items.items()}
    meta = {"test_file": "t.jsonl", "questions": 12, "limit": 0, "precision": "fp32", "k_context": 5,
            "wall_seconds": 1.0, "seconds_per_system": {"rag": 0.5, "jmlr": 0.5}}
    write_report(tmp_path, results, meta, items)
    saved = json.loads((tmp_path / "results.json").read_text())["_paired"]["jmlr-rag"]
    assert (saved["only_a"], saved["only_b"]) == (4, 0) and saved["mcnemar_p"] == pytest.approx(2 / 16)
    assert "## Paired differences" in (tmp_path / "report.md").read_text()
