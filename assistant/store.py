"""The Chroma collection of guideline passages, behind a small add / delete / list / query contract.

Contract:
- `add_document(info, chunks, embeddings)` is all or nothing. Chunks are written first, then one record
  in the registry collection commits the document. A document is visible to `query` and
  `list_documents` only once committed; chunks left by a crash before the commit are removed by
  `recover()` (called on open). A failure during the write removes what was written before re-raising.
- `delete_document(doc_id)` removes the registry record first (the document disappears at once), then
  its chunks.
- `query(embedding, k, doc_ids)` returns up to k (Chunk, cosine similarity) pairs, best first, from
  committed documents only, optionally restricted to some documents.
- Embeddings are always passed in: Chroma's default embedding function (which downloads a model) is
  never used.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from .config import Settings
from .encoder import Encoder
from .records import Chunk, DocumentInfo

log = logging.getLogger(__name__)

_REFRESH_SECONDS = 5.0  # how stale the cached registry may be (other processes may write to a server)


def make_client(settings: Settings) -> Any:
    """An embedded PersistentClient in the data folder, or an HttpClient when a server is configured."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_host:
        log.info("Using the Chroma server at %s:%d", settings.chroma_host, settings.chroma_port)
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


def collection_name(settings: Settings, passage_encoder: Encoder) -> str:
    """Each passage encoder has its own collection version: vectors of two encoders never mix."""
    return f"{settings.collection}-{passage_encoder.fingerprint}"


def open_store(settings: Settings, passage_encoder: Encoder, recover: bool = True) -> GuidelineStore:
    """The collection version of this passage encoder, embedded or on the configured Chroma server."""
    return GuidelineStore(make_client(settings), collection_name(settings, passage_encoder), recover=recover)


class GuidelineStore:
    """Passages of one encoder version (the collection name carries the encoder's fingerprint)."""

    def __init__(self, client: Any, name: str, recover: bool = True) -> None:
        self.client = client
        self.name = name
        self.chunks = client.get_or_create_collection(
            name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        self.registry = client.get_or_create_collection(name=f"{name}-docs", embedding_function=None)
        self._registry_cache: dict[str, DocumentInfo] = {}
        self._registry_read = 0.0
        self._lock = threading.RLock()  # writes: add, delete, recover
        self._cache_lock = threading.Lock()  # the cached registry
        if recover:
            self.recover()

    # -- registry ---------------------------------------------------------------------------

    def _documents(self, fresh: bool = False) -> dict[str, DocumentInfo]:
        with self._cache_lock:  # not the write lock: questions must not wait for a long upload
            if fresh or time.monotonic() - self._registry_read > _REFRESH_SECONDS:
                records = self.registry.get(include=["metadatas"])
                self._registry_cache = {
                    doc_id: DocumentInfo(**{k: meta[k] for k in DocumentInfo.__dataclass_fields__})
                    for doc_id, meta in zip(records["ids"], records["metadatas"])}
                self._registry_read = time.monotonic()
            return self._registry_cache

    def list_documents(self) -> list[DocumentInfo]:
        """Committed documents, oldest first."""
        return sorted(self._documents(fresh=True).values(), key=lambda info: info.added)

    def get_document(self, doc_id: str) -> DocumentInfo | None:
        return self._documents(fresh=True).get(doc_id)

    def find_by_name(self, file_name: str) -> list[DocumentInfo]:
        return [info for info in self.list_documents() if info.file_name == file_name]

    # -- writes -----------------------------------------------------------------------------

    def add_document(self, info: DocumentInfo, chunks: list[Chunk], embeddings: np.ndarray) -> None:
        """Write all chunks of a document, then commit it; on any failure nothing stays."""
        if len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk is required")
        with self._lock:
            self._delete_chunks(info.doc_id)  # leftovers of an earlier, interrupted attempt
            try:
                batch = max(1, min(5000, int(self.client.get_max_batch_size())))
                for start in range(0, len(chunks), batch):
                    part = chunks[start:start + batch]
                    self.chunks.add(ids=[c.chunk_id for c in part],
                                    embeddings=embeddings[start:start + batch],
                                    documents=[c.text for c in part],
                                    metadatas=[c.metadata() for c in part])
                self._commit(info)
            except BaseException:
                log.warning("Writing %s failed; removing its partial chunks", info.file_name)
                self._delete_chunks(info.doc_id)
                raise
            finally:
                self._documents(fresh=True)

    def _commit(self, info: DocumentInfo) -> None:
        self.registry.upsert(ids=[info.doc_id], embeddings=[[1.0]], metadatas=[info.as_dict()])

    def delete_document(self, doc_id: str) -> bool:
        """Remove a document; True if it was there."""
        with self._lock:
            existed = doc_id in self._documents(fresh=True)
            self.registry.delete(ids=[doc_id])
            self._delete_chunks(doc_id)
            self._documents(fresh=True)
            return existed

    def _delete_chunks(self, doc_id: str) -> None:
        self.chunks.delete(where={"doc_id": doc_id})

    def recover(self) -> int:
        """Remove chunks whose document was never committed (a crash mid-write). Returns how many."""
        with self._lock:
            committed = set(self._documents(fresh=True))
            stored = self.chunks.get(include=["metadatas"])
            orphans = {meta["doc_id"] for meta in stored["metadatas"] if meta["doc_id"] not in committed}
            removed = 0
            for doc_id in orphans:
                removed += sum(1 for meta in stored["metadatas"] if meta["doc_id"] == doc_id)
                self._delete_chunks(doc_id)
            if removed:
                log.warning("Removed %d chunks of %d uncommitted documents left by an interrupted write",
                            removed, len(orphans))
            return removed

    # -- reads ------------------------------------------------------------------------------

    def integrity(self) -> tuple[int, int]:
        """(chunks stored, chunks the registry promises): equal when nothing is lost, duplicated or orphaned."""
        return self.count(), sum(info.chunks for info in self._documents(fresh=True).values())

    def count(self) -> int:
        return int(self.chunks.count())

    def query(self, embedding: np.ndarray, k: int, doc_ids: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """The k passages nearest to the embedding, from committed documents, best first.

        Filtering every query to the committed documents would cost an `$in` over the whole library, so the
        common case runs unfiltered and drops uncommitted hits; only when they crowded out the library's
        passages (a long guideline being written, here or by another process) is the query repeated with
        the filter.
        """
        committed = self._documents()
        if not committed or self.count() == 0:
            return []
        if doc_ids:
            allowed = [d for d in doc_ids if d in committed]
            if not allowed:
                return []
            return self._search(embedding, k, committed, allowed)
        hits, dropped = self._search_unfiltered(embedding, k, committed)
        if dropped and len(hits) < k:
            return self._search(embedding, k, committed, list(committed))
        return hits

    def _search_unfiltered(self, embedding: np.ndarray, k: int, committed: dict[str, DocumentInfo]
                           ) -> tuple[list[tuple[Chunk, float]], bool]:
        hits = self._run(embedding, k + 8, None)
        kept = [(chunk, score) for chunk, score in hits if chunk.doc_id in committed]
        return kept[:k], len(kept) < len(hits)

    def _search(self, embedding: np.ndarray, k: int, committed: dict[str, DocumentInfo], allowed: list[str]
                ) -> list[tuple[Chunk, float]]:
        where = {"doc_id": allowed[0]} if len(allowed) == 1 else {"doc_id": {"$in": allowed}}
        return [(chunk, score) for chunk, score in self._run(embedding, k, where) if chunk.doc_id in committed][:k]

    def _run(self, embedding: np.ndarray, n: int, where: dict[str, Any] | None) -> list[tuple[Chunk, float]]:
        result = self.chunks.query(query_embeddings=[np.asarray(embedding, dtype=np.float32)],
                                   n_results=max(1, min(self.count(), n)), where=where,
                                   include=["documents", "metadatas", "distances"])
        return [(Chunk(text=text, **{k: meta[k] for k in Chunk.__dataclass_fields__ if k != "text"}),
                 1.0 - float(distance))
                for text, meta, distance in zip(result["documents"][0], result["metadatas"][0],
                                                result["distances"][0])]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """All chunks of one document in order (for checks and re-embedding)."""
        stored = self.chunks.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        chunks = [Chunk(text=text, **{k: meta[k] for k in Chunk.__dataclass_fields__ if k != "text"})
                  for text, meta in zip(stored["documents"], stored["metadatas"])]
        return sorted(chunks, key=lambda c: c.chunk_index)
