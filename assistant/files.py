"""The PDFs kept in the data folder (page previews, re-indexing), each beside a manifest with its name.

Written atomically (a temporary file renamed into place), so a crash leaves either the old state or
the new one, never half a file.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class PdfFiles:
    """`<folder>/<doc_id>.pdf` and `<doc_id>.json` ({"file_name": ...}) for every kept document."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, doc_id: str) -> Path:
        return self.folder / f"{doc_id}.pdf"

    def save(self, doc_id: str, data: bytes, file_name: str) -> None:
        target = self.path(doc_id)
        staging = target.with_suffix(".part")
        staging.write_bytes(data)
        staging.replace(target)
        manifest = target.with_suffix(".json")
        staging = target.with_suffix(".json.part")
        staging.write_text(json.dumps({"file_name": file_name}))
        staging.replace(manifest)

    def remove(self, doc_id: str) -> None:
        self.path(doc_id).unlink(missing_ok=True)
        self.path(doc_id).with_suffix(".json").unlink(missing_ok=True)

    def stored(self) -> dict[str, str]:
        """Every kept PDF: document id -> file name."""
        found = {}
        for manifest in sorted(self.folder.glob("*.json")):
            pdf = manifest.with_suffix(".pdf")
            if pdf.is_file():
                try:
                    found[manifest.stem] = json.loads(manifest.read_text())["file_name"]
                except (OSError, ValueError, KeyError):
                    log.warning("Unreadable manifest %s; its PDF is not re-indexed", manifest)
        return found
