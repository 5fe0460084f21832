"""Turns at the model: evidence at once for every question, the summaries one turn at a time, in order."""
from __future__ import annotations

import threading
import time

from assistant.gate import GenerationGate
from assistant.service import build_assistant

from pdfs import GUIDELINE_PAGES, make_pdf


def _wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_waiters_learn_their_place_and_take_turns_in_arrival_order():
    gate = GenerationGate(slots=1, poll_seconds=0.05)
    release = threading.Event()
    positions: dict[str, list[int]] = {"b": [], "c": []}
    order: list[str] = []

    def hold() -> None:
        with gate.turn() as line:
            assert list(line) == []  # a free slot: no waiting
            order.append("a")
            release.wait(30)

    def wait(name: str) -> None:
        with gate.turn() as line:
            positions[name].extend(line)
            order.append(name)

    first = threading.Thread(target=hold)
    first.start()
    _wait_for(lambda: order == ["a"])
    second = threading.Thread(target=wait, args=("b",))
    second.start()
    _wait_for(lambda: gate.waiting() == 1)
    third = threading.Thread(target=wait, args=("c",))
    third.start()
    _wait_for(lambda: gate.waiting() == 2)
    release.set()
    for thread in (first, second, third):
        thread.join(30)
    assert order == ["a", "b", "c"]
    assert positions["b"] == [1] and positions["c"][0] == 2 and set(positions["c"]) <= {1, 2}


def test_a_question_that_leaves_the_line_gives_up_its_place():
    gate = GenerationGate(slots=1, poll_seconds=0.05)
    with gate.turn() as line:
        list(line)  # holding the only slot
        waiting = gate.turn()
        positions = waiting.__enter__()
        assert next(positions) == 1 and gate.waiting() == 1
        waiting.__exit__(None, None, None)  # the client went away
        assert gate.waiting() == 0
    with gate.turn() as line:
        assert list(line) == []  # the slot came back


def test_every_question_gets_its_evidence_before_any_summary_is_done(settings, encoder, real_generator):
    """One turn at the model and three questions at once: all three show evidence and wording at once, the
    waiting ones say their place in line, and every summary still comes."""
    assistant = build_assistant(settings.replace(concurrency_limit=1), query_encoder=encoder,
                                generator=real_generator)
    assistant.library.add_bytes(make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol"), "anaphylaxis.pdf")
    began = time.monotonic()
    seen: dict[int, dict] = {}

    def ask(number: int) -> None:
        record = seen.setdefault(number, {"texts": []})
        for answer in assistant.answerer.ask_stream(f"What is the adrenaline dose in anaphylaxis? ({number})"):
            if answer.evidence and "evidence" not in record:
                record["evidence"] = time.monotonic() - began
            record["texts"].append(answer.text)
        record["done"] = time.monotonic() - began
        record["final"] = answer

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    first_done = min(record["done"] for record in seen.values())
    assert all(record["evidence"] < first_done for record in seen.values())
    waited = [text for record in seen.values() for text in record["texts"] if "waiting for the model" in text]
    assert any("(number 1 in line)" in text for text in waited) and any("(number 2 in line)" in text for text in waited)
    for record in seen.values():
        final = record["final"]
        assert "waiting for the model" not in final.text and final.timings.get("first_token_s") is not None
