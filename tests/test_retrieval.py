"""Hybrid retrieval over the real store and encoder: the lexical index follows the committed documents, the
rankings are fused, a named guideline is searched in that guideline, and non-guidance text stays out."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant.config import load_settings
from assistant.documents import document_id
from assistant.naming import guideline_codes, named_guidelines
from assistant.passage_kinds import classify, kind_of_section
from assistant.records import Chunk, DocumentInfo
from assistant.retriever import Retriever, fuse
from assistant.service import build_assistant

from pdfs import make_pdf

SEPSIS = ["1 Recognition\nAssess people with suspected sepsis for risk of severe illness using the NEWS2 score.",
          "2 Antibiotics\nFor adults at high risk, give intravenous antibiotics within 1 hour of recognising sepsis. "
          "For children with community-acquired sepsis, give ceftriaxone 80 mg/kg once a day."]
PPH = ["1 Prevention\nOffer oxytocin 10 units intramuscularly for the third stage of labour in all births.",
       "2 Treatment\nFor postpartum haemorrhage over 1500 ml with continued bleeding, give tranexamic acid 1 g "
       "intravenously and call for senior help."]
REFERENCES = ["1 Recommendations\nGive iron 60 mg daily to pregnant women with anaemia and review in 4 weeks.",
              "References\n1. Calvert C, Thomas SL, Ronsmans C. Identifying regional variation in postpartum "
              "haemorrhage. PLoS ONE 2012;7:e41114.\n2. Bryant A, Mhyre JM, Leffert LR. Maternal race and risk of "
              "postpartum hemorrhage. Anesth Analg 2012;115:1127-36.\n3. Combs CA, Murphy EL, Laros RK Jr. Factors "
              "associated with postpartum hemorrhage. Obstet Gynecol 1991;77:69-76.\n4. Stones RW, Paterson CM, "
              "Saunders NJ. Risk factors for major obstetric haemorrhage. Eur J Obstet Gynecol 1993;48:15-8."]


@pytest.fixture
def library_of_three(assistant):
    library = assistant.library
    assert library.add_bytes(make_pdf(SEPSIS, title="Suspected sepsis (NICE guideline NG51)"),
                             "nice-ng51-sepsis.pdf").status == "indexed"
    assert library.add_bytes(make_pdf(PPH, title="Postpartum haemorrhage, Green-top Guideline No. 52"),
                             "rcog-gtg52-pph.pdf").status == "indexed"
    assert library.add_bytes(make_pdf(REFERENCES, title="Iron in pregnancy"), "iron.pdf").status == "indexed"
    return assistant


def files(evidence) -> list[str]:
    return [item.file for item in evidence]


def test_fusion_rewards_agreement_and_keeps_either_ranking():
    assert fuse([["a", "b", "c"], ["b", "d"]], 60)[:2] == ["b", "a"]  # b is high in both
    assert set(fuse([["a"], ["d"]], 60)) == {"a", "d"}


def test_each_mode_finds_an_exact_figure_and_scores_are_cosines(library_of_three):
    store, encoder = library_of_three.store, library_of_three.query_encoder
    for mode in ("dense", "lexical", "hybrid"):
        evidence = Retriever(encoder, store, mode=mode, guideline_aware=False).search(
            "tranexamic acid dose when bleeding exceeds 1500 ml", 2)
        assert evidence[0].file == "rcog-gtg52-pph.pdf" and "1500 ml" in evidence[0].text, mode
        assert all(-1.0 <= item.score <= 1.0 for item in evidence)
        assert [item.number for item in evidence] == list(range(1, len(evidence) + 1))


def test_hybrid_keeps_a_passage_only_the_words_find(library_of_three):
    store, encoder = library_of_three.store, library_of_three.query_encoder
    query = "NEWS2"  # a score's name: one word, meaningless to the sentence encoder
    lexical = Retriever(encoder, store, mode="lexical", guideline_aware=False).search(query, 3)
    hybrid = Retriever(encoder, store, mode="hybrid", guideline_aware=False).search(query, 3)
    assert "NEWS2" in lexical[0].text and any("NEWS2" in item.text for item in hybrid)
    found = next(item for item in hybrid if "NEWS2" in item.text)
    vector = encoder.encode([query])[0]
    assert found.score == pytest.approx(float(encoder.encode([
        f"{found.title} | {found.section}\n{found.text}"])[0] @ vector), abs=0.02)  # its cosine, not its rank


def test_reference_lists_are_never_retrieved_or_quoted(library_of_three):
    chunks = library_of_three.store.chunks_of(library_of_three.library.documents()[-1].doc_id)
    assert {chunk.kind for chunk in chunks} == {"body", "references"}
    for mode in ("dense", "lexical", "hybrid"):
        evidence = Retriever(library_of_three.query_encoder, library_of_three.store, mode=mode).search(
            "risk factors for postpartum haemorrhage Obstet Gynecol 1991", 10)
        assert all(item.kind == "body" and "Obstet Gynecol" not in item.text for item in evidence), mode


def test_a_named_guideline_is_searched_in_that_guideline(library_of_three):
    retriever = Retriever(library_of_three.query_encoder, library_of_three.store)
    found = retriever.retrieve("According to NICE NG51, what dose should be given?", 3)
    assert set(files(found.evidence)) == {"nice-ng51-sepsis.pdf"} and not found.named.missing
    found = retriever.retrieve("What does RCOG Green-top Guideline 52 say about the dose?", 3)
    assert set(files(found.evidence)) == {"rcog-gtg52-pph.pdf"}


def test_a_named_guideline_missing_from_the_library_is_said(library_of_three, tiny_generator):
    assistant = build_assistant(library_of_three.settings, query_encoder=library_of_three.query_encoder,
                                generator=tiny_generator)
    answer = assistant.answerer.ask("According to NICE NG999, how fast should antibiotics be given in sepsis?")
    assert answer.missing_guidelines == ["NG999"]
    assert answer.text.startswith("The library has no guideline NG999") and answer.evidence  # still shows passages


def test_the_lexical_index_follows_adds_replacements_and_deletes(library_of_three):
    store, library = library_of_three.store, library_of_three.library
    sepsis = next(info for info in library.documents() if info.file_name == "nice-ng51-sepsis.pdf")
    assert store.lexical.documents() == {info.doc_id for info in library.documents()}
    changed = make_pdf([SEPSIS[0], "2 Antibiotics\nGive meropenem 2 g every 8 hours in sepsis."], title="Sepsis v2")
    assert library.add_bytes(changed, "nice-ng51-sepsis.pdf", replace=True).status == "replaced"
    assert not store.lexical_query("ceftriaxone", 5) and store.lexical_query("meropenem", 5)
    assert sepsis.doc_id not in store.lexical.documents()
    library.delete("nice-ng51-sepsis.pdf")
    assert store.lexical_query("meropenem", 5) == [] and store.lexical_query("NEWS2", 5) == []


def test_a_crash_between_write_and_commit_leaves_the_document_in_neither_index(assistant, settings, encoder):
    from assistant.store import open_store

    data = make_pdf(PPH, title="Postpartum haemorrhage")
    doc = document_id(data)
    orphan = Chunk(doc_id=doc, file_name="pph.pdf", title="PPH", page=1, page_label="1", section="", chunk_index=0,
                   char_start=0, char_end=20, text="tranexamic acid 1 g intravenously")
    assistant.store.chunks.add(ids=[orphan.chunk_id], embeddings=encoder.encode([orphan.text]),
                               documents=[orphan.text], metadatas=[orphan.metadata()])  # written, never committed
    assert assistant.store.lexical_query("tranexamic", 5) == []  # not committed: not searched
    reopened = open_store(settings, encoder)  # a restart: recovery removes the orphan
    assert reopened.count() == 0 and reopened.lexical_query("tranexamic", 5) == []


def test_another_process_cannot_change_the_folder_this_one_writes(assistant, settings, tmp_path):
    """Embedded, another process's writes would be invisible here (and its recovery could remove ours): the
    command line is refused while this process holds the folder, and nothing changes. With a Chroma server
    other processes' uploads are searched (tests/test_store_server.py)."""
    pdf = tmp_path / "rcog-gtg52-pph.pdf"
    pdf.write_bytes(make_pdf(PPH, title="Postpartum haemorrhage"))
    config = tmp_path / "assistant.toml"
    config.write_text(f'[assistant]\ndata_dir = "{settings.data_dir}"\nindex_samples_on_start = false\n')
    done = subprocess.run([sys.executable, "-m", "assistant", "ingest", str(pdf), "--config", str(config)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and f"pid {os.getpid()}" in done.stderr
    assert assistant.store.list_documents() == [] and assistant.store.lexical_query("tranexamic", 5) == []


@pytest.mark.parametrize(("text", "codes"), [
    ("According to NICE NG51, what dose?", ["NG51"]), ("nice guideline ng 133 says", ["NG133"]),
    ("RCOG Green-top Guideline No. 52", ["GTG52"]), ("green top guideline 76 on thyroid", ["GTG76"]),
    ("GTG-52 and SIGN 158", ["GTG52", "SIGN158"]), ("CG191 pneumonia", ["CG191"]),
    ("a pH of 7.35 and 10 ng/mL", []), ("in 2024 NICE updated it", []),
])
def test_guideline_codes(text, codes):
    assert guideline_codes(text) == codes


def _doc(doc_id: str, file_name: str, codes: str, name_text: str) -> DocumentInfo:
    return DocumentInfo(doc_id, file_name, "", 1, 1, "", codes=codes, name_text=name_text)


LIBRARY = [_doc("a", "who-antenatal-care-2016.pdf", "", "2016 antenatal care pregnancy recommendations who"),
           _doc("b", "who-malaria-2023.pdf", "", "2023 for guidelines malaria who"),
           _doc("c", "nice-sepsis-ng51-2024.pdf", "NG51", "ng51 nice recognition sepsis suspected"),
           _doc("d", "sa-ndoh-art-guideline-2019.pdf", "", "2019 africa african art guideline hiv south")]


@pytest.mark.parametrize(("question", "named"), [
    ("In the WHO antenatal care recommendations, what iron dose is advised?", ["a"]),
    ("According to the WHO guidelines for malaria, what artesunate dose?", ["b"]),
    ("Under the South African 2019 ART guideline, when is ART started?", ["d"]),
    ("What does nice-sepsis-ng51-2024.pdf say about lactate?", ["c"]),
    ("Per NICE NG51, when are antibiotics given?", ["c"]),
    ("What is the first-line treatment for malaria in children?", []),  # a topic, not a named guideline
    ("In adults with sepsis, what does the guidance say about fluids?", []),
])
def test_named_guidelines(question, named):
    found = named_guidelines(question, LIBRARY)
    assert found.doc_ids == named and not found.missing


def test_a_code_no_document_carries_is_missing():
    found = named_guidelines("According to NICE NG12, what is the referral threshold?", LIBRARY)
    assert found.doc_ids == [] and found.missing == ["NG12"]


@pytest.mark.parametrize(("section", "kind"), [
    ("References", "references"), ("7. References", "references"), ("Acknowledgements", "acknowledgements"),
    ("Table of contents", "contents"), ("Annex 3: Guideline Development Group members", "acknowledgements"),
    ("2.1 Antibiotics", None), ("Treatment of severe malaria", None),
])
def test_kind_of_section(section, kind):
    assert kind_of_section(section) == kind


def test_passage_kinds_by_their_lines():
    contents = "Contents\n1 Recognition .......... 4\n2 Antibiotics .......... 9\n3 Fluids .......... 12"
    assert classify(contents, "") == "contents"
    index = "amoxicillin 12, 45\nartesunate 88, 90-92\natropine 7\nazithromycin 31, 56"
    assert classify(index, "") == "index"
    assert classify(REFERENCES[1], "References") == "references"
    people = "Karima Gholbzouri, Gunta Lazdane, Bremen de Mucio, Mari Nagai, Leopold Ouedraogo and Neena Raina."
    assert classify(people, "Acknowledgements") == "acknowledgements"


def test_a_heading_alone_never_hides_guidance():
    guidance = "Give intravenous antibiotics within 1 hour to adults at high risk of severe illness from sepsis."
    for section in ("Contents", "References", "Acknowledgements", "Index"):
        assert classify(guidance, section) == "body", section


def test_retrieval_settings_are_validated():
    assert load_settings(env={}, retrieval="dense").retrieval == "dense"
    with pytest.raises(ValueError, match="retrieval must be one of hybrid, dense, lexical"):
        load_settings(env={}, retrieval="semantic")
