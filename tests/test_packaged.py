"""The generators that ship in PyPI packages: presets, the pinned checksum, and what a killed conversion
leaves behind."""
from __future__ import annotations

import dataclasses
import os

import pytest

from assistant.errors import ModelLoadError
from assistant.packaged import (
    DEFAULT_PRESET,
    GENERATORS,
    PRESETS,
    convert_packaged_generator,
    join_checked,
    packaged_generator,
)


def test_presets_name_the_packaged_models_and_anything_else_is_a_folder_or_hub_id():
    assert packaged_generator("fast").key == "smollm2-135m"
    assert packaged_generator("balanced").key == "qwen2.5-coder-0.5b"
    assert packaged_generator("quality").key == "qwen2.5-coder-1.5b"
    assert packaged_generator("packaged") == GENERATORS[PRESETS[DEFAULT_PRESET]]
    assert packaged_generator("Qwen/Qwen2.5-7B-Instruct") is None
    assert all(len(model.sha256) == 64 and model.hub_id for model in GENERATORS.values())


def test_a_model_that_does_not_match_its_pinned_checksum_is_refused(tmp_path):
    forged = dataclasses.replace(GENERATORS["smollm2-135m"], key="forged", sha256="0" * 64)
    with pytest.raises(ModelLoadError, match="does not match its pinned checksum"):
        convert_packaged_generator(tmp_path, forged)
    assert list(tmp_path.iterdir()) == []  # neither a cache nor a half-written folder nor the joined copy


def test_the_pinned_checksum_of_the_installed_default_parts_matches(tmp_path):
    model = GENERATORS[PRESETS[DEFAULT_PRESET]]
    joined = join_checked(model, tmp_path / "model.gguf")
    assert joined.read_bytes()[:4] == b"GGUF"


def test_a_missing_package_names_what_to_install(tmp_path):
    missing = dataclasses.replace(GENERATORS["smollm2-135m"], key="missing",
                                  files=(("no_such_model_package_part1", "data/part01.bin"),))
    with pytest.raises(ModelLoadError, match="not installed"):
        convert_packaged_generator(tmp_path, missing)


def test_a_dead_conversion_s_half_written_folder_is_removed(tmp_path):
    model = GENERATORS["smollm2-135m"]
    dead = tmp_path / f".{model.key}.999999999.tmp"
    working = tmp_path / f".{model.key}.{os.getppid()}.tmp"  # a live process's conversion: left alone
    for folder in (dead, working):
        (folder / "gguf").mkdir(parents=True)
    forged = dataclasses.replace(model, sha256="0" * 64)
    with pytest.raises(ModelLoadError):
        convert_packaged_generator(tmp_path, forged)
    assert not dead.exists() and working.exists()
