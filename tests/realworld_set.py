"""The real-guideline question set (bench/data/realworld.jsonl) and the check of its gold spans against a parsed
PDF: test_realworld reads each real PDF once and runs it on that reading."""
from __future__ import annotations

import json
import re

from conftest import ROOT

QUESTIONS = ROOT / "bench" / "data" / "realworld.jsonl"
RECORDS = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]


def squeeze(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def gold_span_problems(file: str, chunks: list) -> list[str]:
    """Why the questions citing `file` are unsound against its passages: a gold span that is not in a passage of
    its page, or only in non-guidance text (a reference list), or an answer key the span does not hold."""
    problems = []
    for record in (r for r in RECORDS if r["evidence"]["file"] == file):
        span, page = squeeze(record["evidence"]["span"]), record["evidence"]["page"]
        holding = [chunk for chunk in chunks if span in squeeze(chunk.text)]
        if not any(chunk.page == page for chunk in holding):
            problems.append(f"{record['id']}: span not in a passage of page {page}")
        elif not any(chunk.kind == "body" for chunk in holding):
            problems.append(f"{record['id']}: span only in non-guidance text")
        key = squeeze(record["key"])
        if not (key in span and key in squeeze(record["options"][record["answer"]])):
            problems.append(f"{record['id']}: the answer key is not in both the span and the right option")
    return problems
