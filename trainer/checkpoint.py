"""Resumable checkpoints: everything `--resume` needs to continue exactly where a run stopped.

A checkpoint folder (<output_dir>/checkpoints/step-000123, or <output_dir>/final) holds what the app
loads, whose layout is the contract in assistant.checkpoint (adapter/, retriever/, passage_encoder/,
checkpoint.json), plus:
  metrics.csv        the metrics so far
  trainer_state.pt   resumable only: optimizer, scheduler, RNG states, progress
  candidates.json    resumable only: this epoch's candidate passages (a resumed epoch keeps them)
"""
from __future__ import annotations

import json
import logging
import random
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assistant.checkpoint import ADAPTER
from assistant.records import Chunk

from .jmlr import Example
from .qa import QARecord

log = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class RunProgress:
    """Where a run is: the numbers a resumed run starts from."""

    global_step: int = 0
    epoch: int = 0
    batches_done: int = 0  # micro-batches finished in the current epoch
    examples_seen: int = 0
    collection: str = ""  # the live collection version (changes when the passage encoder re-indexes)
    elapsed_seconds: float = 0.0
    last_reindex_step: int = 0
    base_recall: float = -1.0  # dev recall@5 of the untrained retriever: the floor a shipped one must keep
    base_mrr: float = -1.0  # and its mean reciprocal rank of the gold passage: the second floor
    best_step: int = -1  # the dev evaluation kept as the final checkpoint so far (-1: none yet)
    best_score: float = -1.0  # its dev accuracy + dev recall@5


def rng_state(sampler: torch.Generator) -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "sampler": sampler.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], sampler: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    sampler.set_state(state["sampler"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resumable(folder: Path, optimizer: Any, scheduler: Any, sampler: torch.Generator, progress: RunProgress,
                   examples: list[Example], record_index: dict[str, int]) -> None:
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng_state(sampler), "progress": asdict(progress)}, folder / "trainer_state.pt")
    candidates = [{"record": record_index[e.record.id], "query": e.query,
                   "candidates": [asdict(chunk) for chunk in e.candidates]} for e in examples]
    (folder / "candidates.json").write_text(json.dumps(candidates))


def latest_resumable(output_dir: Path) -> Path | None:
    folder = output_dir / "checkpoints"
    steps = sorted((int(m.group(1)), path) for path in folder.glob("step-*")
                   if (m := STEP_DIR.match(path.name)) and (path / "trainer_state.pt").is_file()) \
        if folder.is_dir() else []
    return steps[-1][1] if steps else None


def prune(output_dir: Path, keep: int) -> None:
    """Keep the newest `keep` resumable checkpoints (each holds optimizer state: hundreds of MB)."""
    folder = output_dir / "checkpoints"
    steps = sorted((int(m.group(1)), path) for path in folder.glob("step-*") if (m := STEP_DIR.match(path.name)))
    for _, path in steps[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def load_adapter_weights(generator: Any, folder: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(folder / ADAPTER / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(generator, weights)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"The adapter in {folder} does not fit this generator: {unexpected[:3]}")


def load_encoder_weights(model: Any, folder: Path) -> None:
    from sentence_transformers import SentenceTransformer

    saved = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    model.load_state_dict(saved.state_dict())


def load_resumable(folder: Path, optimizer: Any, scheduler: Any, sampler: torch.Generator,
                   records: list[QARecord]) -> tuple[RunProgress, list[Example], dict[str, Any]]:
    """Optimizer, scheduler and progress, and the epoch's candidates. RNG is restored by the caller,
    last, so nothing that runs while the models load can shift the random streams."""
    state = torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    progress = RunProgress(**state["progress"])
    examples = []
    for item in json.loads((folder / "candidates.json").read_text()):
        examples.append(Example(record=records[item["record"]], query=item["query"],
                                candidates=[Chunk(**chunk) for chunk in item["candidates"]]))
    return progress, examples, state["rng"]
