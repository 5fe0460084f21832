"""The PDFs kept in the data folder (page previews, re-indexing), each beside a manifest with its name.

Written atomically (a temporary file renamed into place), so a crash leaves either the old state or
the new one, never half a file.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def words_path(pdf_path: Path) -> Path:
    """Where the OCR word boxes of a kept PDF are (beside it, `<doc_id>.words`)."""
    return Path(pdf_path).with_suffix(".words")


def read_words(pdf_path: Path, page: int) -> list[list[Any]] | None:
    """The OCR word boxes kept for a page of a kept PDF; None when none were kept (or they cannot be read)."""
    try:
        return json.loads(words_path(pdf_path).read_text()).get(str(page))
    except (OSError, ValueError):
        return None


class PdfFiles:
    """`<folder>/<doc_id>.pdf` and `<doc_id>.json` ({"file_name": ..., "state": ...}) for every kept document, and
    `<doc_id>.words` for one with pages read by OCR.

    The manifest's state says what a crash interrupted: `pending` from saving until the store commits the
    document, `deleting` from the start of a deletion; no state once committed. `Library.tidy` reads it at
    start-up: a pending or deleting file that is not registered is a leftover to remove; a committed one that
    is not registered was lost by an older version's re-index and is restored.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, doc_id: str) -> Path:
        return self.folder / f"{doc_id}.pdf"

    def save(self, doc_id: str, data: bytes, file_name: str) -> None:
        """Keep the PDF, marked pending until `commit`."""
        target = self.path(doc_id)
        staging = target.with_suffix(".part")
        staging.write_bytes(data)
        staging.replace(target)
        self._write_manifest(doc_id, {"file_name": file_name, "state": "pending"})

    def commit(self, doc_id: str) -> None:
        self._set_state(doc_id, "")

    def mark_deleting(self, doc_id: str) -> None:
        self._set_state(doc_id, "deleting")

    def _set_state(self, doc_id: str, state: str) -> None:
        manifest = self._read_manifest(self.path(doc_id).with_suffix(".json"))
        if manifest is None:
            return
        manifest.pop("state", None)
        self._write_manifest(doc_id, {**manifest, **({"state": state} if state else {})})

    def _write_manifest(self, doc_id: str, manifest: dict[str, Any]) -> None:
        target = self.path(doc_id).with_suffix(".json")
        staging = target.with_suffix(".json.part")
        staging.write_text(json.dumps(manifest))
        staging.replace(target)

    def remove(self, doc_id: str) -> None:
        self.path(doc_id).unlink(missing_ok=True)
        self.path(doc_id).with_suffix(".json").unlink(missing_ok=True)
        words_path(self.path(doc_id)).unlink(missing_ok=True)

    def save_words(self, doc_id: str, pages: dict[int, list[list[Any]]]) -> None:
        """Keep the word boxes OCR found on the document's scanned pages, so its page pictures are marked without
        reading them again: {page: [[text, left, top, right, bottom], ...]}. Nothing is kept when there are none."""
        target = words_path(self.path(doc_id))
        if not pages:
            target.unlink(missing_ok=True)
            return
        staging = target.with_suffix(".words.part")
        staging.write_text(json.dumps({str(page): words for page, words in pages.items()}))
        staging.replace(target)

    def entries(self) -> dict[str, tuple[str, str]]:
        """Every kept PDF with a readable manifest: document id -> (file name, state)."""
        found = {}
        for manifest_path in sorted(self.folder.glob("*.json")):
            if not manifest_path.with_suffix(".pdf").is_file():
                continue
            manifest = self._read_manifest(manifest_path)
            if manifest is None:
                log.warning("Unreadable manifest %s; its PDF is not re-indexed", manifest_path)
                continue
            found[manifest_path.stem] = (str(manifest["file_name"]), str(manifest.get("state", "")))
        return found

    def stored(self) -> dict[str, str]:
        """Every committed kept PDF: document id -> file name."""
        return {doc_id: name for doc_id, (name, state) in self.entries().items() if not state}

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any] | None:
        try:
            manifest = json.loads(path.read_text())
            return manifest if isinstance(manifest, dict) and "file_name" in manifest else None
        except (OSError, ValueError):
            return None
