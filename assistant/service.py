"""Builds the running assistant once from the settings: encoder, store, library, retriever, pipeline.

The UI, the command lines and the tests all get their components here, so models load once and are
shared by every user of a process.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings, load_settings
from .ingest import Library
from .models import Encoder, load_encoder, pick_device
from .store import GuidelineStore, make_client

log = logging.getLogger(__name__)


def checkpoint_parts(settings: Settings) -> Settings:
    """A trainer checkpoint names the retriever and adapter to use; fold them into the settings."""
    if not settings.checkpoint:
        return settings
    folder = Path(settings.checkpoint)
    changes: dict[str, Any] = {}
    if (folder / "retriever").is_dir():
        changes["embedding_model"] = str(folder / "retriever")
    if (folder / "adapter").is_dir():
        changes["adapter_path"] = str(folder / "adapter")
    return settings.replace(**changes)


def passage_encoder_source(settings: Settings) -> str:
    """Passages are embedded by the checkpoint's passage encoder when it trained one, else the base one."""
    if settings.checkpoint and (Path(settings.checkpoint) / "passage_encoder").is_dir():
        return str(Path(settings.checkpoint) / "passage_encoder")
    return load_settings_base_encoder(settings)


def load_settings_base_encoder(settings: Settings) -> str:
    if settings.checkpoint:
        import json

        meta = Path(settings.checkpoint) / "checkpoint.json"
        if meta.is_file():
            return json.loads(meta.read_text()).get("base_embedding_model", settings.embedding_model)
    return settings.embedding_model


@dataclass
class Assistant:
    """Every shared component of one running app."""

    settings: Settings
    query_encoder: Encoder
    passage_encoder: Encoder
    store: GuidelineStore
    library: Library
    load_seconds: dict[str, float] = field(default_factory=dict)
    _pipeline: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pipeline(self):
        """The answer pipeline, with the generator loaded on first use (it is the slow part)."""
        with self._lock:
            if self._pipeline is None:
                from .generator import Generator
                from .pipeline import Pipeline
                from .retriever import Retriever

                generator = Generator.load(self.settings)
                retriever = Retriever(self.query_encoder, self.store)
                self._pipeline = Pipeline(self.settings, retriever, generator)
            return self._pipeline

    def retriever(self):
        from .retriever import Retriever

        return Retriever(self.query_encoder, self.store)

    def model_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "retriever": self.query_encoder.source,
            "passage_encoder": self.passage_encoder.source,
            "collection": self.store.name,
            "chroma": self.settings.chroma_host and f"server {self.settings.chroma_host}:{self.settings.chroma_port}"
            or f"embedded at {self.settings.chroma_dir}",
            "checkpoint": self.settings.checkpoint or "none",
            "encoder_load_seconds": self.load_seconds.get("encoder", 0.0),
        }
        if self._pipeline is not None:
            status.update(self._pipeline.generator.info)
        return status


def build(settings: Settings | None = None, config_file: str | None = None) -> Assistant:
    """Load the encoders, open the store (recovering from any interrupted write) and the library."""
    settings = checkpoint_parts(settings or load_settings(config_file))
    device = pick_device(settings.device)
    started = time.perf_counter()
    query_encoder = load_encoder(settings.embedding_model, device, settings.encoder_precision)
    base = passage_encoder_source(settings)
    passage_encoder = (query_encoder if base == settings.embedding_model
                       else load_encoder(base, device, settings.encoder_precision))
    seconds = round(time.perf_counter() - started, 2)
    store = GuidelineStore(make_client(settings), f"{settings.collection}-{passage_encoder.fingerprint}")
    library = Library(settings, passage_encoder, store)
    return Assistant(settings=settings, query_encoder=query_encoder, passage_encoder=passage_encoder,
                     store=store, library=library, load_seconds={"encoder": seconds})


def build_library(config_file: str | None = None) -> Library:
    return build(config_file=config_file).library


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
