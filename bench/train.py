"""Training-step benchmark: a JMLR joint step against a generator-only QLoRA step.

    .venv/bin/python bench/train.py                      # default config, 8 steps of each; writes RESULTS.md
    .venv/bin/python bench/train.py --steps 2 --no-write # a quick look
    .venv/bin/python bench/train.py --variant "K=5:k_sampled=5" --variant "no shared prefix:share_prefix=false"

Each `--variant NAME:key=value[,key=value]` adds a joint step with those config changes, timed in the same
rounds, so a lever is measured side by side with the shipped config and the generator-only step.

Every kind of step runs in one process on the same models, the same questions, the same candidates and the
same sampled passages, in rounds of one step each in rotating order, so that anything else the machine does
hits all alike.
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
from benchlib import markdown_table

log = logging.getLogger("bench.train")

TARGET_RATIO = 1.6
TARGET_RUN_MINUTES = 150
GEN_ONLY = "generator only (QLoRA, retriever frozen)"


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


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """"K=5:k_sampled=5,share_prefix=false" -> ("K=5", {"k_sampled": "5", "share_prefix": "false"})."""
    name, _, changes = text.partition(":")
    pairs = dict(change.split("=", 1) for change in changes.split(",") if change)
    if not name or not pairs:
        raise SystemExit(f"--variant wants NAME:key=value[,key=value], got {text!r}")
    return name, pairs


def utility_agreement(run, batch, base, sampler) -> float:
    """Largest difference between the utility losses with and without the shared prefix, same passages."""
    from trainer.jmlr import answer_utility, candidate_scores, dynamic_sample

    scores = candidate_scores(run.models(), batch, with_grad=False)
    picks = [dynamic_sample(row, base.k_sampled, sampler) for row in scores]
    shared = answer_utility(run.models(), batch, picks, base.replace(share_prefix=True))
    full = answer_utility(run.models(), batch, picks, base.replace(share_prefix=False))
    return max(float((a - b).abs().max()) for a, b in zip(shared, full)) if shared else float("nan")


def time_dev_question(run, questions: int) -> float:
    """Seconds per dev question of the trainer's own dev evaluation (option scoring and recall@5)."""
    from trainer.train import dev_scores

    configured = run.cfg
    run.cfg = configured.replace(dev_limit=questions)
    try:
        started = time.perf_counter()
        dev_scores(run)
        return (time.perf_counter() - started) / questions
    finally:
        run.cfg = configured


def full_run_minutes(cfg, joint_rate: float, dev_seconds: float, questions: int = 346) -> tuple[float, int]:
    """A whole default run: every training question at the joint rate, plus its dev evaluations (at step 0, every
    `dev_every` steps and at the end, `dev_limit` questions each). Minutes, and how many dev evaluations."""
    from trainer.train import planned_steps

    trained = min(questions, cfg.train_limit or questions)
    steps = planned_steps(cfg, trained, 1)
    evaluations = len({0, steps, *range(cfg.dev_every, steps + 1, cfg.dev_every)}) if cfg.dev_every else 0
    seconds = cfg.epochs * trained / joint_rate
    return (seconds + evaluations * cfg.dev_limit * dev_seconds) / 60, evaluations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_training_arguments(parser, "train against")
    parser.add_argument("--steps", type=int, default=8,
                        help="timed micro-batches of each kind (after one warm-up each)")
    parser.add_argument("--batch-size", type=int, default=0, help="questions per micro-batch (default: the config's)")
    parser.add_argument("--variant", action="append", default=[], type=parse_variant,
                        help="NAME:key=value[,key=value]: another joint step with these config changes, side by side")
    parser.add_argument("--dev-questions", type=int, default=10,
                        help="dev questions scored once, to project the dev evaluations of a full run")
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
        same_run = {"data_dir": args.data_dir, "output_dir": scratch, "train_limit": questions, "checkpoint_every": 0,
                    "batch_size": base.batch_size}
        joint_cfg = base.replace(**same_run)
        kinds = [("joint (JMLR), as configured", joint_cfg)]
        kinds += [(f"joint, {name}", load_config(args.config, changes).replace(**same_run))
                  for name, changes in args.variant]
        kinds.append((GEN_ONLY, joint_cfg.replace(lambda_ret=0.0)))
        started = time.perf_counter()
        run = setup(joint_cfg)
        setup_seconds = time.perf_counter() - started
        examples = retrieve_candidates(run.query, run.store, run.records, joint_cfg.n_candidates, run.settings)
        batches = [examples[i:i + base.batch_size] for i in range(0, len(examples), base.batch_size)]
        run.generator.train()
        run.query.model.train()
        agreement = utility_agreement(run, batches[0], joint_cfg, torch.Generator().manual_seed(base.seed))
        log.info("utility with and without the shared prefix: largest difference %.2e nats", agreement)
        timings: dict[str, list[dict[str, float]]] = {name: [] for name, _ in kinds}
        for index, batch in enumerate(batches):
            # rotate which kind goes first, so none always follows another's cache state
            shift = index % len(kinds)
            for name, cfg in kinds[shift:] + kinds[:shift]:
                # every kind samples its passages from the same seeded state: the same question, the same draws
                result = timed_step(run, batch, cfg, torch.Generator().manual_seed(base.seed + index))
                log.info("step %d %s: %.1f s wall, %.1f s CPU, utility %.1f s", index, name, result["wall"],
                         result["cpu"], result["utility"])
                if index > 0:  # the first round warms up every kind
                    timings[name].append(result)
        dev_seconds = time_dev_question(run, args.dev_questions)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = report(base, args.config, [summarise(name, steps) for name, steps in timings.items()], peak_mib,
                  setup_seconds, run.info, load_before, benchlib.load_average(), len(examples), agreement,
                  dev_seconds)
    if args.no_write:
        print(body)
    else:
        benchlib.replace_section("train", body)
        log.info("Wrote the train section of %s", benchlib.RESULTS)


def report(cfg, config_path: str, kinds: list[dict], peak_mib: float, setup_seconds: float, info: dict,
           load_before: str, load_after: str, questions: int, agreement: float, dev_seconds: float) -> str:
    gen = next(kind for kind in kinds if kind["name"] == GEN_ONLY)
    gen_cpu = gen["cpu"] / gen["examples"]
    rows, targets = [], []
    for kind in kinds:
        wall_ratio = gen["examples_per_s"] / kind["examples_per_s"]
        cpu_ratio = (kind["cpu"] / kind["examples"]) / gen_cpu
        rows.append([kind["name"], kind["steps"], kind["examples"], f"{kind['step_median']:.1f}",
                     f"{kind['examples_per_s']:.3f}", f"{kind['cpu'] / kind['examples']:.1f}",
                     f"{100 * kind['utility_share']:.0f}%", f"{wall_ratio:.2f}x", f"{cpu_ratio:.2f}x"])
        if kind is not gen:
            verdict = "met" if wall_ratio <= TARGET_RATIO else "**missed**"
            targets.append([f"{kind['name']}: <= {TARGET_RATIO}x a generator-only step (wall time per question)",
                            f"{wall_ratio:.2f}x", verdict])
            minutes, evaluations = full_run_minutes(cfg, kind["examples_per_s"], dev_seconds)
            targets.append([f"{kind['name']}: a full run of the config as shipped (its questions and epochs, "
                            f"{evaluations} dev evaluations of {cfg.dev_limit})", f"{minutes:.0f} min",
                            "projection: " + ("met" if minutes <= TARGET_RUN_MINUTES else "**over 2.5 h**")])
    targets.append(["utility losses with and without the shared prefix, same passages: largest difference",
                    f"{agreement:.1e} nats", ""])
    targets.append(["dev evaluation, per question (option scoring with the config's k passages, recall@5)",
                    f"{dev_seconds:.1f} s", ""])
    targets.append(["peak memory of the process (every kind of step)", f"{peak_mib:,.0f} MiB", ""])
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
        f"{cfg.train_sides}, shared utility prefix {'on' if cfg.share_prefix else 'off'}. {questions} questions of "
        "guidelines/qa/train.jsonl (seeded subset), candidates retrieved once; one warm-up round not counted; "
        "every kind of step runs once per round on the same questions, in rotating order.",
        f"- Setup (models loaded, store opened or indexed): {setup_seconds:.0f} s.",
        "",
        markdown_table(["step", "timed steps", "questions", "median s/step", "questions/s", "CPU s per question",
                        "in utility passes", "wall vs generator-only", "CPU vs generator-only"], rows),
        "",
        markdown_table(["target", "figure", "verdict"], targets),
    ])


if __name__ == "__main__":
    main()
