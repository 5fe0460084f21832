"""Evaluation on the test split, as the paper compares systems: (a) the base model without retrieval,
(b) RAG with the base model and base retriever, (c) the generator fine-tuned with the retriever frozen,
(d) JMLR. Same prompts and option scoring as the app (Pipeline.choose -> Generator.score_options),
same passage order as training (best passage last).

Reported per system: accuracy with a 95% Wilson interval, recall@1/@5/@20 of the gold passage, and
both again for the test questions on documents seen and unseen in training; per pair of systems, the paired
difference (trainer.paired: exact McNemar p and a paired bootstrap interval).
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from assistant.choice import choice_query, context_order
from assistant.config import Settings
from assistant.records import Evidence

from .baselines import baseline_accuracies
from .config import TrainConfig
from .paired import RESAMPLES, paired_comparisons, paired_table
from .progress import ProgressLog
from .qa import QARecord, holds_gold, load_records, subset

log = logging.getLogger(__name__)

SYSTEMS = {
    "base": "(a) base model, no retrieval",
    "rag": "(b) RAG: base model + base retriever",
    "frozen": "(c) fine-tuned generator, frozen retriever",
    "jmlr": "(d) JMLR: joint generator + retriever",
}
RECALL_AT = (1, 5, 20)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible at small n and near 0 or 1)."""
    if total == 0:
        return (math.nan, math.nan)
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def is_gold(item: Evidence, record: QARecord) -> bool:
    """Same file, same physical page (when the record gives one), and the passage holds the gold span."""
    return holds_gold(record, item.file, item.page, item.text)


def gold_rank(evidence: list[Evidence], record: QARecord) -> int | None:
    """1-based rank of the first gold passage among the retrieved ones, None when none is gold."""
    return next((rank for rank, item in enumerate(evidence, 1) if is_gold(item, record)), None)


@dataclass
class Prediction:
    id: str
    part: str
    answer: str
    chosen: str
    correct: bool
    gold_rank: int | None  # None: not retrieved in the top 20 (or no retrieval)
    scores: dict[str, float]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Prediction:
        """A prediction from a logged row (predictions.jsonl, progress.jsonl), which carries other keys too."""
        return cls(**{field.name: row[field.name] for field in fields(cls)})


def summarize(predictions: list[Prediction], retrieval: bool, scored: bool = True) -> dict[str, Any]:
    """Accuracy, CI, recall and the gold passage's mean reciprocal rank for a list of predictions, and the same
    per test part (seen / unseen)."""
    def figures(items: list[Prediction]) -> dict[str, Any]:
        right = sum(p.correct for p in items)
        low, high = wilson(right, len(items)) if scored else (None, None)
        result: dict[str, Any] = {"n": len(items), "accuracy": right / len(items) if items and scored else None,
                                  "ci95": [low, high]}
        for k in RECALL_AT:
            result[f"recall@{k}"] = (sum(p.gold_rank is not None and p.gold_rank <= k for p in items) / len(items)
                                     if items and retrieval else None)
        result["mrr"] = mean_reciprocal_rank(items) if items and retrieval else None
        return result

    summary = figures(predictions)
    for part in sorted({p.part for p in predictions if p.part}):
        summary[part] = figures([p for p in predictions if p.part == part])
    return summary


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------

def predict(generator: Any | None, retriever: Any | None, records: list[QARecord], k_context: int, desc: str,
            choice_format: str, done: dict[str, Prediction] | None = None,
            on_prediction: Callable[[Prediction], None] | None = None) -> list[Prediction]:
    """Option scoring for every question: with the top-k passages (best last) or without retrieval.
    Without a generator only retrieval is measured (chosen is empty). Questions in `done` (from an earlier,
    stopped run) are taken as they are; each new prediction is passed to `on_prediction` as it is made."""
    predictions = []
    for record in tqdm(records, desc=desc, unit="q"):
        if done and record.id in done:
            predictions.append(done[record.id])
            continue
        evidence: list[Evidence] = []
        rank = None
        if retriever is not None:
            found = retriever.search(choice_query(record.question, record.options), max(RECALL_AT))
            rank = gold_rank(found, record)
            evidence = context_order(found[:k_context])
        chosen, scores = (generator.score_options(record.question, record.options, evidence, choice_format)
                          if generator else ("", {}))
        prediction = Prediction(id=record.id, part=record.part, answer=record.answer, chosen=chosen,
                                correct=chosen == record.answer, gold_rank=rank, scores=scores)
        predictions.append(prediction)
        if on_prediction is not None:
            on_prediction(prediction)
    return predictions


def score_with_models(model: Any | None, tokenizer: Any, query_encoder: Any, store: Any, records: list[QARecord],
                      k_context: int, choice_format: str) -> dict[str, float]:
    """Accuracy, gold recall@5 and the gold passage's mean reciprocal rank of in-memory models (the trainer's dev
    check), through the same scoring path. Without a model, retrieval alone: cheap enough for every dev
    question, and the reciprocal rank moves when a gold passage changes place, recall@5 only at rank 5."""
    from assistant.generator import Generator, LoadedGenerator
    from assistant.retriever import Retriever

    generator = None
    if model is not None:
        model.eval()
        generator = Generator(LoadedGenerator(model=model, tokenizer=tokenizer, info={}))
    predictions = predict(generator, Retriever(query_encoder, store), records, k_context,
                          "Dev accuracy" if generator else "Dev retrieval", choice_format)
    figures = summarize(predictions, retrieval=True, scored=generator is not None)
    return {"accuracy": figures["accuracy"], "recall@5": figures["recall@5"], "mrr": figures["mrr"]}


def mean_reciprocal_rank(predictions: list[Prediction]) -> float:
    """Mean of 1/rank of the gold passage, 0 where it is not in the top max(RECALL_AT)."""
    return sum(1.0 / p.gold_rank for p in predictions if p.gold_rank) / len(predictions) if predictions else math.nan


def system_settings(cfg: TrainConfig, checkpoint: str, precision: str) -> Settings:
    """The app's settings for one system: the training store, the checkpoint (if any) by path."""
    return cfg.assistant_settings(checkpoint=checkpoint, precision=precision)


def load_system(settings: Settings) -> Any:
    """The app's own assembly (assistant.service.build_assistant): what a user would run."""
    from assistant.service import build_assistant

    from .index import ensure_index

    assistant = build_assistant(settings, writer=None)  # reads only while a training run writes the same folder
    ensure_index(assistant.settings, assistant.passage_encoder, assistant.store)
    return assistant


def evaluation_setup(cfg: TrainConfig, test_file: str, checkpoint: str, precision: str, recall_only: bool) -> str:
    """What a system's predictions depend on, as a short fingerprint: a resumed evaluation reuses only the
    predictions made under the same one (the same config, test file, precision and checkpoint contents)."""
    manifest = Path(checkpoint) / "checkpoint.json"
    contents = hashlib.sha256(manifest.read_bytes()).hexdigest() if checkpoint and manifest.is_file() else ""
    identity = {"config": cfg.as_dict(), "test_file": str(test_file), "checkpoint": checkpoint, "manifest": contents,
                "precision": precision, "recall_only": recall_only}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def evaluate(cfg: TrainConfig, test_file: str, checkpoints: dict[str, str], out_dir: Path, limit: int = 0,
             precision: str = "", systems: list[str] | None = None, command: str = "",
             recall_only: bool = False, resume: bool = False) -> dict[str, Any]:
    """Evaluate the systems and write report.md, results.json and predictions.jsonl to out_dir.

    recall_only: measure retrieval alone, without loading a generator (minutes instead of hours on a
    CPU); accuracy is then not reported, and system (a), which has no retrieval, is skipped.
    resume: keep the predictions an earlier, stopped run logged in out_dir/progress.jsonl under the same
    setup and score only the rest (each prediction is logged as it is made; without resume the log starts
    afresh)."""
    started = time.perf_counter()
    records = subset(load_records(test_file), limit, cfg.seed)
    precision = precision or _training_precision(cfg)
    wanted = systems or [name for name in SYSTEMS if name in ("base", "rag") or checkpoints.get(name)]
    if recall_only:
        wanted = [name for name in wanted if name != "base"]
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = ProgressLog(out_dir / "progress.jsonl", ("system", "setup", "id"), resume)
    results: dict[str, Any] = {}
    all_predictions: dict[str, list[Prediction]] = {}
    seconds: dict[str, float] = {}
    carried: dict[str, int] = {}
    base_assistant = None
    for name in wanted:
        if name not in SYSTEMS:
            raise ValueError(f"Unknown system {name!r}; choose from {', '.join(SYSTEMS)}.")
        checkpoint = checkpoints.get(name, "") if name in ("frozen", "jmlr") else ""
        if name in ("frozen", "jmlr") and not checkpoint:
            raise ValueError(f"System {name} needs a checkpoint (--{name} PATH).")
        begun = time.perf_counter()
        setup = evaluation_setup(cfg, test_file, checkpoint, precision, recall_only)
        logged = [row for row in progress.rows.values() if row["system"] == name and row["setup"] == setup]
        done = {row["id"]: Prediction.from_row(row) for row in logged}
        carried[name] = sum(record.id in done for record in records)
        generator = retriever = None
        layout = next((row["choice_format"] for row in logged), "")
        if carried[name] < len(records):  # something is left to score: load the system as the app does
            if name in ("base", "rag"):
                base_assistant = base_assistant or load_system(system_settings(cfg, "", precision))
                assistant = base_assistant
            else:
                assistant = load_system(system_settings(cfg, checkpoint, precision))
            generator = None if recall_only else assistant.answerer.generator
            retriever = None if name == "base" else assistant.retriever()
            layout = assistant.settings.choice_format  # a checkpoint's own layout

        def log_row(prediction: Prediction, name: str = name, setup: str = setup, layout: str = layout) -> None:
            progress.add({"system": name, "setup": setup, "choice_format": layout, **asdict(prediction)})

        predictions = predict(generator, retriever, records, cfg.k_context, SYSTEMS[name], layout, done, log_row)
        all_predictions[name] = predictions
        results[name] = {"system": SYSTEMS[name], "checkpoint": checkpoint, "choice_format": layout,
                         **summarize(predictions, name != "base", scored=not recall_only)}
        if training := training_record(checkpoint):
            results[name]["training"] = training
        seconds[name] = round(time.perf_counter() - begun, 1)
        log.info("%s: accuracy %s, recall@5 %s", SYSTEMS[name], results[name]["accuracy"], results[name]["recall@5"])
        del generator
    meta = {"test_file": str(test_file), "questions": len(records), "limit": limit, "recall_only": recall_only,
            "baselines": baseline_accuracies([asdict(record) for record in records]),
            "precision": "none (recall only)" if recall_only else precision,
            "k_context": cfg.k_context, "seconds_per_system": seconds, "carried_over": carried,
            "wall_seconds": round(time.perf_counter() - started, 1), "command": command,
            "config": cfg.as_dict()}
    write_report(out_dir, results, meta, all_predictions)
    return {"results": results, "meta": meta}


def _training_precision(cfg: TrainConfig) -> str:
    from .model_setup import training_precision

    return training_precision(cfg.precision)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _pct(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def _row(name: str, figures: dict[str, Any]) -> str:
    low, high = figures["ci95"]
    interval = "n/a" if low is None else f"{_pct(low)}–{_pct(high)}"
    recalls = " | ".join(_pct(figures[f"recall@{k}"]) for k in RECALL_AT)
    mrr = "n/a" if figures.get("mrr") is None else f"{figures['mrr']:.3f}"
    return (f"| {SYSTEMS.get(name, name)} | {figures['n']} | {_pct(figures['accuracy'])} | {interval} | {recalls} "
            f"| {mrr} |")


def markdown_table(results: dict[str, Any]) -> str:
    """The paper-style table: all test questions, then each test part (seen / unseen documents)."""
    head = ("| system | n | accuracy % | 95% CI | recall@1 % | recall@5 % | recall@20 % | gold MRR |\n"
            "|---|---|---|---|---|---|---|---|")
    blocks = ["All test questions\n\n" + head + "\n" + "\n".join(_row(n, f) for n, f in results.items())]
    parts = sorted({key for figures in results.values() for key in figures if key in ("seen", "unseen")})
    for part in parts:
        rows = [_row(n, f[part]) for n, f in results.items() if part in f]
        blocks.append(f"Questions on documents {part} in training\n\n" + head + "\n" + "\n".join(rows))
    return "\n\n".join(blocks)


def baselines_line(baselines: dict[str, float]) -> str:
    """The trivial baselines on the same questions: what choosing by the options' form alone scores."""
    return ("Trivial baselines on the same questions (no model, no evidence): "
            + ", ".join(f"{name} {100 * value:.1f}%" for name, value in baselines.items()) + ".")


def write_report(out_dir: Path, results: dict[str, Any], meta: dict[str, Any],
                 predictions: dict[str, list[Prediction]]) -> None:
    paired = paired_comparisons({name: {item.id: item.correct for item in items}
                                 for name, items in predictions.items() if results[name]["accuracy"] is not None},
                                {item.id: item.part for items in predictions.values() for item in items})
    (out_dir / "results.json").write_text(json.dumps({**results, "_paired": paired, "_meta": meta}, indent=2,
                                                     default=str))
    with (out_dir / "predictions.jsonl").open("w") as handle:
        for name, items in predictions.items():
            for item in items:
                handle.write(json.dumps({"system": name, **asdict(item)}) + "\n")
    text = ["# Evaluation", "", markdown_table(results), "",
            f"Test file: `{meta['test_file']}`, {meta['questions']} questions"
            + (" (a seeded random subset)" if meta["limit"] else "")
            + f"; generator precision {meta['precision']}; multiple-choice layout {_layouts(results)}; "
            f"{meta['k_context']} passages in context; wall time {meta['wall_seconds']:.0f} s "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in meta['seconds_per_system'].items())})"
            + _carried_note(meta.get("carried_over", {})) + ".", "",
            "Recall@k: share of questions whose gold passage (same file and page, containing the gold span) is "
            "among the top k retrieved. Accuracy interval: 95% Wilson.", ""]
    if meta.get("baselines"):
        text += [baselines_line(meta["baselines"]), ""]
    if paired:
        text += ["## Paired differences", "", paired_table(paired, SYSTEMS), "",
                 "Each pair on the questions both answered: a - b in accuracy points, a 95% interval from "
                 f"{RESAMPLES} paired bootstrap resamples of the questions, and the exact McNemar p on the questions "
                 "only one of the two got right.", ""]
    if meta.get("command"):
        text += ["Command:", "", f"    {meta['command']}", ""]
    text += training_section(out_dir, results)
    (out_dir / "report.md").write_text("\n".join(text))
    _plot(out_dir, results)
    log.info("Report written to %s", out_dir)


def _carried_note(carried: dict[str, int]) -> str:
    """A resumed evaluation's wall time covers only the questions it scored itself: say how many it took over."""
    taken = {name: count for name, count in carried.items() if count}
    if not taken:
        return ""
    return ("; predictions carried over from an earlier, stopped run of the same setup: "
            + ", ".join(f"{name} {count}" for name, count in taken.items()))


def _layouts(results: dict[str, Any]) -> str:
    """The systems' multiple-choice layouts (assistant.choice); reports from before the setting were listed."""
    layouts = {name: entry.get("choice_format", "listed") for name, entry in results.items()}
    if len(set(layouts.values())) == 1:
        return next(iter(layouts.values()), "")
    return ", ".join(f"{SYSTEMS[name]}: {layout}" for name, layout in layouts.items())


TRAINING_FACTS = ("step", "examples_seen", "elapsed_seconds", "process_cpu_seconds", "device", "processes", "precision")


def training_record(checkpoint: str) -> dict[str, Any] | None:
    """What a checkpoint's training cost and its curve (checkpoint.json, metrics.csv), copied into results.json:
    checkpoints live outside git, and a report merged after one is deleted still has its training."""
    folder = Path(checkpoint) if checkpoint else None
    if folder is None or not (folder / "checkpoint.json").is_file():
        return None
    info = json.loads((folder / "checkpoint.json").read_text())
    record: dict[str, Any] = {key: info.get(key) for key in TRAINING_FACTS}
    record["curve"] = []
    if (folder / "metrics.csv").is_file():
        with (folder / "metrics.csv").open() as handle:
            record["curve"] = [row for row in csv.DictReader(handle) if row.get("loss")]
    return record


def training_section(out_dir: Path, results: dict[str, Any]) -> list[str]:
    """What training the fine-tuned systems cost and their curves (plotted to training_curves.png), from the
    record results.json carries, or for older reports from the checkpoint folder while it exists."""
    trained = {name: entry for name, entry in results.items() if entry.get("checkpoint")}
    if not trained:
        return []
    rows = ["| system | steps | questions seen | training wall time | CPU time of the last process (a resumed run: "
            "its last part) | device x processes | "
            "precision |", "|---|---|---|---|---|---|---|"]
    curves: dict[str, list[dict[str, str]]] = {}
    for name, entry in trained.items():
        info = entry.get("training") or training_record(entry["checkpoint"])
        if info is None:
            rows.append(f"| {SYSTEMS[name]} | not recorded: its checkpoint `{entry['checkpoint']}` is no longer on "
                        "disk, and its evaluation predates the record in results.json | | | | | |")
            continue
        cpu = info.get("process_cpu_seconds")
        rows.append(f"| {SYSTEMS[name]} | {info.get('step')} | {info.get('examples_seen')} | "
                    f"{(info.get('elapsed_seconds') or 0) / 3600:.2f} h | "
                    f"{f'{cpu / 3600:.2f} CPU h' if cpu else 'not recorded'} | "
                    f"{info.get('device') or '?'} x {info.get('processes') or 1} | {info.get('precision')} |")
        if info.get("curve"):
            curves[name] = info["curve"]
    _plot_training(out_dir, curves)
    lines = ["## Training", "", *rows, ""]
    if curves:
        lines += ["Curves: `training_curves.png` (generator loss, retriever loss and retriever accuracy per step, "
                  "from each checkpoint's metrics.csv).", ""]
    return lines


def _plot_training(out_dir: Path, curves: dict[str, list[dict[str, str]]]) -> None:
    plt = _pyplot()
    if plt is None or not curves:
        return
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for name, rows in curves.items():
        steps = [int(row["step"]) for row in rows]
        for axis, key in zip(axes, ("gen_loss", "ret_loss", "retriever_acc")):
            values = [float(row[key]) if row.get(key) not in (None, "", "nan") else math.nan for row in rows]
            if not all(math.isnan(v) for v in values):
                axis.plot(steps, values, label=SYSTEMS[name].split(" ")[0], linewidth=1)
    for axis, title in zip(axes, ("generator loss", "retriever loss", "retriever accuracy (step)")):
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out_dir / "training_curves.png", dpi=110)
    plt.close(figure)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no plots (the tables and results.json hold every figure)")
        return None
    return plt


def merge_reports(inputs: list[Path], out_dir: Path) -> dict[str, Any]:
    """One report from several evaluation folders (systems evaluated in separate processes, e.g. while
    another model was still training). Later folders win for a system evaluated twice."""
    results: dict[str, Any] = {}
    predictions: dict[str, list[Prediction]] = {}
    metas = []
    for folder in inputs:
        data = json.loads((folder / "results.json").read_text())
        metas.append(data.pop("_meta"))
        data.pop("_paired", None)  # recomputed over the merged systems
        results.update(data)
        logged = folder / "predictions.jsonl"  # a folder may lack it: then its saved figures stand as they are
        for line in logged.read_text().splitlines() if logged.exists() else []:
            item = json.loads(line)
            if item["system"] in data:
                predictions.setdefault(item["system"], []).append(Prediction.from_row(item))
    questions = {meta["questions"] for meta in metas}
    if len(questions) != 1 or len({meta["test_file"] for meta in metas}) != 1:
        raise ValueError("The reports were made on different question sets; they cannot share one table.")
    meta = {**metas[0], "seconds_per_system": {k: v for m in metas for k, v in m["seconds_per_system"].items()},
            "carried_over": {k: v for m in metas for k, v in m.get("carried_over", {}).items()},
            "wall_seconds": sum(m["wall_seconds"] for m in metas), "merged_from": [str(f) for f in inputs],
            "command": " ; ".join(m["command"] for m in metas if m.get("command"))}
    ordered = {name: results[name] for name in SYSTEMS if name in results}
    for name, figures in ordered.items():  # recomputed from the predictions: folders written before a figure existed
        if predictions.get(name):  # a folder without its predictions keeps the figures it saved
            figures.update(summarize(predictions[name], retrieval=figures["recall@5"] is not None,
                                     scored=figures["accuracy"] is not None))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(out_dir, ordered, meta, {name: predictions.get(name, []) for name in ordered})
    return {"results": ordered, "meta": meta}


def _plot(out_dir: Path, results: dict[str, Any]) -> None:
    plt = _pyplot()
    if plt is None:
        return
    names = list(results)
    figure, axis = plt.subplots(figsize=(7, 3.5))
    width = 0.2
    for offset, key in enumerate(["accuracy", "recall@1", "recall@5", "recall@20"]):
        values = [results[n][key] or 0.0 for n in names]
        axis.bar([i + offset * width for i in range(len(names))], values, width, label=key)
    axis.set_xticks([i + 1.5 * width for i in range(len(names))], [SYSTEMS[n].split(" ")[0] for n in names])
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out_dir / "accuracy_recall.png", dpi=120)
    plt.close(figure)


def command_line() -> str:
    return " ".join(["python -m trainer"] + sys.argv[1:])
