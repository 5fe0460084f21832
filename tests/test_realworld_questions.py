"""The real-guideline question set (bench/data/realworld.jsonl) is varied and covers real PDFs that are there.
Its gold spans are checked where each PDF is read (test_realworld: on its page as the app extracts it, inside a
guidance passage, not a reference list, and holding the answer key). The PDFs stay outside the project."""
from __future__ import annotations

from collections import Counter

import pytest

from conftest import REALWORLD
from realworld_set import RECORDS

if not REALWORLD.is_dir():
    pytest.skip(reason=f"the real guideline PDFs are not available: {REALWORLD} does not exist (the question set "
                "is checked against them where they are)", allow_module_level=True)


def test_the_set_is_large_and_varied_enough():
    files = Counter(record["evidence"]["file"] for record in RECORDS)
    assert len(RECORDS) >= 80 and len(files) >= 10
    assert len({record["id"] for record in RECORDS}) == len(RECORDS)
    naming = sum(record["names_guideline"] for record in RECORDS)
    assert 0.2 <= naming / len(RECORDS) <= 0.5  # some name the guideline, most do not
    longest = sum(max(record["options"].values(), key=len) == record["options"][record["answer"]]
                  for record in RECORDS)
    assert longest / len(RECORDS) <= 0.35  # the length of an option does not give the answer away
    assert set(Counter(record["answer"] for record in RECORDS)) == {"A", "B", "C", "D"}


def test_every_cited_guideline_is_there_to_check_the_spans_against():
    """test_realworld reads each real PDF once and checks the gold spans of the questions citing it
    (`realworld_set.gold_span_problems`): every cited file must be among those it reads."""
    assert {record["evidence"]["file"] for record in RECORDS} <= {path.name for path in REALWORLD.glob("*.pdf")}
