"""The collection the trainer trains against: building it, reading its vectors, retrieving candidates,
and re-embedding it into a new version when the passage encoder has changed.

The store is the app's own (assistant.store), named as the app names it (`<collection>-<fingerprint of
the passage encoder>`), so the app finds the re-embedded version by loading the checkpoint.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from assistant.choice import choice_query
from assistant.config import Settings
from assistant.documents import embedding_text
from assistant.encoder import Encoder, load_encoder
from assistant.library import Library
from assistant.records import Chunk
from assistant.retriever import Retriever
from assistant.store import GuidelineStore, open_store

from .jmlr import Example
from .qa import QARecord

log = logging.getLogger(__name__)


def ensure_index(settings: Settings, passage_encoder: Encoder, store: GuidelineStore) -> None:
    """Index the guideline PDFs when the collection is empty; an existing library is used as it is."""
    if store.count():
        log.info("Training against %s: %d documents, %d passages", store.name, len(store.list_documents()),
                 store.count())
        return
    folder = Path(settings.guidelines_dir)
    files = sorted(folder.glob("*.pdf"))
    if not files:
        raise FileNotFoundError(f"The collection {store.name} in {settings.data_dir} is empty and {folder} holds no "
                                "PDF to index. Set guidelines_dir to your guideline PDFs, or data_dir to an indexed "
                                "assistant data folder.")
    library = Library(settings, passage_encoder, store)
    for path in tqdm(files, desc="Indexing guidelines", unit="pdf"):
        result = library.add_path(path)
        if result.status == "refused":
            log.warning("%s was not indexed: %s", path.name, result.message)
    log.info("Indexed %d PDFs into %s: %d passages", len(files), store.name, store.count())


class PassageVectors:
    """Passage embeddings as stored in the collection (the frozen passage side), fetched by chunk id."""

    def __init__(self, store: GuidelineStore) -> None:
        self.store = store
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, chunk_ids: list[str]) -> torch.Tensor:
        missing = sorted({cid for cid in chunk_ids if cid not in self._cache})
        if missing:
            found = self.store.chunks.get(ids=missing, include=["embeddings"])
            for cid, vector in zip(found["ids"], found["embeddings"]):
                self._cache[cid] = np.asarray(vector, dtype=np.float32)
        absent = [cid for cid in chunk_ids if cid not in self._cache]
        if absent:
            raise KeyError(f"{len(absent)} candidate passages are no longer in {self.store.name} (first: {absent[0]}).")
        return torch.from_numpy(np.stack([self._cache[cid] for cid in chunk_ids]))


def retrieve_candidates(encoder: Encoder, store: GuidelineStore, records: list[QARecord], n: int,
                        settings: Settings) -> list[Example]:
    """Each question's N best passages, found as the app finds them (the retrieval settings: hybrid by
    default) with the query encoder as it is now (called at every epoch start)."""
    retriever = Retriever.from_settings(encoder, store, settings)
    examples = []
    for record in tqdm(records, desc="Retrieving candidates", unit="question", leave=False):
        query = choice_query(record.question, record.options)
        hits = retriever.ranked_chunks(query, n)
        if len(hits) < 2:
            raise ValueError(f"The collection {store.name} returned {len(hits)} passages: index more documents.")
        examples.append(Example(record=record, candidates=[chunk for chunk, _ in hits], query=query))
    return examples


def reembed(store: GuidelineStore, settings: Settings, encoder_folder: Path) -> GuidelineStore:
    """Copy every committed document of `store` into the collection version of the encoder saved in
    `encoder_folder`, with new embeddings. Chunks (text, pages, offsets) are kept as they are."""
    encoder = load_encoder(str(encoder_folder), "cpu" if not torch.cuda.is_available() else "cuda")
    target = open_store(settings, encoder)
    if target.name == store.name:
        log.warning("The passage encoder's fingerprint did not change; %s is kept as it is", store.name)
        return store
    for info in tqdm(store.list_documents(), desc=f"Re-embedding into {target.name}", unit="doc"):
        chunks: list[Chunk] = store.chunks_of(info.doc_id)
        existing = target.get_document(info.doc_id)
        if existing and existing.chunks == len(chunks):
            continue
        vectors = encoder.encode([embedding_text(chunk) for chunk in chunks], settings.embed_batch_size)
        target.add_document(info, chunks, vectors)
    log.info("Collection version %s: %d documents, %d passages", target.name, len(target.list_documents()),
             target.count())
    return target
