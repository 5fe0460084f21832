"""The sample corpus and the QA dataset shipped in guidelines/: shape, validity, and the cloze builder."""
from __future__ import annotations

import copy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pypdf import PdfReader

from trainer.baselines import baseline_accuracies, form_cues, longest_choice, most_similar_choice
from trainer.data import (
    HELD_OUT,
    MAX_LONGEST_OVER_CHANCE,
    QA_DIR,
    SPLITS,
    PageTexts,
    assign_splits,
    build_cloze,
    read_jsonl,
    validate,
)

from conftest import ROOT
from pdfs import make_pdf

pytestmark = pytest.mark.xdist_group("test_qa_dataset")  # module-scoped fixtures: one worker builds them once

GUIDELINES = ROOT / "guidelines"
SOURCES = sorted(p for p in (GUIDELINES / "src").glob("*.md") if p.name != "FORMAT.md")


def _front_matter(path: Path) -> dict[str, str]:
    head = path.read_text().split("---")[1]
    return {k.strip(): v.split("#")[0].strip() for k, v in
            (line.split(":", 1) for line in head.strip().splitlines() if ":" in line)}


@pytest.fixture(scope="module")
def splits():
    return {name: read_jsonl(QA_DIR / f"{name}.jsonl") for name in SPLITS}


@pytest.fixture(scope="module")
def pages():
    return PageTexts()


def test_corpus_has_varied_guidelines_rendered_from_sources():
    assert len(SOURCES) >= 16
    metas = [_front_matter(path) for path in SOURCES]
    layouts = Counter(m["layout"] for m in metas)
    assert layouts["two-column"] >= 2
    assert sum("|---" in path.read_text().replace(" ", "") for path in SOURCES) >= 3  # tables
    for meta in metas:
        reader = PdfReader(GUIDELINES / meta["file"])
        assert 3 <= len(reader.pages) <= 12, meta["file"]
        first = " ".join(reader.pages[i].extract_text() for i in range(min(3, len(reader.pages))))
        assert meta["code"] in first and "Based on" in first  # names the guideline it follows
    roman = [m["file"] for m in metas if m.get("front_matter") == "roman"]
    assert roman
    labels = PdfReader(GUIDELINES / roman[0]).page_labels
    assert labels[:3] == ["i", "ii", "1"]


def test_rendering_is_reproducible(tmp_path):
    source = SOURCES[0]
    subprocess.run([sys.executable, str(GUIDELINES / "render.py"), "--out", str(tmp_path), source.stem],
                   check=True, cwd=ROOT, capture_output=True)
    name = _front_matter(source)["file"]
    assert (tmp_path / name).read_bytes() == (GUIDELINES / name).read_bytes(), \
        "committed PDF differs from its source: run `make guidelines`"


def test_shipped_dataset_is_valid(splits, pages):
    assert validate(splits, pages) == []


def test_dataset_size_spread_and_held_out_documents(splits):
    everything = [r for records in splits.values() for r in records]
    assert len(everything) >= 400
    files = {r["evidence"]["file"] for r in everything}
    assert files == {_front_matter(p)["file"] for p in SOURCES}  # every document has questions
    kinds = Counter(r["kind"] for r in everything)
    assert set(kinds) >= {"first_line", "dose", "threshold", "contraindication", "diagnosis", "monitoring",
                          "referral"}
    assert sum(r["vignette"] for r in everything) >= len(everything) // 2
    train_files = {r["evidence"]["file"] for r in splits["train"]}
    unseen = {r["evidence"]["file"] for r in splits["test"] if r["part"] == "unseen"}
    assert len(unseen) >= 3 and not unseen & train_files and set(HELD_OUT) == unseen
    assert {r["part"] for r in splits["test"]} == {"seen", "unseen"}
    assert all(4 <= len(r["options"]) <= 5 for r in everything)


def test_validator_catches_each_defect(splits, pages):
    good = copy.deepcopy(splits["dev"][:3])
    broken = copy.deepcopy(good)
    broken[0]["answer"] = "E" if len(broken[0]["options"]) == 4 else "Z"
    broken[1]["evidence"]["page"] = broken[1]["evidence"]["page"] % 3 + 1 + 3
    broken[2]["evidence"]["span"] = "words that appear on no page of this guideline at all"
    problems = [str(p) for p in validate({"dev": broken}, pages)]
    assert any("not one of the options" in p for p in problems)
    assert any("outside" in p or "not found" in p for p in problems if broken[1]["id"] in p)
    assert any("not found" in p for p in problems if broken[2]["id"] in p)

    duplicate = copy.deepcopy(good[0])
    duplicate["id"] = "copy-1"
    near = copy.deepcopy(good[1])
    near["id"] = "near-1"
    near["question"] = near["question"].rstrip("?") + " in adults?"
    problems = [str(p) for p in validate({"train": good, "test": [duplicate, near]}, pages)]
    assert any("same question" in p for p in problems) and any("near-duplicate" in p for p in problems)


def test_splits_are_deterministic_and_hold_documents_out(splits):
    everything = [r for records in splits.values() for r in records]
    again = assign_splits([{k: v for k, v in r.items() if k not in ("split", "part")} for r in everything])
    assert [r["id"] for r in again["train"]] == [r["id"] for r in splits["train"]]
    assert not {r["evidence"]["file"] for r in again["train"]} & set(HELD_OUT)


def test_cloze_questions_from_a_users_documents_validate(library, tmp_path):
    pages_text = [
        "1 Dosing\nGive amoxicillin 500 mg three times a day for 5 days in adults with pneumonia. "
        "Offer doxycycline 200 mg on the first day for adults allergic to penicillin.",
        "2 Thresholds\nTreat blood pressure above 140/90 mmHg in adults under 80 years. "
        "Start metformin at 500 mg once daily and review HbA1c after 3 months.",
        "3 Monitoring\nCheck potassium within 2 weeks of starting ramipril at 2.5 mg daily. "
        "Refer if eGFR falls by more than 25% within 12 months.",
    ]
    result = library.add_bytes(make_pdf(pages_text, title="Local prescribing guide"), "local-guide.pdf")
    chunks = library.store.chunks_of(result.doc_id)
    records = build_cloze(chunks, limit=50)
    assert len(records) >= 5
    for record in records:
        assert record["options"][record["answer"]] not in record["question"]
        assert "_____" in record["question"] and record["kind"] == "cloze"
        correct = record["options"][record["answer"]]
        assert correct.lower() in record["rationale"].lower()
    checker = PageTexts(tmp_path, files_dir=library.settings.files_dir)
    assert validate({"train": records}, checker) == []


def test_no_split_rewards_the_options_form(splits):
    """The right option is the longest about as often as chance: the test measures medicine, not form."""
    for name, records in splits.items():
        scores = baseline_accuracies(records)
        assert scores["longest option"] <= scores["chance"] + MAX_LONGEST_OVER_CHANCE, name
        assert scores["most similar to the question"] <= scores["chance"] + 0.10, name
        assert not [r["id"] for r in records if form_cues(r)], name


def test_validator_refuses_a_split_the_longest_option_games(splits, pages):
    gamed = copy.deepcopy(splits["dev"])
    for record in gamed:  # make the right option the longest, and the only one with a number
        right = record["options"][record["answer"]]
        record["options"] = {letter: (text if letter == record["answer"] else f"Other {letter}") for letter, text in
                             record["options"].items()}
        record["options"][record["answer"]] = right + " within 24 hours, if tolerated"
    problems = [str(p) for p in validate({"dev": gamed}, pages)]
    assert any(p.startswith("split dev: always choosing the longest option") for p in problems)
    assert any("only one with a number" in p for p in problems)
    assert any("only one with a hedge" in p for p in problems)
    assert baseline_accuracies(gamed)["longest option"] == 1.0


def test_baselines_pick_by_form():
    record = {"question": "Which drug is first line for lower UTI in women?", "answer": "B",
              "options": {"A": "Amoxicillin for five days", "B": "Nitrofurantoin", "C": "First line drug for UTI"}}
    assert longest_choice(record) == "A" and most_similar_choice(record) == "C"
    scores = baseline_accuracies([record])
    assert scores["longest option"] == 0.0 and scores["first option"] == 0.0
    assert abs(scores["chance"] - 1 / 3) < 1e-9
    assert form_cues(record) == []
