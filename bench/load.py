"""Load test: simultaneous askers and an uploader against the real app on loopback, for a bounded time.

    .venv/bin/python bench/load.py [--askers 8] [--seconds 180] [--max-requests 400]

Starts `python app.py` on a free 127.0.0.1 port with a fresh data folder (sample guidelines indexed),
runs N asker threads (gradio_client, questions from guidelines/qa/dev.jsonl) and one uploader thread
that keeps uploading, re-uploading and deleting PDFs, then stops the app and checks the store: chunks
in the collection must equal the chunks the registry promises (nothing lost or duplicated). Writes the
"load" section of bench/RESULTS.md. Traffic goes only to 127.0.0.1, bounded in count and time.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import ROOT, machine_description, markdown_table, percentile, replace_section, today

log = logging.getLogger("bench.load")


def start_app(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "GRADIO_"))}
    env.update(ASSISTANT_DATA_DIR=str(data_dir), ASSISTANT_MODEL_CACHE=str(ROOT / ".cache" / "models"),
               GRADIO_SERVER_PORT=str(port), ASSISTANT_INDEX_SAMPLES_ON_START="true")
    with open(data_dir.parent / "app.log", "w") as app_log:  # the child keeps its own handle
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=app_log)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process
        except OSError:
            time.sleep(1)
    process.kill()
    raise TimeoutError("the app did not start")


def wait_for_library(client, expected: int, timeout: float = 900) -> None:
    """The samples are indexed in the background at first start: wait until they all are."""
    deadline = time.monotonic() + timeout
    while len(client.predict(api_name="/documents")) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError("sample guidelines were not indexed in time")
        time.sleep(3)


def raw_store_counts(data_dir: Path) -> tuple[int, int]:
    """Chunks stored versus chunks the registry promises, as the app left them (no recovery on open)."""
    from assistant.config import load_settings
    from assistant.store import GuidelineStore, make_client

    client = make_client(load_settings(env={}, data_dir=data_dir))
    name = next(c.name for c in client.list_collections() if not c.name.endswith("-docs"))
    return GuidelineStore(client, name, recover=False).integrity()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def revision(source: Path, number: int, target: Path) -> Path:
    """A sample guideline with a revision number in its metadata: new bytes, same text, same name per slot."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.add_metadata({"/Revision": str(number)})
    with target.open("wb") as handle:
        writer.write(handle)
    return target


@dataclass
class Load:
    """Traffic against one app, and what came back."""

    url: str
    work: Path
    questions: list[str]
    stop_at: float
    budget: threading.Semaphore
    latencies: list[float] = field(default_factory=list)
    evidence_latencies: list[float] = field(default_factory=list)  # until the first update that shows evidence
    errors: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def running(self) -> bool:
        return time.monotonic() < self.stop_at and self.budget.acquire(blocking=False)

    def asker(self, seed: int) -> None:
        from gradio_client import Client

        client = Client(self.url, verbose=False)
        rng = random.Random(seed)
        while self.running():
            started = time.perf_counter()
            try:
                job = client.submit(rng.choice(self.questions), 5, api_name="/ask")
                evidence_at = None
                for _, update in job:  # the streamed updates, as a browser sees them
                    if evidence_at is None and update.get("evidence"):
                        evidence_at = time.perf_counter() - started
                _, payload = job.result()
                assert payload["evidence"] and evidence_at is not None, "no evidence"
                with self.lock:
                    self.latencies.append(time.perf_counter() - started)
                    self.evidence_latencies.append(evidence_at)
            except Exception as error:  # counted, reported
                with self.lock:
                    self.errors.append(f"ask: {type(error).__name__}: {str(error)[:120]}")

    def uploader(self) -> None:
        from gradio_client import Client, handle_file

        client = Client(self.url, verbose=False)
        source = sorted((ROOT / "guidelines").glob("*.pdf"))[0]
        round_number = 0
        while self.running():
            round_number += 1
            path = revision(source, round_number, self.work / f"load-{round_number % 3}.pdf")
            try:
                status = client.predict(handle_file(str(path)), True, api_name="/upload")["status"]  # replaces
                with self.lock:
                    self.uploads.append(status)
                if round_number % 4 == 0:
                    client.predict(path.name, api_name="/delete")
            except Exception as error:
                with self.lock:
                    self.errors.append(f"upload: {type(error).__name__}: {str(error)[:120]}")

    def run(self, askers: int) -> float:
        threads = [threading.Thread(target=self.asker, args=(i,)) for i in range(askers)]
        threads.append(threading.Thread(target=self.uploader))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started


EVIDENCE_P95_TARGET = 3.0


def report(args: argparse.Namespace, load: Load, elapsed: float, documents: int, stored: int, promised: int) -> str:
    evidence_p95 = percentile(load.evidence_latencies, 95)
    rows = [[args.askers, f"{elapsed:.0f}", len(load.latencies), f"{percentile(load.evidence_latencies, 50):.1f}",
             f"{evidence_p95:.1f}", f"{percentile(load.latencies, 50):.1f}", f"{percentile(load.latencies, 95):.1f}",
             len(load.uploads), len(load.errors), documents, stored, promised, "yes" if stored == promised else "NO"]]
    verdict = "met" if evidence_p95 <= EVIDENCE_P95_TARGET and not load.errors and stored == promised else "missed"
    return (f"Run {today()} with `{' '.join(['bench/load.py'] + sys.argv[1:])}` on {machine_description()}; "
            f"generator: the app's default preset.\n\n"
            + markdown_table(["askers", "seconds", "answers", "evidence p50 s", "evidence p95 s", "answer p50 s",
                              "answer p95 s", "uploads", "errors", "documents", "chunks stored", "chunks registered",
                              "consistent"], rows)
            + f"\n\nTarget: evidence shown p95 <= {EVIDENCE_P95_TARGET:.0f} s with 0 errors and a consistent store: "
              f"**{verdict}** ({evidence_p95:.1f} s, {len(load.errors)} errors)."
            + "\n\nUpload outcomes: " + json.dumps({s: load.uploads.count(s) for s in set(load.uploads)})
            + ("\n\nErrors:\n" + "\n".join(f"- {e}" for e in load.errors[:20]) if load.errors else "\n\nNo errors.")
            + "\n\nEvidence: time until the first streamed update that shows passages (retrieval and the verbatim "
              "wording need no model). Answer: time until the last update (the checked summary); summaries are "
              "written `concurrency_limit` (2) at a time, so under 8 askers most of it is waiting for a turn.\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--askers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--max-requests", type=int, default=400)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from gradio_client import Client

    questions = [json.loads(line)["question"] for line in (ROOT / "guidelines/qa/dev.jsonl").read_text().splitlines()]
    work = Path(tempfile.mkdtemp(prefix="load-"))
    data_dir = work / "data"
    data_dir.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    samples = len(list((ROOT / "guidelines").glob("*.pdf")))
    process = start_app(data_dir, port)
    try:
        wait_for_library(Client(url, verbose=False), samples)
        log.info("app ready with %d documents; loading for %.0f s", samples, args.seconds)
        load = Load(url, work, questions, time.monotonic() + args.seconds, threading.Semaphore(args.max_requests))
        elapsed = load.run(args.askers)
        documents = len(Client(url, verbose=False).predict(api_name="/documents"))
    finally:
        process.terminate()
        process.wait(30)
    stored, promised = raw_store_counts(data_dir)
    body = report(args, load, elapsed, documents, stored, promised)
    if not args.no_write:
        replace_section("load", "## Load: simultaneous askers and an uploader\n\n" + body)
    print(body)


if __name__ == "__main__":
    main()
