"""Are the assistant's own words right, or silent? Each question asked as a clinician asks it.

    .venv/bin/python bench/answers.py --models balanced,fast --limit 60 --real-limit 40

Each question's stem (no options) goes through the app's answer path (`Answerer.ask`, top 5 passages); the
summary the user is shown (`Answer.summary`: the sentences that passed the support check) is judged
against the options:
- states the right option: its distinctive figures (assistant.figures, so "0.5 mg" = "500 micrograms")
  all appear, and at least 60% of its distinctive words (stems of words no other option has); or, as the
  acceptance check counts, the option's words or the question's key phrase appear verbatim;
- states a wrong option: the same test for any other option, and not the right one;
- silent: no sentence survived (the verbatim wording stands alone).
`--resume --recheck` judges the summaries a logged run wrote under the current checks (support, and whether a
passage sentence behind them speaks of what the question asks), retrieving again without asking the model.
Sets: the test split (guidelines/qa/test.jsonl over the sample library) and the real-guideline questions
(bench/data/realworld.jsonl over the real PDFs of ../shared/realworld, when present). Time to first token
of the summary (5 passages) per answer. Each generator runs in its own process.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
from pathlib import Path
from typing import Any

from trainer.progress import ProgressLog

import benchlib
from benchlib import REALWORLD_PDFS, ROOT, markdown_table, percentile

log = logging.getLogger("bench.answers")
_WORD = re.compile(r"[a-z][a-z0-9-]{2,}")
_COMMON = set("the and for with from that this than into over under per are was were not any all its".split())


def words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9.]+", " ", text.lower()).strip() + " "


def stems(text: str) -> set[str]:
    return {w[:6] for w in _WORD.findall(text.lower()) if w not in _COMMON}


def states(option: str, others: list[str], summary: str) -> bool:
    """The summary states this option's content: its own figures, and most of the words only it has."""
    from assistant.figures import figure_supported, figures

    if words(option) in words(summary):
        return True
    mine, theirs = figures(option), set().union(*(figures(o) for o in others)) if others else set()
    distinct_figures = mine - theirs
    said = figures(summary)
    if any(not figure_supported(f, said) for f in distinct_figures):
        return False
    distinct_words = stems(option) - set().union(*(stems(o) for o in others)) if others else stems(option)
    if not distinct_words:
        return bool(distinct_figures)
    return len(distinct_words & stems(summary)) >= 0.6 * len(distinct_words)


def judge(record: dict[str, Any], summary: str) -> str:
    """right | wrong | silent | other (a summary that states no option)."""
    if not summary.strip():
        return "silent"
    options = record["options"]
    right = options[record["answer"]]
    wrong = [text for letter, text in options.items() if letter != record["answer"]]
    key = record.get("key") or ""
    if states(right, wrong, summary) or (key and words(key) in words(summary)):
        return "right"
    if any(states(text, [o for o in options.values() if o != text], summary) for text in wrong):
        return "wrong"
    return "other"


def recheck(answerer: Any, record: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The logged summary judged again under the current checks: retrieval runs again, the model does not (it
    would write the same words: decoding is greedy). Only the verdicts on the sentences it wrote change."""
    from assistant.answering import shown_summary
    from assistant.questions import clean_question

    question = clean_question(record["question"], answerer.settings.max_question_chars)
    _, found, _ = answerer.retrieve(question, [], 5)
    check, _ = answerer.sentence_checker(question, [item for item in found.evidence if not item.withheld])
    checks = [check(logged["sentence"]) for logged in row["checks"]]
    return {**row, "summary": shown_summary(checks), "dropped": sum(not c.supported for c in checks),
            "checks": [c.as_dict() for c in checks], "rechecked": True}


def ask_all(answerer: Any, records: list[dict[str, Any]], label: str,
            progress: ProgressLog, rechecking: bool = False) -> list[dict[str, Any]]:
    """Ask each question not already in `progress`; each row is logged there as it finishes. `rechecking`:
    logged rows are judged under the current checks (`recheck`)."""
    for index, record in enumerate(records):
        if progress.done((label, record["id"])):
            if rechecking:
                progress.rows[(label, record["id"])] = recheck(answerer, record, progress.rows[(label, record["id"])])
            continue
        answer = answerer.ask(record["question"], top_k=5)
        progress.add({"id": record["id"], "set": label, "verdict": judge(record, answer.summary),
                      "summary": answer.summary, "covered": answer.covered,
                      "first_token_s": answer.timings.get("first_token_s"),
                      "dropped": sum(not c["supported"] for c in answer.summary_checks),
                      "checks": answer.summary_checks})
        if index % 10 == 0:
            log.info("%s %s: %d/%d", answerer.generator.info.get("generator"), label, index + 1, len(records))
    # Judged again on every run: a resumed row meets the current options and judge, not the ones it was asked under.
    return [{**row, "verdict": judge(record, row["summary"])}
            for record in records for row in [progress.rows[(label, record["id"])]]]


def records_of(path: Path, limit: int) -> list[dict[str, Any]]:
    """All questions, or `limit` of them evenly spaced (the files hold a guideline's questions together)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not limit or limit >= len(rows):
        return rows
    return [rows[i * len(rows) // limit] for i in range(limit)]


def worker(name: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    from assistant.config import load_settings
    from assistant.service import build_assistant

    settings = load_settings(env={}, config_file=None, data_dir=data_dir, index_samples_on_start=False,
                             generator_model=name, model_cache=str(ROOT / ".cache" / "models"))
    assistant = build_assistant(settings)
    for pdf in sorted((ROOT / "guidelines").glob("*.pdf")):
        assistant.library.add_path(pdf)
    progress = ProgressLog(ROOT / ".cache" / f"answers-{name}.progress.jsonl", ("set", "id"), args.resume)
    rows = ask_all(assistant.answerer, records_of(ROOT / "guidelines/qa/test.jsonl", args.limit), "test", progress,
                   args.recheck)
    real = records_of(ROOT / "bench/data/realworld.jsonl", args.real_limit) if REALWORLD_PDFS.is_dir() else []
    for file in sorted({r["evidence"]["file"] for r in real}):
        assistant.library.add_path(REALWORLD_PDFS / file)
    rows += ask_all(assistant.answerer, real, "real", progress, args.recheck)
    return {"model": name, "title": assistant.answerer.generator.info.get("generator"), "rows": rows}


def report(results: list[dict[str, Any]], before: str, after: str) -> str:
    from trainer.evaluate import wilson

    table = []
    for result in results:
        for label in ("test", "real"):
            rows = [r for r in result["rows"] if r["set"] == label]
            if not rows:
                continue
            n = len(rows)
            count = {v: sum(r["verdict"] == v for r in rows) for v in ("right", "wrong", "silent", "other")}
            low, high = wilson(count["right"], n)
            wlow, whigh = wilson(count["wrong"], n)
            ttft = [r["first_token_s"] for r in rows if r["first_token_s"]]
            table.append([f"`{result['model']}` {result['title']}", label, n,
                          f"{100 * count['right'] / n:.1f}% ({100 * low:.0f}-{100 * high:.0f})",
                          f"{100 * count['wrong'] / n:.1f}% ({100 * wlow:.0f}-{100 * whigh:.0f})",
                          f"{100 * count['silent'] / n:.1f}%", f"{100 * count['other'] / n:.1f}%",
                          f"{sum(r['dropped'] for r in rows)}",
                          f"{statistics.median(ttft):.2f} / {percentile(ttft, 95):.2f}" if ttft else "-"])
    header = ["generator", "set", "n", "states right option", "states a wrong option", "silent", "states none",
              "sentences dropped", "first token p50 / p95 s"]
    rechecked = sum(bool(r.get("rechecked")) for result in results for r in result["rows"])
    origin = (f" {rechecked} summaries were written by the model in the logged run and judged here under the "
              "current checks (`--recheck`): retrieval ran again, the model did not; the first-token times are "
              "those of the logged run." if rechecked else "")
    return ("## The assistant's own words, judged (bench/answers.py)\n\n"
            f"{benchlib.machine_description()}; {benchlib.load_note(before, after)} Command: "
            f"`{benchlib.command_line()}`.{origin}\n\n" + markdown_table(header, table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="balanced", help="comma-separated presets or packaged keys")
    parser.add_argument("--limit", type=int, default=0, help="N test-split questions, evenly spaced (0 = all)")
    parser.add_argument("--real-limit", type=int, default=0, help="N real-guideline questions, evenly spaced (0 = all)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows a stopped run of the same code logged in .cache/ and ask only the rest")
    parser.add_argument("--recheck", action="store_true",
                        help="with --resume: judge the logged summaries under the current checks without asking the "
                             "model again (retrieval runs again); the log keeps what the model wrote")
    benchlib.add_worker_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if benchlib.serve_worker(args, lambda name, data: worker(name, args, data)):
        return
    before = benchlib.load_average()
    extra = ["--limit", str(args.limit), "--real-limit", str(args.real_limit)] + (["--resume"] if args.resume else []) \
        + (["--recheck"] if args.recheck else [])
    results = benchlib.run_workers(__file__, args.models.split(","), extra, "answers")
    text = report(results, before, benchlib.load_average())
    print(text)
    if not args.no_write:
        benchlib.replace_section("answers", text)


if __name__ == "__main__":
    main()
