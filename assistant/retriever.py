"""Question (+ the conversation so far) -> query embedding -> the top-k passages as numbered evidence.

Follow-up questions ("and in pregnancy?") carry no topic of their own. The small default generator is
not reliable at rewriting them, so the retrieval query is built without a model: a question that looks
like a follow-up (short, or opening with "and", "what about", a pronoun...) is prefixed with the user's
previous question(s). A self-contained question is searched on its own, so a change of topic is not
dragged back to the previous one.
"""
from __future__ import annotations

import re

from .encoder import Encoder
from .records import Evidence
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


class Retriever:
    """Dense retrieval over the store with the query encoder."""

    def __init__(self, encoder: Encoder, store: GuidelineStore) -> None:
        self.encoder = encoder
        self.store = store

    def search(self, query: str, k: int, doc_ids: list[str] | None = None) -> list[Evidence]:
        vector = self.encoder.encode([query])[0]
        hits = self.store.query(vector, k, doc_ids)
        return [Evidence(number=i, doc_id=chunk.doc_id, file=chunk.file_name, title=chunk.title, page=chunk.page,
                         page_label=chunk.page_label, section=chunk.section, score=round(score, 4),
                         text=chunk.text, chunk_id=chunk.chunk_id)
                for i, (chunk, score) in enumerate(hits, 1)]
