"""The JMLR joint step, as docs/DESIGN.md describes it: one function per idea, testable on small tensors.

Per question: candidates (retrieved each epoch with the current query encoder) -> retriever scores
with gradients -> dynamic sampling of K -> per-passage answer loss without gradients (the LLM's
utility) -> retriever loss (rank or kl) -> generator loss on the top-k passages by retriever score,
best passage last (nearest the question) -> total = L_gen + lambda * L_ret.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from assistant.choice import choice_messages, context_order
from assistant.documents import embedding_text
from assistant.likelihood import completion_nll, prefix_shared_nll
from assistant.prompts import render
from assistant.records import Chunk, Evidence
from assistant.retriever import to_evidence

from .config import TrainConfig
from .encoding import embed, unwrap
from .qa import QARecord, holds_gold, target_text

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Pure pieces
# ---------------------------------------------------------------------------------------------

def rescale(scores: torch.Tensor) -> torch.Tensor:
    """Min-max rescale to [-1, 1] along the last axis (all zeros when every score is equal)."""
    low = scores.min(dim=-1, keepdim=True).values
    high = scores.max(dim=-1, keepdim=True).values
    span = (high - low).clamp(min=1e-12)
    return torch.where(high > low, 2 * (scores - low) / span - 1, torch.zeros_like(scores))


def dynamic_sample(scores: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """K distinct indices drawn without replacement from softmax(rescaled scores): mostly the high-scoring
    passages, sometimes others, so the retriever also learns about passages it currently ranks low."""
    weights = torch.softmax(rescale(scores.detach().float().cpu()), dim=-1)
    return torch.multinomial(weights, min(k, scores.shape[-1]), replacement=False, generator=generator)


def rank_loss(scores: torch.Tensor, answer_loss: torch.Tensor, tau_r: float = 1.0) -> torch.Tensor:
    """JMLR's retriever loss: pairwise logistic loss on score differences.

    For every pair i < j the target is 1 when passage i gives the lower answer loss (more useful),
    0 when j does, 1/2 on a tie; the logit is (s_i - s_j) / tau_r. Averaged over pairs and questions.
    scores, answer_loss: [B, K] (or [K]).
    """
    scores, answer_loss = torch.atleast_2d(scores), torch.atleast_2d(answer_loss.detach())
    i, j = torch.triu_indices(scores.shape[-1], scores.shape[-1], offset=1, device=scores.device)
    logits = (scores[:, i] - scores[:, j]) / tau_r
    target = (answer_loss[:, i] < answer_loss[:, j]).float() + 0.5 * (answer_loss[:, i] == answer_loss[:, j]).float()
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def kl_loss(scores: torch.Tensor, answer_loss: torch.Tensor, tau_lm: float, tau_r: float) -> torch.Tensor:
    """Perplexity distillation: KL(softmax(-loss / tau_lm) || softmax(s / tau_r)), mean over questions.

    The LM's preference (lower answer loss = more probable) is the fixed target distribution; the
    retriever's distribution over the same passages is pulled towards it.
    """
    scores, answer_loss = torch.atleast_2d(scores), torch.atleast_2d(answer_loss.detach())
    target = torch.softmax(-answer_loss.float() / tau_lm, dim=-1)
    log_q = torch.log_softmax(scores.float() / tau_r, dim=-1)
    return F.kl_div(log_q, target, reduction="batchmean")


def standardise(answer_loss: torch.Tensor) -> torch.Tensor:
    """Answer losses as z-scores per question: which passage helps most, whatever the question's difficulty
    (all zeros when every passage gives the same loss)."""
    answer_loss = torch.atleast_2d(answer_loss.detach().float())
    spread = answer_loss.std(dim=-1, keepdim=True, unbiased=False)
    centred = answer_loss - answer_loss.mean(dim=-1, keepdim=True)
    return torch.where(spread > 1e-8, centred / spread.clamp(min=1e-8), torch.zeros_like(centred))


def gold_loss(scores: torch.Tensor, gold: torch.Tensor, tau_r: float) -> torch.Tensor | None:
    """Cross-entropy of the retriever's distribution over one question's candidates towards its gold
    passage(s): -log of the probability mass on them. None when no candidate is gold."""
    if not bool(gold.any()):
        return None
    log_q = torch.log_softmax(scores.float() / tau_r, dim=-1)
    return -torch.logsumexp(log_q[gold.to(log_q.device)], dim=-1)


def retriever_accuracy(scores: torch.Tensor, answer_loss: torch.Tensor) -> float:
    """Share of questions where the passage the LM finds most useful gets the highest retriever score."""
    scores, answer_loss = torch.atleast_2d(scores.detach()), torch.atleast_2d(answer_loss.detach())
    return float((scores.argmax(dim=-1) == answer_loss.argmin(dim=-1)).float().mean())


def choice_prompt(tokenizer: Any, record: QARecord, evidence: list[Evidence], choice_format: str) -> str:
    """The multiple-choice prompt of the app's option scoring (assistant.choice), rendered."""
    return render(tokenizer, choice_messages(record.question, record.options, evidence, choice_format))


# ---------------------------------------------------------------------------------------------
# One training example and one step
# ---------------------------------------------------------------------------------------------

@dataclass
class Example:
    """A question with this epoch's candidate passages (retrieved with the current query encoder)."""

    record: QARecord
    candidates: list[Chunk]
    query: str


def gold_mask(example: Example) -> torch.Tensor:
    """Which of the question's candidates hold its gold span (file, page and text)."""
    record = example.record
    return torch.tensor([holds_gold(record, chunk.file_name, chunk.page, chunk.text) for chunk in example.candidates],
                        dtype=torch.bool)


@dataclass
class StepOutput:
    loss: torch.Tensor
    gen_loss: float
    ret_loss: float
    retriever_acc: float  # nan when the retriever does not train (no utility is computed)
    utility_seconds: float = 0.0


@dataclass
class Models:
    """What a step needs: the generator (peft) + tokenizer, the query encoder, the passage side."""

    generator: Any
    tokenizer: Any
    query_encoder: Any  # SentenceTransformer (or its DDP wrapper), trained
    passage_encoder: Any | None  # trained passage encoder when train_sides = both, else None
    passage_vectors: Any | None  # callable: list[chunk_id] -> tensor [n, dim] from the frozen store


def candidate_scores(models: Models, examples: list[Example], with_grad: bool) -> list[torch.Tensor]:
    """Cosine scores of each question's candidates, [n_i] per question, with gradients when asked."""
    context = torch.enable_grad() if with_grad else torch.no_grad()
    with context:
        queries = embed(models.query_encoder, [example.query for example in examples])
        if models.passage_encoder is not None:
            texts = [embedding_text(chunk) for example in examples for chunk in example.candidates]
            passages = embed(models.passage_encoder, texts)
        else:
            assert models.passage_vectors is not None  # the frozen passage side reads the stored vectors
            ids = [chunk.chunk_id for example in examples for chunk in example.candidates]
            passages = models.passage_vectors(ids).to(queries.device)
        scores, start = [], 0
        for row, example in enumerate(examples):
            count = len(example.candidates)
            scores.append(passages[start:start + count] @ queries[row])
            start += count
    return scores


def answer_utility(models: Models, examples: list[Example], picks: list[torch.Tensor], cfg: TrainConfig
                   ) -> list[torch.Tensor]:
    """Answer loss (mean NLL of the target) given each sampled passage alone: no gradients, eval mode.

    The prompts differ only from the passage on, so their shared head (system prompt, evidence header) runs
    once per batch (`prefix_shared_nll`, unless `share_prefix` is off)."""
    prompts, targets = [], []
    for example, chosen in zip(examples, picks):
        target = target_text(example.record, cfg.include_rationale, cfg.choice_format)
        for index in chosen.tolist():
            evidence = [to_evidence(example.candidates[index], 1, 0.0)]
            prompts.append(choice_prompt(models.tokenizer, example.record, evidence, cfg.choice_format))
            targets.append(target)
    generator = unwrap(models.generator)  # no gradients: no need to go through a DDP wrapper
    was_training = generator.training
    generator.eval()
    # Batches of similar length: padding is work too, and passages differ a lot in length.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(targets[i]))
    flat = torch.empty(len(prompts))
    try:
        with torch.no_grad():
            size = cfg.utility_batch_size
            for start in range(0, len(order), size):
                chunk = order[start:start + size]
                score = prefix_shared_nll if cfg.share_prefix else completion_nll
                flat[chunk] = score(generator, models.tokenizer, [prompts[i] for i in chunk],
                                    [targets[i] for i in chunk], cfg.max_length).float().cpu()
    finally:
        generator.train(was_training)
    sizes = [len(chosen) for chosen in picks]
    return list(torch.split(flat, sizes))


def generator_batch(models: Models, examples: list[Example], scores: list[torch.Tensor], cfg: TrainConfig
                    ) -> tuple[list[str], list[str]]:
    """Prompts with the top-k passages by current retriever score (best last) and their targets."""
    prompts, targets = [], []
    for example, row in zip(examples, scores):
        best = torch.argsort(row.detach(), descending=True)[:cfg.k_context].tolist()
        evidence = [to_evidence(example.candidates[i], n, float(row[i].detach())) for n, i in enumerate(best, 1)]
        prompts.append(choice_prompt(models.tokenizer, example.record, context_order(evidence), cfg.choice_format))
        targets.append(target_text(example.record, cfg.include_rationale, cfg.choice_format))
    return prompts, targets


def joint_step(models: Models, examples: list[Example], cfg: TrainConfig, sampler: torch.Generator) -> StepOutput:
    """The loss of one micro-batch; the caller back-propagates it and steps the optimizer."""
    trains_retriever = cfg.retriever_trains
    scores = candidate_scores(models, examples, with_grad=trains_retriever)
    ret_loss = torch.zeros((), device=scores[0].device)
    accuracy, utility_seconds = math.nan, 0.0
    if trains_retriever:
        picks = [dynamic_sample(row, cfg.k_sampled, sampler) for row in scores]
        started = time.perf_counter()
        utility = answer_utility(models, examples, picks, cfg)
        utility_seconds = time.perf_counter() - started
        losses, hits = [], []
        for row, chosen, answer_loss in zip(scores, picks, utility):
            sampled = row[chosen.to(row.device)]
            answer_loss = answer_loss.to(row.device)
            if cfg.utility_norm == "zscore":
                answer_loss = standardise(answer_loss)[0]
            if cfg.retriever_loss == "rank":
                losses.append(rank_loss(sampled, answer_loss, cfg.tau_r))
            else:
                losses.append(kl_loss(sampled, answer_loss, cfg.tau_lm, cfg.tau_r))
            hits.append(retriever_accuracy(sampled, answer_loss))
        ret_loss = torch.stack(losses).mean()
        if cfg.gold_weight > 0:  # the supervised variant: the dataset knows which passage answers
            supervised = [loss for row, example in zip(scores, examples)
                          if (loss := gold_loss(row, gold_mask(example), cfg.tau_r)) is not None]
            if supervised:
                ret_loss = ret_loss + cfg.gold_weight * torch.stack(supervised).mean()
        accuracy = sum(hits) / len(hits)
    prompts, targets = generator_batch(models, examples, scores, cfg)
    gen_loss = completion_nll(models.generator, models.tokenizer, prompts, targets, cfg.max_length).mean()
    loss = gen_loss + cfg.lambda_ret * ret_loss if trains_retriever else gen_loss
    return StepOutput(loss=loss, gen_loss=float(gen_loss.detach()), ret_loss=float(ret_loss.detach()),
                      retriever_acc=accuracy, utility_seconds=utility_seconds)
