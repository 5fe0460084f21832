"""Lexical search: BM25 over the passages of one collection, updated a document at a time.

Dense embeddings miss what a clinician often asks by: a guideline code ("NG51"), a drug name the encoder
never saw, an exact figure ("1500 ml", "135/85 mmHg", "within 1 hour"). BM25 over the words finds those.
Tokens come from bm25s's tokenizer (lower case, English stop words removed, Snowball stems from
PyStemmer); numbers and one-letter units are kept, since doses and thresholds are what is searched for.

The index is derived data: the store keeps it in step with the documents it has committed (assistant.store),
so it is rebuilt from the store when a process starts and follows writes by any process. It keeps
postings per term, so adding or removing a document costs that document's tokens, not the library's.
Scores follow BM25 as Lucene computes it: idf = ln(1 + (N - df + 0.5) / (df + 0.5)) times
tf / (tf + k1 * (1 - b + b * length / average length)); a test checks them against bm25s's own.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

TOKEN_PATTERN = r"(?u)\b\w+\b"  # one-character tokens too: "1 hour", "5 g", "B" in "hepatitis B"
K1 = 1.5
B = 0.75


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop words out, stemmed: the same for passages and queries."""
    import bm25s

    if not texts:
        return []
    return bm25s.tokenize(texts, token_pattern=TOKEN_PATTERN, stopwords="en", stemmer=_stemmer(),
                          return_ids=False, show_progress=False)


@dataclass
class _Postings:
    """The rows holding one term and how often, as growing lists of arrays joined when searched."""

    rows: list[np.ndarray] = field(default_factory=list)
    counts: list[np.ndarray] = field(default_factory=list)
    joined: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, rows: np.ndarray, counts: np.ndarray) -> None:
        self.rows.append(rows)
        self.counts.append(counts)
        self.joined = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.joined is None:
            self.joined = (np.concatenate(self.rows), np.concatenate(self.counts))
            self.rows, self.counts = [self.joined[0]], [self.joined[1]]
        return self.joined


class LexicalIndex:
    """BM25 over passages (rows), grouped by document so a document is added or removed as a whole."""

    def __init__(self, k1: float = K1, b: float = B) -> None:
        self.k1, self.b = k1, b
        self._lock = threading.RLock()
        self._vocabulary: dict[str, int] = {}
        self._postings: dict[int, _Postings] = {}
        self._document_frequency = np.zeros(0, dtype=np.int64)
        self._row_ids: list[str] = []  # chunk id of each row
        self._row_document = np.zeros(0, dtype=np.int32)
        self._row_length = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)
        self._documents: dict[str, int] = {}  # doc id -> its number
        self._document_rows: dict[str, np.ndarray] = {}
        self._document_terms: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # terms, rows holding each
        self._live_rows = 0
        self._live_length = 0.0

    # -- writes -----------------------------------------------------------------------------

    def _term(self, token: str) -> int:
        number = self._vocabulary.get(token)
        if number is None:
            number = self._vocabulary[token] = len(self._vocabulary)
            self._postings[number] = _Postings()
        return number

    def add(self, doc_id: str, chunk_ids: list[str], token_lists: list[list[str]]) -> None:
        """Index a document's passages (replacing an earlier copy of the same document)."""
        with self._lock:
            self.remove(doc_id)
            first = len(self._row_ids)
            rows = np.arange(first, first + len(chunk_ids), dtype=np.int64)
            by_term: dict[int, tuple[list[int], list[int]]] = {}
            lengths = np.zeros(len(chunk_ids), dtype=np.float64)
            for offset, tokens in enumerate(token_lists):
                lengths[offset] = len(tokens)
                for token, count in Counter(tokens).items():
                    entry = by_term.setdefault(self._term(token), ([], []))
                    entry[0].append(first + offset)
                    entry[1].append(count)
            for term, (term_rows, term_counts) in by_term.items():
                self._postings[term].add(np.asarray(term_rows, dtype=np.int64), np.asarray(term_counts, np.float64))
            terms = np.fromiter(by_term, dtype=np.int64, count=len(by_term))
            rows_with_term = np.array([len(by_term[t][0]) for t in terms.tolist()], dtype=np.int64)
            if len(self._vocabulary) > len(self._document_frequency):
                grown = np.zeros(len(self._vocabulary), dtype=np.int64)
                grown[:len(self._document_frequency)] = self._document_frequency
                self._document_frequency = grown
            self._document_frequency[terms] += rows_with_term
            number = self._documents.setdefault(doc_id, len(self._documents))
            self._row_ids.extend(chunk_ids)
            self._row_document = np.concatenate([self._row_document, np.full(len(chunk_ids), number, np.int32)])
            self._row_length = np.concatenate([self._row_length, lengths])
            self._alive = np.concatenate([self._alive, np.ones(len(chunk_ids), dtype=bool)])
            self._document_rows[doc_id] = rows
            self._document_terms[doc_id] = (terms, rows_with_term)
            self._live_rows += len(chunk_ids)
            self._live_length += float(lengths.sum())

    def remove(self, doc_id: str) -> bool:
        """Forget a document's passages; True when it was indexed."""
        with self._lock:
            rows = self._document_rows.pop(doc_id, None)
            if rows is None:
                return False
            terms, rows_with_term = self._document_terms.pop(doc_id)
            self._document_frequency[terms] -= rows_with_term
            self._alive[rows] = False
            self._live_rows -= len(rows)
            self._live_length -= float(self._row_length[rows].sum())
            if self._live_rows < len(self._row_ids) // 2:
                self._compact()
            return True

    def _compact(self) -> None:
        """Drop the rows of removed documents once they are most of the index."""
        keep = np.flatnonzero(self._alive)
        new_number = np.full(len(self._row_ids), -1, dtype=np.int64)
        new_number[keep] = np.arange(len(keep))
        for postings in self._postings.values():
            if not postings.rows:
                continue
            rows, counts = postings.arrays()
            live = self._alive[rows]
            postings.rows, postings.counts, postings.joined = [new_number[rows[live]]], [counts[live]], None
        self._row_ids = [self._row_ids[i] for i in keep.tolist()]
        self._row_document = self._row_document[keep]
        self._row_length = self._row_length[keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self._document_rows = {doc: new_number[rows] for doc, rows in self._document_rows.items()}

    # -- reads ------------------------------------------------------------------------------

    def documents(self) -> set[str]:
        with self._lock:
            return set(self._document_rows)

    def __len__(self) -> int:
        return self._live_rows

    def rarity(self, tokens: list[str]) -> dict[str, float]:
        """Each token's idf among the live passages (as BM25 weighs it); 0.0 for a token no passage holds, which
        no passage can state either."""
        with self._lock:
            rarity = {}
            for token in tokens:
                term = self._vocabulary.get(token)
                frequency = int(self._document_frequency[term]) if term is not None else 0
                rarity[token] = float(np.log(1.0 + (self._live_rows - frequency + 0.5) / (frequency + 0.5))) \
                    if frequency > 0 else 0.0
            return rarity

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every row for the query (0 for rows without a query term, and removed rows); a term
        the query repeats counts as often as it is repeated."""
        with self._lock:
            total = np.zeros(len(self._row_ids), dtype=np.float64)
            if not self._live_rows:
                return total
            average = self._live_length / self._live_rows
            for token, repeats in Counter(query_tokens).items():
                term = self._vocabulary.get(token)
                if term is None or self._document_frequency[term] <= 0:
                    continue
                rows, counts = self._postings[term].arrays()
                frequency = self._document_frequency[term]
                idf = np.log(1.0 + (self._live_rows - frequency + 0.5) / (frequency + 0.5))
                norm = self.k1 * (1.0 - self.b + self.b * self._row_length[rows] / average)
                total[rows] += repeats * idf * counts / (counts + norm)
            total[~self._alive] = 0.0
            return total

    def search(self, query: str, k: int, doc_ids: set[str] | None = None) -> list[tuple[str, float]]:
        """The k best (chunk id, score) pairs with a score above 0, optionally only from some documents."""
        tokens = tokenize([query])[0]
        with self._lock:
            scores = self.scores(tokens)
            if doc_ids is not None:
                allowed = [self._documents[d] for d in doc_ids if d in self._documents]
                scores[~np.isin(self._row_document, allowed)] = 0.0
            candidates = np.flatnonzero(scores > 0)
            if len(candidates) > k:
                candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
            best = candidates[np.argsort(-scores[candidates], kind="stable")]
            return [(self._row_ids[i], float(scores[i])) for i in best.tolist()]
