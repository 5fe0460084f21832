"""Answer-generation benchmark: the default generator at each precision, and the peer.

    .venv/bin/python bench/answer.py                 # fp32, bf16, nf4, int8; writes RESULTS.md
    .venv/bin/python bench/answer.py --quick         # 2 prompts, 8 questions, 48 new tokens; prints only

Per precision, in a fresh process (so load time and memory are not muddied by the previous one):
- load time of the packaged SmolLM2-135M-Instruct from the converted safetensors cache (`load_generator`),
  model memory footprint (`get_memory_footprint()`) and peak RSS over the process's RSS before loading;
- time to first token and decode tokens/s of `Generator.stream` on prompts with 5 evidence passages
  (real chunks of a real guideline PDF, the top 5 by our retriever for each question);
- the peer in the same process: the same model folder through plain `transformers.pipeline("text-generation")`
  at the same precision, on the same prompt text, with the same decoding settings (greedy, same penalty);
- multiple-choice accuracy via `Generator.score_options` on questions from guidelines/qa/raw/*.jsonl with
  their evidence span as the only passage, and agreement of each precision's choices with fp32.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import benchlib
from benchlib import REALWORLD_PDFS, ROOT, markdown_table, percentile

log = logging.getLogger("bench.answer")

PRECISIONS = ("fp32", "bf16", "nf4", "int8")
GUIDELINE_PDF = "nice-hypertension-pregnancy-ng133-2023.pdf"
QUESTIONS_FILE = "hypertension-pregnancy.jsonl"
EVIDENCE_PASSAGES = 5
REPETITION_PENALTY = 1.1  # as Generator.stream
WORKER_TIMEOUT_S = 3600


# ---------------------------------------------------------------------------------------------
# Task preparation (parent process)
# ---------------------------------------------------------------------------------------------

def evidence_from(chunk: Any, number: int, score: float) -> Any:
    from assistant.records import Evidence

    return Evidence(number=number, doc_id=chunk.doc_id, file=chunk.file_name, title=chunk.title, page=chunk.page,
                    page_label=chunk.page_label, section=chunk.section, score=round(score, 4), text=chunk.text,
                    chunk_id=chunk.chunk_id)


def answer_prompts(count: int) -> list[dict[str, Any]]:
    """Questions on hypertension in pregnancy, each with the top-5 chunks of NICE NG133 by our retriever."""
    from assistant.config import load_settings
    from assistant.documents import embedding_text, parse_pdf
    from assistant.encoder import load_encoder
    from assistant.prompts import answer_messages

    path = REALWORLD_PDFS / GUIDELINE_PDF
    if not path.is_file():
        raise SystemExit(f"{path} is missing: the evidence passages come from ../shared/realworld/pdfs")
    encoder = load_encoder("packaged", "cpu")
    settings = load_settings(env={}, config_file=None, data_dir=Path(tempfile.gettempdir()) / "bench-answer")
    _, chunks = parse_pdf(path.read_bytes(), path.name, encoder, settings)
    vectors = encoder.encode([embedding_text(c) for c in chunks])
    rows = [json.loads(line) for line in (ROOT / "guidelines" / "qa" / "raw" / QUESTIONS_FILE).read_text().splitlines()
            if line.strip()]
    prompts = []
    for row in rows[:count]:
        scores = vectors @ encoder.encode([row["question"]])[0]
        best = np.argsort(-scores)[:EVIDENCE_PASSAGES]
        evidence = [evidence_from(chunks[i], n, float(scores[i])) for n, i in enumerate(best, 1)]
        prompts.append({"question": row["question"], "messages": answer_messages(row["question"], evidence)})
    return prompts


def choice_questions(count: int) -> list[dict[str, Any]]:
    """A fixed sample (seed 0) of the QA set: question, options, answer and the evidence span."""
    rows = []
    for path in sorted((ROOT / "guidelines" / "qa" / "raw").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("evidence") and r.get("options") and r.get("answer")]
    sample = random.Random(0).sample(rows, min(count, len(rows)))
    return [{key: r[key] for key in ("id", "file", "question", "options", "answer", "evidence")} for r in sample]


# ---------------------------------------------------------------------------------------------
# Worker (one precision, in its own process)
# ---------------------------------------------------------------------------------------------

def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


class TimingStreamer:
    """A generate() streamer that only records when each step's tokens arrive (the first put is the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens = 0

    def put(self, value: Any) -> None:
        self.times.append(time.perf_counter())
        if len(self.times) > 1:
            self.tokens += int(value.numel())

    def end(self) -> None:
        pass


@dataclass
class GenRun:
    ttft_s: float
    tokens: int
    decode_tokens_per_s: float
    total_s: float


def decode_rate(tokens: int, first: float, last: float) -> float:
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else float("nan")


def run_ours(generator: Any, messages: list[dict[str, str]], max_new_tokens: int) -> GenRun:
    """Generator.stream as the app calls it: TTFT is the first non-empty text piece the user would see."""
    model = generator.model
    original = model.generate
    seen: dict[str, Any] = {}

    def generate(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)
        seen["tokens"] = int(output.shape[-1] - kwargs["input_ids"].shape[-1])
        seen["end"] = time.perf_counter()
        return output

    model.generate = generate
    try:
        started, first = time.perf_counter(), None
        for piece in generator.stream(messages, max_new_tokens=max_new_tokens):
            if first is None and piece.strip():
                first = time.perf_counter()
        done = time.perf_counter()
    finally:
        del model.generate
    first = first or done
    tokens = seen.get("tokens", 0)
    return GenRun(first - started, tokens, decode_rate(tokens, first, seen.get("end", done)), done - started)


def run_peer(pipe: Any, prompt: str, max_new_tokens: int) -> GenRun:
    """The plain pipeline on the same prompt text; TTFT is when the first new token is produced."""
    streamer = TimingStreamer()
    started = time.perf_counter()
    pipe(prompt, max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=REPETITION_PENALTY,
         return_full_text=False, streamer=streamer)
    done = time.perf_counter()
    first = streamer.times[1] if len(streamer.times) > 1 else done
    return GenRun(first - started, streamer.tokens, decode_rate(streamer.tokens, first, streamer.times[-1]),
                  done - started)


def peer_pipeline(source: str, precision: str) -> Any:
    """What a user writes with plain transformers for the same folder and precision."""
    import torch
    from transformers import BitsAndBytesConfig, pipeline

    if precision == "nf4":
        kwargs = {"model_kwargs": {"quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)}}
    elif precision == "int8":
        kwargs = {"model_kwargs": {"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}}
    else:
        kwargs = {"dtype": torch.bfloat16 if precision == "bf16" else torch.float32}
    return pipeline("text-generation", model=source, device="cpu" if precision in ("fp32", "bf16") else None,
                    **kwargs)


def score_choices(generator: Any, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from assistant.records import Evidence

    results = []
    for q in questions:
        evidence = [Evidence(number=1, doc_id="", file=q["file"], title=q["file"], page=1, page_label="1",
                             section="", score=1.0, text=q["evidence"])]
        started = time.perf_counter()
        chosen, scores = generator.score_options(q["question"], q["options"], evidence)
        results.append({"id": q["id"], "chosen": chosen, "answer": q["answer"], "scores": scores,
                        "seconds": time.perf_counter() - started})
    return results


def worker(precision: str, task: dict[str, Any]) -> dict[str, Any]:
    """Everything measured for one precision. Runs in a process of its own."""
    import torch  # noqa: F401  imported before timing: the app has it loaded before the model
    import transformers  # noqa: F401

    from assistant.config import load_settings
    from assistant.generator import Generator, load_generator

    settings = load_settings(env={}, config_file=None, data_dir=Path(task["data_dir"]),
                             model_cache=task["model_cache"], precision=precision, device="cpu")
    before = rss_mb()
    started = time.perf_counter()
    loaded = load_generator(settings)
    load_s = time.perf_counter() - started
    generator = Generator(loaded)
    footprint_mb = loaded.model.get_memory_footprint() / 2**20
    generator.generate(task["prompts"][0]["messages"], max_new_tokens=4)  # warm-up, not counted
    ours = [asdict(run_ours(generator, p["messages"], task["max_new_tokens"])) for p in task["prompts"]]
    peak_mb = peak_rss_mb()
    choices = score_choices(generator, task["questions"])
    prompt_tokens = [len(loaded.tokenizer(generator.prompt(p["messages"]), add_special_tokens=False)["input_ids"])
                     for p in task["prompts"]]
    started = time.perf_counter()
    pipe = peer_pipeline(loaded.info["source"], precision)
    peer_load_s = time.perf_counter() - started
    run_peer(pipe, generator.prompt(task["prompts"][0]["messages"]), 4)  # warm-up
    peer = [asdict(run_peer(pipe, generator.prompt(p["messages"]), task["max_new_tokens"])) for p in task["prompts"]]
    return {"precision": precision, "load_s": load_s, "footprint_mb": footprint_mb,
            "rss_before_mb": before, "peak_rss_mb": peak_mb, "ours": ours, "peer": peer, "peer_load_s": peer_load_s,
            "choices": choices, "prompt_tokens": prompt_tokens, "info": loaded.info}


# ---------------------------------------------------------------------------------------------
# Parent: run the workers and report
# ---------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    precision: str
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def run_worker(precision: str, task_file: Path) -> Outcome:
    out_file = task_file.with_name(f"result-{precision}.json")
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", precision, "--task", str(task_file),
               "--out", str(out_file)]
    log.info("Measuring %s", precision)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return Outcome(precision, error=f"timed out after {WORKER_TIMEOUT_S} s")
    if done.returncode != 0 or not out_file.is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip() and "Warning" not in line]
        return Outcome(precision, error=" / ".join(lines[-3:])[-600:] or f"exit code {done.returncode}")
    return Outcome(precision, json.loads(out_file.read_text()))


def p50(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r[key] == r[key]]  # drop NaN
    return percentile(values, 50) if values else float("nan")


def accuracy(choices: list[dict[str, Any]]) -> float:
    return sum(c["chosen"] == c["answer"] for c in choices) / len(choices) if choices else float("nan")


def agreement(choices: list[dict[str, Any]], reference: list[dict[str, Any]]) -> float:
    chosen = {c["id"]: c["chosen"] for c in reference}
    return sum(chosen.get(c["id"]) == c["chosen"] for c in choices) / len(choices) if choices else float("nan")


def speed_rows(outcomes: list[Outcome]) -> list[list[Any]]:
    rows = []
    for o in outcomes:
        if o.error:
            rows.append([o.precision, "failed", "", "", "", "", "", "", "", ""])
            continue
        d = o.data
        rows.append([o.precision, f"{d['load_s']:.1f}", f"{p50(d['ours'], 'ttft_s'):.2f}",
                     f"{p50(d['ours'], 'decode_tokens_per_s'):.1f}", f"{p50(d['peer'], 'ttft_s'):.2f}",
                     f"{p50(d['peer'], 'decode_tokens_per_s'):.1f}", f"{d['peer_load_s']:.1f}",
                     f"{d['footprint_mb']:.0f}", f"{d['peak_rss_mb'] - d['rss_before_mb']:.0f}",
                     f"{statistics.mean(c['seconds'] for c in d['choices']):.2f}"])
    return rows


def quality_rows(outcomes: list[Outcome]) -> list[list[Any]]:
    reference = next((o.data["choices"] for o in outcomes if o.precision == "fp32" and not o.error), [])
    rows = []
    for o in outcomes:
        if o.error:
            continue
        choices = o.data["choices"]
        right = sum(c["chosen"] == c["answer"] for c in choices)
        rows.append([o.precision, f"{right}/{len(choices)} ({100 * accuracy(choices):.0f}%)",
                     f"{100 * agreement(choices, reference):.0f}%" if reference else "n/a"])
    return rows


def targets(outcomes: list[Outcome]) -> list[list[Any]]:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    rows = []
    for o in outcomes:
        if o.error:
            continue
        ttft, load = p50(o.data["ours"], "ttft_s"), o.data["load_s"]
        rows.append([f"TTFT p50 <= 1.5 s ({o.precision})", f"{ttft:.2f} s", verdict(ttft <= 1.5)])
        rows.append([f"load <= 5 s ({o.precision})", f"{load:.1f} s", verdict(load <= 5)])
        if o.precision == "nf4":
            size = o.data["footprint_mb"]
            megabytes = size * 2**20 / 1e6
            rows.append(["4-bit model <= 150 MB (get_memory_footprint)", f"{megabytes:.0f} MB ({size:.0f} MiB)",
                         verdict(megabytes <= 150)])
    return rows


def report(outcomes: list[Outcome], task: dict[str, Any], load_before: str, quick: bool) -> str:
    ok = [o for o in outcomes if not o.error]
    prompt_tokens = ok[0].data["prompt_tokens"] if ok else []
    lines = [
        "## Answer generation (bench/answer.py)" + (" — QUICK subset" if quick else ""),
        "",
        f"- Date: {benchlib.today()}",
        f"- Command: `{benchlib.command_line()}`",
        f"- Machine: {benchlib.machine_description()}",
        f"- {benchlib.load_note(load_before, benchlib.load_average())}",
        f"- Model: packaged SmolLM2-135M-Instruct, loaded by `load_generator` from the converted safetensors "
        f"cache (files in the page cache). {len(task['prompts'])} prompts: questions from "
        f"guidelines/qa/raw/{QUESTIONS_FILE}, each with the top {EVIDENCE_PASSAGES} chunks of {GUIDELINE_PDF} by "
        f"our retriever as evidence (prompt length {min(prompt_tokens, default=0)}-{max(prompt_tokens, default=0)} "
        f"tokens), greedy decoding, max {task['max_new_tokens']} new tokens, repetition penalty "
        f"{REPETITION_PENALTY}. Each precision runs in a fresh process.",
        "- Ours: `Generator.stream` (TTFT = first non-empty text piece). Peer: "
        "`transformers.pipeline('text-generation', model=<same folder>)` at the same precision, same prompt text "
        "and decoding settings (TTFT = first new token). Decode tokens/s excludes the first token.",
        "",
        markdown_table(["precision", "load s", "TTFT p50 s (ours)", "decode tok/s (ours)", "TTFT p50 s (peer)",
                        "decode tok/s (peer)", "peer load s", "model footprint MiB", "peak RSS delta MiB",
                        "s per MC question"], speed_rows(outcomes)),
        "",
        f"Multiple-choice quality at equal settings ({len(task['questions'])} questions sampled with seed 0 from "
        "guidelines/qa/raw/*.jsonl, the evidence span as the only passage, `Generator.score_options`; chance is "
        "25%):",
        "",
        markdown_table(["precision", "accuracy", "same choice as fp32"], quality_rows(outcomes)),
        "",
        markdown_table(["target", "figure", "verdict"], targets(outcomes)),
    ]
    failed = [o for o in outcomes if o.error]
    if failed:
        lines += ["", "Failed precisions: " + "; ".join(f"{o.precision}: {o.error}" for o in failed)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 prompts, 8 questions, 48 new tokens")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--prompts", type=int, default=None, help="answer prompts (default 5)")
    parser.add_argument("--questions", type=int, default=None, help="multiple-choice questions (default 40)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the app's 160")
    parser.add_argument("--model-cache", default=str(ROOT / ".cache" / "models"),
                        help="converted generator cache (default: the one the tests share)")
    parser.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--task", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker_main(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    task = json.loads(args.task.read_text())
    result = worker(args.worker, task)
    args.out.write_text(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    from assistant.packaged import convert_packaged_generator

    convert_packaged_generator(Path(args.model_cache))  # once, before any timing
    load_before = benchlib.load_average()
    workdir = Path(tempfile.mkdtemp(prefix="bench-answer-"))
    task = {"prompts": answer_prompts(args.prompts or (2 if args.quick else 5)),
            "questions": choice_questions(args.questions or (8 if args.quick else 40)),
            "max_new_tokens": args.max_new_tokens or (48 if args.quick else 160),
            "model_cache": args.model_cache, "data_dir": str(workdir / "data")}
    task_file = workdir / "task.json"
    task_file.write_text(json.dumps(task))
    outcomes = [run_worker(p.strip(), task_file) for p in args.precisions.split(",") if p.strip()]
    text = report(outcomes, task, load_before, args.quick)
    if not args.quick or args.write:
        benchlib.replace_section("answer", text)
        log.info("Results written to %s", benchlib.RESULTS)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
