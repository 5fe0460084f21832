"""Helpers shared by the benchmarks: machine description, percentiles, Markdown tables and RESULTS.md sections.

Each benchmark owns one section of bench/RESULTS.md, between HTML comment markers, and replaces only
that section when it is re-run, so the ingestion and answering figures can be refreshed independently.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
REALWORLD_PDFS = ROOT.parent / "shared" / "realworld" / "pdfs"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, as numpy's default does."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def load_average() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def machine_description() -> str:
    """One line naming the CPU, cores, memory, Python and the library versions that matter."""
    import torch

    versions = [f"torch {torch.__version__} ({torch.get_num_threads()} threads)"]
    for module in ("transformers", "sentence_transformers", "chromadb", "pypdf", "bitsandbytes"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except Exception:  # a benchmark that does not need it still describes the machine
            continue
    return (f"{cpu_model()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB RAM, no GPU, "
            f"Python {platform.python_version()}; " + ", ".join(versions))


def command_line() -> str:
    return " ".join([".venv/bin/python", *[_relative(arg) for arg in sys.argv]])


def _relative(arg: str) -> str:
    try:
        return str(Path(arg).resolve().relative_to(ROOT)) if Path(arg).exists() else arg
    except ValueError:
        return arg


def today() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Write `body` as the section `name` of RESULTS.md, replacing only that section."""
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text() if path.is_file() else "# Benchmark results\n\nEach section is written by the " \
        "benchmark it names and replaced only when that benchmark is re-run.\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def load_note(before: str, after: str, cores: int | None = None) -> str:
    """One sentence on how busy the machine was. The load before the run is the signal: during and after
    it, the benchmark's own threads are part of the load average."""
    cores = cores or os.cpu_count() or 1
    try:
        other = float(before.split("/")[0])
    except ValueError:
        other = float("nan")
    state = ("otherwise idle" if other < 0.5 * cores else
             "shared with other processes: absolute figures are pessimistic, the ratios are the robust part")
    return f"The machine was {state} (load average 1/5/15 min before: {before}; after: {after}; {cores} cores)."


def add_training_arguments(parser: Any, store_use: str) -> None:
    """--config and --data-dir of the benchmarks that set up a training run (bench/train.py, bench/utility.py)."""
    parser.add_argument("--config", default=str(ROOT / "trainer" / "configs" / "default.toml"))
    parser.add_argument("--data-dir", default=str(ROOT / "runs" / "bench-train" / "index"),
                        help=f"store to {store_use}; the guideline PDFs are indexed there once")


def add_worker_arguments(parser: Any) -> None:
    """The hidden arguments by which run_workers starts a script in worker mode."""
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)


def serve_worker(args: Any, work: Callable[[str, Path], dict[str, Any]]) -> bool:
    """In worker mode, run `work(model name, empty data folder)` and write its result; False otherwise."""
    if not args.worker:
        return False
    with tempfile.TemporaryDirectory() as data:
        Path(args.out).write_text(json.dumps(work(args.worker, Path(data))))
    return True


def run_workers(script: str, names: list[str], extra: list[str], tag: str) -> list[dict[str, Any]]:
    """Run `script --worker NAME` once per model, each in a fresh process (its own load time and memory);
    each result is also kept in .cache/<tag>-<name>.json."""
    results = []
    for name in names:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([sys.executable, script, "--worker", name, *extra, "--out", out.name], check=True)
            results.append(json.loads(Path(out.name).read_text()))
        (ROOT / ".cache" / f"{tag}-{name}.json").write_text(json.dumps(results[-1]))
    return results
