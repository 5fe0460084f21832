"""Loading the models a run trains: the generator with LoRA adapters (QLoRA on a 4-bit base where
bitsandbytes works), the query encoder and, when both sides train, a separate passage encoder."""
from __future__ import annotations

import copy
import importlib.util
import logging
from typing import Any

import torch

from assistant.config import Settings
from assistant.encoder import Encoder, load_encoder
from assistant.generator import LoadedGenerator, load_generator

from .config import TrainConfig

log = logging.getLogger(__name__)


def bitsandbytes_usable() -> bool:
    """bitsandbytes installed and importable (it fails to import on some platforms)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return False
    try:
        import bitsandbytes  # noqa: F401
    except Exception as error:  # a broken native library raises anything
        log.warning("bitsandbytes is installed but does not load (%s)", error)
        return False
    return True


def training_precision(requested: str) -> str:
    """nf4 when bitsandbytes works, else plain LoRA in fp32 (said once, loudly)."""
    if requested == "nf4" and not bitsandbytes_usable():
        log.warning("precision nf4 needs bitsandbytes, which is not usable here: training plain LoRA in fp32")
        return "fp32"
    return requested


def load_training_generator(cfg: TrainConfig, settings: Settings, device: str) -> LoadedGenerator:
    """The base generator at the training precision with fresh LoRA adapters (only they train)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    precision = training_precision(cfg.precision)
    loaded = load_generator(settings.replace(precision=precision, device=device, adapter_path=""))
    model = loaded.model
    if precision == "nf4":
        keep_4bit_trainable(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("Generator %s at %s with LoRA r=%d on %s: %.2f M trainable parameters", loaded.info.get("source"),
             precision, cfg.lora_r, ",".join(cfg.lora_target_modules), trainable / 1e6)
    model.train()
    return LoadedGenerator(model=model, tokenizer=loaded.tokenizer, info={**loaded.info, "precision": precision})


def keep_4bit_trainable(model: Any) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for CPU inference; returns the layers changed.

    On CPUs with AVX512-BF16, a Linear4bit that runs once in eval mode without gradients (the joint
    step's utility pass does exactly that) converts its weight for good to a packed inference format
    whose kernel has no backward: from then on no gradient reaches any LoRA weight (measured on
    SmolLM2: 0 of 120 LoRA tensors got one) and the generator silently stops training.
    """
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return 0
    layers = [module for module in model.modules() if isinstance(module, Linear4bit)]
    for module in layers:
        module.support_avx512bf16_for_cpu = False
    return len(layers)


def load_retrievers(cfg: TrainConfig, settings: Settings, device: str) -> tuple[Encoder, Encoder | None, Encoder]:
    """(query encoder to train, passage encoder to train or None, frozen base passage encoder).

    The base encoder indexes the initial collection and stays as it is; the trained sides start as copies.
    """
    base = load_encoder(settings.embedding_model, device, settings.encoder_precision)
    base.model.requires_grad_(False)
    # The trained sides keep requires_grad even when the retriever is frozen (lambda 0): no gradient
    # reaches them then, and DistributedDataParallel refuses modules without trainable parameters.
    query = Encoder(model=copy.deepcopy(base.model), source=base.source, fingerprint=base.fingerprint)
    query.model.requires_grad_(True)
    passage = None
    if cfg.train_sides == "both":
        passage = Encoder(model=copy.deepcopy(base.model), source=base.source, fingerprint=base.fingerprint)
        passage.model.requires_grad_(True)
    return query, passage, base


def trainable(module: Any) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
