"""Citation markers in the model's own words: which passages they cite, and those that point nowhere."""
from __future__ import annotations

import re

_CITATION = re.compile(r"\[(\d{1,3})\]")


def cited_numbers(text: str, count: int) -> list[int]:
    return sorted({int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= count})


def drop_unknown_citations(text: str, count: int) -> str:
    """Remove citation markers that point at no retrieved passage: the answer may cite only evidence."""
    return _CITATION.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= count else "", text)
