"""The encoder's bf16 mode (the app's default on CPUs with bf16 instructions) must give the same retrieval."""
from __future__ import annotations

import numpy as np
import pytest

from assistant.encoder import Encoder
from assistant.hardware import native_bf16

PASSAGES = [
    "Give adrenaline 500 micrograms intramuscularly to adults with anaphylaxis; repeat after 5 minutes.",
    "Offer labetalol to treat hypertension in pregnancy; consider nifedipine if labetalol is not suitable.",
    "Treat severe malaria with intravenous or intramuscular artesunate for at least 24 hours.",
    "Measure HbA1c every 3 to 6 months until stable in adults with type 2 diabetes.",
    "Start empirical antibiotics within 1 hour for suspected sepsis with high risk criteria.",
]
QUERIES = ["adrenaline dose anaphylaxis", "blood pressure drug in pregnancy", "severe malaria treatment",
           "how often to check HbA1c", "when to give antibiotics in sepsis"]


def test_bf16_embeddings_match_fp32_and_rank_the_same(encoder):
    half = Encoder(model=encoder.model, source=encoder.source, fingerprint=encoder.fingerprint, bf16=True)
    full_p, half_p = encoder.encode(PASSAGES), half.encode(PASSAGES)
    assert half_p.dtype == np.float32 and np.allclose(np.linalg.norm(half_p, axis=1), 1.0, atol=1e-3)
    assert float(np.min(np.sum(full_p * half_p, axis=1))) > 0.995
    full_rank = np.argsort(-(encoder.encode(QUERIES) @ full_p.T), axis=1)[:, 0]
    half_rank = np.argsort(-(half.encode(QUERIES) @ half_p.T), axis=1)[:, 0]
    assert full_rank.tolist() == half_rank.tolist() == list(range(len(QUERIES)))


def test_auto_encoder_precision_follows_the_hardware(settings):
    from assistant.service import build_assistant

    assistant = build_assistant(settings)
    assert assistant.query_encoder.bf16 == native_bf16("cpu")
    with pytest.raises(ValueError, match="encoder_precision"):
        from assistant.config import load_settings

        load_settings(env={"ASSISTANT_ENCODER_PRECISION": "fp16"}, config_file=None)
