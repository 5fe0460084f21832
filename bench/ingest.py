"""Ingestion and query-latency benchmark, with the usual LangChain pipeline as the peer.

    .venv/bin/python bench/ingest.py            # all real-world PDFs, 10k and 100k chunk stores; writes RESULTS.md
    .venv/bin/python bench/ingest.py --quick    # a few small PDFs and small stores; prints only

What it measures, in one process and one run:
1. Ours: `Library.add_path` for every real-world PDF with a text layer, into a fresh embedded Chroma.
2. The peer: LangChain PyPDFLoader + RecursiveCharacterTextSplitter (800 chars, 160 overlap) + Chroma,
   with the same SentenceTransformer (the packaged all-MiniLM-L6-v2) and the same batch size.
3. The floor: embedding alone on exactly our chunks (the texts our encoder sees), same batch size.
4. Query latency, query embedding included (`Retriever.search`), at 10k and 100k chunks: the real chunks
   of run 1 duplicated with a little noise on their vectors, written through `GuidelineStore`.
Needs requirements-bench.txt installed. PDFs with no text layer are skipped and named in the results.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import logging
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import assistant.documents as documents_module
import assistant.library as library_module
from assistant.config import Settings, load_settings
from assistant.documents import embedding_text, safe_file_name
from assistant.encoder import Encoder, load_encoder
from assistant.library import Library, default_reader
from assistant.records import Chunk, DocumentInfo
from assistant.retriever import Retriever
from assistant.store import GuidelineStore, open_store

import benchlib
from benchlib import REALWORLD_PDFS, ROOT, markdown_table, percentile

log = logging.getLogger("bench.ingest")

PEER_CHUNK_CHARS = 800
PEER_OVERLAP_CHARS = 160
QUICK_FILES = 4
MIN_CHARS_PER_PAGE = 25  # as assistant.pdf_reader: below this the PDF is a scan
SYNTHETIC_DOC_CHUNKS = 1000  # chunks per synthetic document in the scale stores
NOISE = 0.01  # per-dimension noise on duplicated vectors, so duplicates are near but distinct


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def text_layer_chars(path: Path) -> tuple[int, int]:
    """(pages, characters of text) by PDFium: a quick check for a text layer, outside any timing."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path.read_bytes())
    chars = 0
    for index in range(len(document)):
        text_page = document[index].get_textpage()
        chars += len(text_page.get_text_range().strip())
        text_page.close()
    pages = len(document)
    document.close()
    return pages, chars


def select_pdfs(folder: Path, quick: bool, names: list[str] | None = None
                ) -> tuple[list[Path], list[str], dict[str, int]]:
    """PDFs with a text layer (fewest pages first when quick), the names skipped, and pages per file."""
    usable, skipped, pages = [], [], {}
    for path in sorted(folder.glob("*.pdf")):
        if names and path.name not in names:
            continue
        count, chars = text_layer_chars(path)
        if chars < MIN_CHARS_PER_PAGE * max(1, min(count, 4)):
            skipped.append(f"{path.name} ({count} pages, no text layer)")
            continue
        usable.append(path)
        pages[path.name] = count
    if quick:
        usable = sorted(usable, key=lambda p: pages[p.name])[:QUICK_FILES]
    return usable, skipped, pages


def load_questions(limit: int) -> list[str]:
    """Clinical questions from the QA set, cycled to `limit` when there are fewer."""
    questions = []
    for path in sorted((ROOT / "guidelines" / "qa" / "raw").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                questions.append(json.loads(line)["question"])
    if not questions:
        raise SystemExit("No questions found in guidelines/qa/raw/*.jsonl")
    return [questions[i % len(questions)] for i in range(limit)]


# ---------------------------------------------------------------------------------------------
# Timing helpers
# ---------------------------------------------------------------------------------------------

@dataclass
class Phases:
    """Seconds spent per named phase, accumulated by wrapped functions."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def wrap(self, name: str, function: Callable) -> Callable:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)
        return timed


@dataclass
class FileOutcome:
    pages: int = 0
    chunks: int = 0
    failure: str = ""


@dataclass
class Pipeline:
    """One way of ingesting a file, with its running totals (wall and process CPU seconds)."""

    name: str
    ingest_file: Callable[[Path], FileOutcome]
    phases: Phases = field(default_factory=Phases)
    texts: list[str] = field(default_factory=list)  # what was embedded, for tokens per chunk
    files: int = 0
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def run(self, path: Path) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        outcome = self.ingest_file(path)
        self.seconds += time.perf_counter() - wall
        self.cpu_seconds += time.process_time() - cpu
        if outcome.failure:
            self.failures.append(f"{path.name}: {outcome.failure}")
            return
        self.files += 1
        self.pages += outcome.pages
        self.chunks += outcome.chunks

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds if self.seconds else float("nan")

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds else float("nan")


def bench_settings(data_dir: Path) -> Settings:
    return load_settings(env={}, config_file=None, data_dir=data_dir, index_samples_on_start=False)


# ---------------------------------------------------------------------------------------------
# Ours
# ---------------------------------------------------------------------------------------------

@dataclass
class Captured:
    """Our chunks and their vectors per file, kept for the floor and the scale stores."""

    chunks: dict[str, list[Chunk]] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)

    def all_chunks(self) -> list[Chunk]:
        return [c for group in self.chunks.values() for c in group]

    def all_vectors(self) -> np.ndarray:
        return np.concatenate(list(self.vectors.values()))


class Instrumentation:
    """Wraps what `Library.add_bytes` calls, charging the time to the pipeline running now."""

    FUNCTIONS = ("clean_pages", "chunk_page")  # the reader is wrapped per library: see ours_pipeline

    def __init__(self) -> None:
        self.active: Pipeline | None = None
        self.captured: Captured | None = None
        self._saved: list[tuple[Any, str, Any]] = []

    def charge(self, name: str, function: Callable) -> Callable:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if self.active is not None:
                    self.active.phases.add(name, time.perf_counter() - started)
        return timed

    def _patch(self, owner: Any, attribute: str, replacement: Any) -> None:
        self._saved.append((owner, attribute, getattr(owner, attribute)))
        setattr(owner, attribute, replacement)

    def install(self) -> None:
        for name in self.FUNCTIONS:
            self._patch(documents_module, name, self.charge(name, getattr(documents_module, name)))
        original_embed = library_module.embed_chunks

        def embed(encoder: Encoder, chunks: list[Chunk], batch_size: int,
                  on_done: Callable[[int], None] | None = None) -> np.ndarray:
            vectors = original_embed(encoder, chunks, batch_size, on_done)
            if self.captured is not None and chunks:
                self.captured.chunks[chunks[0].file_name] = chunks
                self.captured.vectors[chunks[0].file_name] = vectors
            return vectors

        self._patch(library_module, "embed_chunks", self.charge("embed", embed))
        self._patch(GuidelineStore, "add_document", self.charge("store write", GuidelineStore.add_document))
        self._patch(Encoder, "count_tokens", self.charge("token counting (in chunk_page)", Encoder.count_tokens))

    def uninstall(self) -> None:
        while self._saved:
            owner, attribute, original = self._saved.pop()
            setattr(owner, attribute, original)


def ours_pipeline(name: str, encoder: Encoder, data_dir: Path, probes: Instrumentation,
                  captured: Captured | None) -> Pipeline:
    """Library.add_path into a fresh embedded store."""
    settings = bench_settings(data_dir)
    where = "isolated worker process" if settings.isolate_parsing else "in process"
    reader = probes.charge(f"read_pdf ({where})", default_reader(settings))
    library = Library(settings, encoder, open_store(settings, encoder), reader=reader)

    def ingest_file(path: Path) -> FileOutcome:
        probes.active, probes.captured = pipeline, captured
        try:
            result = library.add_path(path)
        finally:
            probes.active = probes.captured = None
        if result.status != "indexed":
            return FileOutcome(failure=f"{result.status}: {result.message}")
        return FileOutcome(result.pages, result.chunks)

    pipeline = Pipeline(name, ingest_file)
    return pipeline


def floor_pipeline(encoder: Encoder, batch_size: int, captured: Captured) -> Pipeline:
    """Embedding alone on exactly our chunks of the file (title | section header included), one call."""

    def ingest_file(path: Path) -> FileOutcome:
        chunks = captured.chunks.get(safe_name(path))
        if not chunks:
            return FileOutcome(failure="no chunks of ours to embed")
        texts = [embedding_text(c) for c in chunks]
        encoder.encode(texts, batch_size)
        pipeline.texts.extend(texts)
        return FileOutcome(0, len(chunks))

    pipeline = Pipeline("floor: embedding alone on our chunks", ingest_file)
    return pipeline


def safe_name(path: Path) -> str:
    return safe_file_name(path.name)


# ---------------------------------------------------------------------------------------------
# The peer: what users most often write instead
# ---------------------------------------------------------------------------------------------

def peer_embeddings(encoder: Encoder, batch_size: int, phases: Phases) -> Any:
    """The same SentenceTransformer behind LangChain's Embeddings interface, same batch size."""
    from langchain_core.embeddings import Embeddings

    class SentenceTransformerEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return encoder.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    embeddings = SentenceTransformerEmbeddings()
    embeddings.embed_documents = phases.wrap("embed", embeddings.embed_documents)
    return embeddings


def peer_pipeline(encoder: Encoder, batch_size: int, data_dir: Path) -> Pipeline:
    """PyPDFLoader -> RecursiveCharacterTextSplitter -> Chroma, file by file, into a fresh store."""
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    phases = Phases()
    store = Chroma(collection_name="peer", embedding_function=peer_embeddings(encoder, batch_size, phases),
                   persist_directory=str(data_dir), client_settings=ChromaSettings(anonymized_telemetry=False))
    splitter = RecursiveCharacterTextSplitter(chunk_size=PEER_CHUNK_CHARS, chunk_overlap=PEER_OVERLAP_CHARS)
    load = phases.wrap("load (PyPDFLoader)", lambda path: PyPDFLoader(str(path)).load())
    split = phases.wrap("split", splitter.split_documents)
    write = phases.wrap("store write (embed included)", store.add_documents)

    def ingest_file(path: Path) -> FileOutcome:
        try:
            documents = load(path)
            splits = split(documents)
            for start in range(0, len(splits), 5000):  # Chroma's batch limit
                write(splits[start:start + 5000])
        except Exception as error:  # the peer failing on a hard PDF is a result, not a crash
            return FileOutcome(failure=f"{type(error).__name__}: {str(error)[:120]}")
        pipeline.texts.extend(s.page_content for s in splits)
        return FileOutcome(len(documents), len(splits))

    pipeline = Pipeline("peer: PyPDFLoader + RecursiveCharacterTextSplitter + Chroma", ingest_file, phases)
    return pipeline


def finish_peer_phases(peer: Pipeline) -> None:
    included = peer.phases.seconds.pop("store write (embed included)", 0.0)
    peer.phases.seconds["store write (embed excluded)"] = included - peer.phases.seconds.get("embed", 0.0)


def run_interleaved(paths: list[Path], groups: list[list[Pipeline]]) -> None:
    """File by file, every pipeline in turn, rotating which goes first, so that load from other
    processes on this shared machine falls on all of them alike."""
    for number, path in enumerate(paths):
        shift = number % len(groups)
        for group in groups[shift:] + groups[:shift]:
            for pipeline in group:
                pipeline.run(path)
        log.info("%d/%d %s: %s", number + 1, len(paths), path.name,
                 ", ".join(f"{p.name.split(':')[0]} {p.seconds:.0f} s" for g in groups for p in g))


# ---------------------------------------------------------------------------------------------
# Query latency at scale
# ---------------------------------------------------------------------------------------------

@dataclass
class LatencyResult:
    chunks: int
    queries: int
    build_seconds: float
    total_ms: list[float]
    embed_ms: list[float]


def synthetic_documents(captured: Captured, start: int, count: int, rng: np.random.Generator
                        ) -> list[tuple[DocumentInfo, list[Chunk], np.ndarray]]:
    """Documents of SYNTHETIC_DOC_CHUNKS chunks made of our real chunks, vectors jittered and renormalised."""
    base_chunks = captured.all_chunks()
    base_vectors = captured.all_vectors()
    documents = []
    for offset in range(start, start + count, SYNTHETIC_DOC_CHUNKS):
        size = min(SYNTHETIC_DOC_CHUNKS, start + count - offset)
        doc_id = hashlib.sha256(f"synthetic-{offset}".encode()).hexdigest()
        rows = [(offset + i) % len(base_chunks) for i in range(size)]
        vectors = base_vectors[rows] + rng.normal(0.0, NOISE, (size, base_vectors.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        chunks = [dataclasses.replace(base_chunks[row], doc_id=doc_id, file_name=f"synthetic-{offset}.pdf",
                                      chunk_index=i) for i, row in enumerate(rows)]
        info = DocumentInfo(doc_id=doc_id, file_name=f"synthetic-{offset}.pdf", title="synthetic",
                            pages=1, chunks=size, added="2000-01-01T00:00:00+00:00")
        documents.append((info, chunks, vectors))
    return documents


def grow_store(store: GuidelineStore, captured: Captured, target: int, rng: np.random.Generator) -> float:
    """Add synthetic documents until the store holds `target` chunks; returns the seconds it took."""
    started = time.perf_counter()
    have = store.count()
    for info, chunks, vectors in synthetic_documents(captured, have, target - have, rng):
        store.add_document(info, chunks, vectors)
    return time.perf_counter() - started


def measure_queries(retriever: Retriever, questions: list[str], k: int, warmup: int = 10
                    ) -> tuple[list[float], list[float]]:
    """Per query: total ms of Retriever.search, and the ms of its query embedding."""
    encoder = retriever.encoder
    original = encoder.encode
    embed_ms: list[float] = []

    def timed_encode(*args: Any, **kwargs: Any) -> np.ndarray:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            embed_ms.append((time.perf_counter() - started) * 1000)

    for question in questions[:warmup]:
        retriever.search(question, k)
    encoder.encode = timed_encode
    total_ms = []
    try:
        for question in questions:
            started = time.perf_counter()
            retriever.search(question, k)
            total_ms.append((time.perf_counter() - started) * 1000)
    finally:
        del encoder.encode
    return total_ms, embed_ms


def run_latency(captured: Captured, encoder: Encoder, scales: list[int], questions: list[str], k: int,
                workdir: Path) -> list[LatencyResult]:
    settings = bench_settings(workdir / "scale")
    store = open_store(settings, encoder)
    retriever, rng, results = Retriever(encoder, store), np.random.default_rng(0), []
    for target in sorted(scales):
        build = grow_store(store, captured, target, rng)
        log.info("Store at %d chunks (grown in %.1f s); timing %d queries", store.count(), build, len(questions))
        total_ms, embed_ms = measure_queries(retriever, questions, k)
        results.append(LatencyResult(store.count(), len(questions), build, total_ms, embed_ms))
    return results


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def tokens_per_chunk(encoder: Encoder, texts: list[str]) -> float:
    return statistics.mean(encoder.count_tokens(texts)) if texts else float("nan")


def ingest_table(pipelines: list[Pipeline], encoder: Encoder) -> str:
    rows = [[p.name, p.files, p.pages or "", p.chunks, f"{tokens_per_chunk(encoder, p.texts):.0f}",
             f"{p.seconds:.1f}", f"{p.cpu_seconds:.1f}", f"{p.pages_per_s:.2f}" if p.pages else "",
             f"{p.chunks_per_s:.1f}"] for p in pipelines]
    return markdown_table(["pipeline", "files", "pages", "chunks", "tokens/chunk", "seconds (wall)",
                           "CPU seconds", "pages/s", "chunks/s"], rows)


def phase_table(run: Pipeline) -> str:
    rows = [[name, f"{seconds:.1f}", f"{100 * seconds / run.seconds:.0f}%"]
            for name, seconds in run.phases.seconds.items()]
    nested = "token counting (in chunk_page)"
    accounted = sum(s for n, s in run.phases.seconds.items() if n != nested)
    rows.append(["other (hashing, registry checks, file copy, glue)", f"{run.seconds - accounted:.1f}",
                 f"{100 * (run.seconds - accounted) / run.seconds:.0f}%"])
    return markdown_table(["phase", "seconds", "share"], rows)


def latency_table(results: list[LatencyResult]) -> str:
    rows = []
    for r in results:
        store_ms = [t - e for t, e in zip(r.total_ms, r.embed_ms)]
        rows.append([f"{r.chunks:,}", r.queries, f"{percentile(r.total_ms, 50):.1f}",
                     f"{percentile(r.total_ms, 95):.1f}", f"{percentile(r.total_ms, 99):.1f}",
                     f"{percentile(r.embed_ms, 50):.1f}", f"{percentile(r.embed_ms, 95):.1f}",
                     f"{percentile(store_ms, 50):.1f}", f"{percentile(store_ms, 95):.1f}", f"{r.build_seconds:.0f}"])
    return markdown_table(["chunks in store", "queries", "p50 ms", "p95 ms", "p99 ms", "query embedding p50 ms",
                           "query embedding p95 ms", "store query p50 ms", "store query p95 ms",
                           "store grown in s"], rows)


def throughput_ratio(ours: Pipeline, peer: Pipeline) -> float:
    return ours.pages_per_s / peer.pages_per_s if peer.pages and ours.pages else float("nan")


@dataclass
class Context:
    skipped: list[str]
    load_before: str
    load_after: str
    quick: bool
    subset: str = ""


def report(ours: Pipeline, peer: Pipeline, floor: Pipeline, variant: Pipeline | None,
           latency: list[LatencyResult], encoder: Encoder, context: Context) -> str:
    ratio = throughput_ratio(ours, peer)
    over_floor = ours.seconds / floor.seconds
    largest = max(latency, key=lambda r: r.chunks) if latency else None
    p95 = percentile(largest.total_ms, 95) if largest else float("nan")
    p95_verdict = "n/a (quick)" if context.quick or not largest or largest.chunks < 100_000 else verdict(p95 <= 25)
    pipelines = [ours, peer, floor] + ([variant] if variant else [])
    lines = [
        "## Ingestion and query latency (bench/ingest.py)" + (" — QUICK subset" if context.quick else ""),
        "",
        f"- Date: {benchlib.today()}",
        f"- Command: `{benchlib.command_line()}`",
        f"- Machine: {benchlib.machine_description()}",
        f"- {benchlib.load_note(context.load_before, context.load_after)} The pipelines run file by file in "
        "turn, rotating which goes first, so any other load hits them alike.",
        f"- Skipped (no text layer, OCR needed): {', '.join(context.skipped) or 'none'}.",
        *([f"- **Subset**: {context.subset}; run without --files/--quick for the whole folder."]
          if context.subset else []),
        f"- Peer: LangChain PyPDFLoader + RecursiveCharacterTextSplitter(chunk_size={PEER_CHUNK_CHARS}, "
        f"chunk_overlap={PEER_OVERLAP_CHARS}) + langchain_chroma.Chroma (`add_documents` per file), with the same "
        "SentenceTransformer object (packaged all-MiniLM-L6-v2) behind a LangChain Embeddings class, batch size "
        "64, normalised vectors. Ours: `Library.add_path` (pypdf, clean-up, 200-token chunks with 40 overlap, "
        "embedded as `title | section` + text, atomic write). Models loaded and warmed up before timing; each "
        "pipeline writes to its own fresh embedded Chroma.",
        "",
        "### Ingestion",
        "",
        ingest_table(pipelines, encoder),
        "",
        "| target | figure | verdict |",
        "|---|---|---|",
        f"| ours >= 2x the peer's end-to-end throughput (pages/s) | {ratio:.2f}x | {verdict(ratio >= 2)} |",
        f"| ours <= 1.3x embedding alone on the same chunks | {over_floor:.2f}x | {verdict(over_floor <= 1.3)} |",
        f"| query p95 <= 25 ms at 100k chunks, query embedding included | {p95:.1f} ms at "
        f"{largest.chunks if largest else 0:,} chunks | {p95_verdict} |",
    ]
    lines += ["", f"Our encoder ran {'under bfloat16 autocast' if encoder.bf16 else 'in fp32'} (the app's "
              "`encoder_precision = auto` on this CPU); the peer runs the same model in fp32, as a LangChain "
              "user would."]
    if variant:
        lines += [f"With `encoder_precision = fp32`, ours gives {throughput_ratio(variant, peer):.2f}x the peer's "
                  "throughput: the rest of the gain is the encoder's precision, not the pipeline."]
    lines += ["", "Where our time goes (the functions `Library.add_bytes` calls, wrapped and timed):", "",
              phase_table(ours), "", "Where the peer's time goes:", "", phase_table(peer)]
    failures = [f for p in pipelines for f in p.failures]
    if failures:
        lines += ["", "Files not indexed: " + "; ".join(failures)]
    if latency:
        lines += ["", "### Query latency (`Retriever.search`, k=5, query embedding included)", "",
                  "Stores made of our real chunks duplicated, vectors jittered (N(0, 0.01) per dimension, "
                  f"renormalised), {SYNTHETIC_DOC_CHUNKS} chunks per synthetic document, written through "
                  "`GuidelineStore.add_document`; questions from guidelines/qa/raw/*.jsonl; 10 warm-up queries "
                  "not counted.", "", latency_table(latency)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FILES} small PDFs, 2k/10k stores, 50 queries")
    parser.add_argument("--pdfs", type=Path, default=REALWORLD_PDFS, help="folder of PDFs to ingest")
    parser.add_argument("--files", default=None, help="comma-separated file names: a subset of the folder")
    parser.add_argument("--scales", default=None, help="comma-separated store sizes (default 10000,100000)")
    parser.add_argument("--queries", type=int, default=None, help="queries per store size (default 250)")
    parser.add_argument("--no-latency", action="store_true", help="skip the query-latency part")
    parser.add_argument("--no-fp32", action="store_true", help="skip ours with encoder_precision = fp32")
    parser.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    return parser.parse_args(argv)


def build_pipelines(app_encoder: Encoder, fp32_encoder: Encoder, batch: int, workdir: Path,
                    probes: Instrumentation, captured: Captured, with_variant: bool
                    ) -> tuple[list[list[Pipeline]], Pipeline | None]:
    """Ours and the floor with the app's encoder setting; the peer (and our fp32 variant) in plain fp32."""
    ours = ours_pipeline("ours: Library.add_path", app_encoder, workdir / "ours", probes, captured)
    groups = [[ours, floor_pipeline(app_encoder, batch, captured)],
              [peer_pipeline(fp32_encoder, batch, workdir / "peer")]]
    variant = None
    if with_variant:
        variant = ours_pipeline("ours, encoder_precision = fp32", fp32_encoder, workdir / "ours-fp32", probes, None)
        groups.append([variant])
    return groups, variant


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings, the same for both pipelines
    if not args.pdfs.is_dir():
        raise SystemExit(f"{args.pdfs} does not exist: the real-world PDFs live in ../shared/realworld/pdfs")
    scales = [int(s) for s in (args.scales or ("2000,10000" if args.quick else "10000,100000")).split(",")]
    queries = load_questions(args.queries or (50 if args.quick else 250))
    names = [n.strip() for n in args.files.split(",")] if args.files else None
    paths, skipped, _ = select_pdfs(args.pdfs, args.quick, names)
    subset = f"{len(paths)} of the folder's PDFs ({', '.join(p.name for p in paths)})" if names or args.quick else ""
    log.info("%d PDFs to ingest; skipped: %s", len(paths), skipped)
    load_before = benchlib.load_average()
    encoder = load_encoder("packaged", "cpu", Settings().encoder_precision)  # what the app uses
    fp32_encoder = load_encoder("packaged", "cpu", "fp32")  # what a LangChain user runs
    batch = Settings().embed_batch_size
    for model in (encoder, fp32_encoder):
        model.encode(["warm-up " * 50] * batch, batch)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    probes, captured = Instrumentation(), Captured()
    try:
        groups, variant = build_pipelines(encoder, fp32_encoder, batch, workdir, probes, captured,
                                          not args.no_fp32)
        probes.install()
        try:
            run_interleaved(paths, groups)
        finally:
            probes.uninstall()
        ours, floor, peer = groups[0][0], groups[0][1], groups[1][0]
        finish_peer_phases(peer)
        ours.texts = [embedding_text(c) for c in captured.all_chunks()]
        if variant:
            variant.texts = ours.texts  # the same chunks, only the encoder's precision differs
        latency = [] if args.no_latency else run_latency(captured, encoder, scales, queries,
                                                         Settings().top_k, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    context = Context(skipped, load_before, benchlib.load_average(), args.quick, subset)
    text = report(ours, peer, floor, variant, latency, encoder, context)
    if not args.quick or args.write:
        benchlib.replace_section("ingest", text)
        log.info("Results written to %s", benchlib.RESULTS)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
