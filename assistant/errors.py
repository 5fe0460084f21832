"""Errors a user can cause. Each carries a message that says what happened and what to do.

The UI shows `str(error)` as is, so messages are written for a clinician, not a developer.
"""
from __future__ import annotations


class AssistantError(Exception):
    """Base class: anything raised with this type is safe to show to the user."""


class DocumentError(AssistantError):
    """A file that cannot be indexed; nothing was stored."""


class NotAPdfError(DocumentError):
    pass


class CorruptPdfError(DocumentError):
    pass


class EncryptedPdfError(DocumentError):
    pass


class NoTextError(DocumentError):
    pass


class TooLargeError(DocumentError):
    pass


class QuestionError(AssistantError):
    """A question that cannot be asked as written."""


class ModelLoadError(AssistantError):
    """A configured model could not be found or loaded."""
