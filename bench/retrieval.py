"""Retrieval benchmark: is the passage that answers among those shown? Ours in each mode, side by side with
the hand-rolled LangChain pipeline users compare with, on two question sets.

    .venv/bin/python bench/retrieval.py [--quick] [--write]

- Test split (guidelines/qa/test.jsonl, 202 questions) over the sample library; the query is the stem and
  the options (assistant.choice.choice_query), as evaluation and training search.
- Real-guideline set (bench/data/realworld.jsonl, 112 questions on 16 real PDFs) over the sample library
  and the real PDFs of ../shared/realworld loaded together; the query is the question as a clinician types
  it. Skipped, with the reason, when that folder is absent.
- Systems: ours dense (MiniLM embeddings), lexical (BM25), hybrid (both, reciprocal-rank fusion), hybrid +
  guideline-aware (the app's default); the peer: PyPDFLoader + RecursiveCharacterTextSplitter(1000/200) +
  Chroma with the same MiniLM encoder.
- A retrieved passage answers when it comes from the gold file and holds the gold span; text is compared
  letters and digits only, lower-cased (so the peer is not penalised for our clean-up of hyphens and
  spaces). The test split also requires the gold page, as evaluation does; the real-guideline set reports
  any page (guidelines repeat recommendations verbatim in summaries and annexes) and the gold page.
Recall@1/@5/@20 with 95% Wilson intervals; query time p50 on the same machine in the same run.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.choice import choice_query
from assistant.config import load_settings
from assistant.encoder import Encoder, load_encoder
from assistant.library import Library
from assistant.retriever import Retriever
from assistant.store import open_store
from trainer.evaluate import wilson

from benchlib import (
    REALWORLD_PDFS,
    ROOT,
    load_average,
    load_note,
    machine_description,
    markdown_table,
    percentile,
    replace_section,
    today,
)

log = logging.getLogger("bench.retrieval")
KS = (1, 5, 20)
PEER_CHUNK_CHARS, PEER_OVERLAP_CHARS = 1000, 200
NO_TEXT_LAYER = {"india-mohfw-annual-report-2016-17-ch3.pdf", "sa-ndoh-epi-schedule-2009.pdf"}


def squeeze(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


@dataclass
class Question:
    id: str
    query: str
    file: str
    page: int
    span: str
    names_guideline: bool = False


@dataclass
class Passage:
    file: str
    page: int
    text: str


def load_questions(path: Path, multiple_choice: bool, limit: int) -> list[Question]:
    questions = []
    for line in path.read_text().splitlines()[:limit or None]:
        record = json.loads(line)
        query = choice_query(record["question"], record["options"]) if multiple_choice else record["question"]
        evidence = record["evidence"]
        questions.append(Question(record["id"], query, evidence["file"], int(evidence["page"]), evidence["span"],
                                  bool(record.get("names_guideline"))))
    return questions


def gold_rank(passages: list[Passage], question: Question, same_page: bool) -> int | None:
    span = squeeze(question.span)
    for rank, passage in enumerate(passages, 1):
        if passage.file == question.file and (not same_page or passage.page == question.page) \
                and span in squeeze(passage.text):
            return rank
    return None


@dataclass
class Result:
    system: str
    ranks: list[int | None] = field(default_factory=list)
    page_ranks: list[int | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def recall(self, k: int, same_page: bool = False) -> tuple[int, int]:
        ranks = self.page_ranks if same_page else self.ranks
        return sum(r is not None and r <= k for r in ranks), len(ranks)


Search = Callable[[str, int], list[Passage]]


def measure(name: str, search: Search, questions: list[Question]) -> Result:
    result = Result(name)
    search(questions[0].query, max(KS))  # warm-up: first-call costs are not query time
    for question in questions:
        started = time.perf_counter()
        passages = search(question.query, max(KS))
        result.seconds.append(time.perf_counter() - started)
        result.ranks.append(gold_rank(passages, question, same_page=False))
        result.page_ranks.append(gold_rank(passages, question, same_page=True))
    log.info("%s: recall@5 %.3f over %d questions", name, result.recall(5)[0] / len(questions), len(questions))
    return result


# ---------------------------------------------------------------------------------------------
# Ours and the peer
# ---------------------------------------------------------------------------------------------

def build_ours(encoder: Encoder, pdfs: list[Path], data_dir: Path) -> Library:
    settings = load_settings(env={}, config_file=None, data_dir=data_dir, index_samples_on_start=False)
    library = Library(settings, encoder, open_store(settings, encoder))
    for path in pdfs:
        result = library.add_path(path)
        if result.status != "indexed":
            log.warning("ours: %s %s: %s", path.name, result.status, result.message)
    return library


def our_search(library: Library, mode: str, guideline_aware: bool) -> Search:
    retriever = Retriever(library.encoder, library.store, mode=mode, guideline_aware=guideline_aware)

    def search(query: str, k: int) -> list[Passage]:
        return [Passage(e.file, e.page, e.text) for e in retriever.search(query, k)]
    return search


def peer_search(encoder: Encoder, pdfs: list[Path], data_dir: Path) -> Search:
    """LangChain as users write it: load, split by characters, embed with the same encoder, similarity search."""
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    class MiniLM(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return encoder.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    store = Chroma(collection_name="peer", embedding_function=MiniLM(), persist_directory=str(data_dir),
                   client_settings=ChromaSettings(anonymized_telemetry=False),
                   collection_metadata={"hnsw:space": "cosine"})
    splitter = RecursiveCharacterTextSplitter(chunk_size=PEER_CHUNK_CHARS, chunk_overlap=PEER_OVERLAP_CHARS)
    for path in pdfs:
        try:
            splits = splitter.split_documents(PyPDFLoader(str(path)).load())
            for start in range(0, len(splits), 5000):
                store.add_documents(splits[start:start + 5000])
        except Exception as error:  # the peer failing on a hard PDF is a result, not a crash
            log.warning("peer: %s failed: %s", path.name, error)

    def search(query: str, k: int) -> list[Passage]:
        return [Passage(Path(d.metadata.get("source", "")).name, int(d.metadata.get("page", 0)) + 1, d.page_content)
                for d in store.similarity_search(query, k=k)]
    return search


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _cell(hits: int, total: int) -> str:
    low, high = wilson(hits, total)
    return f"{100 * hits / total:.1f} ({100 * low:.0f}–{100 * high:.0f})"


def table(results: list[Result], same_page: bool) -> str:
    rows = []
    for result in results:
        cells = [_cell(*result.recall(k, same_page)) for k in KS]
        rows.append([result.system, len(result.ranks), *cells, f"{1000 * percentile(result.seconds, 50):.0f}"])
    return markdown_table(["system", "n", *[f"recall@{k} % (95% CI)" for k in KS], "query p50 ms"], rows)


def named_table(results: list[Result], questions: list[Question]) -> str:
    rows = []
    for result in results:
        cells = []
        for wanted in (True, False):
            ranks = [r for r, q in zip(result.ranks, questions) if q.names_guideline == wanted]
            cells.append(_cell(sum(r is not None and r <= 5 for r in ranks), len(ranks)) if ranks else "n/a")
        rows.append([result.system, *cells])
    return markdown_table(["system", "recall@5, question names the guideline", "recall@5, it does not"], rows)


def report(test: list[Result], real: list[Result], real_questions: list[Question], context: dict) -> str:
    lines = [f"## Retrieval (bench/retrieval.py){' — QUICK subset' if context['quick'] else ''}", "",
             f"Run {today()} with `{context['command']}` on {machine_description()}. {context['load']}", "",
             "### Test split, sample library (query: stem + options; gold: file, page and span)", "",
             table(test, same_page=True), ""]
    if real:
        lines += [f"### Real-guideline set, sample + {context['real_pdfs']} real PDFs loaded together "
                  "(query: the question as typed)", "", "Gold: file and span, any page:", "",
                  table(real, same_page=False), "", "Gold page too:", "", table(real, same_page=True), "",
                  named_table(real, real_questions), ""]
    else:
        lines += [f"Real-guideline set skipped: {context['skipped']}", ""]
    lines += ["Passages are compared letters and digits only, so the peer's raw text (no de-hyphenation, headers "
              "kept) is not penalised; its 1000-character chunks are larger than ours (about 200 tokens), which "
              "favours it at equal k. Query time includes embedding the query; ours includes the lexical part "
              "and, in hybrid mode, reading cosine scores for passages found only lexically.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 questions per set, 6 real PDFs")
    parser.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    parser.add_argument("--no-peer", action="store_true", help="ours only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "sentence_transformers", "pypdf"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    before = load_average()
    limit = 40 if args.quick else 0
    encoder = load_encoder("packaged", "cpu", "fp32")
    samples = sorted((ROOT / "guidelines").glob("*.pdf"))
    test_questions = load_questions(ROOT / "guidelines/qa/test.jsonl", True, limit)
    real_questions = load_questions(ROOT / "bench/data/realworld.jsonl", False, limit)
    real_pdfs = sorted(p for p in REALWORLD_PDFS.glob("*.pdf") if p.name not in NO_TEXT_LAYER) \
        if REALWORLD_PDFS.is_dir() else []
    if args.quick:
        wanted = {q.file for q in real_questions}
        real_pdfs = [p for p in real_pdfs if p.name in wanted][:6]
        real_questions = [q for q in real_questions if q.file in {p.name for p in real_pdfs}]
    work = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    try:
        test = run_set(encoder, samples, test_questions, work / "samples", args.no_peer)
        real = run_set(encoder, samples + real_pdfs, real_questions, work / "mixed", args.no_peer) \
            if real_pdfs else []
    finally:
        shutil.rmtree(work, ignore_errors=True)
    context = {"quick": args.quick, "command": " ".join(["bench/retrieval.py", *(argv or [])]),
               "load": load_note(before, load_average()), "real_pdfs": len(real_pdfs),
               "skipped": f"{REALWORLD_PDFS} does not exist"}
    body = report(test, real, real_questions, context)
    if not args.quick or args.write:
        replace_section("retrieval", body)
    log.info("\n%s", body)
    return 0


def run_set(encoder: Encoder, pdfs: list[Path], questions: list[Question], work: Path, no_peer: bool
            ) -> list[Result]:
    library = build_ours(encoder, pdfs, work / "ours")
    systems = [("ours: dense", "dense", False), ("ours: lexical (BM25)", "lexical", False),
               ("ours: hybrid", "hybrid", False), ("ours: hybrid + guideline-aware (default)", "hybrid", True)]
    results = [measure(name, our_search(library, mode, aware), questions) for name, mode, aware in systems]
    if not no_peer:
        results.append(measure("peer: LangChain PyPDFLoader + splitter 1000/200 + Chroma, same MiniLM",
                               peer_search(encoder, pdfs, work / "peer"), questions))
    return results


if __name__ == "__main__":
    raise SystemExit(main())
