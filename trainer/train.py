"""The training loop: epochs of JMLR joint steps under HF accelerate, with metrics, checkpoints,
re-indexing when the passage encoder trains, and an exact `--resume`.

accelerate places the models, runs backward, accumulates gradients and (under `accelerate launch`)
wraps the models in DistributedDataParallel and shards the questions across processes. On a CPU it
is a single process and the same code path.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .checkpoint import (Progress, latest_resumable, load_adapter_weights, load_encoder_weights, load_resumable,
                         prune, restore_rng, save_models, save_resumable, write_manifest)
from .config import TrainConfig
from .index import PassageVectors, ensure_index, open_store, reembed, retrieve_candidates
from .jmlr import Example, Models, joint_step
from .metrics import MetricsLog
from .models import load_retrievers, load_training_generator, trainable
from .qa import load_records, subset

log = logging.getLogger(__name__)


def planned_steps(cfg: TrainConfig, questions: int, processes: int) -> int:
    """Optimizer steps the run will take (the scheduler's horizon)."""
    per_process = math.ceil(questions / processes)
    per_epoch = math.ceil(math.ceil(per_process / cfg.batch_size) / cfg.grad_accum)
    total = per_epoch * cfg.epochs
    return min(total, cfg.max_steps) if cfg.max_steps else total


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> Any:
    """Warm-up, then linear decay to 0 or a flat rate; a factor on each group's own rate."""
    from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

    if cfg.scheduler == "constant":
        return get_constant_schedule_with_warmup(optimizer, cfg.warmup_steps)
    return get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, max(total_steps, 1))


def make_optimizer(cfg: TrainConfig, generator: Any, retriever_modules: list[Any]) -> torch.optim.Optimizer:
    """Two parameter groups, each with its own learning rate (the reference code swapped them)."""
    retriever_params = [p for module in retriever_modules for p in trainable(module)]
    return torch.optim.AdamW([
        {"params": trainable(generator), "lr": cfg.lr_generator, "name": "generator"},
        {"params": retriever_params, "lr": cfg.lr_retriever, "name": "retriever"},
    ], weight_decay=cfg.weight_decay)


def group_lr(optimizer: Any, name: str) -> float:
    return next(float(group["lr"]) for group in optimizer.param_groups if group.get("name") == name)


def seed_everything(seed: int) -> None:
    from accelerate.utils import set_seed

    set_seed(seed)


@dataclass
class Run:
    """Everything a run holds while it trains (one object instead of a dozen locals)."""

    cfg: TrainConfig
    accelerator: Any
    settings: Any
    records: list
    query: Any  # Encoder around the trained query model
    passage: Any  # Encoder around the trained passage model, or None
    base: Any  # frozen base encoder (indexed the initial collection)
    store: Any
    generator: Any  # prepared (possibly DDP-wrapped) peft model
    tokenizer: Any
    query_model: Any  # prepared query model
    passage_model: Any  # prepared passage model or None
    optimizer: Any
    scheduler: Any
    sampler: torch.Generator
    metrics: MetricsLog
    info: dict

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    def unwrap(self, model: Any) -> Any:
        return self.accelerator.unwrap_model(model) if model is not None else None

    def models(self) -> Models:
        vectors = None
        if self.passage_model is None:  # frozen passage side: vectors as stored, cached per collection
            if getattr(self, "_vectors", None) is None or self._vectors.store is not self.store:
                self._vectors = PassageVectors(self.store)
            vectors = self._vectors
        return Models(generator=self.generator, tokenizer=self.tokenizer, query_encoder=self.query_model,
                      passage_encoder=self.passage_model, passage_vectors=vectors)

    def manifest(self, progress: Progress, extra: dict | None = None) -> dict:
        return {"base_embedding_model": self.settings.embedding_model, "base_generator": self.settings.generator_model,
                "generator_source": self.info.get("source"), "precision": self.info.get("precision"),
                "train_sides": self.cfg.train_sides, "collection": progress.collection,
                "data_dir": str(self.settings.data_dir), "step": progress.global_step, "epoch": progress.epoch + 1,
                "examples_seen": progress.examples_seen, "elapsed_seconds": round(progress.elapsed_seconds, 1),
                "process_cpu_seconds": round(time.process_time(), 1), "device": str(self.accelerator.device),
                "processes": self.accelerator.num_processes,
                "config": self.cfg.as_dict(), **(extra or {})}


def setup(cfg: TrainConfig) -> Run:
    """Load data, models and the store; build optimizer and scheduler; let accelerate place everything."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, cpu=cfg.device == "cpu",
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    seed_everything(cfg.seed + accelerator.process_index)
    settings = cfg.assistant_settings()
    device = str(accelerator.device)
    cfg.output_path.mkdir(parents=True, exist_ok=True)
    records = subset(load_records(cfg.train_file), cfg.train_limit, cfg.seed)
    query, passage, base = load_retrievers(cfg, settings, device)
    store = open_store(settings, base)
    with accelerator.main_process_first():  # one process indexes; the others then find it indexed
        ensure_index(settings, base, store)
    loaded = load_training_generator(cfg, settings, device)
    retriever_modules = [query.model] + ([passage.model] if passage else [])
    optimizer = make_optimizer(cfg, loaded.model, retriever_modules)
    total = planned_steps(cfg, len(records), accelerator.num_processes)
    scheduler = make_scheduler(optimizer, cfg, total)
    if passage:
        generator, query_model, passage_model, optimizer = accelerator.prepare(loaded.model, query.model,
                                                                               passage.model, optimizer)
    else:
        generator, query_model, optimizer = accelerator.prepare(loaded.model, query.model, optimizer)
        passage_model = None
    sampler = torch.Generator().manual_seed(cfg.seed + accelerator.process_index)
    log.info("Training on %d questions, %d processes, %d optimizer steps planned", len(records),
             accelerator.num_processes, total)
    return Run(cfg=cfg, accelerator=accelerator, settings=settings, records=records, query=query, passage=passage,
               base=base, store=store, generator=generator, tokenizer=loaded.tokenizer, query_model=query_model,
               passage_model=passage_model, optimizer=optimizer, scheduler=scheduler, sampler=sampler,
               metrics=None, info={**loaded.info, "planned_steps": total})  # type: ignore[arg-type]


def restore(run: Run, folder: Path) -> tuple[Progress, list[Example]]:
    """Put a run back to the state saved in a resumable checkpoint (models, optimizer, RNG, candidates)."""
    load_adapter_weights(run.unwrap(run.generator), folder)
    load_encoder_weights(run.unwrap(run.query_model), folder / "retriever")
    if run.passage_model is not None:
        load_encoder_weights(run.unwrap(run.passage_model), folder / "passage_encoder")
    progress, examples, rng = load_resumable(folder, run.optimizer, run.scheduler, run.sampler, run.records)
    if progress.collection and progress.collection != run.store.name:
        from assistant.store import GuidelineStore, make_client

        run.store = GuidelineStore(make_client(run.settings), progress.collection)
    restore_rng(rng, run.sampler)
    log.info("Resumed from %s: step %d, epoch %d, %d micro-batches into it", folder, progress.global_step,
             progress.epoch + 1, progress.batches_done)
    return progress, examples


def save_checkpoint(run: Run, progress: Progress, examples: list[Example], folder: Path, resumable: bool) -> None:
    run.accelerator.wait_for_everyone()
    if run.main:
        folder.mkdir(parents=True, exist_ok=True)
        save_models(folder, run.unwrap(run.generator), run.unwrap(run.query_model), run.unwrap(run.passage_model))
        if resumable:
            index = {record.id: i for i, record in enumerate(run.records)}
            save_resumable(folder, run.optimizer, run.scheduler, run.sampler, progress, examples, index)
        if run.metrics.path.is_file():
            (folder / "metrics.csv").write_bytes(run.metrics.path.read_bytes())
        write_manifest(folder, run.manifest(progress))
        if resumable:
            prune(run.cfg.output_path, run.cfg.keep_checkpoints)
    run.accelerator.wait_for_everyone()


def reindex(run: Run, progress: Progress, folder: Path) -> None:
    """Passage encoder changed: save it, re-embed the collection into its version, train against that."""
    from assistant.store import GuidelineStore, make_client

    run.accelerator.wait_for_everyone()
    if run.main:
        folder.mkdir(parents=True, exist_ok=True)
        run.unwrap(run.passage_model).save(str(folder))
        progress.collection = reembed(run.store, run.settings, folder).name
    progress.collection = _broadcast_name(run, progress.collection)
    run.store = GuidelineStore(make_client(run.settings), progress.collection)
    progress.last_reindex_step = progress.global_step
    run.passage.model.train()


def _broadcast_name(run: Run, name: str) -> str:
    if run.accelerator.num_processes == 1:
        return name
    from accelerate.utils import broadcast_object_list

    holder = [name]
    broadcast_object_list(holder, from_process=0)
    return holder[0]


def dev_accuracy(run: Run) -> float:
    """Accuracy on the first dev_limit dev questions with the current models (same scoring as evaluate)."""
    from .evaluate import score_with_models

    path = Path(run.cfg.dev_file)
    if not path.is_file():
        log.info("No dev file at %s: dev accuracy skipped", path)
        return math.nan
    records = subset(load_records(path), run.cfg.dev_limit, run.cfg.seed)
    generator = run.unwrap(run.generator)
    result = score_with_models(generator, run.tokenizer, run.query, run.store, records, run.cfg.k_context)
    generator.train()
    run.query.model.train()
    return result


def train(cfg: TrainConfig, resume: bool = False, stop_after_steps: int | None = None) -> Path:
    """Run the training; returns the final checkpoint folder (<output_dir>/final).

    `stop_after_steps` stops right after that optimizer step as if the process had been killed
    (used by the resume test); the resumable checkpoints written so far stay.
    """
    run = setup(cfg)
    progress, restored = Progress(collection=run.store.name), None
    if resume:
        folder = latest_resumable(cfg.output_path)
        if folder is None:
            log.warning("--resume: no resumable checkpoint in %s/checkpoints; starting from the beginning",
                        cfg.output_path)
        else:
            progress, restored = restore(run, folder)
    run.metrics = MetricsLog(cfg.output_path, resume_step=progress.global_step if resume else None, enabled=run.main)
    total = run.info["planned_steps"]
    bar = tqdm(total=total, initial=progress.global_step, desc="JMLR training", unit="step", disable=not run.main)
    started = time.perf_counter() - progress.elapsed_seconds
    window = {"loss": 0.0, "gen": 0.0, "ret": 0.0, "acc": [], "examples": 0, "utility": 0.0, "micro": 0,
              "since": time.perf_counter()}
    examples: list[Example] = []
    done = progress.global_step >= total
    for epoch in range(progress.epoch, cfg.epochs):
        if done:
            break
        if restored is not None and epoch == progress.epoch and progress.batches_done:
            examples, skip, restored = restored, progress.batches_done, None
        else:  # every epoch: candidates from the live collection with the query encoder as it is now
            examples = retrieve_candidates(run.query, run.store, run.records, cfg.n_candidates)
            skip = 0
            progress.batches_done = 0
        progress.epoch = epoch
        run.query.model.train()
        if run.passage:
            run.passage.model.train()
        run.generator.train()
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
        # The loader gets its own generator: a DataLoader draws a seed from the global RNG each time it
        # is iterated, which would shift dropout after a resume (the resumed run iterates it afresh).
        loader = run.accelerator.prepare_data_loader(torch.utils.data.DataLoader(
            order, batch_size=cfg.batch_size, shuffle=False, collate_fn=list,
            generator=torch.Generator().manual_seed(cfg.seed + epoch)))
        if skip:
            loader = run.accelerator.skip_first_batches(loader, skip)
        for indices in loader:
            batch = [examples[i] for i in indices]
            with run.accelerator.accumulate(*[m for m in (run.generator, run.query_model, run.passage_model) if m]):
                out = joint_step(run.models(), batch, cfg, run.sampler)
                run.accelerator.backward(out.loss)
                if run.accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    # per model: one model's large gradients must not shrink the other's updates
                    for module in (run.generator, run.query_model, run.passage_model):
                        if module is not None:
                            run.accelerator.clip_grad_norm_(trainable(module), cfg.max_grad_norm)
                run.optimizer.step()
                if run.accelerator.sync_gradients:
                    run.scheduler.step()
                run.optimizer.zero_grad(set_to_none=True)
            progress.batches_done += 1
            progress.examples_seen += len(batch) * run.accelerator.num_processes
            window["loss"] += float(out.loss.detach())
            window["gen"] += out.gen_loss
            window["ret"] += out.ret_loss
            window["utility"] += out.utility_seconds
            window["micro"] += 1
            window["examples"] += len(batch) * run.accelerator.num_processes
            if not math.isnan(out.retriever_acc):
                window["acc"].append(out.retriever_acc)
            if not run.accelerator.sync_gradients:
                continue
            progress.global_step += 1
            progress.elapsed_seconds = time.perf_counter() - started
            step = progress.global_step
            if step % cfg.log_every == 0 or step == total:
                log_row(run, progress, window, bar)
            bar.update(1)
            if run.passage and cfg.reindex_every and step % cfg.reindex_every == 0 and step < total:
                reindex(run, progress, cfg.output_path / "passage_encoders" / f"step-{step:06d}")
            if cfg.dev_every and step % cfg.dev_every == 0 and step < total:
                run.metrics.write({"step": step, "epoch": epoch + 1, "dev_accuracy": dev_accuracy(run)})
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                save_checkpoint(run, progress, examples, cfg.output_path / "checkpoints" / f"step-{step:06d}", True)
            if stop_after_steps is not None and step >= stop_after_steps:
                bar.close()
                run.metrics.close()
                log.info("Stopped after step %d (simulated interruption)", step)
                return cfg.output_path / "final"
            if step >= total:
                done = True
                break
        else:
            progress.batches_done = 0
            continue
        break
    bar.close()
    return finish(run, progress, examples)


def log_row(run: Run, progress: Progress, window: dict, bar: Any) -> None:
    micro = max(1, window["micro"])
    seconds = max(1e-9, time.perf_counter() - window["since"])
    row = {"step": progress.global_step, "epoch": progress.epoch + 1, "examples": progress.examples_seen,
           "loss": window["loss"] / micro, "gen_loss": window["gen"] / micro,
           "ret_loss": window["ret"] / micro if run.cfg.retriever_trains else math.nan,
           "retriever_acc": sum(window["acc"]) / len(window["acc"]) if window["acc"] else math.nan,
           "lr_generator": group_lr(run.optimizer, "generator"), "lr_retriever": group_lr(run.optimizer, "retriever"),
           "examples_per_s": window["examples"] / seconds, "utility_s": window["utility"],
           "elapsed_s": progress.elapsed_seconds}
    run.metrics.write(row)
    bar.set_postfix(loss=f"{row['loss']:.3f}", gen=f"{row['gen_loss']:.3f}", ret=f"{row['ret_loss']:.3f}",
                    acc=f"{row['retriever_acc']:.2f}", ex_s=f"{row['examples_per_s']:.2f}")
    window.update(loss=0.0, gen=0.0, ret=0.0, acc=[], examples=0, utility=0.0, micro=0, since=time.perf_counter())


def finish(run: Run, progress: Progress, examples: list[Example]) -> Path:
    """Final re-index (both sides), dev accuracy, and the checkpoint the app loads: <output_dir>/final."""
    cfg = run.cfg
    final = cfg.output_path / "final"
    progress.elapsed_seconds = progress.elapsed_seconds or 0.0
    if run.passage is not None:
        reindex(run, progress, final / "passage_encoder")
    if cfg.dev_every:
        run.metrics.write({"step": progress.global_step, "epoch": progress.epoch + 1,
                           "dev_accuracy": dev_accuracy(run)})
    save_checkpoint(run, progress, examples, final, resumable=False)
    run.metrics.close()
    log.info("Training done in %.0f s: %d steps, %d examples; checkpoint %s", progress.elapsed_seconds,
             progress.global_step, progress.examples_seen, final)
    return final
