"""The retriever encoder: loading it by setting, and what ingestion and retrieval need from it."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .hardware import native_bf16
from .packaged import hub_hint, resolve_encoder_source

log = logging.getLogger(__name__)
SMALL_CALL = 8  # texts per encode() call below which bf16 autocast is not used


def fingerprint(source: str) -> str:
    """A short, stable id of the encoder's weights: a new encoder means a new collection version."""
    path = Path(source)
    digest = hashlib.sha256()
    weights = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) if path.is_dir() else []
    if weights:
        for file in weights:
            with file.open("rb") as handle:
                digest.update(handle.read(1 << 20))
            digest.update(str(file.stat().st_size).encode())
    else:
        digest.update(source.encode())
    return digest.hexdigest()[:10]


@dataclass
class Encoder:
    """A sentence-transformers encoder with what ingestion and retrieval need from it."""

    model: Any
    source: str
    fingerprint: str
    bf16: bool = False  # run encode() under bfloat16 autocast (weights stay fp32, so training is unaffected)
    # The fast tokenizer keeps its padding and truncation state between calls, and each call sets it: a
    # question embedded while an upload counts tokens in another thread would be padded by the other's state.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts without special tokens, as the chunker needs them."""
        if not texts:
            return []
        with self._lock:
            encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length float32 embeddings (cosine similarity is then a dot product).

        bf16 autocast pays off on batches (ingestion); a question or a few sentences run in fp32, which held
        up far better on a loaded CPU (measured here at load 6.6: 83 ms per query in fp32, 807 ms under bf16)."""
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), dtype=np.float32)
        import torch

        device_type = "cuda" if str(self.model.device).startswith("cuda") else "cpu"
        half = self.bf16 and len(texts) > SMALL_CALL
        with self._lock, torch.autocast(device_type, dtype=torch.bfloat16, enabled=half):
            vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_tensor=True, show_progress_bar=False)
        return vectors.float().cpu().numpy()


def load_encoder(name: str, device: str = "cpu", precision: str = "fp32") -> Encoder:
    """Load a retriever encoder by setting value ("packaged", a folder or a hub id).

    precision "bf16" (or "auto" on hardware with bf16 instructions) embeds under bfloat16 autocast:
    about 1.4x faster ingestion on this project's CPU, vectors within 1e-4 cosine of fp32 (bench/RESULTS.md).
    """
    from sentence_transformers import SentenceTransformer

    source = resolve_encoder_source(name)
    local = Path(source).is_dir()
    started = time.perf_counter()
    try:
        model = SentenceTransformer(source, device=device, local_files_only=local)
    except Exception as error:  # the library raises many types for a missing or unreachable model
        raise hub_hint("embedding_model", name, error) from error
    log.info("Retriever encoder %s loaded in %.1f s", source, time.perf_counter() - started)
    half = precision == "bf16" or (precision == "auto" and native_bf16(device))
    return Encoder(model=model, source=source, fingerprint=fingerprint(source), bf16=half)
