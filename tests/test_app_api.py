"""The app's named API endpoints, through gradio_client against the real app on a local port."""
from __future__ import annotations

import json

import pytest
from gradio_client import Client, handle_file

from app_server import running_app
from conftest import MODEL_CACHE
from pdfs import GUIDELINE_PAGES, make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_app_api")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app's client and its data folder (its log is beside the folder)."""
    data = tmp_path_factory.mktemp("app") / "data"
    data.mkdir()
    with running_app(data, MODEL_CACHE) as url:
        yield Client(url, verbose=False), data


@pytest.fixture(scope="module")
def client(served):
    return served[0]


def _write(tmp_path, name, pages, **kwargs):
    path = tmp_path / name
    path.write_bytes(make_pdf(pages, **kwargs))
    return str(path)


def test_upload_ask_list_delete(client, tmp_path):
    pdf = _write(tmp_path, "anaphylaxis-protocol.pdf", GUIDELINE_PAGES, title="Anaphylaxis protocol")
    status = client.predict(handle_file(pdf), api_name="/upload")
    assert status["status"] == "indexed" and status["file"] == "anaphylaxis-protocol.pdf" and status["chunks"] > 0
    again = client.predict(handle_file(pdf), api_name="/upload")
    assert again["status"] == "already indexed"

    answer, payload = client.predict("After how many minutes can IM adrenaline be repeated?", 3, api_name="/ask")
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    assert payload["covered"] and "5 minutes" in answer
    top = payload["evidence"][0]
    assert top["file"] == "anaphylaxis-protocol.pdf" and top["page"] == 2 and "5 minutes" in top["text"]
    assert len(payload["evidence"]) == 3 and "supports, and does not replace" in payload["disclaimer"]

    documents = client.predict(api_name="/documents")
    assert [d["file_name"] for d in documents] == ["anaphylaxis-protocol.pdf"]
    assert documents[0]["pages"] == 4

    assert client.predict("anaphylaxis-protocol.pdf", api_name="/delete")["deleted"] is True
    assert client.predict(api_name="/documents") == []
    _, payload = client.predict("After how many minutes can IM adrenaline be repeated?", 3, api_name="/ask")
    assert payload["evidence"] == [] and not payload["covered"]


def test_a_same_named_upload_is_added_beside_and_replaces_only_when_asked(client, tmp_path):
    """The outside attack: a/download.pdf then b/download.pdf (a different guideline) silently removed the first."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _write(tmp_path / "a", "download.pdf", GUIDELINE_PAGES, title="COVID-19 in pregnancy")
    second = _write(tmp_path / "b", "download.pdf", [p + " Asthma pathway." for p in GUIDELINE_PAGES],
                    title="Asthma pathway")
    assert client.predict(handle_file(first), api_name="/upload")["status"] == "indexed"
    beside = client.predict(handle_file(second), api_name="/upload")
    assert beside["status"] == "indexed" and beside["file"] == "download (2).pdf"
    assert "nothing was replaced" in beside["message"]
    names = sorted(d["file_name"] for d in client.predict(api_name="/documents"))
    assert names == ["download (2).pdf", "download.pdf"]

    third = _write(tmp_path, "download.pdf", [p + " Version three." for p in GUIDELINE_PAGES], title="Update")
    replaced = client.predict(handle_file(third), True, api_name="/upload")
    assert replaced["status"] == "replaced" and replaced["file"] == "download.pdf"
    titles = {d["file_name"]: d["title"] for d in client.predict(api_name="/documents")}
    assert titles["download.pdf"] == "Update" and titles["download (2).pdf"] == "Asthma pathway"
    for name in ("download.pdf", "download (2).pdf"):
        assert client.predict(name, api_name="/delete")["deleted"] is True


def test_bad_upload_is_refused_with_a_reason(client, tmp_path):
    fake = tmp_path / "guideline.pdf"
    fake.write_text("<html><body>Sign in to download</body></html>")
    status = client.predict(handle_file(str(fake)), api_name="/upload")
    assert status["status"] == "refused" and "not a PDF" in status["message"]
    assert all(d["file_name"] != "guideline.pdf" for d in client.predict(api_name="/documents"))


@pytest.mark.parametrize("top_k", ["abc", "nan", "inf", 0, 2.5, 21])
def test_a_bad_top_k_gets_a_clear_error_and_no_traceback_in_the_log(served, top_k):
    client, data = served
    with pytest.raises(Exception, match=r"top_k must be a whole number of passages from 1 to 20"):
        client.predict("What is the adrenaline dose in anaphylaxis?", top_k, api_name="/ask")
    port = client.src.rstrip("/").rsplit(":", 1)[1]
    log = (data.parent / f"app-{port}.log").read_text()
    assert "Refused an API call: top_k must be" in log and "Traceback" not in log


def test_empty_question_gets_a_clear_error(client):
    with pytest.raises(Exception, match="type a question"):
        client.predict("   ", 5, api_name="/ask")


def test_the_readme_api_example_runs_as_written(client, capsys):
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    api_section = readme.split("## API", 1)[1]
    example = api_section.split("```python", 1)[1].split("```", 1)[0]
    assert 'Client("http://127.0.0.1:7860/")' in example
    example = example.replace('Client("http://127.0.0.1:7860/")', f'Client("{client.src}", verbose=False)')
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)  # the example names guidelines/... relative to the project
    try:
        exec(compile(example, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    assert "indexed" in printed and "who-2023-malaria.pdf" in printed


def test_the_shared_acceptance_check_passes_against_a_fresh_app(tmp_path):
    """../shared/acceptance/api_check.py, run as a client program would run it, on an empty app."""
    import subprocess
    import sys

    from conftest import ACCEPTANCE

    if not (ACCEPTANCE / "api_check.py").is_file():
        pytest.skip(reason=f"{ACCEPTANCE} is not present on this machine")
    data = tmp_path / "data"
    data.mkdir()
    with running_app(data, MODEL_CACHE, generator_model="packaged") as url:  # the default, as a user starts it
        done = subprocess.run([sys.executable, str(ACCEPTANCE / "api_check.py"), url,
                               str(ACCEPTANCE / "questions.jsonl"), "5", str(ACCEPTANCE / "anaphylaxis_protocol.pdf")],
                              capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["questions"] >= 5
    assert figures["evidence_hit_at_k"] == 1.0 and figures["answer_hit"] == 1.0, done.stdout
    # the default generator's own words: never a wrong option, the right fact on most questions
    assert figures["summary_wrong"] == 0.0 and figures["summary_hit"] >= 0.6, done.stdout
