"""Sentence embeddings with gradients: what SentenceTransformer.encode (inference only) cannot give.

The forward pass is the model's own (preprocess -> modules -> "sentence_embedding"), so the vectors match
the ones the app indexes and queries with, up to dropout while training.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def unwrap(model: Any) -> Any:
    """The SentenceTransformer inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def embed(model: Any, texts: list[str]) -> torch.Tensor:
    """Unit-length embeddings [len(texts), dim]; differentiable when gradients are enabled.

    `model` may be a SentenceTransformer or its DDP wrapper: the forward goes through the wrapper
    (so gradients are all-reduced under `accelerate launch`), the tokenizer comes from the module.
    """
    inner = unwrap(model)
    features = inner.preprocess(texts)
    device = next(inner.parameters()).device
    features = {key: value.to(device) for key, value in features.items() if isinstance(value, torch.Tensor)}
    output = model(features)
    return F.normalize(output["sentence_embedding"].float(), dim=-1)
