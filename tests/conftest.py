"""Shared fixtures: the real packaged encoder (loaded once), settings in a temporary data folder,
and the real assistant over an embedded Chroma in that folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from assistant.config import load_settings
from assistant.encoder import load_encoder

from models_fixtures import real_generator, smol_tokenizer, tiny_generator  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
REALWORLD = ROOT.parent / "shared" / "realworld" / "pdfs"
ACCEPTANCE = ROOT.parent / "shared" / "acceptance"
MODEL_CACHE = ROOT / ".cache" / "models"  # the converted generator, shared by tests and test apps

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two test workers share two cores: one thread each, or their thread pools fight over both cores.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def encoder():
    return load_encoder("packaged", "cpu")


@pytest.fixture
def settings(tmp_path):
    return load_settings(env={}, config_file=None, data_dir=tmp_path / "data", index_samples_on_start=False)


@pytest.fixture
def assistant(settings, encoder):
    """The real assistant over a fresh embedded store, reusing the session's encoder."""
    from assistant.service import build_assistant

    return build_assistant(settings, query_encoder=encoder)


@pytest.fixture
def library(assistant):
    return assistant.library


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort). Under `-n 2 --dist loadgroup` the single tests are handed out in this
    order after the groups, so a long one no longer starts last and keeps one worker busy while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
