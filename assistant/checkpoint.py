"""The checkpoint folder: the contract between the trainer, which writes it, and the app, which loads it.

Layout of a checkpoint (the trainer's `<output_dir>/final`, or a resumable `checkpoints/step-N`):
  adapter/           LoRA adapter (peft format), applied on the base generator
  retriever/         the trained query encoder, sentence-transformers format
  passage_encoder/   only when the passage side trained; its collection version was re-embedded
  checkpoint.json    the manifest: base models, collection version, config, step, costs
The app needs one setting, `checkpoint`, to use all of it (`apply_checkpoint`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .config import Settings

ADAPTER = "adapter"
RETRIEVER = "retriever"
PASSAGE_ENCODER = "passage_encoder"
MANIFEST = "checkpoint.json"

log = logging.getLogger(__name__)


def save_models(folder: Path, generator: Any, query_model: Any, passage_model: Any | None) -> None:
    """Write the parts the app loads: the adapter (LoRA weights only) and the encoders."""
    generator.save_pretrained(str(folder / ADAPTER))
    query_model.save(str(folder / RETRIEVER))
    if passage_model is not None:
        passage_model.save(str(folder / PASSAGE_ENCODER))


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, or an empty one for a folder that has none (an adapter copied by hand)."""
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def trained_choice_format(manifest: dict[str, Any]) -> str | None:
    """The multiple-choice layout a checkpoint was trained on: its config's `choice_format`; `listed` for a
    run from before that setting existed (it had only that layout); None without a manifest."""
    config = manifest.get("config")
    if not isinstance(config, dict):
        return None
    return str(config.get("choice_format", "listed"))


def apply_checkpoint(settings: Settings) -> Settings:
    """Fold a checkpoint's retriever, adapter and multiple-choice layout into the settings (nothing to do
    without one): an adapter is scored on the layout it learned."""
    if not settings.checkpoint:
        return settings
    folder = Path(settings.checkpoint)
    changes: dict[str, Any] = {}
    trained_format = trained_choice_format(read_manifest(folder))
    if trained_format and trained_format != settings.choice_format:
        log.info("Checkpoint %s was trained on the %s multiple-choice layout; using it.", folder.name, trained_format)
        changes["choice_format"] = trained_format
    if (folder / RETRIEVER).is_dir():
        changes["embedding_model"] = str(folder / RETRIEVER)
    if (folder / ADAPTER).is_dir():
        changes["adapter_path"] = str(folder / ADAPTER)
    return settings.replace(**changes)


def passage_encoder_source(settings: Settings) -> str:
    """What embeds passages: the checkpoint's passage encoder when it trained one, else the base encoder
    the collection was indexed with (the query encoder may be a fine-tuned copy of it)."""
    if not settings.checkpoint:
        return settings.embedding_model
    folder = Path(settings.checkpoint)
    if (folder / PASSAGE_ENCODER).is_dir():
        return str(folder / PASSAGE_ENCODER)
    return str(read_manifest(folder).get("base_embedding_model", settings.embedding_model))
