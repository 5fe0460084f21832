"""The answer model: streamed generation, and log-likelihood scoring of given completions.

`completion_nll` is the one implementation of "how likely is this answer given this prompt": the
multiple-choice mode uses it without gradients, the trainer uses it for both the per-passage utility
(no gradients) and the generator loss (with gradients).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Iterator

import torch

from .config import Settings
from .models import LoadedGenerator, load_generator
from .prompts import choice_completion, choice_messages, render
from .records import Evidence

log = logging.getLogger(__name__)


def completion_nll(model: Any, tokenizer: Any, prompts: list[str], completions: list[str],
                   max_length: int = 2048) -> torch.Tensor:
    """Mean negative log-likelihood per completion token, one value per (prompt, completion) pair.

    Prompts are truncated from the left if needed, so the completion is always scored in full.
    Gradients flow when the caller has them enabled.
    """
    device = next(model.parameters()).device
    sequences, masks = [], []
    for prompt, completion in zip(prompts, completions):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            target_ids = target_ids + [tokenizer.eos_token_id]
        prompt_ids = prompt_ids[-max(1, max_length - len(target_ids)):]
        sequences.append(prompt_ids + target_ids)
        masks.append([0] * len(prompt_ids) + [1] * len(target_ids))
    width = max(len(s) for s in sequences)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    target_mask = torch.zeros((len(sequences), width), dtype=torch.float32)
    for row, (ids, mask) in enumerate(zip(sequences, masks)):  # right padding
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        target_mask[row, :len(ids)] = torch.tensor(mask, dtype=torch.float32)
    input_ids, attention, target_mask = input_ids.to(device), attention.to(device), target_mask.to(device)
    logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1, :].float()
    targets = input_ids[:, 1:]
    token_nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = target_mask[:, 1:]
    return (token_nll * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


class Generator:
    """A loaded causal LM with streaming generation and option scoring."""

    def __init__(self, loaded: LoadedGenerator) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.info = loaded.info
        self._lock = threading.Lock()  # one generation at a time per model: CPU threads are shared anyway

    @classmethod
    def load(cls, settings: Settings) -> "Generator":
        return cls(load_generator(settings))

    def prompt(self, messages: list[dict[str, str]]) -> str:
        return render(self.tokenizer, messages)

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int = 160,
               temperature: float = 0.0) -> Iterator[str]:
        """Yield the answer text piece by piece as the model writes it."""
        from transformers import TextIteratorStreamer

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
            for piece in streamer:
                yield piece
            worker.join()
        if errors:
            raise errors[0]

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 160) -> str:
        return "".join(self.stream(messages, max_new_tokens))

    def score_options(self, question: str, options: dict[str, str], evidence: list[Evidence]
                      ) -> tuple[str, dict[str, float]]:
        """Pick the option the model finds most likely given the evidence.

        Returns the chosen letter and, per letter, the mean log-likelihood of "<letter>. <text>".
        """
        prompt = self.prompt(choice_messages(question, options, evidence))
        letters = sorted(options)
        with self._lock, torch.inference_mode():
            nll = completion_nll(self.model, self.tokenizer, [prompt] * len(letters),
                                 [choice_completion(letter, options) for letter in letters])
        scores = {letter: round(-float(value), 4) for letter, value in zip(letters, nll)}
        return max(scores, key=scores.get), scores
