"""One writer per data folder: a second process that would change it is refused with a message naming the
holder, reads still work, and the lock goes when its holder dies (even by kill -9)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from assistant import datalock
from assistant.store import open_store

from app_server import ROOT
from pdfs import GUIDELINE_PAGES, make_pdf

HOLD = textwrap.dedent("""
    import sys, time
    from assistant import datalock
    datalock.acquire(sys.argv[1])
    print("holding", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def other_writer(settings):
    """Another process holding the settings' data folder."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(settings.data_dir)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "holding"
    yield process
    process.kill()
    process.wait()


def test_a_second_process_cannot_write_a_folder_another_writes(tmp_path, encoder, other_writer, settings):
    with pytest.raises(datalock.DataFolderBusy) as refused:
        open_store(settings, encoder, writer=True)
    message = str(refused.value)
    assert f"pid {other_writer.pid}" in message and str(settings.data_dir.resolve()) in message
    assert "stop it first" in message

    reader = open_store(settings, encoder, writer=None)  # takes the folder only when it is free
    assert reader.read_only
    assert reader.list_documents() == []
    with pytest.raises(datalock.DataFolderBusy):
        reader.delete_document("anything")


def test_the_lock_goes_with_its_holder_even_by_kill_9(settings, encoder, other_writer):
    assert not datalock.try_acquire(settings.data_dir)
    os.kill(other_writer.pid, signal.SIGKILL)
    other_writer.wait()
    store = open_store(settings, encoder, writer=True)
    assert not store.read_only and datalock.holds(settings.data_dir)


def test_one_process_may_open_its_own_folder_many_times(settings, encoder):
    first = open_store(settings, encoder, writer=True)
    second = open_store(settings, encoder, writer=True)
    assert not first.read_only and not second.read_only


@pytest.mark.slow
def test_the_command_line_cannot_change_a_running_apps_folder(tmp_path):
    """The outside attack: `python -m assistant.ingest x.pdf` on a live app's folder listed x.pdf where the app
    could not see it, and `--delete` then broke every question. Now the command line is refused with a
    message (the in-process tests show the lock is free again once its holder ends), `--list` still reads,
    and the app keeps answering."""
    from gradio_client import Client, handle_file

    from app_server import running_app
    from conftest import MODEL_CACHE

    data_dir = tmp_path / "data"
    pdf = tmp_path / "anaphylaxis.pdf"
    pdf.write_bytes(make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol"))
    other = tmp_path / "x.pdf"
    other.write_bytes(make_pdf([p + " Another guideline." for p in GUIDELINE_PAGES]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_DATA_DIR=str(data_dir), ASSISTANT_MODEL_CACHE=str(MODEL_CACHE),
               ASSISTANT_INDEX_SAMPLES_ON_START="false")
    cli = [sys.executable, "-m", "assistant.ingest"]
    with running_app(data_dir, MODEL_CACHE) as url:
        client = Client(url, verbose=False)
        assert client.predict(handle_file(str(pdf)), api_name="/upload")["status"] == "indexed"
        done = subprocess.run(cli + [str(other), "--delete", "anaphylaxis.pdf"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "being changed by another process" in done.stderr, done.stderr[-800:]
        listed = subprocess.run(cli + ["--list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert listed.returncode == 0 and "anaphylaxis.pdf" in listed.stdout and "x.pdf" not in listed.stdout
        assert [d["file_name"] for d in client.predict(api_name="/documents")] == ["anaphylaxis.pdf"]
        text, result = client.predict("What dose of adrenaline is given in anaphylaxis?", 3, api_name="/ask")
        assert result["evidence"]
