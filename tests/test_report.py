"""The evaluation report's training section survives its checkpoints: they live outside git."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from trainer.evaluate import SYSTEMS, Prediction, merge_reports, summarize, training_record, write_report


def _evaluation(folder: Path, checkpoint: Path, training: dict | None) -> None:
    """A one-system evaluation folder as `trainer evaluate` writes it."""
    items = {"jmlr": [Prediction(id=f"q{i}", part="seen", answer="A", chosen="A", correct=True, gold_rank=1,
                                 scores={}) for i in range(4)]}
    entry = {"system": SYSTEMS["jmlr"], "checkpoint": str(checkpoint), "n": 4, "accuracy": 1.0, "ci95": [0.5, 1.0],
             "recall@1": 1.0, "recall@5": 1.0, "recall@20": 1.0}
    if training:
        entry["training"] = training
    meta = {"test_file": "t.jsonl", "questions": 4, "limit": 0, "precision": "nf4", "k_context": 5,
            "wall_seconds": 1.0, "seconds_per_system": {"jmlr": 1.0}}
    folder.mkdir(parents=True)
    write_report(folder, {"jmlr": entry}, meta, items)


def _checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "checkpoint.json").write_text(json.dumps({"step": 30, "examples_seen": 120, "elapsed_seconds": 4068.0,
                                                        "process_cpu_seconds": 7308.0, "device": "cpu",
                                                        "processes": 1, "precision": "nf4", "config": {}}))
    (folder / "metrics.csv").write_text("step,loss,gen_loss\n1,1.5,1.5\n2,1.2,1.2\n")
    return folder


def test_a_merged_report_keeps_the_training_of_a_checkpoint_deleted_since(tmp_path):
    checkpoint = _checkpoint(tmp_path / "runs" / "final")
    _evaluation(tmp_path / "eval-d", checkpoint, training_record(str(checkpoint)))
    shutil.rmtree(tmp_path / "runs")  # a new machine: runs/ is not in git
    merge_reports([tmp_path / "eval-d"], tmp_path / "merged")
    report = (tmp_path / "merged" / "report.md").read_text()
    assert "| (d) JMLR: joint generator + retriever | 30 | 120 | 1.13 h | 2.03 CPU h | cpu x 1 | nf4 |" in report
    saved = json.loads((tmp_path / "merged" / "results.json").read_text())["jmlr"]["training"]
    assert [row["gen_loss"] for row in saved["curve"]] == ["1.5", "1.2"]


def test_a_report_without_the_record_says_the_training_is_not_known(tmp_path):
    """An evaluation from before the record, merged once its checkpoint is gone: said, not silently dropped."""
    _evaluation(tmp_path / "eval-d", tmp_path / "runs" / "final", None)
    merge_reports([tmp_path / "eval-d"], tmp_path / "merged")
    report = (tmp_path / "merged" / "report.md").read_text()
    assert "| (d) JMLR: joint generator + retriever | not recorded: its checkpoint" in report
    assert training_record("") is None and training_record(str(tmp_path / "nowhere")) is None


def test_reports_carry_the_gold_passage_mean_reciprocal_rank(tmp_path):
    """recall@5 moves only when a gold passage crosses rank 5; the reciprocal rank moves with every change of
    place, so every table carries it, and a report merged from folders written before it had it gains it."""
    ranks = [1, 2, 4, None]  # MRR = (1 + 1/2 + 1/4 + 0) / 4
    items = [Prediction(id=f"q{i}", part="seen" if i < 2 else "unseen", answer="A", chosen="A", correct=True,
                        gold_rank=rank, scores={}) for i, rank in enumerate(ranks)]
    figures = summarize(items, retrieval=True)
    assert figures["mrr"] == (1 + 0.5 + 0.25) / 4 and figures["seen"]["mrr"] == 0.75
    assert figures["unseen"]["mrr"] == 0.125 and summarize(items, retrieval=False)["mrr"] is None

    old = {"system": SYSTEMS["rag"], "checkpoint": "", **summarize(items, retrieval=True)}
    for part in ("", "seen", "unseen"):  # a results.json written before the figure existed
        (old[part] if part else old).pop("mrr")
    meta = {"test_file": "t.jsonl", "questions": 4, "limit": 0, "precision": "nf4", "k_context": 5,
            "wall_seconds": 1.0, "seconds_per_system": {"rag": 1.0}}
    (tmp_path / "old").mkdir()
    write_report(tmp_path / "old", {"rag": old}, meta, {"rag": items})
    merge_reports([tmp_path / "old"], tmp_path / "merged")
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())["rag"]
    assert merged["mrr"] == 0.4375 and merged["unseen"]["mrr"] == 0.125
    table = (tmp_path / "merged" / "report.md").read_text()
    assert "gold MRR" in table and "| 0.438 |" in table


def test_a_merge_keeps_the_saved_figures_of_a_folder_without_its_predictions(tmp_path):
    """Predictions are what a merge recomputes from; a folder that lost them keeps its figures, not n=0."""
    checkpoint = _checkpoint(tmp_path / "runs" / "final")
    for case, lose in (("empty", lambda path: path.write_text("")), ("missing", Path.unlink)):
        _evaluation(tmp_path / case, checkpoint, training_record(str(checkpoint)))
        lose(tmp_path / case / "predictions.jsonl")
        merge_reports([tmp_path / case], tmp_path / f"merged-{case}")
        merged = json.loads((tmp_path / f"merged-{case}" / "results.json").read_text())["jmlr"]
        assert (merged["n"], merged["accuracy"], merged["recall@5"]) == (4, 1.0, 1.0), case
