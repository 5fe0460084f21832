"""How likely is this answer given this prompt: the one implementation, with and without gradients.

Multiple-choice scoring uses it without gradients; the trainer uses it for the per-passage utility
(no gradients, prompts that share their first tokens) and for the generator loss (with gradients).
"""
from __future__ import annotations

from typing import Any

import torch


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _encode_pairs(tokenizer: Any, prompts: list[str], completions: list[str], max_length: int
                  ) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids + eos) per pair; prompts cut from the left so completions fit whole."""
    pairs = []
    for prompt, completion in zip(prompts, completions):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            target_ids = target_ids + [tokenizer.eos_token_id]
        pairs.append((prompt_ids[-max(1, max_length - len(target_ids)):], target_ids))
    return pairs


def _left_padded(rows: list[list[int]], target_lengths: list[int], pad: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows right-aligned (each completion ends at the last position): ids, their mask, the completions' mask."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    row_mask = torch.zeros((len(rows), width), dtype=torch.long)
    target_mask = torch.zeros((len(rows), width), dtype=torch.float32)
    for index, (row, target_length) in enumerate(zip(rows, target_lengths)):
        input_ids[index, width - len(row):] = torch.tensor(row)
        row_mask[index, width - len(row):] = 1
        target_mask[index, width - target_length:] = 1.0
    return input_ids, row_mask, target_mask


def _mean_completion_nll(logits: torch.Tensor, input_ids: torch.Tensor, target_mask: torch.Tensor, keep: int
                         ) -> torch.Tensor:
    """Mean NLL per completion token from the logits of the last `keep` positions (the last one dropped)."""
    start = input_ids.shape[1] - keep + 1
    targets = input_ids[:, start:].to(logits.device)
    token_nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = target_mask[:, start:].to(logits.device)
    return (token_nll * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def completion_nll(model: Any, tokenizer: Any, prompts: list[str], completions: list[str],
                   max_length: int = 2048) -> torch.Tensor:
    """Mean negative log-likelihood per completion token, one value per (prompt, completion) pair.

    Prompts are truncated from the left if needed, so the completion is always scored in full.
    Rows are left-padded so every completion ends at the last position; the vocabulary projection then
    runs only over the completion positions (`logits_to_keep`), not over every prompt token, which is
    most of the memory and a fifth of the compute for a small model with a large vocabulary.
    Gradients flow when the caller has them enabled.
    """
    device = next(model.parameters()).device
    pairs = _encode_pairs(tokenizer, prompts, completions, max_length)
    keep = max(len(t) for _, t in pairs) + 1  # the position before a completion predicts its first token
    input_ids, attention, target_mask = _left_padded([p + t for p, t in pairs], [len(t) for _, t in pairs],
                                                     _pad_id(tokenizer))
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                   position_ids=positions.to(device), logits_to_keep=keep).logits[:, :-1, :].float()
    return _mean_completion_nll(logits, input_ids, target_mask, keep)


def shared_prompt_nll(model: Any, tokenizer: Any, prompt: str, completions: list[str],
                      max_length: int = 2048) -> torch.Tensor:
    """`completion_nll` for several completions of one prompt, reading the prompt once.

    The prompt runs once with the key/value cache on; the cache is repeated per completion and only the
    completions' tokens run after it. For four options after a 1,000-token prompt this is about a
    quarter of the work of scoring four full sequences. No gradients: this is for scoring.
    """
    device = next(model.parameters()).device
    pairs = _encode_pairs(tokenizer, [prompt] * len(completions), completions, max_length)
    prompt_ids = min((p for p, _ in pairs), key=len)  # all equal unless truncation differed; use the shortest
    length = len(prompt_ids)
    with torch.no_grad():
        first = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True, logits_to_keep=1)
        cache = first.cache
        cache.batch_repeat_interleave(len(pairs))
        first_logp = torch.log_softmax(first.logits[0, -1].float(), dim=-1)
        width = max(len(t) for _, t in pairs)
        pad = _pad_id(tokenizer)
        ids = torch.full((len(pairs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for row, (_, target_ids) in enumerate(pairs):
            ids[row, :len(target_ids)] = torch.tensor(target_ids)
            mask[row, :len(target_ids)] = 1
        attention = torch.cat([torch.ones((len(pairs), length), dtype=torch.long), mask], dim=1)
        positions = (length + torch.arange(width)).unsqueeze(0).expand(len(pairs), -1)
        out = model(input_ids=ids.to(device), attention_mask=attention.to(device), position_ids=positions.to(device),
                    cache=cache, use_cache=True)
        logp = torch.log_softmax(out.logits.float(), dim=-1)  # [n, width, vocab]; position t predicts token t+1
        ids, mask = ids.to(device), mask.to(device).float()
        token_logp = torch.zeros((len(pairs), width), device=device)
        token_logp[:, 0] = first_logp[ids[:, 0]]
        if width > 1:
            token_logp[:, 1:] = logp[:, :-1].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return -(token_logp * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def common_prefix_length(rows: list[list[int]]) -> int:
    """How many leading token ids every row shares."""
    if not rows:
        return 0
    shortest = min(rows, key=len)
    for position, token in enumerate(shortest):
        if any(row[position] != token for row in rows):
            return position
    return len(shortest)


def prefix_shared_nll(model: Any, tokenizer: Any, prompts: list[str], completions: list[str],
                      max_length: int = 2048, min_prefix: int = 16) -> torch.Tensor:
    """`completion_nll` for prompts that begin alike (the system prompt and the evidence header of the
    trainer's K utility prompts), running the shared first tokens once.

    The shared tokens run once with the key/value cache on; the cache is repeated per row and each row's
    remaining prompt and completion run after it, left-padded so completions end at the last position
    (padding in the middle is masked; positions continue from the prefix). The prefix is taken on token
    ids, so the result is the full computation's up to float rounding. No gradients: this is for utility.
    Falls back to `completion_nll` when the prompts share fewer than `min_prefix` tokens.
    """
    pairs = _encode_pairs(tokenizer, prompts, completions, max_length)
    # every row keeps at least its last prompt token, whose logits predict the completion's first token
    shared = min(common_prefix_length([p for p, _ in pairs]), min(len(p) for p, _ in pairs) - 1)
    if shared < min_prefix:
        with torch.no_grad():
            return completion_nll(model, tokenizer, prompts, completions, max_length)
    device = next(model.parameters()).device
    keep = max(len(t) for _, t in pairs) + 1
    input_ids, suffix_mask, target_mask = _left_padded([p[shared:] + t for p, t in pairs],
                                                       [len(t) for _, t in pairs], _pad_id(tokenizer))
    attention = torch.cat([torch.ones((len(pairs), shared), dtype=torch.long), suffix_mask], dim=1)
    positions = shared + (suffix_mask.cumsum(dim=1) - 1).clamp(min=0)
    with torch.no_grad():
        first = model(input_ids=torch.tensor([pairs[0][0][:shared]], device=device), use_cache=True,
                      logits_to_keep=1)
        cache = first.cache
        cache.batch_repeat_interleave(len(pairs))
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                       position_ids=positions.to(device), cache=cache, use_cache=True,
                       logits_to_keep=keep).logits[:, :-1, :].float()
        return _mean_completion_nll(logits, input_ids, target_mask, keep)
