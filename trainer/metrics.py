"""Training metrics: one CSV row per logged step, and TensorBoard event files when tensorboard is
installed (it is not a dependency: without it the CSV is the record, and a log line says so)."""
from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COLUMNS = ["step", "epoch", "examples", "loss", "gen_loss", "ret_loss", "retriever_acc", "lr_generator",
           "lr_retriever", "examples_per_s", "utility_s", "elapsed_s", "dev_accuracy",
           "dev_recall5", "dev_mrr"]


class MetricsLog:
    """Appends rows to <output_dir>/metrics.csv (and TensorBoard under <output_dir>/tensorboard)."""

    def __init__(self, output_dir: Path, resume_step: int | None = None, enabled: bool = True) -> None:
        self.path = output_dir / "metrics.csv"
        self.enabled = enabled
        self.writer: Any = None
        if not enabled:
            return
        rows = self.read(self.path) if resume_step is not None and self.path.is_file() else []
        kept = [row for row in rows if int(float(row["step"])) <= (resume_step or 0)]
        with self.path.open("w", newline="") as handle:  # a resumed run drops rows past its checkpoint
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output_dir / "tensorboard"))
        except ImportError:
            log.info("tensorboard is not installed: metrics go to %s only (pip install tensorboard for event files)",
                     self.path)

    @staticmethod
    def read(path: Path) -> list[dict[str, str]]:
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=COLUMNS).writerow({key: _fmt(row.get(key)) for key in COLUMNS})
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)) and not math.isnan(value):
                    self.writer.add_scalar(f"train/{key}", value, row["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value
