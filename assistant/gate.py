"""Turns at the model: a few summaries are written at once, the other questions wait in line.

Retrieval and the guideline's own wording need no model, so a question gets them at once however busy the
model is; only its summary waits here. Waiting is in arrival order, and a waiting question learns its place
in line so the page can say so. A question whose client goes away leaves the line (its generator is closed,
and `turn` releases in `finally`).
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class GenerationGate:
    def __init__(self, slots: int, poll_seconds: float = 0.5) -> None:
        self.slots = max(1, slots)
        self.poll_seconds = poll_seconds
        self._condition = threading.Condition()
        self._active = 0
        self._line: list[int] = []  # tickets waiting, in arrival order
        self._tickets = itertools.count()

    def waiting(self) -> int:
        with self._condition:
            return len(self._line)

    @contextmanager
    def turn(self) -> Iterator[Iterator[int]]:
        """`with gate.turn() as line: for position in line: ...` -- the loop yields this question's place in
        line (1 = next) whenever it changes (and every poll while it waits) and ends when the turn has come;
        the turn is given back when the `with` block ends, however it ends."""
        ticket = next(self._tickets)
        holding = False

        def line() -> Iterator[int]:
            nonlocal holding
            with self._condition:
                self._line.append(ticket)
            last = 0
            while True:
                with self._condition:
                    position = self._line.index(ticket) + 1
                    if position <= self.slots - self._active:
                        self._line.remove(ticket)
                        self._active += 1
                        holding = True
                        return
                    if position == last:
                        self._condition.wait(self.poll_seconds)
                        continue
                last = position
                yield position

        try:
            yield line()
        finally:
            with self._condition:
                if holding:
                    self._active -= 1
                elif ticket in self._line:
                    self._line.remove(ticket)
                self._condition.notify_all()
