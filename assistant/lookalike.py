"""File names that read the same but differ: Cyrillic or Greek letters in a Latin name, Unicode hyphens.

A clinician picks a guideline by the name in the library table. "nice-ng109-lower-uti.pdf" written with a
Cyrillic "е", or with a non-breaking hyphen, shows as the same row as the real one, and is cited under a
name that looks trusted. Such names are accepted (they may be honest), but the upload result warns and
the table marks the characters that differ.
"""
from __future__ import annotations

import unicodedata

# Characters commonly mistaken for ASCII ones (after NFKC and case folding), mapped to what they look like.
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ӏ": "l", "ɡ": "g", "ν": "v",
    "α": "a", "ο": "o", "ρ": "p", "τ": "t", "ι": "i", "κ": "k", "υ": "u", "χ": "x", "ε": "e",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "﹣": "-", "－": "-",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "",
})


def skeleton(name: str) -> str:
    """What a name looks like: compatibility forms folded, case folded, look-alike characters replaced."""
    return unicodedata.normalize("NFKC", name).casefold().translate(_CONFUSABLES)


def look_alike(name: str, other: str) -> bool:
    """Two different names that read the same."""
    return name != other and name.casefold() != other.casefold() and skeleton(name) == skeleton(other)


def look_alike_names(names: list[str]) -> set[str]:
    """The names that read like another name of the list: one skeleton per name, grouped."""
    groups: dict[str, set[str]] = {}
    for name in names:
        groups.setdefault(skeleton(name), set()).add(name)
    return {name for group in groups.values() if len({n.casefold() for n in group}) > 1 for name in group}


def differences(name: str) -> str:
    """The characters of a name that are not plain ASCII, with their Unicode names: what to look for."""
    odd = [f"'{char}' {unicodedata.name(char, f'U+{ord(char):04X}')} (character {index + 1})"
           for index, char in enumerate(name) if ord(char) > 127 or not char.isprintable()]
    return "; ".join(odd)


def warning(name: str, existing: list[str]) -> str:
    """A sentence for the upload result when the name reads like a name already in the library ("" if not)."""
    twins = [other for other in existing if look_alike(name, other)]
    if not twins:
        return ""
    return (f" Warning: its name reads like {', '.join(twins)}, already in the library, but differs in "
            f"{differences(name) or 'characters that look the same'}. Check that it is the document you meant.")
