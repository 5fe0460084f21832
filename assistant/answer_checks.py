"""Checks of the model's own words against the evidence: citations that point nowhere, figures no
passage states."""
from __future__ import annotations

import re

from .records import Evidence

_CITATION = re.compile(r"\[(\d{1,3})\]")


def cited_numbers(text: str, count: int) -> list[int]:
    return sorted({int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= count})


def drop_unknown_citations(text: str, count: int) -> str:
    """Remove citation markers that point at no retrieved passage: the answer may cite only evidence."""
    return _CITATION.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= count else "", text)


_FIGURE = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(mg|milligrams?|micrograms?|microgram|mcg|µg|g|grams?|kg|ml|mL|litres?|l|units?|iu|"
    r"mmol/l|mmhg|%|hours?|hrs?|minutes?|mins?|days?|weeks?|months?|years?|times)\b", re.I)
_UNIT_ALIASES = {"milligram": "mg", "milligrams": "mg", "microgram": "mcg", "micrograms": "mcg", "µg": "mcg",
                 "gram": "g", "grams": "g", "hr": "hour", "hrs": "hour", "hours": "hour", "min": "minute",
                 "mins": "minute", "minutes": "minute", "days": "day", "weeks": "week", "months": "month",
                 "years": "year", "litre": "l", "litres": "l", "units": "unit", "iu": "unit"}


def _figures(text: str) -> set[tuple[str, str]]:
    found = set()
    for number, unit in _FIGURE.findall(text):
        unit = unit.lower()
        found.add((number.replace(",", "."), _UNIT_ALIASES.get(unit, unit)))
    return found


def unsupported_figures(summary: str, evidence: list[Evidence]) -> list[str]:
    """Doses, durations and thresholds the model wrote that no retrieved passage states."""
    known = _figures(" ".join(item.text for item in evidence))
    return sorted(f"{number} {unit}" for number, unit in _figures(summary) - known)
