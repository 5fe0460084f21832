"""The records that pass between ingestion, the store, retrieval, the pipeline and the UI."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Chunk:
    """One passage of a guideline, with where it came from."""

    doc_id: str  # sha256 of the file bytes
    file_name: str
    title: str
    page: int  # physical page, 1-based (what a PDF viewer jumps to)
    page_label: str  # the number printed on the page (roman front matter, offsets)
    section: str
    chunk_index: int
    char_start: int  # offsets into the cleaned text of that page
    char_end: int
    text: str
    kind: str = "body"  # body | references | contents | index | acknowledgements | boilerplate (passage_kinds)
    generation: int = 0  # which writing of its document this chunk belongs to (re-indexing writes the next one)
    read_by: str = "text"  # text (the PDF's text layer) | ocr (its page was a scan, read by tesseract)
    ocr_confidence: float = 0.0  # the page's mean OCR word confidence (0-100), when read by OCR

    @property
    def chunk_id(self) -> str:
        if self.generation:
            return f"{self.doc_id[:16]}-g{self.generation}-{self.chunk_index:05d}"
        return f"{self.doc_id[:16]}-{self.chunk_index:05d}"

    def metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("text")
        return data

    @classmethod
    def from_stored(cls, text: str, metadata: dict[str, Any]) -> Chunk:
        """A chunk as the store holds it: the text, and the rest in metadata (fields added later take defaults)."""
        return cls(text=text, **{name: metadata[name] for name in cls.__dataclass_fields__
                                 if name != "text" and name in metadata})


@dataclass
class DocumentInfo:
    """A document in the library, as the store's registry holds it."""

    doc_id: str
    file_name: str
    title: str
    pages: int
    chunks: int
    added: str  # ISO time, UTC
    codes: str = ""  # guideline identifiers it carries ("NG51", "GTG52"), comma-separated (assistant.naming)
    name_text: str = ""  # the words it is known by: file name, title, its first page (assistant.naming)
    generation: int = 0  # the live writing of its chunks: a re-index commits the next one by this field alone
    reading_note: str = ""  # pages read by OCR, and pages left out, when there were any (assistant.pdf_reader)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stored(cls, metadata: dict[str, Any]) -> DocumentInfo:
        return cls(**{name: metadata[name] for name in cls.__dataclass_fields__ if name in metadata})


@dataclass
class Evidence:
    """A retrieved passage, numbered as the prompt and the answer cite it."""

    number: int
    doc_id: str
    file: str
    title: str
    page: int
    page_label: str
    section: str
    score: float
    text: str
    chunk_id: str = ""
    withheld: bool = False  # holds instruction-like text: shown to the user, never given to the model
    kind: str = "body"
    read_by: str = "text"  # text | ocr: a passage read by OCR may hold misread words; its card says so
    ocr_confidence: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """What the pipeline returns for one question."""

    question: str
    text: str
    evidence: list[Evidence]
    covered: bool  # False when the guidelines do not cover the question
    cited: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    retrieval_query: str = ""
    missing_guidelines: list[str] = field(default_factory=list)  # named by the question, not in the library
    summary: str = ""  # the model's own words that passed the support check (assistant.support)
    summary_checks: list[dict[str, Any]] = field(default_factory=list)  # each sentence it wrote, and the verdict

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = [e.as_dict() for e in self.evidence]
        return data
