"""Settings precedence (defaults < TOML file < environment < explicit overrides) and the messages a
wrong setting gives."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from assistant.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _no_stray_config(tmp_path, monkeypatch):
    """Run in an empty folder, so a developer's ./assistant.toml cannot leak into these tests."""
    monkeypatch.chdir(tmp_path)


def write_toml(folder: Path, text: str, name: str = "settings.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_with_no_file_and_no_environment():
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.chunk_tokens == 200 and settings.chroma_host == "" and settings.server_port == 7860


def test_toml_file_overrides_defaults_and_converts_types(tmp_path):
    path = write_toml(tmp_path, 'chunk_tokens = 120\nmax_file_mb = 5\ndata_dir = "~/guide-data"\n'
                                'index_samples_on_start = false\nchroma_host = "db.local"\n')
    settings = load_settings(config_file=path, env={})
    assert settings.chunk_tokens == 120
    assert settings.max_file_mb == 5.0 and isinstance(settings.max_file_mb, float)
    assert settings.data_dir == Path("~/guide-data").expanduser()
    assert settings.index_samples_on_start is False
    assert settings.chroma_host == "db.local"
    assert settings.top_k == Settings().top_k  # untouched settings keep their defaults


def test_toml_file_may_use_an_assistant_table(tmp_path):
    path = write_toml(tmp_path, "[assistant]\ntop_k = 7\n")
    assert load_settings(config_file=path, env={}).top_k == 7


def test_toml_file_found_through_assistant_config_and_in_the_working_folder(tmp_path):
    named = write_toml(tmp_path, "top_k = 3\n", "named.toml")
    assert load_settings(env={"ASSISTANT_CONFIG": str(named)}).top_k == 3
    write_toml(tmp_path, "top_k = 4\n", "assistant.toml")  # the working folder is tmp_path
    assert load_settings(env={}).top_k == 4
    # an explicit file beats $ASSISTANT_CONFIG, which beats ./assistant.toml
    explicit = write_toml(tmp_path, "top_k = 9\n", "explicit.toml")
    assert load_settings(config_file=explicit, env={"ASSISTANT_CONFIG": str(named)}).top_k == 9


def test_environment_overrides_toml_file(tmp_path):
    path = write_toml(tmp_path, "chunk_tokens = 120\ntop_k = 3\n")
    settings = load_settings(config_file=path, env={"ASSISTANT_CHUNK_TOKENS": "150",
                                                    "ASSISTANT_INDEX_SAMPLES_ON_START": "no",
                                                    "ASSISTANT_MAX_FILE_MB": "12.5"})
    assert settings.chunk_tokens == 150  # environment beats the file
    assert settings.top_k == 3  # the file still applies where the environment is silent
    assert settings.index_samples_on_start is False
    assert settings.max_file_mb == 12.5


def test_other_tools_environment_names_are_understood(tmp_path):
    env = {"CHROMA_HOST": "chroma.internal", "CHROMA_PORT": "8123",
           "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7999"}
    settings = load_settings(config_file=write_toml(tmp_path, "chroma_port = 9000\nserver_port = 7000\n"), env=env)
    assert (settings.chroma_host, settings.chroma_port) == ("chroma.internal", 8123)
    assert (settings.server_name, settings.server_port) == ("0.0.0.0", 7999)


def test_assistant_names_beat_the_other_tools_names():
    env = {"GRADIO_SERVER_PORT": "7999", "ASSISTANT_SERVER_PORT": "8001",
           "CHROMA_HOST": "from-chroma-var", "ASSISTANT_CHROMA_HOST": "from-assistant-var"}
    settings = load_settings(env=env)
    assert settings.server_port == 8001
    assert settings.chroma_host == "from-assistant-var"


def test_empty_alias_is_ignored():
    assert load_settings(env={"CHROMA_HOST": "", "GRADIO_SERVER_PORT": ""}) == Settings()


def test_explicit_overrides_beat_everything(tmp_path):
    path = write_toml(tmp_path, "top_k = 3\nchunk_overlap = 10\n")
    settings = load_settings(config_file=path, env={"ASSISTANT_TOP_K": "4", "ASSISTANT_CHUNK_OVERLAP": "20"},
                             top_k=6, data_dir=tmp_path / "d")
    assert settings.top_k == 6
    assert settings.chunk_overlap == 20
    assert settings.data_dir == tmp_path / "d"
    assert settings.files_dir == tmp_path / "d" / "files" and settings.chroma_dir == tmp_path / "d" / "chroma"


@pytest.mark.parametrize("env, setting", [
    ({"ASSISTANT_CHUNK_TOKENS": "two hundred"}, "ASSISTANT_CHUNK_TOKENS"),
    ({"ASSISTANT_INDEX_SAMPLES_ON_START": "maybe"}, "ASSISTANT_INDEX_SAMPLES_ON_START"),
    ({"ASSISTANT_MAX_FILE_MB": "lots"}, "ASSISTANT_MAX_FILE_MB"),
    ({"CHROMA_PORT": "http://x"}, "CHROMA_PORT"),
    ({"GRADIO_SERVER_PORT": "78.6"}, "GRADIO_SERVER_PORT"),
])
def test_bad_environment_value_names_the_variable(env, setting):
    with pytest.raises(ValueError) as caught:
        load_settings(env=env)
    assert setting in str(caught.value)
    assert repr(next(iter(env.values()))) in str(caught.value)  # and shows the value that was wrong


@pytest.mark.parametrize("line, setting", [
    ('top_k = "five"', "top_k"),
    ("top_k = 2.5", "top_k"),  # not silently truncated to 2
    ("chunk_tokens = true", "chunk_tokens"),  # not silently read as 1
    ("max_file_mb = false", "max_file_mb"),
    ("index_samples_on_start = 3", "index_samples_on_start"),
])
def test_bad_toml_value_names_the_setting(tmp_path, line, setting):
    with pytest.raises(ValueError, match=setting):
        load_settings(config_file=write_toml(tmp_path, line + "\n"), env={})


def test_unknown_key_in_toml_names_it_and_lists_the_known_ones(tmp_path):
    path = write_toml(tmp_path, "chunk_token = 100\n")  # a typo of chunk_tokens
    with pytest.raises(ValueError) as caught:
        load_settings(config_file=path, env={})
    message = str(caught.value)
    assert "'chunk_token'" in message and str(path) in message
    assert "chunk_tokens" in message  # the list of known settings shows the right spelling


def test_unknown_override_names_it():
    with pytest.raises(ValueError, match="'chunk_size'"):
        load_settings(env={}, chunk_size=100)


def test_unknown_assistant_variable_is_reported_not_silently_dropped(caplog):
    with caplog.at_level(logging.WARNING, logger="assistant.config"):
        settings = load_settings(env={"ASSISTANT_TOPK": "9"})
    assert settings.top_k == Settings().top_k
    assert "ASSISTANT_TOPK" in caplog.text


def test_invalid_toml_names_the_file(tmp_path):
    path = write_toml(tmp_path, "top_k = = 3\n")
    with pytest.raises(ValueError) as caught:
        load_settings(config_file=path, env={})
    assert str(path) in str(caught.value) and "TOML" in str(caught.value)


def test_missing_named_settings_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.toml"):
        load_settings(config_file=tmp_path / "nowhere.toml", env={})
    with pytest.raises(FileNotFoundError, match="gone.toml"):
        load_settings(env={"ASSISTANT_CONFIG": str(tmp_path / "gone.toml")})


@pytest.mark.parametrize("overrides, setting", [
    ({"precision": "int4"}, "precision"),
    ({"chunk_tokens": 100, "chunk_overlap": 100}, "chunk_overlap"),
    ({"chunk_overlap": -1}, "chunk_overlap"),
    ({"top_k": 0}, "top_k"),
    ({"server_port": 70000}, "server_port"),
    ({"chroma_port": 0}, "chroma_port"),
    ({"max_pages": 0}, "max_pages"),
    ({"max_file_mb": -1}, "max_file_mb"),
    ({"embed_batch_size": 0}, "embed_batch_size"),
])
def test_out_of_range_values_name_the_setting(overrides, setting):
    with pytest.raises(ValueError, match=setting):
        load_settings(env={}, **overrides)


def test_out_of_range_value_from_the_environment_is_refused_too():
    with pytest.raises(ValueError, match="chunk_overlap"):
        load_settings(env={"ASSISTANT_CHUNK_TOKENS": "30", "ASSISTANT_CHUNK_OVERLAP": "40"})
