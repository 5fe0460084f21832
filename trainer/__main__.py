"""Command line: `python -m trainer train|evaluate|report|reindex|settings ...` (also `guideline-trainer ...`, and
under `accelerate launch -m trainer`)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import DEFAULT_CONFIG, load_config, parse_overrides


def _configure_logging() -> None:
    from assistant.service import configure_logging

    configure_logging()
    for noisy in ("peft", "accelerate", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="JMLR joint training and evaluation.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train the generator and the retriever together")
    train.add_argument("--config", default=str(DEFAULT_CONFIG), help="TOML config (default: %(default)s)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")

    evaluate = commands.add_parser("evaluate", help="compare (a) base, (b) RAG, (c) frozen-retriever, (d) JMLR")
    evaluate.add_argument("--config", default=str(DEFAULT_CONFIG), help="the training config (models, store, k)")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    evaluate.add_argument("--test-file", default="guidelines/qa/test.jsonl")
    evaluate.add_argument("--frozen", default="", help="checkpoint of system (c), trained with lambda = 0")
    evaluate.add_argument("--jmlr", default="", help="checkpoint of system (d), trained jointly")
    evaluate.add_argument("--systems", default="", help="comma-separated subset of base,rag,frozen,jmlr")
    evaluate.add_argument("--limit", type=int, default=0, help="evaluate a seeded random subset of N questions")
    evaluate.add_argument("--precision", default="", help="generator precision (default: the training one)")
    evaluate.add_argument("--out", default="reports/latest", help="report folder")
    evaluate.add_argument("--recall-only", action="store_true", help="retrieval figures only: no generator")
    evaluate.add_argument("--resume", action="store_true",
                          help="keep the predictions a stopped run of the same setup logged in --out; score the rest")

    report = commands.add_parser("report", help="merge evaluation folders into one report")
    report.add_argument("inputs", nargs="+", help="evaluation folders (each with results.json)")
    report.add_argument("--out", required=True)

    settings_command = commands.add_parser("settings", help="print every training setting with its default and "
                                                            "meaning (Markdown)")
    settings_command.add_argument("--readme", metavar="PATH", help="write the table into this file between its markers")

    reindex = commands.add_parser("reindex", help="re-embed an assistant library for a checkpoint's passage encoder")
    reindex.add_argument("--checkpoint", required=True)
    reindex.add_argument("--data-dir", required=True, help="the assistant's data_dir whose library to re-embed")

    args = parser.parse_args(argv)
    if args.command == "settings":
        from assistant.config_loader import markdown_table, replace_table

        from .config import KEY_ALIASES, TrainConfig

        table = markdown_table(TrainConfig, key_aliases=KEY_ALIASES)
        if args.readme:
            replace_table(Path(args.readme), "trainer", table)
        else:
            sys.stdout.write(table + "\n")
        return 0
    _configure_logging()
    if args.command == "reindex":
        return _reindex(Path(args.checkpoint), Path(args.data_dir))
    if args.command == "report":
        from .evaluate import merge_reports

        merge_reports([Path(p) for p in args.inputs], Path(args.out))
        return 0
    cfg = load_config(args.config, parse_overrides(args.set))
    if args.command == "train":
        from .train import train as run_training

        run_training(cfg, resume=args.resume)
        return 0
    from .evaluate import command_line
    from .evaluate import evaluate as run_evaluation

    systems = [name.strip() for name in args.systems.split(",") if name.strip()] or None
    run_evaluation(cfg, args.test_file, {"frozen": args.frozen, "jmlr": args.jmlr}, Path(args.out), args.limit,
                   args.precision, systems, command_line(), args.recall_only, args.resume)
    return 0


def _reindex(checkpoint: Path, data_dir: Path) -> int:
    """For a checkpoint that trained the passage encoder: copy the app's library into its collection."""
    from assistant.checkpoint import PASSAGE_ENCODER, read_manifest
    from assistant.config import load_settings
    from assistant.encoder import load_encoder

    from .index import open_store, reembed

    folder = checkpoint / PASSAGE_ENCODER
    if not folder.is_dir():
        logging.getLogger(__name__).info("%s has no passage encoder: the existing collection is used as is", checkpoint)
        return 0
    settings = load_settings(data_dir=data_dir)
    base = read_manifest(checkpoint).get("base_embedding_model", "packaged")
    store = open_store(settings, load_encoder(base))
    reembed(store, settings, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
