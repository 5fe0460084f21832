"""The Chroma collection of guideline passages, behind a small add / delete / list / query contract.

Contract:
- `add_document(info, chunks, embeddings)` is all or nothing. Chunks are written first, then one record
  in the registry collection commits the document. A document is visible to `query`, `lexical_query` and
  `list_documents` only once committed; chunks left by a crash before the commit are removed by
  `recover()` (called on open). A failure during the write removes what was written before re-raising.
- `delete_document(doc_id)` removes the registry record first (the document disappears at once), then
  its chunks.
- `query(embedding, k, doc_ids)` returns up to k (Chunk, cosine similarity) pairs, best first;
  `lexical_query(text, k, doc_ids)` up to k (Chunk, BM25 score) pairs. Both return guidance passages
  (kind `body`) of committed documents only, optionally restricted to some documents, and never fail on
  a chunk another process removed meanwhile.
- `term_rarity(text)` weighs the words of `text` by how few committed passages hold them (BM25's idf).
- The lexical index (assistant.lexical) is derived from the committed documents: built when the store
  opens, updated by this process's writes, and brought in step with the registry before each lexical
  query, so documents written or deleted by another process (the command line, a second app on a Chroma
  server) are searched exactly when they are committed, in both indexes or in neither.
- Embeddings are always passed in: Chroma's default embedding function (which downloads a model) is
  never used.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np

from . import datalock
from .config import Settings
from .encoder import Encoder
from .lexical import LexicalIndex, tokenize
from .passage_kinds import BODY
from .records import Chunk, DocumentInfo

log = logging.getLogger(__name__)

_REFRESH_SECONDS = 5.0  # how stale the cached registry may be (other processes may write to a server)
# The way passages are cut, classified and described: a new format means a new collection version, which
# the app refills from the kept PDFs at start-up (Library.prepare), so no store mixes two formats.
INDEX_FORMAT = 2
_PAGE = 5000  # chunks read from Chroma per request when the lexical index is built in bulk


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
    return f"{settings.collection}-{passage_encoder.fingerprint}-v{INDEX_FORMAT}"


def open_store(settings: Settings, passage_encoder: Encoder, recover: bool = True,
               writer: bool | None = True) -> GuidelineStore:
    """The collection version of this passage encoder, embedded or on the configured Chroma server.

    Embedded, one process writes a data folder at a time (assistant.datalock): `writer=True` takes the folder
    or raises DataFolderBusy, `None` takes it when free and otherwise opens it read-only, `False` reads only.
    A read-only store never recovers or writes."""
    writable = True
    if not settings.chroma_host:
        if writer:
            datalock.acquire(settings.data_dir)
        writable = bool(writer) or (writer is None and datalock.try_acquire(settings.data_dir))
    return GuidelineStore(make_client(settings), collection_name(settings, passage_encoder),
                          recover=recover and writable, read_only=not writable)


class GuidelineStore:
    """Passages of one encoder version (the collection name carries the encoder's fingerprint)."""

    def __init__(self, client: Any, name: str, recover: bool = True, read_only: bool = False) -> None:
        self.client = client
        self.name = name
        self.read_only = read_only  # another process writes this folder: reads only, never recover
        self.chunks = client.get_or_create_collection(
            name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        self.registry = client.get_or_create_collection(name=f"{name}-docs", embedding_function=None)
        self._registry_cache: dict[str, DocumentInfo] = {}
        self._registry_read = 0.0
        self._lock = threading.RLock()  # writes: add, delete, recover
        self._cache_lock = threading.Lock()  # the cached registry
        self.lexical = LexicalIndex()
        self._lexical_lock = threading.Lock()  # one synchronisation of the lexical index at a time
        if recover:
            self.recover()

    # -- registry ---------------------------------------------------------------------------

    def _documents(self, fresh: bool = False) -> dict[str, DocumentInfo]:
        with self._cache_lock:  # not the write lock: questions must not wait for a long upload
            if fresh or time.monotonic() - self._registry_read > _REFRESH_SECONDS:
                records = self.registry.get(include=["metadatas"])
                self._registry_cache = {
                    doc_id: DocumentInfo.from_stored(meta)
                    for doc_id, meta in zip(records["ids"], records["metadatas"])}
                self._registry_read = time.monotonic()
            return self._registry_cache

    def list_documents(self, fresh: bool = True) -> list[DocumentInfo]:
        """Committed documents, oldest first; `fresh=False` accepts the cached registry (at most a few seconds
        old), which a query can afford where a registry read per query would cost too much."""
        return sorted(self._documents(fresh=fresh).values(), key=lambda info: info.added)

    def get_document(self, doc_id: str) -> DocumentInfo | None:
        return self._documents(fresh=True).get(doc_id)

    def find_by_name(self, file_name: str) -> list[DocumentInfo]:
        return [info for info in self.list_documents() if info.file_name == file_name]

    # -- writes -----------------------------------------------------------------------------

    def add_document(self, info: DocumentInfo, chunks: list[Chunk], embeddings: np.ndarray) -> None:
        """Write all chunks of a document, then commit it; on any failure nothing stays."""
        self._check_writable()
        if len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk is required")
        with self._lock:
            self._delete_chunks(info.doc_id)  # leftovers of an earlier, interrupted attempt
            try:
                self._write_chunks(chunks, embeddings)
                self._commit(info)
            except BaseException:
                log.warning("Writing %s failed; removing its partial chunks", info.file_name)
                self._delete_chunks(info.doc_id)
                raise
            finally:
                self._documents(fresh=True)
            self._index_lexically(info.doc_id, chunks)

    def replace_document(self, info: DocumentInfo, chunks: list[Chunk], embeddings: np.ndarray) -> DocumentInfo:
        """Write a registered document's chunks again (new chunk settings): the new writing goes in beside the
        live one and the registry switches to it in one record, so a crash at any moment leaves one complete
        writing live; the old one is removed afterwards (or by `recover` at the next start)."""
        self._check_writable()
        if len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk is required")
        with self._lock:
            current = self._documents(fresh=True).get(info.doc_id)
            if current is None:
                self.add_document(info, chunks, embeddings)
                return info
            generation = current.generation + 1
            info = replace(info, generation=generation, added=current.added)
            chunks = [replace(chunk, generation=generation) for chunk in chunks]
            self._delete_generations(info.doc_id, keep=current.generation)  # an earlier, interrupted attempt
            try:
                self._write_chunks(chunks, embeddings)
                self._commit(info)
            except BaseException:
                log.warning("Re-writing %s failed; the earlier writing stays live", info.file_name)
                self._delete_generations(info.doc_id, keep=current.generation)
                raise
            finally:
                self._documents(fresh=True)
            self._delete_generations(info.doc_id, keep=generation)
            self.lexical.remove(info.doc_id)
            self._index_lexically(info.doc_id, chunks)
            return info

    def _write_chunks(self, chunks: list[Chunk], embeddings: np.ndarray) -> None:
        batch = max(1, min(5000, int(self.client.get_max_batch_size())))
        for start in range(0, len(chunks), batch):
            part = chunks[start:start + batch]
            self.chunks.add(ids=[c.chunk_id for c in part], embeddings=embeddings[start:start + batch],
                            documents=[c.text for c in part], metadatas=[c.metadata() for c in part])

    def _delete_generations(self, doc_id: str, keep: int) -> int:
        """Remove a document's chunks of every writing but `keep`; returns how many."""
        stored = self.chunks.get(where={"doc_id": doc_id}, include=["metadatas"])
        stale = [chunk_id for chunk_id, meta in zip(stored["ids"], stored["metadatas"])
                 if int((meta or {}).get("generation", 0)) != keep]
        if stale:
            self.chunks.delete(ids=stale)
        return len(stale)

    def _check_writable(self) -> None:
        if self.read_only:
            raise datalock.DataFolderBusy(
                "This library was opened read-only because another process is changing its data folder: add or "
                "delete documents through that process, or stop it first.")

    def _commit(self, info: DocumentInfo) -> None:
        self.registry.upsert(ids=[info.doc_id], embeddings=[[1.0]], metadatas=[info.as_dict()])

    def delete_document(self, doc_id: str) -> bool:
        """Remove a document; True if it was there."""
        self._check_writable()
        with self._lock:
            existed = doc_id in self._documents(fresh=True)
            self.registry.delete(ids=[doc_id])
            self.lexical.remove(doc_id)
            self._delete_chunks(doc_id)
            self._documents(fresh=True)
            return existed

    def _delete_chunks(self, doc_id: str) -> None:
        self.chunks.delete(where={"doc_id": doc_id})

    def recover(self) -> int:
        """Remove chunks whose document was never committed (a crash mid-write). Returns how many."""
        with self._lock:
            committed = self._documents(fresh=True)
            stored = self.chunks.get(include=["metadatas"])
            orphans = {meta["doc_id"] for meta in stored["metadatas"] if meta["doc_id"] not in committed}
            removed = 0
            for doc_id in orphans:
                removed += sum(1 for meta in stored["metadatas"] if meta["doc_id"] == doc_id)
                self._delete_chunks(doc_id)
            if removed:
                log.warning("Removed %d chunks of %d uncommitted documents left by an interrupted write",
                            removed, len(orphans))
            # earlier writings of re-indexed documents, found in the read above (no second read per document)
            stale = [(chunk_id, meta["doc_id"]) for chunk_id, meta in zip(stored["ids"], stored["metadatas"])
                     if meta["doc_id"] in committed
                     and int(meta.get("generation", 0)) != committed[meta["doc_id"]].generation]
            if stale:
                self.chunks.delete(ids=[chunk_id for chunk_id, _ in stale])
                log.warning("Removed %d chunks of earlier writings of %d re-indexed documents", len(stale),
                            len({doc_id for _, doc_id in stale}))
            return removed + len(stale)

    # -- reads ------------------------------------------------------------------------------

    def integrity(self) -> tuple[int, int]:
        """(chunks stored, chunks the registry promises): equal when nothing is lost, duplicated or orphaned."""
        return self.count(), sum(info.chunks for info in self._documents(fresh=True).values())

    def count(self) -> int:
        return int(self.chunks.count())

    def query(self, embedding: np.ndarray, k: int, doc_ids: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """The k guidance passages nearest to the embedding, from committed documents, best first.

        Filtering every query to the committed documents would cost an `$in` over the whole library, so the
        common case runs unfiltered and drops uncommitted hits and other kinds of passage; only when they
        crowded out the guidance (a long guideline being written, a reference list near the question) is
        the query repeated with the filter.
        """
        committed = self._documents()
        if not committed or self.count() == 0:
            return []
        if doc_ids:
            allowed = [d for d in doc_ids if d in committed]
            return self._search(embedding, k, committed, allowed) if allowed else []
        hits, uncommitted = self._search_unfiltered(embedding, k, committed)
        if uncommitted and len(hits) < k:
            return self._search(embedding, k, committed, list(committed))
        return hits

    def _search_unfiltered(self, embedding: np.ndarray, k: int, committed: dict[str, DocumentInfo]
                           ) -> tuple[list[tuple[Chunk, float]], bool]:
        """Guidance hits of committed documents, and whether uncommitted ones were dropped. Other kinds of
        passage are over-fetched for and dropped, never filtered in Chroma: an `$in` over the library is the
        slow path, kept for the rare query that meets a document being written."""
        hits = self._run(embedding, k + 8 + k // 2, None)
        committed_hits = [(chunk, score) for chunk, score in hits if _live(chunk, committed)]
        kept = [(chunk, score) for chunk, score in committed_hits if chunk.kind == BODY]
        return kept[:k], len(committed_hits) < len(hits)

    def _search(self, embedding: np.ndarray, k: int, committed: dict[str, DocumentInfo], allowed: list[str]
                ) -> list[tuple[Chunk, float]]:
        documents = {"doc_id": allowed[0]} if len(allowed) == 1 else {"doc_id": {"$in": allowed}}
        where = {"$and": [documents, {"kind": BODY}]}
        return [(chunk, score) for chunk, score in self._run(embedding, k, where) if _live(chunk, committed)][:k]

    def _run(self, embedding: np.ndarray, n: int, where: dict[str, Any] | None) -> list[tuple[Chunk, float]]:
        result = self.chunks.query(query_embeddings=[np.asarray(embedding, dtype=np.float32)],
                                   n_results=max(1, min(self.count(), n)), where=where,
                                   include=["documents", "metadatas", "distances"])
        rows = zip(result["documents"][0], result["metadatas"][0], result["distances"][0])
        # a chunk removed by another process between the index lookup and the read comes back empty
        return [(Chunk.from_stored(text, meta), 1.0 - float(distance))
                for text, meta, distance in rows if text is not None and meta]

    def get(self, chunk_ids: list[str], embeddings: bool = False) -> dict[str, tuple[Chunk, np.ndarray | None]]:
        """Chunks by id (and their vectors when asked); ids no longer stored are left out."""
        if not chunk_ids:
            return {}
        include = ["documents", "metadatas", *(["embeddings"] if embeddings else [])]
        found = self.chunks.get(ids=list(chunk_ids), include=include)
        vectors = found["embeddings"] if embeddings else [None] * len(found["ids"])
        return {cid: (Chunk.from_stored(text, meta), None if vector is None else np.asarray(vector, np.float32))
                for cid, text, meta, vector in zip(found["ids"], found["documents"], found["metadatas"], vectors)
                if text is not None and meta}

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """All chunks of one document in order (for checks and re-embedding)."""
        stored = self.chunks.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        chunks = [Chunk.from_stored(text, meta) for text, meta in zip(stored["documents"], stored["metadatas"])]
        info = self._documents().get(doc_id)
        if info is not None:  # the live writing only, while a re-index writes the next one beside it
            chunks = [chunk for chunk in chunks if chunk.generation == info.generation]
        return sorted(chunks, key=lambda c: c.chunk_index)

    # -- lexical ----------------------------------------------------------------------------

    def _index_lexically(self, doc_id: str, chunks: list[Chunk]) -> None:
        body = [chunk for chunk in chunks if chunk.kind == BODY]
        self.lexical.add(doc_id, [chunk.chunk_id for chunk in body], tokenize([lexical_text(c) for c in body]))

    def _all_chunks(self, doc_ids: set[str]) -> dict[str, list[Chunk]]:
        """The live chunks of many documents, read from Chroma in pages."""
        committed = self._documents()
        grouped: dict[str, list[Chunk]] = {doc_id: [] for doc_id in doc_ids}
        for offset in range(0, self.count(), _PAGE):
            page = self.chunks.get(include=["documents", "metadatas"], limit=_PAGE, offset=offset)
            for text, meta in zip(page["documents"], page["metadatas"]):
                if text is not None and meta and meta.get("doc_id") in grouped:
                    chunk = Chunk.from_stored(text, meta)
                    if chunk.doc_id not in committed or _live(chunk, committed):
                        grouped[chunk.doc_id].append(chunk)
        return grouped

    def sync_lexical(self) -> int:
        """Bring the lexical index in step with the committed documents; returns the documents changed."""
        with self._lexical_lock:
            committed = set(self._documents())
            indexed = self.lexical.documents()
            for doc_id in indexed - committed:
                self.lexical.remove(doc_id)
            missing = committed - indexed
            if len(missing) > 20:  # a new process: one pass over the collection beats a query per document
                for doc_id, chunks in self._all_chunks(missing).items():
                    self._index_lexically(doc_id, chunks)
            else:
                for doc_id in missing:
                    self._index_lexically(doc_id, self.chunks_of(doc_id))
            if missing:
                log.info("Lexical index of %s: %d documents added, %d passages in all", self.name, len(missing),
                         len(self.lexical))
            return len(missing) + len(indexed - committed)

    def lexical_query(self, text: str, k: int, doc_ids: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """The k guidance passages that match the words of `text` best (BM25), from committed documents."""
        self.sync_lexical()
        committed = self._documents()
        allowed = set(committed) if not doc_ids else {d for d in doc_ids if d in committed}
        hits = self.lexical.search(text, k, allowed)
        found = self.get([chunk_id for chunk_id, _ in hits])
        return [(found[chunk_id][0], score) for chunk_id, score in hits if chunk_id in found]

    def term_rarity(self, text: str) -> dict[str, float]:
        """The lexical terms of `text` (stemmed, stop words out), each with its idf in the library: how much it
        singles out a few passages. 0.0 for a term no passage holds."""
        self.sync_lexical()
        return self.lexical.rarity(list(dict.fromkeys(tokenize([text])[0])))


def _live(chunk: Chunk, committed: dict[str, DocumentInfo]) -> bool:
    """A chunk of a committed document, of the writing its registry record names."""
    info = committed.get(chunk.doc_id)
    return info is not None and chunk.generation == info.generation


def lexical_text(chunk: Chunk) -> str:
    """What lexical search reads of a passage: its section heading and its text."""
    return f"{chunk.section}\n{chunk.text}" if chunk.section else chunk.text
