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
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchlib import ROOT, machine_description, markdown_table, percentile, replace_section, today

log = logging.getLogger("bench.load")


def start_app(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "GRADIO_"))}
    env.update(ASSISTANT_DATA_DIR=str(data_dir), ASSISTANT_MODEL_CACHE=str(ROOT / ".cache" / "models"),
               GRADIO_SERVER_PORT=str(port), ASSISTANT_INDEX_SAMPLES_ON_START="true")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=open(data_dir.parent / "app.log", "w"))
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--askers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--max-requests", type=int, default=400)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from gradio_client import Client, handle_file

    sys.path.insert(0, str(ROOT / "tests"))
    from app_server import free_port
    from pdfs import GUIDELINE_PAGES, make_pdf

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
        stop_at = time.monotonic() + args.seconds
        latencies: list[float] = []
        errors: list[str] = []
        upload_results: list[str] = []
        budget = threading.Semaphore(args.max_requests)
        lock = threading.Lock()

        def asker(seed: int) -> None:
            client = Client(url, verbose=False)
            rng = random.Random(seed)
            while time.monotonic() < stop_at and budget.acquire(blocking=False):
                started = time.perf_counter()
                try:
                    answer, payload = client.predict(rng.choice(questions), 5, api_name="/ask")
                    assert payload["evidence"], "no evidence"
                    with lock:
                        latencies.append(time.perf_counter() - started)
                except Exception as error:  # counted, reported
                    with lock:
                        errors.append(f"ask: {type(error).__name__}: {str(error)[:120]}")

        def uploader() -> None:
            client = Client(url, verbose=False)
            round_number = 0
            while time.monotonic() < stop_at and budget.acquire(blocking=False):
                round_number += 1
                path = work / f"load-{round_number % 3}.pdf"
                pages = [page + f" Revision {round_number}." for page in GUIDELINE_PAGES]
                path.write_bytes(make_pdf(pages * 5))
                try:
                    status = client.predict(handle_file(str(path)), api_name="/upload")["status"]
                    with lock:
                        upload_results.append(status)
                    if round_number % 4 == 0:
                        client.predict(path.name, api_name="/delete")
                except Exception as error:
                    with lock:
                        errors.append(f"upload: {type(error).__name__}: {str(error)[:120]}")

        threads = [threading.Thread(target=asker, args=(i,)) for i in range(args.askers)]
        threads.append(threading.Thread(target=uploader))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        documents = Client(url, verbose=False).predict(api_name="/documents")
    finally:
        process.terminate()
        process.wait(30)
    stored, promised = raw_store_counts(data_dir)
    rows = [[args.askers, f"{elapsed:.0f}", len(latencies), f"{percentile(latencies, 50):.1f}",
             f"{percentile(latencies, 95):.1f}", len(upload_results), len(errors), len(documents), stored, promised,
             "yes" if stored == promised else "NO"]]
    body = (f"Run {today()} with `{' '.join(['bench/load.py'] + sys.argv[1:])}` on {machine_description()}.\n\n"
            + markdown_table(["askers", "seconds", "answers", "p50 s", "p95 s", "uploads", "errors", "documents",
                              "chunks stored", "chunks registered", "consistent"], rows)
            + "\n\nUpload outcomes: " + json.dumps({s: upload_results.count(s) for s in set(upload_results)})
            + ("\n\nErrors:\n" + "\n".join(f"- {e}" for e in errors[:20]) if errors else "\n\nNo errors.")
            + "\n\nAnswers are generated by the packaged SmolLM2-135M on 2 CPU cores with a queue of 2 concurrent "
              "generations, so latency under 8 simultaneous askers is mostly waiting in the queue.\n")
    replace_section("load", "## Load: simultaneous askers and an uploader\n\n" + body)
    print(body)


if __name__ == "__main__":
    main()
