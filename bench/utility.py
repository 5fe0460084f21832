"""Does the JMLR utility signal point at the passage that answers? Both multiple-choice layouts, side by side.

    .venv/bin/python bench/utility.py                 # 60 training questions, writes RESULTS.md
    .venv/bin/python bench/utility.py --questions 5 --no-write

The retriever learns from the generator's answer loss with each sampled passage alone in the prompt
(`trainer.jmlr.answer_utility`, the trainer's own code): a passage that lowers the loss should rank higher.
That only teaches something if the loss depends on the passage. For each training question whose gold
passage (the chunk holding its evidence span) is among its N candidates, this scores K passages: the gold
one and the K-1 best-ranked others, in each layout (`choice_format`), with the same models, passages and
precision. Reported per layout:
- how often the gold passage gives the lowest answer loss (chance: 1/K), with a 95% Wilson interval;
- the share of (gold, other) pairs the gold passage wins: what the `rank` loss trains on (chance 50%);
- the mean gap between the best other passage's loss and the gold one's, and the mean spread of the K
  losses, in nats per token: with a nearly flat utility `kl`'s target is flat too.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import tempfile

from assistant.config import CHOICE_FORMATS

import benchlib
from benchlib import markdown_table

log = logging.getLogger("bench.utility")



def passages_to_score(example, k: int):
    """The gold candidate first, then the best-ranked others: K indices into the candidates (None when the
    gold passage was not retrieved)."""
    import torch

    from trainer.jmlr import gold_mask

    gold = gold_mask(example)
    if not bool(gold.any()):
        return None
    first_gold = int(torch.nonzero(gold)[0])
    others = [i for i in range(len(example.candidates)) if not bool(gold[i])][:k - 1]
    return torch.tensor([first_gold, *others])


def measure(run, examples, cfg, k: int) -> dict[str, list[list[float]]]:
    """Per layout, per question with a retrieved gold passage: the K answer losses, the gold one first."""
    from trainer.jmlr import answer_utility

    layouts = {name: cfg.replace(choice_format=name) for name in CHOICE_FORMATS}
    losses: dict[str, list[list[float]]] = {name: [] for name in layouts}
    for number, example in enumerate(examples, 1):
        picks = passages_to_score(example, k)
        if picks is None:
            continue
        for name, layout in layouts.items():
            (values,) = answer_utility(run.models(), [example], [picks], layout)
            losses[name].append(values.tolist())
        if number % 10 == 0:
            log.info("%d/%d questions", number, len(examples))
    return losses


def gold_lowest(row: list[float]) -> bool:
    """The gold passage (first) gives a lower answer loss than every other passage of its question."""
    return row[0] < min(row[1:])


def figures(rows: list[list[float]]) -> dict[str, float]:
    from trainer.evaluate import wilson

    lowest = sum(gold_lowest(row) for row in rows)
    pairs = sum(row[0] < other for row in rows for other in row[1:])
    low, high = wilson(lowest, len(rows))
    return {"n": len(rows), "lowest": lowest / len(rows), "low": low, "high": high,
            "pairs": pairs / sum(len(row) - 1 for row in rows),
            "gap": statistics.mean(min(row[1:]) - row[0] for row in rows),
            "spread": statistics.mean(statistics.pstdev(row) for row in rows)}


def report(losses: dict[str, list[list[float]]], cfg, asked: int, k: int, before: str, after: str,
           info: dict) -> str:
    from trainer.paired import mcnemar_p

    rows = []
    for name in CHOICE_FORMATS:
        f = figures(losses[name])
        rows.append([f"`{name}`", f["n"], f"{100 * f['lowest']:.1f}% ({100 * f['low']:.0f}-{100 * f['high']:.0f})",
                     f"{100 * f['pairs']:.1f}%", f"{f['gap']:+.3f}", f"{f['spread']:.3f}"])
    wins = {name: [gold_lowest(row) for row in losses[name]] for name in CHOICE_FORMATS}
    only_cloze = sum(c and not listed for c, listed in zip(wins["cloze"], wins["listed"]))
    only_listed = sum(listed and not c for c, listed in zip(wins["cloze"], wins["listed"]))
    header = ["layout", "questions", f"gold passage lowest loss (chance {100 / k:.0f}%)",
              "gold beats another (chance 50%)", "best other minus gold, nats", "spread of the K losses, nats"]
    return ("## Is the utility informative? (bench/utility.py)\n\n"
            f"{benchlib.machine_description()}; {benchlib.load_note(before, after)} Command: "
            f"`{benchlib.command_line()}`. Generator {info.get('generator', '?')} at {cfg.precision}, its "
            f"untrained base; a seeded draw of {asked} training questions, of which those whose gold passage is "
            f"among their N={cfg.n_candidates} candidates count; K={k} passages each (gold and the "
            f"{k - 1} best-ranked others), the same passages in both layouts.\n\n"
            + markdown_table(header, rows)
            + f"\n\nGold lowest in one layout only: cloze {only_cloze}, listed {only_listed} (exact McNemar "
              f"p={mcnemar_p(only_cloze, only_listed):.2g}).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_training_arguments(parser, "retrieve from")
    parser.add_argument("--questions", type=int, default=60, help="training questions drawn (seeded)")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from trainer.config import load_config
    from trainer.index import retrieve_candidates
    from trainer.train import setup

    before = benchlib.load_average()
    base = load_config(args.config)
    with tempfile.TemporaryDirectory() as scratch:
        cfg = base.replace(data_dir=args.data_dir, output_dir=scratch, train_limit=args.questions,
                           checkpoint_every=0, dev_every=0)
        run = setup(cfg)
        examples = retrieve_candidates(run.query, run.store, run.records, cfg.n_candidates, run.settings)
        run.generator.eval()
        losses = measure(run, examples, cfg, cfg.k_sampled)
    body = report(losses, cfg, len(examples), cfg.k_sampled, before, benchlib.load_average(), run.info)
    if args.no_write:
        print(body)
    else:
        benchlib.replace_section("utility", body)
        log.info("Wrote the utility section of %s", benchlib.RESULTS)


if __name__ == "__main__":
    main()
