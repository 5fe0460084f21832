"""Command line: `python -m assistant ask "question"`, `python -m assistant ingest PATH...`."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import AssistantError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ingest"]:
        from .ingest import main as ingest_main

        return ingest_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("ask", help="answer a question from the indexed guidelines")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=None)
    ask.add_argument("--json", action="store_true", help="print the whole answer record as JSON")
    ask.add_argument("--config", help="settings TOML file")
    commands.add_parser("ingest", help="index PDFs (see python -m assistant.ingest --help)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from .service import build

    assistant = build(config_file=args.config)
    assistant.library.prepare(assistant.settings.guidelines_dir, assistant.settings.index_samples_on_start)
    try:
        answer = None
        printed = 0
        for answer in assistant.pipeline.ask_stream(args.question, top_k=args.top_k):
            if not args.json:
                sys.stdout.write(answer.text[printed:])
                sys.stdout.flush()
                printed = len(answer.text)
    except AssistantError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(answer.as_dict(), indent=2) + "\n")
        return 0
    sys.stdout.write("\n\nEvidence:\n")
    for item in answer.evidence:
        sys.stdout.write(f"[{item.number}] {item.file}, page {item.page} (printed {item.page_label}), "
                         f"{item.section or 'no section'}, score {item.score:.2f}\n    "
                         f"{item.text[:300].replace(chr(10), ' ')}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
