"""Training-step benchmark: a JMLR joint step against a generator-only QLoRA step.

    .venv/bin/python bench/train.py                      # default config, 8 steps of each; writes RESULTS.md
    .venv/bin/python bench/train.py --steps 2 --no-write # a quick look

Both kinds of step run in one process on the same models, the same questions and the same candidates,
alternating (joint, generator-only, joint, ...) so that anything else the machine does hits both alike.
A step is what the trainer does per micro-batch: the loss (`trainer.jmlr.joint_step`), backward, and
here an optimizer step every time (the trainer steps once per `grad_accum` micro-batches; the optimizer
is a small part of the cost next to the models' passes). The generator-only step is the same call with
the retriever frozen (lambda 0): no utility passes, no retriever loss: the "separately trained" baseline
(system c) of the evaluation.
"""
from __future__ import annotations

import argparse
import logging
import resource
import statistics
import tempfile
import time

import benchlib
from benchlib import ROOT, markdown_table

log = logging.getLogger("bench.train")

TARGET_RATIO = 1.6


def timed_step(run, batch, cfg, sampler) -> dict[str, float]:
    """One micro-batch with an optimizer step; wall and process CPU seconds, and the utility share."""
    from trainer.jmlr import joint_step

    wall, cpu = time.perf_counter(), time.process_time()
    out = joint_step(run.models(), batch, cfg, sampler)
    run.accelerator.backward(out.loss)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "utility": out.utility_seconds,
            "examples": len(batch)}


def summarise(name: str, steps: list[dict[str, float]]) -> dict[str, float]:
    examples = sum(s["examples"] for s in steps)
    wall, cpu = sum(s["wall"] for s in steps), sum(s["cpu"] for s in steps)
    return {"name": name, "steps": len(steps), "examples": examples, "wall": wall, "cpu": cpu,
            "step_median": statistics.median(s["wall"] for s in steps), "examples_per_s": examples / wall,
            "utility_share": sum(s["utility"] for s in steps) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "trainer" / "configs" / "default.toml"))
    parser.add_argument("--steps", type=int, default=8,
                        help="timed micro-batches of each kind (after one warm-up each)")
    parser.add_argument("--batch-size", type=int, default=0, help="questions per micro-batch (default: the config's)")
    parser.add_argument("--data-dir", default=str(ROOT / "runs" / "bench-train" / "index"),
                        help="store to train against; the guideline PDFs are indexed there once")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import torch

    from trainer.config import load_config
    from trainer.index import retrieve_candidates
    from trainer.train import setup

    load_before = benchlib.load_average()
    base = load_config(args.config)
    if args.batch_size:
        base = base.replace(batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as scratch:
        questions = (args.steps + 1) * base.batch_size
        joint_cfg = base.replace(data_dir=args.data_dir, output_dir=scratch, train_limit=questions, checkpoint_every=0)
        gen_cfg = joint_cfg.replace(lambda_ret=0.0)
        started = time.perf_counter()
        run = setup(joint_cfg)
        setup_seconds = time.perf_counter() - started
        examples = retrieve_candidates(run.query, run.store, run.records, joint_cfg.n_candidates, run.settings)
        batches = [examples[i:i + base.batch_size] for i in range(0, len(examples), base.batch_size)]
        run.generator.train()
        run.query.model.train()
        sampler = torch.Generator().manual_seed(base.seed)
        joint, gen_only = [], []
        for index, batch in enumerate(batches):
            # alternate which kind goes first, so neither always follows the other's cache state
            order = [(joint_cfg, joint), (gen_cfg, gen_only)]
            for cfg, sink in (order if index % 2 == 0 else order[::-1]):
                result = timed_step(run, batch, cfg, sampler)
                log.info("step %d %s: %.1f s wall, %.1f s CPU, utility %.1f s", index,
                         "joint" if cfg is joint_cfg else "generator-only", result["wall"], result["cpu"],
                         result["utility"])
                if index > 0:  # the first round warms up both
                    sink.append(result)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = report(base, args.config, summarise("joint (JMLR)", joint),
                  summarise("generator only (QLoRA, retriever frozen)", gen_only), peak_mib, setup_seconds, run.info,
                  load_before, benchlib.load_average(), len(examples))
    if args.no_write:
        print(body)
    else:
        benchlib.replace_section("train", body)
        log.info("Wrote the train section of %s", benchlib.RESULTS)


def report(cfg, config_path: str, joint: dict, gen: dict, peak_mib: float, setup_seconds: float, info: dict,
           load_before: str, load_after: str, questions: int) -> str:
    wall_ratio = gen["examples_per_s"] / joint["examples_per_s"]
    cpu_ratio = (joint["cpu"] / joint["examples"]) / (gen["cpu"] / gen["examples"])
    rows = [[s["name"], s["steps"], s["examples"], f"{s['step_median']:.1f}", f"{s['examples_per_s']:.3f}",
             f"{s['cpu'] / s['examples']:.1f}", f"{100 * s['utility_share']:.0f}%"] for s in (joint, gen)]
    verdict = "met" if wall_ratio <= TARGET_RATIO else "**missed**"
    projected_min = 346 / joint["examples_per_s"] / 60
    return "\n".join([
        "## Training step cost (bench/train.py)",
        "",
        f"- Date: {benchlib.today()}",
        f"- Command: `{benchlib.command_line()}`",
        f"- Machine: {benchlib.machine_description()}",
        f"- {benchlib.load_note(load_before, load_after)}",
        f"- Config: `{benchlib._relative(config_path)}` as shipped: generator "
        f"{info.get('generator')} at {info.get('precision')} with LoRA r={cfg.lora_r} on "
        f"{len(cfg.lora_target_modules)} projection types; N={cfg.n_candidates}, K={cfg.k_sampled}, "
        f"k={cfg.k_context}, {cfg.retriever_loss} loss, {cfg.batch_size} question(s) per micro-batch, train_sides "
        f"{cfg.train_sides}. {questions} questions of guidelines/qa/train.jsonl (seeded subset), candidates "
        "retrieved once; one warm-up step of each kind not counted; the kinds alternate step by step.",
        f"- Setup (models loaded, store opened or indexed): {setup_seconds:.0f} s.",
        "",
        markdown_table(["step", "timed steps", "questions", "median s/step", "questions/s",
                        "CPU s per question", "in utility passes"], rows),
        "",
        markdown_table(["target", "figure", "verdict"], [
            [f"joint step <= {TARGET_RATIO}x a generator-only step (wall time per question)", f"{wall_ratio:.2f}x",
             verdict],
            ["same, in CPU time per question (for reference)", f"{cpu_ratio:.2f}x", ""],
            ["peak memory of the process (both kinds of step; joint is the larger)", f"{peak_mib:,.0f} MiB", ""],
            ["one epoch of the shipped training split (346 questions) at this joint rate", f"{projected_min:.0f} min",
             "projection; the measured full run is in docs/TRAINING.md"],
        ]),
    ])


if __name__ == "__main__":
    main()
