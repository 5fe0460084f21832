"""Start-up work that must not block the page: indexing the sample library, loading the generator."""
from __future__ import annotations

import logging
import threading

from .service import Assistant

log = logging.getLogger(__name__)


class StartupState:
    """What the page shows while the sample library is indexed and the generator loads."""

    def __init__(self, message: str = "Starting...", done: bool = False) -> None:
        self.message = message
        self.done = done

    def _progress(self, fraction: float, message: str) -> None:
        self.message = f"Preparing the library ({fraction:.0%}): {message}"

    def run(self, assistant: Assistant) -> None:
        try:
            settings = assistant.settings
            results = assistant.library.prepare(settings.guidelines_dir, settings.index_samples_on_start,
                                                self._progress)
            if results:
                log.info("Indexed %d documents at start-up", sum(r.status == "indexed" for r in results))
            self.message = "Building the word index of the library..."
            assistant.store.sync_lexical()  # else the first question pays for it
            self.message = "Loading the answer model..."
            _ = assistant.answerer
            self.message = ""
        except Exception as error:  # shown in the page; the app stays up for the library
            log.exception("Start-up failed")
            self.message = f"Start-up problem: {error}"
        finally:
            self.done = True


def start_background(assistant: Assistant) -> StartupState:
    """Index the samples (first start) and load the generator without blocking the page."""
    state = StartupState()
    threading.Thread(target=state.run, args=(assistant,), daemon=True, name="startup").start()
    return state
