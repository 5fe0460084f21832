"""Lexical (BM25) search: scores as bm25s computes them, documents added and removed one at a time."""
from __future__ import annotations

import numpy as np
import pytest

from assistant.lexical import LexicalIndex, tokenize

PASSAGES = {
    "sepsis": ["Give broad-spectrum antibiotics within 1 hour of recognising sepsis with high risk criteria.",
               "Offer an intravenous fluid bolus of 500 ml of crystalloid over 15 minutes."],
    "pph": ["Postpartum haemorrhage is blood loss of 500 ml or more; major PPH is more than 1000 ml.",
            "Oxytocin 10 units intramuscularly is recommended for the third stage of labour.",
            "Tranexamic acid 1 g intravenously should be considered when bleeding continues."],
    "hypertension": ["In pregnancy, aim for a blood pressure of 135/85 mmHg or less.",
                     "Offer labetalol to treat hypertension in pregnancy; consider nifedipine if unsuitable."],
}
QUERIES = ["antibiotics within 1 hour sepsis", "blood loss 1000 ml", "labetalol pregnancy 135/85 mmHg",
           "oxytocin 10 units", "fluid bolus 500 ml"]


def build(documents=PASSAGES) -> LexicalIndex:
    index = LexicalIndex()
    for doc, texts in documents.items():
        index.add(doc, [f"{doc}-{i}" for i in range(len(texts))], tokenize(texts))
    return index


def test_scores_equal_those_of_bm25s():
    import bm25s

    texts = [text for texts in PASSAGES.values() for text in texts]
    reference = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    reference.index(tokenize(texts), show_progress=False)
    index = build()
    for query in QUERIES:
        expected = reference.get_scores(tokenize([query])[0])
        assert np.allclose(index.scores(tokenize([query])[0]), expected, atol=1e-5), query


def test_search_finds_exact_figures_and_names():
    index = build()
    assert index.search("within 1 hour", 1)[0][0] == "sepsis-0"
    assert index.search("135/85 mmHg", 1)[0][0] == "hypertension-0"
    assert index.search("tranexamic acid", 1)[0][0] == "pph-2"
    assert index.search("nothing matches zebra", 5) == []


def test_removing_a_document_is_the_same_as_never_adding_it():
    full = build()
    full.remove("pph")
    without = build({k: v for k, v in PASSAGES.items() if k != "pph"})
    for query in QUERIES:
        assert full.search(query, 10) == without.search(query, 10)
    assert full.documents() == {"sepsis", "hypertension"} and len(full) == 4


def test_re_adding_replaces_and_compaction_keeps_scores():
    index = build()
    index.add("pph", ["pph-new"], tokenize(["Carboprost 250 micrograms intramuscularly for atony."]))
    assert index.search("oxytocin", 5) == [] and index.search("carboprost", 5)[0][0] == "pph-new"
    for doc in ("sepsis", "hypertension"):  # most rows are now dead: the index compacts itself
        index.remove(doc)
    assert index.documents() == {"pph"} and index.search("carboprost atony", 1)[0][0] == "pph-new"
    fresh = LexicalIndex()
    fresh.add("pph", ["pph-new"], tokenize(["Carboprost 250 micrograms intramuscularly for atony."]))
    assert index.search("carboprost atony", 1) == fresh.search("carboprost atony", 1)


def test_search_within_documents():
    index = build()
    hits = index.search("500 ml", 10, doc_ids={"sepsis"})
    assert [chunk for chunk, _ in hits] == ["sepsis-1"]
    assert index.search("500 ml", 10, doc_ids={"unknown"}) == []


@pytest.mark.parametrize("text", ["", "   ", "the of and"])
def test_empty_or_stop_word_queries_find_nothing(text):
    assert build().search(text, 5) == []
