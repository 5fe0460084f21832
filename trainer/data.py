"""The medical QA dataset: build the splits, validate them, and make cloze questions from any documents.

Record format (guidelines/qa/{train,dev,test}.jsonl):
  {"id", "question", "options": {"A": ..}, "answer": "C", "rationale", "kind", "vignette",
   "evidence": {"file": "<pdf name>", "page": <physical page, 1-based>, "span": "<verbatim text>"},
   "split": "train|dev|test", "part": "seen|unseen" (test only)}

Commands:
  python -m trainer.data build      raw/*.jsonl -> pages resolved -> train/dev/test splits
  python -m trainer.data validate   [FILES...] (default: the three splits)
  python -m trainer.data cues       [FILES...] trivial baselines and the questions whose answer shows by form
  python -m trainer.data cloze --out FILE [--config assistant.toml] [--limit N]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.cleaning import clean_pages
from assistant.config import PROJECT_DIR
from assistant.pdf_reader import Limits, read_pdf
from trainer.baselines import baseline_accuracies, form_cues

log = logging.getLogger(__name__)

QA_DIR = PROJECT_DIR / "guidelines" / "qa"
GUIDELINES_DIR = PROJECT_DIR / "guidelines"
SPLITS = ("train", "dev", "test")
KINDS = {"first_line", "dose", "threshold", "contraindication", "diagnosis", "monitoring", "referral", "cloze"}
# Documents with no training question at all: the "unseen" part of the test split.
HELD_OUT = ("nice-ng106-heart-failure.pdf", "gold-2024-copd.pdf", "nice-ng109-lower-uti.pdf")
# A split whose longest-option baseline beats chance by more than this rewards the options' form.
MAX_LONGEST_OVER_CHANCE = 0.10
_LIMITS = Limits(max_bytes=200_000_000, max_pages=5000, max_chars=50_000_000, max_seconds=600)


def normalize_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


class PageTexts:
    """The text the project's own ingestion extracts from each page of each PDF (cached per file)."""

    def __init__(self, folder: Path = GUIDELINES_DIR, files_dir: Path | None = None) -> None:
        self.folder = Path(folder)
        self.files_dir = files_dir  # the library's stored PDFs (<doc_id>.pdf), for cloze questions
        self._cache: dict[str, list[str]] = {}

    def pages(self, file_name: str, doc_id: str = "") -> list[str]:
        if file_name not in self._cache:
            path = self.folder / file_name
            if not path.is_file() and doc_id and self.files_dir:
                path = Path(self.files_dir) / f"{doc_id}.pdf"
            raw = read_pdf(path.read_bytes(), _LIMITS)
            self._cache[file_name] = [normalize_space(page.text) for page in clean_pages(raw.pages)]
        return self._cache[file_name]

    def find(self, file_name: str, span: str) -> int | None:
        """The physical page (1-based) whose extracted text holds the span, or None."""
        wanted = normalize_space(span)
        for number, text in enumerate(self.pages(file_name), 1):
            if wanted in text:
                return number
        return None


# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------

def resolve(raw: dict[str, Any], pages: PageTexts) -> dict[str, Any] | None:
    """A raw question (evidence as a span of the source) -> the dataset record with its page."""
    page = pages.find(raw["file"], raw["evidence"])
    if page is None:
        log.warning("%s: evidence span not found in the rendered PDF %s; dropped", raw["id"], raw["file"])
        return None
    return {"id": raw["id"], "question": raw["question"], "options": raw["options"], "answer": raw["answer"],
            "rationale": raw["rationale"], "kind": raw["kind"], "vignette": bool(raw.get("vignette")),
            "evidence": {"file": raw["file"], "page": page, "span": normalize_space(raw["evidence"])}}


def assign_splits(records: list[dict[str, Any]], held_out: Iterable[str] = HELD_OUT, seed: int = 13,
                  dev_share: float = 0.1, test_share: float = 0.2) -> dict[str, list[dict[str, Any]]]:
    """Held-out documents go wholly to test ("unseen"); the rest split per document ("seen")."""
    held = set(held_out)
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_file[record["evidence"]["file"]].append(record)
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    rng = random.Random(seed)
    for file_name in sorted(by_file):
        items = sorted(by_file[file_name], key=lambda r: r["id"])
        if file_name in held:
            splits["test"].extend({**r, "split": "test", "part": "unseen"} for r in items)
            continue
        rng.shuffle(items)
        n_test = max(1, round(len(items) * test_share))
        n_dev = max(1, round(len(items) * dev_share))
        splits["test"].extend({**r, "split": "test", "part": "seen"} for r in items[:n_test])
        splits["dev"].extend({**r, "split": "dev"} for r in items[n_test:n_test + n_dev])
        splits["train"].extend({**r, "split": "train"} for r in items[n_test + n_dev:])
    for name in SPLITS:
        splits[name].sort(key=lambda r: r["id"])
    return splits


def build_splits(raw_dir: Path = QA_DIR / "raw", out_dir: Path = QA_DIR) -> dict[str, int]:
    pages = PageTexts()
    records = []
    for path in sorted(Path(raw_dir).glob("*.jsonl")):
        for raw in read_jsonl(path):
            record = resolve(raw, pages)
            if record:
                records.append(record)
    splits = assign_splits(records)
    for name, items in splits.items():
        write_jsonl(Path(out_dir) / f"{name}.jsonl", items)
    return {name: len(items) for name, items in splits.items()}


# ---------------------------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------------------------

@dataclass
class Problem:
    record_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.record_id}: {self.message}"


def _stem_key(question: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", question.lower())


def _shingles(text: str) -> set[str]:
    words = _stem_key(text).split()
    return {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))}


def _schema_problems(record: dict[str, Any]) -> list[str]:
    """Fields, options, answer letter and kind of one record."""
    problems = [f"missing field {key!r}" for key in ("id", "question", "options", "answer", "rationale", "kind",
                                                      "evidence") if key not in record]
    if problems:
        return problems
    options = record["options"]
    if not isinstance(options, dict) or not 4 <= len(options) <= 5 or \
            sorted(options) != list("ABCDE")[:len(options)]:
        problems.append("options must be 4 or 5, lettered A.. in order")
    elif len({normalize_space(str(v)).lower() for v in options.values()}) != len(options):
        problems.append("two options have the same text")
    if record["answer"] not in options:
        problems.append(f"answer {record['answer']!r} is not one of the options")
    if record["kind"] not in KINDS:
        problems.append(f"unknown kind {record['kind']!r}")
    if not str(record["question"]).strip() or not str(record["rationale"]).strip():
        problems.append("empty question or rationale")
    return problems


def check_record(record: dict[str, Any], pages: PageTexts) -> list[str]:
    """Schema and evidence problems of one record."""
    problems = _schema_problems(record)
    if any(problem.startswith("missing field") for problem in problems):
        return problems
    evidence = record["evidence"]
    if not isinstance(evidence, dict) or not {"file", "page", "span"} <= set(evidence):
        return problems + ["evidence must have file, page and span"]
    try:
        texts = pages.pages(evidence["file"], evidence.get("doc_id", ""))
    except (OSError, ValueError) as error:
        return problems + [f"evidence file {evidence['file']!r} cannot be read: {error}"]
    page = evidence["page"]
    if not isinstance(page, int) or not 1 <= page <= len(texts):
        problems.append(f"evidence page {page!r} is outside 1..{len(texts)}")
    elif normalize_space(evidence["span"]) not in texts[page - 1]:
        problems.append(f"evidence span not found on page {page} of {evidence['file']} as ingested")
    return problems


def validate(files: dict[str, list[dict[str, Any]]], pages: PageTexts | None = None,
             near_duplicate: float = 0.8) -> list[Problem]:
    """All problems across the given splits (name -> records); empty when the dataset is sound."""
    pages = pages or PageTexts()
    problems: list[Problem] = []
    seen_ids: dict[str, str] = {}
    seen_stems: dict[str, tuple[str, str]] = {}
    shingles: list[tuple[str, str, set[str]]] = []
    train_files = {r["evidence"]["file"] for r in files.get("train", []) if isinstance(r.get("evidence"), dict)}
    for split, records in files.items():
        for record in records:
            rid = str(record.get("id", "?"))
            problems.extend(Problem(rid, message) for message in check_record(record, pages))
            if rid in seen_ids:
                problems.append(Problem(rid, f"id also used in {seen_ids[rid]}"))
            seen_ids[rid] = split
            stem = _stem_key(str(record.get("question", "")))
            if stem in seen_stems:
                other, other_split = seen_stems[stem]
                problems.append(Problem(rid, f"same question as {other} ({other_split})"))
            seen_stems[stem] = (rid, split)
            shingles.append((rid, split, _shingles(str(record.get("question", "")))))
            if split == "test" and record.get("part") == "unseen" and \
                    record.get("evidence", {}).get("file") in train_files:
                problems.append(Problem(rid, "an 'unseen' test question is on a document that has training questions"))
    problems.extend(form_problems(files))
    for i, (rid, _split, mine) in enumerate(shingles):  # near duplicates: 3-word shingle overlap
        for other, other_split, theirs in shingles[i + 1:]:
            if mine and theirs and len(mine & theirs) / len(mine | theirs) >= near_duplicate:
                problems.append(Problem(rid, f"near-duplicate of {other} ({other_split})"))
    return problems


def form_problems(files: dict[str, list[dict[str, Any]]], min_split: int = 20) -> list[Problem]:
    """Questions whose right option stands out by form, and splits the longest option would game."""
    problems = [Problem(str(r.get("id", "?")), cue) for records in files.values() for r in records
                if not _schema_problems(r) and r.get("kind") != "cloze" for cue in form_cues(r)]
    for split, records in files.items():
        sound = [r for r in records if not _schema_problems(r)]
        if len(sound) < min_split:
            continue
        scores = baseline_accuracies(sound)
        if scores["longest option"] > scores["chance"] + MAX_LONGEST_OVER_CHANCE:
            problems.append(Problem(f"split {split}", f"always choosing the longest option scores "
                                    f"{scores['longest option']:.1%}, more than chance ({scores['chance']:.1%}) "
                                    f"+ {MAX_LONGEST_OVER_CHANCE:.0%}"))
    return problems


# ---------------------------------------------------------------------------------------------
# cloze questions from any indexed documents
# ---------------------------------------------------------------------------------------------

_CLOZE_PATTERNS = {
    "dose": re.compile(r"\b\d+(?:\.\d+)?\s?(?:mg|micrograms?|mcg|g|mL|ml|units?|mmol)(?:/kg)?\b", re.I),
    "duration": re.compile(r"\b\d+(?:\s?(?:to|-)\s?\d+)?\s?(?:hours?|days?|weeks?|months?|years?|minutes?)\b", re.I),
    "threshold": re.compile(r"(?:\b\d{2,3}/\d{2,3}\s?mmHg\b|\b\d+(?:\.\d+)?\s?(?:%|mmol/mol|mmol/L|mmHg|ppb|g/dL|"
                            r"ml/min(?:/1\.73\s?m2)?)|\b\d+(?:\.\d+)?\s?°C)", re.I),
}
_DRUG = re.compile(r"\b[a-z]{4,}(?:mab|pril|sartan|olol|dipine|statin|cillin|mycin|floxacin|azole|oxacin|parin|"
                   r"gliflozin|gliptin|formin|tide|done|pine|zepam|triptyline|aline|oxetine|ine)\b", re.I)


def _candidates(sentence: str) -> list[tuple[str, str]]:
    found = [(kind, match.group(0)) for kind, pattern in _CLOZE_PATTERNS.items()
             for match in pattern.finditer(sentence)]
    found += [("drug", match.group(0)) for match in _DRUG.finditer(sentence)]
    return found


def build_cloze(passages: Iterable[Any], limit: int = 500, seed: int = 7, options: int = 4) -> list[dict[str, Any]]:
    """Cloze questions from passages (Chunk records): blank out a dose, duration, threshold or drug name,
    with distractors of the same kind drawn from the same corpus. No model is needed."""
    from assistant.chunking import units

    rng = random.Random(seed)
    items: list[tuple[Any, str, str, str]] = []  # chunk, sentence, kind, answer
    pool: dict[str, set[str]] = defaultdict(set)
    for chunk in passages:
        for start, end, heading in units(chunk.text):
            sentence = normalize_space(chunk.text[start:end])
            if heading or not 40 <= len(sentence) <= 400:
                continue
            for kind, value in _candidates(sentence):
                pool[kind].add(value.lower() if kind == "drug" else value)
                items.append((chunk, sentence, kind, value))
    rng.shuffle(items)
    records, used = [], set()
    for chunk, sentence, kind, value in items:
        key = (sentence, kind)
        answer = value.lower() if kind == "drug" else value
        distractors = sorted(v for v in pool[kind] if normalize_space(v).lower() != normalize_space(answer).lower())
        if key in used or len(distractors) < options - 1:
            continue
        used.add(key)
        chosen = rng.sample(distractors, options - 1) + [answer]
        rng.shuffle(chosen)
        letters = "ABCDE"[:options]
        blanked = sentence.replace(value, "_____", 1)
        record_id = "cloze-" + hashlib.sha1(f"{chunk.doc_id}{sentence}{kind}".encode()).hexdigest()[:10]
        records.append({
            "id": record_id,
            "question": f"According to {chunk.title or chunk.file_name}, fill in the blank: \"{blanked}\"",
            "options": dict(zip(letters, chosen)),
            "answer": letters[chosen.index(answer)],
            "rationale": f"The guideline states: \"{sentence}\"",
            "kind": "cloze", "vignette": False,
            "evidence": {"file": chunk.file_name, "page": chunk.page, "span": sentence, "doc_id": chunk.doc_id},
            "split": "train",
        })
        if len(records) >= limit:
            break
    return records


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------

def _load_splits(paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not paths:
        return {name: read_jsonl(QA_DIR / f"{name}.jsonl") for name in SPLITS}
    return {Path(p).stem: read_jsonl(Path(p)) for p in paths}


def _report_cues(files: dict[str, list[dict[str, Any]]]) -> int:
    """Print each file's baselines and every question whose right option stands out by form."""
    flagged = 0
    for name, records in files.items():
        scores = ", ".join(f"{key} {value:.1%}" for key, value in baseline_accuracies(records).items())
        sys.stdout.write(f"{name}: {len(records)} questions; {scores}\n")
        for record in records:
            for cue in form_cues(record):
                flagged += 1
                sys.stdout.write(f"  {record['id']}: {cue}\n")
    return 1 if flagged else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.data")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="resolve pages of guidelines/qa/raw/*.jsonl and write the splits")
    check = commands.add_parser("validate", help="validate dataset files (default: the three splits)")
    check.add_argument("files", nargs="*")
    check.add_argument("--guidelines", default=str(GUIDELINES_DIR), help="folder of the PDFs the records cite")
    check.add_argument("--files-dir", help="the library's stored PDFs (data_dir/files), for cloze questions")
    cues = commands.add_parser("cues", help="trivial baselines and form cues of question files (raw or split)")
    cues.add_argument("files", nargs="*")
    cloze = commands.add_parser("cloze", help="make cloze questions from the indexed documents")
    cloze.add_argument("--out", required=True)
    cloze.add_argument("--limit", type=int, default=500)
    cloze.add_argument("--config", help="assistant settings TOML (which library to read)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    if args.command == "build":
        counts = build_splits()
        log.info("Wrote splits: %s", counts)
        return 0
    if args.command == "validate":
        splits = _load_splits(args.files)
        problems = validate(splits, PageTexts(Path(args.guidelines), args.files_dir and Path(args.files_dir)))
        for problem in problems:
            sys.stdout.write(f"{problem}\n")
        counts = {name: len(records) for name, records in splits.items()}
        kinds = Counter(r.get("kind") for records in splits.values() for r in records)
        sys.stdout.write(f"{sum(counts.values())} questions {counts}; kinds {dict(kinds)}; "
                         f"{len(problems)} problems\n")
        return 1 if problems else 0
    if args.command == "cues":
        return _report_cues(_load_splits(args.files))
    from assistant.config import load_settings
    from assistant.service import build_assistant

    assistant = build_assistant(load_settings(args.config))
    chunks = [chunk for info in assistant.library.documents() for chunk in assistant.store.chunks_of(info.doc_id)]
    records = build_cloze(chunks, limit=args.limit)
    write_jsonl(Path(args.out), records)
    log.info("Wrote %d cloze questions from %d documents to %s", len(records),
             len(assistant.library.documents()), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
