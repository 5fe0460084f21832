"""Shared fixtures: the real packaged encoder (loaded once), settings in a temporary data folder,
and a library over an embedded Chroma in that folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from assistant.config import load_settings  # noqa: E402
from assistant.models import load_encoder  # noqa: E402

REALWORLD = ROOT.parent / "shared" / "realworld" / "pdfs"
ACCEPTANCE = ROOT.parent / "shared" / "acceptance"
MODEL_CACHE = ROOT / ".cache" / "models"  # the converted generator, shared by tests and test apps


@pytest.fixture(scope="session")
def encoder():
    return load_encoder("packaged", "cpu")


@pytest.fixture
def settings(tmp_path):
    return load_settings(env={}, config_file=None, data_dir=tmp_path / "data", index_samples_on_start=False)


@pytest.fixture
def assistant(settings, encoder):
    """A service over a fresh embedded store, reusing the session's encoder."""
    from assistant.ingest import Library
    from assistant.service import Assistant
    from assistant.store import GuidelineStore, make_client

    store = GuidelineStore(make_client(settings), f"{settings.collection}-{encoder.fingerprint}")
    return Assistant(settings=settings, query_encoder=encoder, passage_encoder=encoder, store=store,
                     library=Library(settings, encoder, store))


@pytest.fixture
def library(assistant):
    return assistant.library

from models_fixtures import real_generator, smol_tokenizer, tiny_generator  # noqa: E402,F401
