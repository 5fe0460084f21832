"""Figures a sentence states (doses, thresholds, durations, frequencies), in one normal form.

The summary check compares the figures of the model's sentence with those of a passage, so both sides
go through the same parser: "5 mg/kg", "5 milligrams per kilogram" and "5mg/kg" are one figure;
"500 micrograms" equals "0.5 mg", "48 hours" equals "2 days"; "2 to 4 weeks" and "2-4 weeks" are one
range, and so is "88% to 92%"; "160/90 mmHg" is one pair, not a lone 90; "6.5 %" and "6.5 per cent" are
one percentage; "twice a day" and "two times daily" are one frequency.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "fifteen": 15, "eighteen": 18,
                 "twenty": 20, "thirty": 30, "forty": 40, "forty-eight": 48, "fifty": 50, "sixty": 60,
                 "seventy-two": 72, "ninety": 90, "hundred": 100, "a hundred": 100, "half": 0.5}

# unit spelling -> (canonical unit, factor to the canonical unit)
_UNITS: dict[str, tuple[str, float]] = {}
for _names, _canonical, _factor in [
    ("mg milligram milligrams milligramme milligrammes", "mg", 1.0),
    ("mcg microgram micrograms microgramme microgrammes µg μg ug", "mg", 0.001),
    ("g gram grams gramme grammes gm", "mg", 1000.0),
    ("kg kilogram kilograms kilogramme kilogrammes", "kg", 1.0),
    ("ml millilitre millilitres milliliter milliliters", "ml", 1.0),
    ("l litre litres liter liters", "ml", 1000.0),
    ("mmol millimole millimoles", "mmol", 1.0),
    ("mol mole moles", "mol", 1.0),
    ("mmhg", "mmhg", 1.0),
    ("unit units iu", "unit", 1.0),
    ("% percent per cent", "%", 1.0),
    ("second seconds sec secs", "hour", 1 / 3600),
    ("minute minutes min mins", "hour", 1 / 60),
    ("hour hours hr hrs h", "hour", 1.0),
    ("day days", "hour", 24.0),
    ("week weeks wk wks", "hour", 168.0),
    ("month months", "month", 1.0),
    ("year years yr yrs", "year", 1.0),
    ("mm millimetre millimetres", "mm", 1.0),
    ("cm centimetre centimetres", "cm", 1.0),
    ("m2 m² metre2", "m2", 1.0),
    ("bpm", "bpm", 1.0),
    ("breaths", "breaths", 1.0),
    ("beats", "beats", 1.0),
    ("°c degrees", "°c", 1.0),
]:
    for _name in _names.split(" ") if _names != "% percent per cent" else ["%", "percent", "per cent"]:
        _UNITS[_name] = (_canonical, _factor)

UNIT_WORDS = frozenset(word for name in _UNITS for word in name.split())  # their own check is the figure's

_RATE_TIME = {name: canonical for names, canonical in [
    ("second seconds sec secs", "second"), ("minute minutes min mins", "minute"),
    ("hour hours hr hrs h hourly", "hour"),
    ("day days daily", "day"), ("week weeks wk wks weekly", "week"), ("month monthly", "month"),
    ("night nightly", "night")] for name in names.split()}

_NUMBER = (r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:[.,]\d+)?|"
           + "|".join(sorted((re.escape(w) for w in _NUMBER_WORDS), key=len, reverse=True)) + r")")
_UNIT = "|".join(sorted((re.escape(u).replace(r"\ ", r"\s+") for u in _UNITS), key=len, reverse=True))
_PER = r"\s*(?:/|\bper\b|\ba\b)\s*"
_DENOMINATOR = rf"(?:1\.73\s*(?:m2|m²)|{_UNIT})"
_FIGURE = re.compile(
    rf"(?<![\w.])(?P<a>{_NUMBER})(?:(?:\s*(?:{_UNIT})(?![\w²]))?\s*(?:-|–|—|\bto\b)\s*(?P<b>{_NUMBER}))?"
    rf"(?:\s*/\s*(?P<c>\d+(?:\.\d+)?))?"
    rf"\s*(?P<unit>(?:{_UNIT})(?:{_PER}{_DENOMINATOR})*)(?![\w²])", re.I)
_FREQUENCY = re.compile(
    rf"\b(?P<n>once|twice|thrice|{_NUMBER})\s*(?:times?\s*)?(?:a|an|per|each|every)?\s*"
    r"(?P<per>day|daily|week|weekly|month|monthly|hour|hourly|night|nightly)\b", re.I)
_BARE_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]\d)")


@dataclass(frozen=True)
class Figure:
    """A number or range (with a second number for pairs such as 160/90) and its canonical unit."""

    low: float
    high: float
    second: float | None
    unit: str

    def __str__(self) -> str:
        value = _show(self.low) if self.low == self.high else f"{_show(self.low)}-{_show(self.high)}"
        if self.second is not None:
            value += f"/{_show(self.second)}"
        return f"{value} {self.unit}".strip()


def _show(value: float) -> str:
    return f"{value:g}"


def number_value(text: str) -> float:
    """A digit string ("1,000", "2.5", "2,5") or a number word as a float."""
    text = text.lower().strip()
    if text in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[text])
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


def _canonical_unit(unit: str) -> tuple[str, float]:
    """'mg per kg' -> ('mg/kg', 1.0); 'micrograms/kg' -> ('mg/kg', 0.001); 'ml/min/1.73 m2' kept whole."""
    whole = re.sub(r"\s+", " ", unit.strip().lower())
    if whole in _UNITS:
        return _UNITS[whole]
    parts = re.split(_PER, whole)
    factor = 1.0
    names = []
    for index, part in enumerate(parts):
        part = re.sub(r"\s+", " ", part)
        if part.startswith("1.73"):
            names.append("1.73m2")
            continue
        name, scale = _UNITS.get(part, (part, 1.0))
        if index > 0 and name == "hour":  # a rate keeps its time unit: per day, per minute
            name, scale = _RATE_TIME[part], 1.0
        names.append(name)
        factor = factor * scale if index == 0 else factor / scale
    return "/".join(names), factor


def figures(text: str) -> set[Figure]:
    """Every figure with a unit, and every frequency ("twice daily" -> 2 /day), in the text."""
    found: set[Figure] = set()
    for match in _FIGURE.finditer(text):
        unit, factor = _canonical_unit(match["unit"])
        low = number_value(match["a"]) * factor
        high = number_value(match["b"]) * factor if match["b"] else low
        second = float(match["c"]) * factor if match["c"] else None
        found.add(Figure(round(low, 6), round(high, 6), second, unit))
    for match in _FREQUENCY.finditer(text):
        count = {"once": 1.0, "twice": 2.0, "thrice": 3.0}.get(match["n"].lower()) or number_value(match["n"])
        per = _RATE_TIME.get(match["per"].lower(), match["per"].lower())
        found.add(Figure(count, count, None, f"times/{per}"))
    return found


def bare_numbers(text: str) -> set[float]:
    """Every number in the text, with or without a unit (an age, a score, a count)."""
    return {float(n) for n in _BARE_NUMBER.findall(text.replace(",", ""))}


def figure_supported(figure: Figure, known: set[Figure]) -> bool:
    """A stated figure is supported by the same figure; a range also by both its ends with the same unit."""
    if figure in known:
        return True
    singles = {(f.low, f.unit) for f in known if f.low == f.high}
    if figure.second is not None:  # 140/90 mmHg: the pair, or both values with the unit
        return figure.low == figure.high and {(figure.low, figure.unit), (figure.second, figure.unit)} <= singles
    return figure.low != figure.high and {(figure.low, figure.unit), (figure.high, figure.unit)} <= singles


def unsupported_figures(text: str, passage: str) -> list[Figure]:
    """The figures of `text` that `passage` does not state."""
    known = figures(passage)
    return sorted((f for f in figures(text) if not figure_supported(f, known)), key=str)
