"""Question (+ the conversation so far) -> the top-k passages as numbered evidence.

Two rankings of the library, fused: dense (the query's embedding against the passages') finds passages that
say the same thing in other words; lexical (BM25, assistant.lexical) finds the exact words a clinician
asks by, a drug, a code, a figure. Reciprocal-rank fusion combines them without calibrating their scores.
A question that names a guideline (assistant.naming) is searched in that guideline. Every passage shown
keeps its cosine similarity to the question as its score, whichever ranking found it.

Follow-up questions ("and in pregnancy?") carry no topic of their own. The small default generator is
not reliable at rewriting them, so the retrieval query is built without a model: a question that looks
like a follow-up (short, or opening with "and", "what about", a pronoun...) is prefixed with the user's
previous question(s). A self-contained question is searched on its own, so a change of topic is not
dragged back to the previous one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .config import Settings
from .encoder import Encoder
from .naming import NamedGuidelines, named_guidelines
from .records import Chunk, Evidence
from .store import GuidelineStore

_FOLLOW_UP_OPENERS = re.compile(
    r"^(and|but|also|or|so|then|what about|how about|what if|in|for|during|with|without|same|"
    r"is it|are they|does it|do they|can it|should it|it|they|this|that|these|those|he|she)\b", re.I)
_STOPWORDS = set("""a an the of to in on for and or is are be it this that what which how when who why with does do
should can i you my me we our at by from as if then than about any there their they them its""".split())


def is_follow_up(question: str) -> bool:
    """Heuristic: the question leans on an earlier one for its topic."""
    words = re.findall(r"[A-Za-z0-9']+", question.lower())
    content = [word for word in words if word not in _STOPWORDS]
    return bool(_FOLLOW_UP_OPENERS.match(question.strip())) or len(content) <= 2


def retrieval_query(question: str, previous_questions: list[str], turns: int = 2) -> str:
    """The text to search with: the question, plus recent questions when it is a follow-up."""
    question = question.strip()
    if previous_questions and turns > 0 and is_follow_up(question):
        return " ".join([*previous_questions[-turns:], question])
    return question


@dataclass
class Retrieval:
    """The passages found for a query, and which guidelines the query named."""

    evidence: list[Evidence]
    named: NamedGuidelines = field(default_factory=NamedGuidelines)


def fuse(rankings: list[list[str]], k: int, weights: list[float] | None = None) -> list[str]:
    """Reciprocal-rank fusion: each ranking gives weight / (k + rank); ids sorted by the sum, ties by first seen."""
    totals: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, item in enumerate(ranking, 1):
            totals[item] = totals.get(item, 0.0) + weight / (k + rank)
    return sorted(totals, key=lambda item: -totals[item])


class Retriever:
    """Search over the store: dense (embeddings), lexical (BM25) or both fused, aware of guidelines a
    question names."""

    def __init__(self, encoder: Encoder, store: GuidelineStore, mode: str = "hybrid", fusion_k: int = 60,
                 depth: int = 50, guideline_aware: bool = True, lexical_weight: float = 2.0) -> None:
        self.encoder = encoder
        self.store = store
        self.mode = mode
        self.fusion_k = fusion_k
        self.lexical_weight = lexical_weight
        self.depth = depth
        self.guideline_aware = guideline_aware

    @classmethod
    def from_settings(cls, encoder: Encoder, store: GuidelineStore, settings: Settings) -> Retriever:
        return cls(encoder, store, settings.retrieval, settings.fusion_k, settings.retrieval_depth,
                   settings.guideline_aware, settings.lexical_weight)

    def search(self, query: str, k: int, doc_ids: list[str] | None = None) -> list[Evidence]:
        return self.retrieve(query, k, doc_ids).evidence

    def retrieve(self, query: str, k: int, doc_ids: list[str] | None = None, focus: str = "") -> Retrieval:
        """The k best passages for the query as numbered evidence, and the guidelines the query names.

        `focus` is a follow-up question within the query of its conversation ("and in pregnancy?" after a
        question on hypertension): the dense ranking reads the whole query, for the meaning of the exchange;
        the lexical one only the follow-up's words, which the earlier question's words would outnumber."""
        named = (named_guidelines(query, self.store.list_documents(fresh=False)) if self.guideline_aware
                 else NamedGuidelines())
        scope = doc_ids
        if named.restricts:
            scope = [d for d in named.doc_ids if doc_ids is None or d in doc_ids] or doc_ids
        ranked = self.ranked_chunks(query, k, scope, focus)
        evidence = [to_evidence(chunk, number, score) for number, (chunk, score) in enumerate(ranked, 1)]
        return Retrieval(evidence=evidence, named=named)

    def ranked_chunks(self, query: str, k: int, doc_ids: list[str] | None = None, focus: str = ""
                      ) -> list[tuple[Chunk, float]]:
        """The k best passages, best first, each with its cosine similarity to the query."""
        vector = self.encoder.encode([query])[0]
        depth = max(self.depth, k) if self.mode == "hybrid" else k
        dense = self.store.query(vector, depth, doc_ids) if self.mode != "lexical" else []
        lexical = self.store.lexical_query(focus or query, depth, doc_ids) if self.mode != "dense" else []
        chunks = {chunk.chunk_id: chunk for chunk, _ in dense + lexical}
        cosine = {chunk.chunk_id: score for chunk, score in dense}
        ranked = fuse([[c.chunk_id for c, _ in dense], [c.chunk_id for c, _ in lexical]], self.fusion_k,
                      [1.0, self.lexical_weight])[:k]
        unscored = [chunk_id for chunk_id in ranked if chunk_id not in cosine]
        for chunk_id, (_, stored) in self.store.get(unscored, embeddings=True).items():
            if stored is not None:
                cosine[chunk_id] = float(stored @ vector)
        return [(chunks[chunk_id], cosine.get(chunk_id, 0.0)) for chunk_id in ranked]


def to_evidence(chunk: Chunk, number: int, score: float) -> Evidence:
    return Evidence(number=number, doc_id=chunk.doc_id, file=chunk.file_name, title=chunk.title, page=chunk.page,
                    page_label=chunk.page_label, section=chunk.section, score=round(float(score), 4),
                    text=chunk.text, chunk_id=chunk.chunk_id, kind=chunk.kind, read_by=chunk.read_by,
                    ocr_confidence=chunk.ocr_confidence)
