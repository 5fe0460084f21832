"""Builds the running assistant once from the settings: encoders, store, library, retriever, answerer.

The UI, the command lines, the tests and the benchmarks all get their components here, so models load
once and are shared by every user of a process. Parts already loaded (an encoder, a PDF reader) can be
passed in, so a test or a benchmark builds the real thing without loading a model twice.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .answering import Answerer
from .checkpoint import apply_checkpoint, passage_encoder_source
from .config import Settings, load_settings
from .documents import Reader
from .encoder import Encoder, load_encoder
from .generator import Generator
from .hardware import pick_device
from .library import Library
from .retriever import Retriever
from .store import GuidelineStore, open_store

log = logging.getLogger(__name__)


@dataclass
class Assistant:
    """Every shared component of one running app."""

    settings: Settings
    query_encoder: Encoder
    passage_encoder: Encoder
    store: GuidelineStore
    library: Library
    load_seconds: dict[str, float] = field(default_factory=dict)
    _answerer: Answerer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def answerer(self) -> Answerer:
        """The answerer, with the generator loaded on first use (it is the slow part)."""
        with self._lock:
            if self._answerer is None:
                self._answerer = Answerer(self.settings, self.retriever(), Generator.load(self.settings))
            return self._answerer

    @property
    def generator_loaded(self) -> bool:
        return self._answerer is not None

    def retriever(self) -> Retriever:
        return Retriever.from_settings(self.query_encoder, self.store, self.settings)

    def model_status(self) -> dict[str, Any]:
        settings = self.settings
        chroma = (f"server {settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host
                  else f"embedded at {settings.chroma_dir}")
        status: dict[str, Any] = {
            "retriever": self.query_encoder.source,
            "passage_encoder": self.passage_encoder.source,
            "collection": self.store.name,
            "chroma": chroma,
            "checkpoint": settings.checkpoint or "none",
            "encoder_load_seconds": self.load_seconds.get("encoder", 0.0),
        }
        if self._answerer is not None:
            status.update(self._answerer.generator.info)
        return status


def build_assistant(settings: Settings | None = None, config_file: str | None = None, *,
                    query_encoder: Encoder | None = None, passage_encoder: Encoder | None = None,
                    reader: Reader | None = None, generator: Generator | None = None,
                    writer: bool | None = True) -> Assistant:
    """Load the encoders (unless given), open the store (recovering from any interrupted write) and the library.

    A given `query_encoder` serves as the passage encoder too unless a checkpoint names another one; a given
    `generator` answers instead of the configured one (loaded on first use otherwise). `writer`: whether this
    process changes the data folder (see `open_store`; DataFolderBusy when another process does)."""
    settings = apply_checkpoint(settings or load_settings(config_file))
    device = pick_device(settings.device)
    started = time.perf_counter()
    query_encoder = query_encoder or load_encoder(settings.embedding_model, device, settings.encoder_precision)
    if passage_encoder is None:
        source = passage_encoder_source(settings)
        passage_encoder = (query_encoder if source == settings.embedding_model
                           else load_encoder(source, device, settings.encoder_precision))
    seconds = round(time.perf_counter() - started, 2)
    store = open_store(settings, passage_encoder, writer=writer)
    library = Library(settings, passage_encoder, store, reader=reader)
    assistant = Assistant(settings=settings, query_encoder=query_encoder, passage_encoder=passage_encoder,
                          store=store, library=library, load_seconds={"encoder": seconds})
    if generator is not None:
        assistant._answerer = Answerer(settings, assistant.retriever(), generator)
    return assistant


def configure_logging(level: int = logging.INFO) -> None:
    """Readable logs; the chattier libraries only report problems."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pypdf", "httpx", "chromadb", "sentence_transformers", "urllib3", "transformers",
                  "bitsandbytes"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
