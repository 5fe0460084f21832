"""The training loop: epochs of JMLR joint steps under HF accelerate, with metrics, checkpoints,
re-indexing when the passage encoder trains, and an exact `--resume`.

accelerate places the models, runs backward, accumulates gradients and (under `accelerate launch`)
wraps the models in DistributedDataParallel and shards the questions across processes. On a CPU it
is a single process and the same code path.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from assistant.checkpoint import PASSAGE_ENCODER, RETRIEVER, read_manifest, save_models, write_manifest

from .checkpoint import (
    RunProgress,
    latest_resumable,
    load_adapter_weights,
    load_encoder_weights,
    load_resumable,
    prune,
    restore_rng,
    save_resumable,
)
from .config import TrainConfig
from .index import PassageVectors, ensure_index, open_store, reembed, retrieve_candidates
from .jmlr import Example, Models, StepOutput, joint_step
from .metrics import MetricsLog
from .model_setup import load_retrievers, load_training_generator, trainable
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
    """Two parameter groups, each with its own learning rate (easy to mix up: a test checks it)."""
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
    info: dict[str, Any]
    metrics: Any = None  # MetricsLog, opened by train() once it knows where the run resumes
    bar: Any = None  # the tqdm progress bar of train()
    passage_vectors: PassageVectors | None = None  # stored vectors of the frozen passage side, per collection

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    def unwrap(self, model: Any) -> Any:
        return self.accelerator.unwrap_model(model) if model is not None else None

    def models(self) -> Models:
        vectors = None
        if self.passage_model is None:  # frozen passage side: vectors as stored, cached per collection
            if self.passage_vectors is None or self.passage_vectors.store is not self.store:
                self.passage_vectors = PassageVectors(self.store)
            vectors = self.passage_vectors
        return Models(generator=self.generator, tokenizer=self.tokenizer, query_encoder=self.query_model,
                      passage_encoder=self.passage_model, passage_vectors=vectors)

    def manifest(self, progress: RunProgress, extra: dict | None = None) -> dict:
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

    settings = cfg.assistant_settings()
    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, cpu=settings.device == "cpu",
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    seed_everything(cfg.seed + accelerator.process_index)
    device = str(accelerator.device)
    cfg.output_path.mkdir(parents=True, exist_ok=True)
    records = subset(load_records(cfg.train_file), cfg.train_limit, cfg.seed)
    query, passage, base = load_retrievers(cfg, settings, device)
    # One process indexes; the others open the store only then: an embedded Chroma client opened before another
    # process wrote the collection does not see its vectors ("Nothing found on disk").
    with accelerator.main_process_first():  # the main process writes the folder; the others read it
        store = open_store(settings, base, recover=accelerator.is_main_process, writer=accelerator.is_main_process)
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
               info={**loaded.info, "planned_steps": total})


def restore(run: Run, folder: Path) -> tuple[RunProgress, list[Example]]:
    """Put a run back to the state saved in a resumable checkpoint (models, optimizer, RNG, candidates)."""
    load_adapter_weights(run.unwrap(run.generator), folder)
    load_encoder_weights(run.unwrap(run.query_model), folder / RETRIEVER)
    if run.passage_model is not None:
        load_encoder_weights(run.unwrap(run.passage_model), folder / PASSAGE_ENCODER)
    progress, examples, rng = load_resumable(folder, run.optimizer, run.scheduler, run.sampler, run.records)
    if progress.collection and progress.collection != run.store.name:
        from assistant.store import GuidelineStore, make_client

        run.store = GuidelineStore(make_client(run.settings), progress.collection, recover=run.main,
                                   read_only=not run.main)
    restore_rng(rng, run.sampler)
    log.info("Resumed from %s: step %d, epoch %d, %d micro-batches into it", folder, progress.global_step,
             progress.epoch + 1, progress.batches_done)
    return progress, examples


def save_checkpoint(run: Run, progress: RunProgress, examples: list[Example], folder: Path, resumable: bool) -> None:
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


def reindex(run: Run, progress: RunProgress, folder: Path) -> None:
    """Passage encoder changed: save it, re-embed the collection into its version, train against that."""
    from assistant.store import GuidelineStore, make_client

    run.accelerator.wait_for_everyone()
    if run.main:
        folder.mkdir(parents=True, exist_ok=True)
        run.unwrap(run.passage_model).save(str(folder))
        progress.collection = reembed(run.store, run.settings, folder).name
    progress.collection = _broadcast_name(run, progress.collection)
    run.store = GuidelineStore(make_client(run.settings), progress.collection, recover=run.main,
                               read_only=not run.main)
    progress.last_reindex_step = progress.global_step
    run.passage.model.train()


def _broadcast_name(run: Run, name: str) -> str:
    if run.accelerator.num_processes == 1:
        return name
    from accelerate.utils import broadcast_object_list

    holder = [name]
    broadcast_object_list(holder, from_process=0)
    return holder[0]


def dev_scores(run: Run) -> dict[str, float]:
    """Accuracy on the first dev_limit dev questions with the current models (same scoring as evaluate), and
    gold recall@5 and mean reciprocal rank on every dev question (retrieval alone); nan without a dev file."""
    from .evaluate import score_with_models

    path = Path(run.cfg.dev_file)
    if not path.is_file():
        log.info("No dev file at %s: dev evaluation skipped", path)
        return {"accuracy": math.nan, "recall@5": math.nan, "mrr": math.nan}
    records = load_records(path)
    generator = run.unwrap(run.generator)
    scored = score_with_models(generator, run.tokenizer, run.query, run.store,
                               subset(records, run.cfg.dev_limit, run.cfg.seed), run.cfg.k_context,
                               run.cfg.choice_format)
    retrieval = score_with_models(None, None, run.query, run.store, records, run.cfg.k_context, run.cfg.choice_format)
    generator.train()
    run.query.model.train()
    return {"accuracy": scored["accuracy"], "recall@5": retrieval["recall@5"], "mrr": retrieval["mrr"]}


def keeps_retrieval(scores: dict[str, float], progress: RunProgress, cfg: TrainConfig) -> bool:
    """A dev evaluation may ship only if its retriever is no worse than the untrained one on every dev question:
    recall@5 and the gold passage's mean reciprocal rank both at least step 0's, less their tolerances."""
    return (scores["recall@5"] >= progress.base_recall - cfg.recall_tolerance - 1e-9
            and scores["mrr"] >= progress.base_mrr - cfg.mrr_tolerance - 1e-9)


def evaluate_on_dev(run: Run, progress: RunProgress, examples: list[Example]) -> None:
    """Dev figures into the metrics; with `keep_best`, the models are kept in <output_dir>/best when they are
    the best so far without losing retrieval (the first evaluation sets the retrieval floor)."""
    cfg, step = run.cfg, progress.global_step
    scores = dev_scores(run)
    run.metrics.write({"step": step, "epoch": progress.epoch + 1, "dev_accuracy": scores["accuracy"],
                       "dev_recall5": scores["recall@5"], "dev_mrr": scores["mrr"]})
    if not cfg.keep_best or any(math.isnan(value) for value in scores.values()):
        return
    if progress.base_recall < 0:
        progress.base_recall, progress.base_mrr = scores["recall@5"], scores["mrr"]
    score = scores["accuracy"] + scores["recall@5"]
    figures = (step, scores["accuracy"], scores["recall@5"], scores["mrr"])
    if keeps_retrieval(scores, progress, cfg) and score > progress.best_score:
        progress.best_step, progress.best_score = step, score
        save_checkpoint(run, progress, examples, cfg.output_path / "best", resumable=False)
        log.info("Dev at step %d: accuracy %.3f, recall@5 %.3f, MRR %.3f: kept as the best so far", *figures)
    else:
        log.info("Dev at step %d: accuracy %.3f, recall@5 %.3f, MRR %.3f (floors %.3f, %.3f): not kept", *figures,
                 progress.base_recall - cfg.recall_tolerance, progress.base_mrr - cfg.mrr_tolerance)


@dataclass
class Window:
    """Running totals of the micro-batches since the last metrics row."""

    loss: float = 0.0
    gen_loss: float = 0.0
    ret_loss: float = 0.0
    retriever_acc: list[float] = field(default_factory=list)
    examples: int = 0
    utility_seconds: float = 0.0
    micro_batches: int = 0
    since: float = field(default_factory=time.perf_counter)

    def add(self, out: StepOutput, examples: int) -> None:
        self.loss += float(out.loss.detach())
        self.gen_loss += out.gen_loss
        self.ret_loss += out.ret_loss
        self.utility_seconds += out.utility_seconds
        self.micro_batches += 1
        self.examples += examples
        if not math.isnan(out.retriever_acc):
            self.retriever_acc.append(out.retriever_acc)

    def row(self, run: Run, progress: RunProgress) -> dict[str, Any]:
        """The metrics row for these micro-batches, at the current step."""
        micro = max(1, self.micro_batches)
        seconds = max(1e-9, time.perf_counter() - self.since)
        accuracy = sum(self.retriever_acc) / len(self.retriever_acc) if self.retriever_acc else math.nan
        return {"step": progress.global_step, "epoch": progress.epoch + 1, "examples": progress.examples_seen,
                "loss": self.loss / micro, "gen_loss": self.gen_loss / micro,
                "ret_loss": self.ret_loss / micro if run.cfg.retriever_trains else math.nan,
                "retriever_acc": accuracy, "lr_generator": group_lr(run.optimizer, "generator"),
                "lr_retriever": group_lr(run.optimizer, "retriever"), "examples_per_s": self.examples / seconds,
                "utility_s": self.utility_seconds, "elapsed_s": progress.elapsed_seconds}


def micro_step(run: Run, batch: list[Example]) -> StepOutput:
    """Forward and backward of one micro-batch; the optimizer steps when gradients have accumulated."""
    models = [m for m in (run.generator, run.query_model, run.passage_model) if m is not None]
    with run.accelerator.accumulate(*models):
        out = joint_step(run.models(), batch, run.cfg, run.sampler)
        run.accelerator.backward(out.loss)
        if run.accelerator.sync_gradients and run.cfg.max_grad_norm > 0:
            # per model: one model's large gradients must not shrink the other's updates
            for module in models:
                run.accelerator.clip_grad_norm_(trainable(module), run.cfg.max_grad_norm)
        run.optimizer.step()
        if run.accelerator.sync_gradients:
            run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    return out


def after_optimizer_step(run: Run, progress: RunProgress, window: Window, examples: list[Example]) -> Window:
    """Metrics, re-indexing, dev accuracy and checkpoints that fall due at this step; returns the next window."""
    cfg, step, total = run.cfg, progress.global_step, run.info["planned_steps"]
    if step % cfg.log_every == 0 or step == total:
        row = window.row(run, progress)
        run.metrics.write(row)
        window = Window()
        run.bar.set_postfix(loss=f"{row['loss']:.3f}", gen=f"{row['gen_loss']:.3f}", ret=f"{row['ret_loss']:.3f}",
                            acc=f"{row['retriever_acc']:.2f}", ex_s=f"{row['examples_per_s']:.2f}")
    run.bar.update(1)
    if step >= total:
        return window
    if run.passage and cfg.reindex_every and step % cfg.reindex_every == 0:
        reindex(run, progress, cfg.output_path / "passage_encoders" / f"step-{step:06d}")
    if cfg.dev_every and step % cfg.dev_every == 0:
        evaluate_on_dev(run, progress, examples)
    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
        save_checkpoint(run, progress, examples, resumable_folder(cfg, step), True)
    return window


def resumable_folder(cfg: TrainConfig, step: int) -> Path:
    return cfg.output_path / "checkpoints" / f"step-{step:06d}"


def epoch_examples(run: Run, progress: RunProgress, restored: list[Example] | None) -> tuple[list[Example], int]:
    """This epoch's questions with their candidates, and how many micro-batches of it are already done.

    A resumed epoch keeps the candidates it started with; a new epoch retrieves them afresh with the
    query encoder as it is now (JMLR re-retrieves every epoch)."""
    if restored is not None and progress.batches_done:
        return restored, progress.batches_done
    progress.batches_done = 0
    return retrieve_candidates(run.query, run.store, run.records, run.cfg.n_candidates, run.settings), 0


def epoch_loader(run: Run, epoch: int, count: int, skip: int) -> Any:
    """The epoch's shuffled question order in micro-batches, sharded across processes by accelerate."""
    cfg = run.cfg
    order = torch.randperm(count, generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
    # The loader gets its own generator: a DataLoader draws a seed from the global RNG each time it
    # is iterated, which would shift dropout after a resume (the resumed run iterates it afresh).
    loader = run.accelerator.prepare_data_loader(torch.utils.data.DataLoader(
        order, batch_size=cfg.batch_size, shuffle=False, collate_fn=list,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(cfg.seed + epoch)))
    return run.accelerator.skip_first_batches(loader, skip) if skip else loader


def train_epoch(run: Run, progress: RunProgress, examples: list[Example], skip: int, window: Window,
                started: float, steps_at_start: int) -> tuple[Window, str]:
    """One pass over the questions. Returns the open window and why it ended: "epoch", "done" or "paused"."""
    for model in (run.query.model, run.passage.model if run.passage else None, run.generator):
        if model is not None:
            model.train()
    for indices in epoch_loader(run, progress.epoch, len(examples), skip):
        batch = [examples[i] for i in indices]
        out = micro_step(run, batch)
        progress.batches_done += 1
        progress.examples_seen += len(batch) * run.accelerator.num_processes
        window.add(out, len(batch) * run.accelerator.num_processes)
        if not run.accelerator.sync_gradients:
            continue
        progress.global_step += 1
        progress.elapsed_seconds = time.perf_counter() - started
        window = after_optimizer_step(run, progress, window, examples)
        if progress.global_step >= run.info["planned_steps"]:
            return window, "done"
        if run.cfg.pause_after_steps and progress.global_step - steps_at_start >= run.cfg.pause_after_steps:
            return window, "paused"
    return window, "epoch"


def pause(run: Run, progress: RunProgress, examples: list[Example]) -> Path:
    """Stop this invocation with a resumable checkpoint at the current step; `--resume` continues from it."""
    folder = resumable_folder(run.cfg, progress.global_step)
    if not (folder / "trainer_state.pt").is_file():
        save_checkpoint(run, progress, examples, folder, True)
    run.metrics.close()
    log.info("Paused after step %d: continue with --resume (checkpoint %s)", progress.global_step, folder)
    return folder


def resume_state(run: Run) -> tuple[RunProgress, list[Example] | None]:
    """The state of the newest resumable checkpoint, or a fresh start (said in the log) when there is none."""
    folder = latest_resumable(run.cfg.output_path)
    if folder is None:
        log.warning("--resume: no resumable checkpoint in %s/checkpoints; starting from the beginning",
                    run.cfg.output_path)
        return RunProgress(collection=run.store.name), None
    return restore(run, folder)


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Run the training; returns the final checkpoint folder (<output_dir>/final), or, when the run pauses
    (`pause_after_steps`), the resumable checkpoint to continue from."""
    run = setup(cfg)
    progress, restored = resume_state(run) if resume else (RunProgress(collection=run.store.name), None)
    run.metrics = MetricsLog(cfg.output_path, resume_step=progress.global_step if resume else None, enabled=run.main)
    total = run.info["planned_steps"]
    run.bar = tqdm(total=total, initial=progress.global_step, desc="JMLR training", unit="step", disable=not run.main)
    started = time.perf_counter() - progress.elapsed_seconds
    steps_at_start, window, examples = progress.global_step, Window(), restored or []
    ended = "done" if progress.global_step >= total else "epoch"
    if cfg.dev_every and cfg.keep_best and progress.global_step == 0:  # the untrained models: the floor, a candidate
        evaluate_on_dev(run, progress, [])
    # epochs: each retrieves its candidates with the current encoder, then trains on them
    while ended == "epoch" and progress.epoch < cfg.epochs:
        examples, skip = epoch_examples(run, progress, restored)
        restored = None
        window, ended = train_epoch(run, progress, examples, skip, window, started, steps_at_start)
        if ended == "epoch":
            progress.epoch += 1
            progress.batches_done = 0
    run.bar.close()
    if ended == "paused":
        return pause(run, progress, examples)
    progress.epoch = min(progress.epoch, cfg.epochs - 1)
    return finish(run, progress, examples)


def finish(run: Run, progress: RunProgress, examples: list[Example]) -> Path:
    """Final re-index (both sides), dev accuracy, and the checkpoint the app loads: <output_dir>/final."""
    cfg = run.cfg
    final = cfg.output_path / "final"
    progress.elapsed_seconds = progress.elapsed_seconds or 0.0
    if run.passage is not None:
        reindex(run, progress, final / PASSAGE_ENCODER)
    if cfg.dev_every:
        evaluate_on_dev(run, progress, examples)
    best = cfg.output_path / "best"
    if cfg.dev_every and cfg.keep_best and progress.best_step >= 0 and best.is_dir():
        ship_best(run, progress, best, final)
    else:
        save_checkpoint(run, progress, examples, final, resumable=False)
    run.metrics.close()
    if run.main:
        log.info("Training done in %.0f s: %d steps, %d examples; checkpoint %s", progress.elapsed_seconds,
                 progress.global_step, progress.examples_seen, final)
    return final


def ship_best(run: Run, progress: RunProgress, best: Path, final: Path) -> None:
    """<output_dir>/final becomes the kept dev evaluation's models; its manifest says which step and why."""
    run.accelerator.wait_for_everyone()
    if run.main:
        staging = final.with_name(final.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(best, staging)
        manifest = read_manifest(staging)
        manifest["selection"] = {"selected_step": progress.best_step, "last_step": progress.global_step,
                                 "dev_accuracy_plus_recall5": round(progress.best_score, 4),
                                 "base_dev_recall5": progress.base_recall,
                                 "recall_tolerance": run.cfg.recall_tolerance,
                                 "base_dev_mrr": round(progress.base_mrr, 6),
                                 "mrr_tolerance": run.cfg.mrr_tolerance}
        write_manifest(staging, manifest)
        if run.metrics.path.is_file():
            (staging / "metrics.csv").write_bytes(run.metrics.path.read_bytes())
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        if progress.best_step != progress.global_step:
            log.warning("The last step (%d) lost dev retrieval or scored no higher (a tie keeps the earlier step): "
                        "final/ holds step %d instead",
                        progress.global_step, progress.best_step)
    run.accelerator.wait_for_everyone()
