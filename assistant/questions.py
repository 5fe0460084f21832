"""A question as typed -> a question that can be asked, or a message that says how to ask it."""
from __future__ import annotations

import re
import unicodedata

from .errors import QuestionError


def clean_question(question: str, max_chars: int) -> str:
    """Validate a question; raise QuestionError with what to do when it cannot be asked."""
    text = unicodedata.normalize("NFC", str(question or ""))
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\n\t" else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    if not re.search(r"\w", text):
        raise QuestionError("Please type a question, for example: \"What is the first-line treatment for "
                            "hypertension in adults under 55?\"")
    if len(text) > max_chars:
        raise QuestionError(f"The question is {len(text):,} characters long; the limit is {max_chars:,}. "
                            "Ask the clinical question itself, without pasting whole documents or records.")
    return text
