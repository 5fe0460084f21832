"""What kind of text a passage is: guidance (`body`), or the parts of a guideline that are not evidence.

Reference lists, tables of contents, back-of-book indexes, acknowledgement and membership lists, and
legal or publishing boilerplate are full of the words a question uses ("Postpartum haemorrhage: a risk
factor analysis. BJOG 2008") and say nothing a clinician can act on. They are recognised at ingestion,
by their section heading or by the form of their lines, recorded as the chunk's `kind`, and kept out of
retrieval and quotes.
"""
from __future__ import annotations

import re

BODY = "body"
KINDS = (BODY, "references", "contents", "index", "acknowledgements", "boilerplate")

_SECTION_KINDS = [
    ("references", re.compile(r"(?i)\b(references?|bibliography|further reading|reference list|literature cited|"
                              r"works cited)\b")),
    ("contents", re.compile(r"(?i)^(?:table of )?contents$|^sections$")),
    ("index", re.compile(r"(?i)^(?:subject |alphabetical )?index$")),
    ("acknowledgements", re.compile(r"(?i)acknowledg|contributors|declarations? of (?:competing )?interests?|"
                                    r"conflicts? of interest|guideline (?:development )?(?:group|committee|panel)|"
                                    r"membership|peer review(?:ers)?$|^funding$|^authors?$")),
    ("boilerplate", re.compile(r"(?i)^your responsibility$|copyright|notice of rights|^disclaimer$|"
                               r"^how to cite|^citation$")),
]
# One reference entry: "Calvert C, Thomas SL," author initials, "et al", "2012;7:e41114" year;volume, doi, PMID.
_AUTHOR = re.compile(r"\b[A-Z][A-Za-z'’\-]+ [A-Z]{1,3}(?:,|\.|$)", re.M)
_CITATION_MARK = re.compile(r"\bet al\b|\b(?:19|20)\d{2}\s*[;:(]\s*\d|\bdoi\b|\bPMID\b|https?://|\bIn: |"
                            r"\b(?:19|20)\d{2}\.\s*$|\d+\s*\(\d+\)\s*:\s*\d+", re.I | re.M)
_LEADER = re.compile(r"(?:\.{4,}|…{2,}|(?:\. ){3,})\s*[\divxlc]+\s*$", re.I)
_INDEX_LINE = re.compile(r"^[A-Za-z][^,]{1,60}(?:,\s*\d{1,4}(?:\s*[-–]\s*\d{1,4})?)+\.?$")
_LEGAL = re.compile(r"(?i)all rights reserved|notice of rights|\bISBN\b|licen[cs]e: CC BY|"
                    r"may be reproduced|this publication|suggested citation|cataloguing-in-publication")


def kind_of_section(section: str) -> str | None:
    """The kind a section heading announces ("References", "Acknowledgements"...), if any."""
    title = re.sub(r"^(?:\d+(?:\.\d+)*\.?|[A-Z]\.|appendix\s+\w+[.:]?|annex\s+\w+[.:]?)\s*", "", section.strip(),
                   flags=re.I).strip(" :")
    for kind, pattern in _SECTION_KINDS:
        if pattern.search(title):
            return kind
    return None


def _share(lines: list[str], pattern: re.Pattern[str]) -> float:
    return sum(bool(pattern.search(line)) for line in lines) / len(lines) if lines else 0.0


def _citation_counts(text: str) -> tuple[int, int]:
    return len(_CITATION_MARK.findall(text)), len(_AUTHOR.findall(text))


def kind_of_text(text: str) -> str | None:
    """The kind a passage's own lines show, whatever its heading says, if they show one."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    words = max(1, len(text.split()))
    if len(lines) >= 3 and _share(lines, _LEADER) >= 0.4:
        return "contents"
    if len(lines) >= 4 and _share(lines, _INDEX_LINE) >= 0.6:
        return "index"
    citations, authors = _citation_counts(text)
    if citations >= 3 and (citations + authors) * 100 / words >= 8:
        return "references"
    if len(lines) >= 2 and _share(lines, _LEGAL) >= 0.5:
        return "boilerplate"
    return None


def _names_heavy(text: str) -> bool:
    """A list of people and bodies: mostly capitalised words between commas, hardly a verb of guidance."""
    words = re.findall(r"[A-Za-z][A-Za-z'’-]*", text)
    if len(words) < 8:
        return False
    capitalised = sum(word[0].isupper() for word in words) / len(words)
    commas = text.count(",") / len(words)
    return capitalised >= 0.45 and commas >= 0.08 and not _GUIDANCE.search(text)


def classify(text: str, section: str) -> str:
    """The passage's kind: what its lines show; else, under a "References" or "Acknowledgements" heading,
    what its lines confirm; else `body`.

    A heading alone never hides text: headings are missed in real PDFs, and the section then carries on
    over guidance ("Contents" over a whole pathway, "Acknowledgements" over an introduction)."""
    shown = kind_of_text(text)
    if shown:
        return shown
    announced = kind_of_section(section)
    citations, authors = _citation_counts(text)
    if announced == "references" and (citations >= 1 or authors >= 3):
        return "references"
    if announced == "acknowledgements" and _names_heavy(text):
        return "acknowledgements"
    return BODY


_GUIDANCE = re.compile(r"(?i)\b(?:offer|give|consider|recommend(?:ed|s|ations?)?|should|do not|avoid|refer|"
                       r"measure|assess|treat(?:ment)?|dose|mg|ml|hours?|days?|weeks?)\b")
