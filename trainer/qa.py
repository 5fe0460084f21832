"""Multiple-choice question records, read from JSONL (guidelines/qa/*.jsonl or a user's own file).

The record format is the dataset's: {"id", "question", "options": {"A": ..}, "answer", "rationale",
"kind", "vignette", "evidence": {"file", "page", "span"}, "split", "part"}. The older raw format
(top-level "file" and "evidence" as the span string, no page) is accepted too, so drafts train.
"""
from __future__ import annotations

import json
import logging
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from assistant.choice import choice_target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QARecord:
    id: str
    question: str
    options: dict[str, str]
    answer: str
    rationale: str = ""
    kind: str = ""
    evidence_file: str = ""
    evidence_page: int | None = None  # physical page, 1-based; None when the record does not say
    evidence_span: str = ""
    split: str = ""
    part: str = ""  # test only: seen | unseen (documents held out of training)


def parse_record(data: dict, where: str) -> QARecord:
    """One JSON object -> a record, with a message naming the line when it is malformed."""
    try:
        options = {str(k): str(v) for k, v in data["options"].items()}
        answer = str(data["answer"]).strip()
        question = str(data["question"])
    except (KeyError, AttributeError, TypeError) as error:
        raise ValueError(f"{where}: a record needs question, options (a letter -> text object) and answer "
                         f"({type(error).__name__}: {error}).") from None
    if answer not in options:
        raise ValueError(f"{where}: the answer {answer!r} is not one of the options {sorted(options)}.")
    evidence = data.get("evidence")
    if isinstance(evidence, dict):
        file, page, span = evidence.get("file", ""), evidence.get("page"), evidence.get("span", "")
    else:  # raw drafts: the span as a string, the file at the top level
        file, page, span = data.get("file", ""), None, evidence or ""
    return QARecord(id=str(data.get("id", where)), question=question, options=options, answer=answer,
                    rationale=str(data.get("rationale") or ""), kind=str(data.get("kind") or ""),
                    evidence_file=str(file or ""), evidence_page=int(page) if page not in (None, "") else None,
                    evidence_span=str(span or ""), split=str(data.get("split") or ""),
                    part=str(data.get("part") or ""))


def load_records(path: str | Path) -> list[QARecord]:
    """All records of a JSONL file; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The question file {path} does not exist. Set train_file / dev_file (or "
                                "--test-file) to a JSONL file in the QA record format.")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg}).") from None
            records.append(parse_record(data, f"{path}:{number}"))
    if not records:
        raise ValueError(f"{path} holds no questions.")
    log.info("Read %d questions from %s", len(records), path)
    return records


def subset(records: list[QARecord], limit: int, seed: int) -> list[QARecord]:
    """A seeded random subset of `limit` records (all of them when limit is 0), in file order."""
    if not limit or limit >= len(records):
        return list(records)
    chosen = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in chosen]


def target_text(record: QARecord, include_rationale: bool, choice_format: str) -> str:
    """What the generator learns to produce: what option scoring reads in that layout (the option's text, or
    "<letter>. <option>"), with the rationale after it when asked."""
    return choice_target(record.answer, record.options, record.rationale if include_rationale else "",
                         choice_format)


def _collapsed(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def holds_gold(record: QARecord, file_name: str, page: int, text: str) -> bool:
    """A passage is the record's gold one: same file, same physical page (when the record gives one), and
    it holds the gold span."""
    if not record.evidence_span or file_name != record.evidence_file:
        return False
    if record.evidence_page is not None and page != record.evidence_page:
        return False
    return _collapsed(record.evidence_span) in _collapsed(text)
