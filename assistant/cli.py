"""Command lines: `python -m assistant ask|ingest|settings` (also `guideline-assistant ...`), and the
older `python -m assistant.ingest ...`, which is `ingest` under another name."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

from .config import ENV_ALIASES, PROJECT_DIR, Settings
from .config_loader import markdown_table, replace_table
from .datalock import DataFolderBusy
from .errors import AssistantError
from .records import Answer

log = logging.getLogger(__name__)


def expand_paths(paths: Iterable[str]) -> list[Path]:
    """Files as given, folders expanded to the PDFs inside them (recursively)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        found.extend(sorted(path.rglob("*.pdf")) if path.is_dir() else [path])
    return found


def _print_answer(answer: Answer) -> None:
    sys.stdout.write("\n\nEvidence:\n")
    for item in answer.evidence:
        sys.stdout.write(f"[{item.number}] {item.file}, page {item.page} (printed {item.page_label}), "
                         f"{item.section or 'no section'}, score {item.score:.2f}\n    "
                         f"{item.text[:300].replace(chr(10), ' ')}\n")


def ask(args: argparse.Namespace) -> int:
    """Answer one question, streaming the text; `--json` prints the whole answer record instead."""
    from .config import load_settings
    from .questions import clean_question
    from .service import build_assistant

    settings = load_settings(args.config)
    try:  # a question that cannot be asked is refused before seconds of model loading
        clean_question(args.question, settings.max_question_chars)
    except AssistantError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    assistant = build_assistant(settings, writer=None)  # reads only while another process changes the folder
    if not assistant.store.read_only:
        assistant.library.prepare(assistant.settings.guidelines_dir, assistant.settings.index_samples_on_start)
    answer = None
    printed = 0
    try:
        for answer in assistant.answerer.ask_stream(args.question, top_k=args.top_k):
            if not args.json:
                sys.stdout.write(answer.text[printed:])
                sys.stdout.flush()
                printed = len(answer.text)
    except AssistantError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    assert answer is not None
    if args.json:
        sys.stdout.write(json.dumps(answer.as_dict(), indent=2) + "\n")
    else:
        _print_answer(answer)
    return 0


def ingest(args: argparse.Namespace) -> int:
    """Index files and folders, list, or delete; the exit code is 1 when a file was refused."""
    from tqdm import tqdm

    from .service import build_assistant

    files = expand_paths(args.paths)
    try:  # listing reads; indexing and deleting need the data folder to themselves
        library = build_assistant(config_file=args.config, writer=bool(files or args.delete) or None).library
    except DataFolderBusy as error:
        sys.stderr.write(f"{error}\n")
        return 2
    status = 0
    if args.delete:
        deleted = library.delete(args.delete)
        log.info("%s %s", "Deleted" if deleted else "No document named", args.delete)
        status = 0 if deleted else 1
    bar = tqdm(files, desc="Indexing", unit="file", disable=not files)
    for path in bar:  # the bar's tail says what is happening inside the file ("Reading page 3 of 13 by OCR")
        result = library.add_path(path, progress=lambda _, message: bar.set_postfix_str(message, refresh=True),
                                  replace=args.replace)
        tqdm.write(f"{result.status:>16}  {result.file_name}: {result.message}")
        status = status or (1 if result.status == "refused" else 0)
    if args.list or not (files or args.delete):
        for info in library.documents():
            sys.stdout.write(f"{info.file_name}\t{info.title}\t{info.pages} pages\t{info.chunks} chunks\t"
                             f"{info.added}" + (f"\t{info.reading_note}" if info.reading_note else "") + "\n")
    return status


def settings_table(args: argparse.Namespace) -> int:
    """Every setting with its default and meaning, as the README's table (or written into it)."""
    table = markdown_table(Settings, base=PROJECT_DIR)
    if args.readme:
        replace_table(Path(args.readme), "assistant", table)
        return 0
    sys.stdout.write(table + "\n")
    sys.stdout.write("\nEnvironment aliases: " + ", ".join(f"`{k}` = `{v}`" for k, v in ENV_ALIASES.items()) + "\n")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m assistant", description="Clinical guideline assistant.")
    commands = root.add_subparsers(dest="command", required=True)
    asking = commands.add_parser("ask", help="answer a question from the indexed guidelines")
    asking.add_argument("question")
    asking.add_argument("--top-k", type=int, default=None)
    asking.add_argument("--json", action="store_true", help="print the whole answer record as JSON")
    asking.add_argument("--config", help="settings TOML file")
    asking.set_defaults(run=ask, log_level=logging.WARNING)
    indexing = commands.add_parser("ingest", help="index guideline PDFs, list or delete them")
    indexing.add_argument("paths", nargs="*", help="PDF files or folders")
    indexing.add_argument("--list", action="store_true", help="list the indexed documents")
    indexing.add_argument("--delete", metavar="NAME", help="delete a document by file name or id")
    indexing.add_argument("--replace", action="store_true",
                          help="replace documents with the same file name (otherwise added beside them, numbered)")
    indexing.add_argument("--config", help="settings TOML file")
    indexing.set_defaults(run=ingest, log_level=logging.INFO)
    table = commands.add_parser("settings", help="print every setting with its default and meaning (Markdown)")
    table.add_argument("--readme", metavar="PATH", help="write the table into this file between its markers")
    table.set_defaults(run=settings_table, log_level=logging.WARNING)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args))


def ingest_main(argv: list[str] | None = None) -> int:
    """`python -m assistant.ingest ...` = `python -m assistant ingest ...`."""
    return main(["ingest", *(sys.argv[1:] if argv is None else argv)])
