"""Which generator should answer? Every packaged candidate, side by side on this CPU.

    .venv/bin/python bench/generators.py                        # fast, balanced (and quality if installed)
    .venv/bin/python bench/generators.py --models fast --limit 20 --no-write

Per model, in a fresh process (load time and memory are its own):
- multiple-choice accuracy on the test split (guidelines/qa/test.jsonl), options scored as the app's
  multiple-choice mode scores them (`Generator.score_options`), in each layout of `--formats` (`cloze`:
  the option's text read as the answer; `listed`: lettered options in the prompt): with no evidence, with
  the gold passage only (the chunk of the guideline that holds the question's evidence span), and with the
  top-5 passages our retriever finds for the question (as `Answerer.choose`, best passage last); 95% Wilson
  intervals and the exact McNemar p of retrieved minus none; beside them, what copying from the retrieved
  passages scores without a model (the option whose words they hold the largest share of);
- time to first token and decode tokens/s of `Generator.stream` on answer prompts with 5 passages
  (the app's own prompt), load time from the converted cache, and peak RSS.
The default must be one where retrieval clearly helps: the retrieved condition's lower 95% bound above the
no-evidence accuracy.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from trainer.paired import mcnemar_p
from trainer.progress import ProgressLog

import benchlib
from benchlib import ROOT, markdown_table, percentile

log = logging.getLogger("bench.generators")

MODELS = ("fast", "balanced", "quality")
TIMING_PROMPTS = 5
EVIDENCE_PASSAGES = 5


def gold_passage(library: Any, record: dict[str, Any]) -> list[Any]:
    """The chunk of the evidence page that holds the evidence span (the span itself if none holds it whole)."""
    from assistant.records import Evidence
    from trainer.qa import holds_gold, parse_record

    evidence, gold = record["evidence"], parse_record(record, record["id"])
    chunks = [c for info in library.documents() if info.file_name == evidence["file"]
              for c in library.store.chunks_of(info.doc_id)]
    best = next((c for c in chunks if holds_gold(gold, c.file_name, c.page, c.text)), None)
    text = best.text if best else evidence["span"]
    return [Evidence(1, "", evidence["file"], "", int(evidence["page"]), str(evidence["page"]), "", 1.0, text)]


def worker(name: str, limit: int, resume: bool, formats: list[str], data_dir: Path) -> dict[str, Any]:
    """One model: load it, score every question three ways in each multiple-choice layout, time the answer
    prompts."""
    from assistant.answering import Answerer
    from assistant.config import load_settings
    from assistant.generator import Generator
    from assistant.prompts import answer_messages
    from assistant.service import build_assistant
    from trainer.baselines import evidence_overlap_choice

    settings = load_settings(env={}, config_file=None, data_dir=data_dir, index_samples_on_start=False,
                             generator_model=name, model_cache=str(ROOT / ".cache" / "models"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    generator = Generator.load(settings)
    load_s = time.perf_counter() - started
    assistant = build_assistant(settings, generator=generator)
    for pdf in sorted((ROOT / "guidelines").glob("*.pdf")):
        assistant.library.add_path(pdf)
    answerer: Answerer = assistant.answerer
    records = [json.loads(line) for line in (ROOT / "guidelines" / "qa" / "test.jsonl").read_text().splitlines()
               if line.strip()][:limit or None]
    rows: dict[str, list[dict[str, Any]]] = {}
    for choice_format in formats:
        progress = ProgressLog(ROOT / ".cache" / f"generators-{name}.{choice_format}.progress.jsonl",
                                        ("id",), resume)
        for index, record in enumerate(records):
            if progress.done((record["id"],)):
                continue
            question, options = record["question"], record["options"]
            found = answerer.choice_evidence(question, options, EVIDENCE_PASSAGES)  # what Answerer.choose reads
            scored = {condition: generator.score_options(question, options, evidence, choice_format)[0]
                      for condition, evidence in (("none", []), ("gold", gold_passage(assistant.library, record)),
                                                  ("retrieved", found))}
            overlap = evidence_overlap_choice(options, " ".join(item.text for item in found))
            progress.add({"id": record["id"], "answer": record["answer"], **scored, "overlap": overlap})
            if index % 20 == 0:
                log.info("%s, %s: %d/%d", name, choice_format, index + 1, len(records))
        rows[choice_format] = [progress.rows[(record["id"],)] for record in records]
    timings = []
    for record in records[:TIMING_PROMPTS]:
        evidence = answerer.retrieve(record["question"], [], EVIDENCE_PASSAGES)[1].evidence
        messages = answer_messages(record["question"], evidence)
        began, first, pieces = time.perf_counter(), None, []
        for piece in generator.stream(messages, max_new_tokens=48):
            first = first or (time.perf_counter() - began if piece.strip() else None)
            pieces.append(piece)
        total = time.perf_counter() - began
        tokens = len(generator.tokenizer("".join(pieces), add_special_tokens=False)["input_ids"])
        timings.append({"first_token_s": first or total,
                        "tokens_per_s": tokens / max(total - (first or 0.0), 1e-6)})
    return {"model": name, "title": generator.info.get("generator"), "precision": generator.info.get("precision"),
            "load_s": load_s, "peak_rss_gib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 2**20,
            "rows": rows, "timings": timings}


def summarize(result: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    from trainer.evaluate import wilson

    n = len(rows)
    figures: dict[str, Any] = {"n": n}
    for condition in ("none", "gold", "retrieved"):
        right = sum(row[condition] == row["answer"] for row in rows)
        figures[condition] = (right / n, *wilson(right, n))
    only_rag = sum(r["retrieved"] == r["answer"] != r["none"] for r in rows)
    only_none = sum(r["none"] == r["answer"] != r["retrieved"] for r in rows)
    figures["p"] = mcnemar_p(only_rag, only_none)
    figures["helps"] = figures["retrieved"][1] > figures["none"][0]
    figures["ttft_p50"] = statistics.median(t["first_token_s"] for t in result["timings"])
    figures["ttft_p95"] = percentile([t["first_token_s"] for t in result["timings"]], 95)
    figures["decode"] = statistics.median(t["tokens_per_s"] for t in result["timings"])
    return figures


def report(results: list[dict[str, Any]], before: str, after: str) -> str:
    def cell(value: tuple[float, float, float]) -> str:
        return f"{100 * value[0]:.1f}% ({100 * value[1]:.0f}-{100 * value[2]:.0f})"

    rows = []
    for result in results:
        for choice_format, scored in result["rows"].items():
            f = summarize(result, scored)
            delta = 100 * (f["retrieved"][0] - f["none"][0])
            rows.append([f"`{result['model']}` {result['title']}", f"`{choice_format}`", f["n"], cell(f["none"]),
                         cell(f["gold"]), cell(f["retrieved"]), f"{delta:+.1f} (p={f['p']:.2g})",
                         "yes" if f["helps"] else "no", f"{f['ttft_p50']:.2f} / {f['ttft_p95']:.2f}",
                         f"{f['decode']:.1f}", f"{result['load_s']:.1f}", f"{result['peak_rss_gib']:.2f}"])
    header = ["generator", "layout", "n", "no evidence", "gold passage", "retrieved top-5",
              "retrieved - none (McNemar)",
              "RAG lower bound > none", "first token p50 / p95 s", "decode tok/s", "load s", "peak RSS GiB"]
    return ("## Generators side by side (bench/generators.py)\n\n"
            f"{benchlib.machine_description()}; {benchlib.load_note(before, after)} Precision: the app's `auto` "
            f"({results[0]['precision'] if results else '?'} on this CPU). Command: `{benchlib.command_line()}`.\n\n"
            + markdown_table(header, rows) + "\n\n" + _baselines(results))


def _baselines(results: list[dict[str, Any]]) -> str:
    """The trivial baselines on the questions the generators answered."""
    from trainer.baselines import baseline_accuracies
    from trainer.evaluate import baselines_line

    scored = [row for result in results for rows in result["rows"].values() for row in rows]
    asked = {row["id"] for row in scored}
    records = [json.loads(line) for line in (ROOT / "guidelines" / "qa" / "test.jsonl").read_text().splitlines()
               if line.strip()]
    overlap = {row["id"]: row["overlap"] == row["answer"] for row in scored if "overlap" in row}
    copying = (f" Without a model, the option whose words the retrieved top 5 hold the largest share of scores "
               f"{100 * sum(overlap.values()) / len(overlap):.1f}% (n={len(overlap)}): the bar for reading the "
               f"evidence rather than copying from it." if overlap else "")
    return baselines_line(baseline_accuracies([r for r in records if r["id"] in asked])) + copying


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="", help="comma-separated presets or packaged keys")
    parser.add_argument("--limit", type=int, default=0, help="first N test questions (0 = all)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    parser.add_argument("--formats", default="cloze,listed",
                        help="multiple-choice layouts scored side by side (assistant.choice): cloze, listed")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows a stopped run of the same code logged in .cache/ and score only the rest")
    benchlib.add_worker_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    formats = args.formats.split(",")
    if benchlib.serve_worker(args, lambda name, data: worker(name, args.limit, args.resume, formats, data)):
        return
    from assistant.packaged import GENERATORS, PRESETS, package_dir

    names = args.models.split(",") if args.models else [
        m for m in MODELS if package_dir(GENERATORS[PRESETS[m]].files[0][0]) is not None]
    before = benchlib.load_average()
    extra = ["--limit", str(args.limit), "--formats", args.formats] + (["--resume"] if args.resume else [])
    results = benchlib.run_workers(__file__, names, extra, "generators")
    text = report(results, before, benchlib.load_average())
    print(text)
    if not args.no_write:
        benchlib.replace_section("generators", text)


if __name__ == "__main__":
    main()
