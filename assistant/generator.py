"""The answer model: loading it at the configured precision, streamed generation, and option scoring."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .choice import DEFAULT_FORMAT, choice_completion, choice_messages
from .config import Settings
from .errors import ModelLoadError
from .hardware import native_bf16, pick_device, pick_precision
from .likelihood import shared_prompt_nll
from .packaged import hub_hint, packaged_generator, resolve_generator_source
from .prompts import render
from .records import Evidence

log = logging.getLogger(__name__)
_load_lock = threading.Lock()


@dataclass
class LoadedGenerator:
    model: Any
    tokenizer: Any
    info: dict[str, Any] = field(default_factory=dict)


def _quantization_kwargs(precision: str, device: str) -> dict[str, Any]:
    """from_pretrained arguments for a precision: bitsandbytes for nf4/int8, a dtype otherwise."""
    if precision not in ("nf4", "int8"):
        return {"dtype": torch.bfloat16 if precision == "bf16" else torch.float32}
    from transformers import BitsAndBytesConfig

    # Layers left unquantized (embeddings, norms, head) and the 4-bit compute run in bf16 where the
    # hardware has it: half the footprint of fp32 for those parts, and faster.
    half = torch.bfloat16 if native_bf16(device) else torch.float32
    quantization = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=half)
                    if precision == "nf4" else BitsAndBytesConfig(load_in_8bit=True))
    return {"quantization_config": quantization, "dtype": half, "device_map": {"": device if device != "cuda" else 0}}


def load_generator(settings: Settings) -> LoadedGenerator:
    """Load the generator at the configured precision, with the adapter on top when one is set."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _load_lock:
        started = time.perf_counter()
        source = resolve_generator_source(settings)
        device = pick_device(settings.device)
        precision = pick_precision(settings.precision, device)
        local = Path(source).is_dir()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local,
                                                         **_quantization_kwargs(precision, device))
        except Exception as error:
            raise hub_hint("generator_model", settings.generator_model, error) from error
        if precision not in ("nf4", "int8"):
            model = model.to(device)  # type: ignore[arg-type]  # transformers' stub types .to() oddly
        if settings.adapter_path:
            model = apply_adapter(model, settings.adapter_path)
        model.eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        seconds = time.perf_counter() - started
        packaged = packaged_generator(settings.generator_model)
        name = f"{packaged.title} (packaged)" if packaged else settings.generator_model
        info = {"generator": name, "source": source, "precision": precision,
                "device": device, "adapter": settings.adapter_path or "none", "load_seconds": round(seconds, 2)}
        log.info("Generator loaded: %s", info)
        return LoadedGenerator(model=model, tokenizer=tokenizer, info=info)


def apply_adapter(model: Any, adapter_path: str) -> Any:
    """Apply a LoRA adapter folder (from the trainer) on top of the base model."""
    from peft import PeftModel

    if not (Path(adapter_path) / "adapter_config.json").is_file():
        raise ModelLoadError(f"{adapter_path} is not a LoRA adapter folder (no adapter_config.json). "
                             "Set adapter_path to the 'adapter' folder of a trainer checkpoint.")
    return PeftModel.from_pretrained(model, adapter_path)


class _StopWhenSet:
    """A stopping criterion: generation ends at the next token once the event is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class Generator:
    """A loaded causal LM with streaming generation and option scoring."""

    def __init__(self, loaded: LoadedGenerator) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.info = loaded.info
        self._lock = threading.Lock()  # one generation at a time per model: CPU threads are shared anyway

    @classmethod
    def load(cls, settings: Settings) -> Generator:
        return cls(load_generator(settings))

    def prompt(self, messages: list[dict[str, str]]) -> str:
        return render(self.tokenizer, messages)

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int = 160,
               temperature: float = 0.0) -> Iterator[str]:
        """Yield the answer text piece by piece as the model writes it."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        prompt = self.prompt(messages)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs: dict[str, Any] = dict(**inputs, max_new_tokens=max_new_tokens, streamer=streamer,
                                      pad_token_id=self.tokenizer.pad_token_id, repetition_penalty=1.1)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=0.9)
        else:
            kwargs.update(do_sample=False)
        errors: list[BaseException] = []
        stop = threading.Event()  # set when the reader goes away (a closed browser tab): stop generating
        kwargs["stopping_criteria"] = StoppingCriteriaList([_StopWhenSet(stop)])

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as error:  # surfaced to the caller below
                errors.append(error)
                streamer.end()

        with self._lock:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            try:
                yield from streamer
            finally:
                stop.set()
                worker.join()
        if errors:
            raise errors[0]

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 160) -> str:
        return "".join(self.stream(messages, max_new_tokens))

    def score_options(self, question: str, options: dict[str, str], evidence: list[Evidence],
                      choice_format: str = DEFAULT_FORMAT) -> tuple[str, dict[str, float]]:
        """Pick the option the model finds most likely given the evidence.

        Returns the chosen letter and, per letter, the mean log-likelihood per token of what `choice_format`
        reads (assistant.choice: the option's text, or "<letter>. <text>").
        """
        prompt = self.prompt(choice_messages(question, options, evidence, choice_format))
        letters = sorted(options)
        with self._lock, torch.inference_mode():
            nll = shared_prompt_nll(self.model, self.tokenizer, prompt,
                                    [choice_completion(letter, options, choice_format) for letter in letters])
        scores = {letter: round(-float(value), 4) for letter, value in zip(letters, nll)}
        return max(scores, key=lambda letter: scores[letter]), scores
