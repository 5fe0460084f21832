"""Which guideline a question names, if any: "NICE NG51", "RCOG Green-top Guideline 52", "the WHO
antenatal care recommendations", "the IMCI handbook", a file name.

A clinician who names a guideline wants that guideline's words, not a similar passage from another
document. Two kinds of naming are recognised:
- an identifier (a NICE code, a Green-top or SIGN number, a file name): exact; when no document in the
  library carries it, the answer says the named guideline is not in the library;
- a phrase ending in a guideline word ("guidelines", "handbook", "manual", "pathway"...): the documents
  whose name (file name, title, first page) holds most of the phrase's words.
Each document's identifiers and name words are read once, at ingestion (`document_names`).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .cleaning import CleanPage
from .records import DocumentInfo

_CODE = re.compile(
    r"(?i)\b(?:nice\s+(?:guideline\s+)?)?(NG|CG|QS|PH|NICE)\s?-?(\d{1,3})\b"
    r"|\b(?:green[\s-]?top\s+(?:guideline\s+)?(?:no\.?\s*|number\s+)?|GTG\s?-?)(\d{1,3})\b"
    r"|\bSIGN\s?-?(\d{1,3})\b")
_FILE = re.compile(r"(?i)\b[\w.-]+\.pdf\b")
_PHRASE = re.compile(
    r"(?i)\b(?:according to|under|in|from|per|by|does|do|of|using|following)\s+(?:the\s+)?"
    r"((?:[\w'’&/-]+\s+){0,8}?)"
    r"(?:guidelines?|guidance|handbook|manual|pathway|recommendations|pocket guide|guide|stgs?|protocol|booklet|"
    r"chart|policy)\b"
    r"(?:\s+(?:for|on|of)\s+((?:the\s+)?[\w'’-]+(?:\s+[\w'’-]+)?))?")
_WORD = re.compile(r"[a-z0-9]+")
_GENERIC = set("""the a an of for and in on to with by s its their this that what which who how when
guideline guidelines guidance recommendation recommendations handbook manual pathway guide pocket protocol
booklet chart policy clinical management treatment care national standard interim""".split())
_PHRASE_MATCH = 0.6  # share of a phrase's distinctive words that a document's name must hold


def guideline_codes(text: str) -> list[str]:
    """Identifiers in the text, normalised: "NG51", "CG191", "GTG52", "SIGN158"."""
    codes = []
    for nice, number, green_top, sign in _CODE.findall(text):
        if nice:
            prefix = "NG" if nice.upper() == "NICE" else nice.upper()
            codes.append(f"{prefix}{int(number)}")
        elif green_top:
            codes.append(f"GTG{int(green_top)}")
        elif sign:
            codes.append(f"SIGN{int(sign)}")
    return codes


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower().replace("’", "'").replace("'s", "")))


def document_names(file_name: str, title: str, pages: list[CleanPage]) -> tuple[str, str]:
    """(codes, name words) of a document: its own identifiers (in its file name or title, else the one its
    first pages repeat most) and the words of its file name, title and first page."""
    own = guideline_codes(f"{re.sub(r'[_.-]+', ' ', file_name)} {title}")
    if not own:
        counted = Counter(guideline_codes(" ".join(page.text for page in pages[:2])))
        own = [counted.most_common(1)[0][0]] if counted else []
    front = " ".join(page.text for page in pages[:1])[:3000]
    name = " ".join(sorted(_words(f"{re.sub(r'[_.-]+', ' ', file_name)} {title} {front}")))
    return ",".join(dict.fromkeys(own)), name


@dataclass
class NamedGuidelines:
    """What a question names, and which documents of the library that is."""

    doc_ids: list[str] = field(default_factory=list)  # the named documents found in the library
    missing: list[str] = field(default_factory=list)  # identifiers named that no document carries

    @property
    def restricts(self) -> bool:
        return bool(self.doc_ids)


def _phrase_matches(question: str, documents: list[DocumentInfo]) -> list[str]:
    """Documents whose name holds most of the distinctive words of a guideline phrase in the question."""
    best: dict[str, float] = {}
    for lead, topic in _PHRASE.findall(question):
        wanted = _words(f"{lead} {topic}") - _GENERIC
        if not wanted:
            continue
        for info in documents:
            share = len(wanted & set(info.name_text.split())) / len(wanted)
            if share >= _PHRASE_MATCH:
                best[info.doc_id] = max(best.get(info.doc_id, 0.0), share)
    if not best:
        return []
    top = max(best.values())
    return [doc_id for doc_id, share in best.items() if share == top]


def named_guidelines(question: str, documents: list[DocumentInfo]) -> NamedGuidelines:
    """The documents a question names: by identifier or file name first, else by a guideline phrase."""
    named = NamedGuidelines()
    files = {name.lower() for name in _FILE.findall(question)}
    named.doc_ids = [info.doc_id for info in documents if info.file_name.lower() in files]
    for code in dict.fromkeys(guideline_codes(question)):
        carriers = [info.doc_id for info in documents if code in info.codes.split(",")]
        if carriers:
            named.doc_ids.extend(d for d in carriers if d not in named.doc_ids)
        else:
            named.missing.append(code)
    if not named.doc_ids and not named.missing:
        named.doc_ids = _phrase_matches(question, documents)
    return named
