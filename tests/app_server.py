"""Start the real app (`python app.py`) on a free local port for API and browser tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(data_dir: Path, model_cache: Path, timeout: float = 300, python: str = sys.executable,
                extra_env: dict[str, str] | None = None, **settings: str):
    """Yield the URL of a freshly started app; stop it afterwards. The app answers with the `fast` generator
    preset unless a test names another (the acceptance test runs the default)."""
    settings.setdefault("generator_model", "fast")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "GRADIO_", "CHROMA_"))}
    env.update({"ASSISTANT_DATA_DIR": str(data_dir), "ASSISTANT_MODEL_CACHE": str(model_cache),
                "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
                "ASSISTANT_INDEX_SAMPLES_ON_START": "false"})
    env.update({f"ASSISTANT_{k.upper()}": str(v) for k, v in settings.items()})
    env.update(extra_env or {})
    log_path = data_dir.parent / f"app-{port}.log"
    with log_path.open("w") as log:  # the child keeps its own handle
        process = subprocess.Popen([python, "app.py"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(process, url, timeout, str(log_path))
        yield url
    finally:
        stop(process)


CHROMA = Path(sys.executable).parent / "chroma"


@contextmanager
def running_chroma(folder: Path, timeout: float = 60):
    """Yield the port of a Chroma server (`chroma run`) persisting in `folder`; stop it afterwards."""
    port = free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "chroma.log", "wb") as log:  # the child keeps its own handle
        process = subprocess.Popen([str(CHROMA), "run", "--path", str(folder / "server-db"), "--host",
                                    "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_serving(process, f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout, str(folder / "chroma.log"))
        yield port
    finally:
        stop(process)


def wait_until_serving(process: subprocess.Popen, url: str, timeout: float, log_name: str) -> None:
    """Poll the URL until it answers 200; fail early when the server process exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log_name}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"server did not answer within {timeout} s; see {log_name}")
        time.sleep(0.25)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)
