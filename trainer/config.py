"""The training configuration: one dataclass, every knob of the JMLR trainer with its help text.

Values come from the dataclass defaults, then the TOML file (top level or a [trainer] table), then
`--set key=value` overrides, through the same loader as the app's settings (assistant.config_loader).
The keys the app has too (generator, retriever, device, model cache, collection, guidelines folder)
are empty by default, meaning "the app's own setting", so an adapter is trained for the models and the
store naming the app actually uses. Two differ on purpose: `data_dir` (training gets its own store,
never the app's live library, unless pointed at it) and `precision` (the precision the base model
trains at, not the one it answers at). Relative paths are relative to the working directory.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import CHOICE_FORMATS, PROJECT_DIR, Settings, load_settings
from assistant.config_loader import Source, load_dataclass, setting

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
KEY_ALIASES = {"lambda": "lambda_ret"}  # `lambda` reads naturally in TOML but is a Python keyword
DEFAULT_CONFIG = PROJECT_DIR / "trainer" / "configs" / "default.toml"


@dataclass
class TrainConfig:
    """Every knob of a run (docs/DESIGN.md describes the method these parametrise)."""

    # Models
    generator_model: str = setting("", "base generator; empty = the app's `generator_model` (a packaged preset: "
                                   "`fast`, `balanced`, `quality`, or a folder or hub id)")
    precision: str = setting("nf4", "training precision of the base generator: `nf4` = QLoRA on a 4-bit base "
                             "(bitsandbytes); `bf16`/`fp32` = plain LoRA. Without a usable bitsandbytes, nf4 "
                             "falls back to fp32 with a warning")
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: int = setting(32, "LoRA scaling numerator")
    lora_dropout: float = setting(0.05, "dropout on the LoRA path")
    lora_target_modules: list[str] = setting(DEFAULT_TARGETS, "modules that get adapters (all attention and MLP "
                                             "projections)")
    retriever_model: str = setting("", "base retriever; empty = the app's `embedding_model` (`packaged` "
                                   "all-MiniLM-L6-v2)")
    train_sides: str = setting("query", "`query`: passages keep the vectors they were indexed with; `both`: the "
                               "passage encoder trains too and the collection is re-embedded")

    # The method
    n_candidates: int = setting(20, "N passages retrieved per question with the current query encoder, every epoch")
    k_sampled: int = setting(5, "K passages sampled per question (dynamic sampling) for the retriever loss; each costs "
                                   "one no-grad forward of the generator")
    k_context: int = setting(5, "top-k passages by retriever score in the generator's prompt, best one last")
    retriever_loss: str = setting("rank", "`rank` (JMLR pairwise logistic) or `kl` (perplexity distillation)")
    tau_lm: float = setting(0.1, "`kl`: temperature on the answer losses")
    tau_r: float = setting(0.1, "temperature on retriever scores: both losses read them as s / tau_r")
    utility_norm: str = setting("none", "`none`: the answer losses as they are; `zscore`: standardised per "
                                "question, so `kl` reads which passage helps most, not how hard the question is")
    gold_weight: float = setting(0.0, "variant: adds this weight x cross-entropy towards the record's gold passage "
                                 "among the candidates to the retriever loss (0 = the method's pure form)")
    lambda_ret: float = setting(1.0, "total = L_gen + lambda * L_ret; 0 freezes the retriever (baseline c)")
    choice_format: str = setting(CHOICE_FORMATS[0], "multiple-choice layout trained and evaluated "
                                 "(assistant.choice): `cloze` = the question alone, target the option's text; "
                                 "`listed` = lettered options in the prompt, target `<letter>. <option>`. The "
                                 "checkpoint carries it to the app")
    include_rationale: bool = setting(False, "the target (see `choice_format`), plus the record's rationale when "
                                      "true")
    max_length: int = setting(2048, "tokens per prompt + target; prompts are cut from the left beyond it")
    utility_batch_size: int = setting(8, "(passage, question) pairs per no-grad forward when measuring utility")
    share_prefix: bool = setting(True, "run the utility prompts' shared head (system prompt, evidence header) "
                                       "once per batch with the key/value cache; false = each prompt in full")

    # Optimisation
    lr_generator: float = setting(2e-4, "learning rate of the LoRA parameters")
    lr_retriever: float = setting(1e-5, "learning rate of the encoder parameters (set by the sweep, docs/TRAINING.md)")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    max_grad_norm: float = setting(1.0, "gradient clipping, per model (0 = off)")
    warmup_steps: int = setting(0, "learning-rate warm-up steps")
    scheduler: str = setting("linear", "`linear` (decay to 0 after warm-up) or `constant`")
    epochs: int = setting(1, "passes over the training questions")
    batch_size: int = setting(1, "questions per micro-batch per process (activation memory grows with it: 4 "
                              "peaked at 20.7 GB on the CPU)")
    grad_accum: int = setting(4, "micro-batches whose gradients make one optimizer step")
    max_steps: int = setting(0, "stop the run after this many optimizer steps (0 = all epochs)")
    pause_after_steps: int = setting(0, "stop this invocation after this many optimizer steps, leaving a "
                                     "resumable checkpoint for `--resume` (a time-boxed session on a shared "
                                     "machine); the schedule stays that of the whole run (0 = never)")
    seed: int = setting(42, "seeds python, numpy, torch and the sampler")
    gradient_checkpointing: bool = setting(False, "saves memory on big models, costs time")

    # Data
    train_file: str = setting("guidelines/qa/train.jsonl", "training questions: any JSONL in the QA record format")
    dev_file: str = setting("guidelines/qa/dev.jsonl", "dev questions")
    train_limit: int = setting(0, "a seeded subset of N training questions (0 = all)")
    dev_every: int = setting(0, "dev accuracy, recall@5 and gold MRR every N steps and at the end, and at step 0 with "
                             "`keep_best` (0 = never)")
    dev_limit: int = setting(30, "dev questions whose accuracy each dev evaluation measures (retrieval is "
                             "measured on all of them)")
    keep_best: bool = setting(True, "with `dev_every`: `final/` is the dev evaluation (step 0, the untrained models, "
                              "included) with the best dev accuracy + recall@5 among those whose retriever kept the "
                              "untrained one's dev recall@5 and gold MRR, less their tolerances; false: the last step")
    recall_tolerance: float = setting(0.0, "`keep_best`: how far below the untrained retriever's dev recall@5 a "
                                      "kept checkpoint may be (0.02 = 2 points)")
    mrr_tolerance: float = setting(0.0, "`keep_best`: how far below the untrained retriever's mean reciprocal rank "
                                   "of the gold passage, over all dev questions, a kept checkpoint may be")
    guidelines_dir: str = setting("", "PDFs indexed into `data_dir` when its collection is empty; empty = the "
                                  "app's `guidelines_dir`")
    data_dir: str = setting("", "the store trained against; empty = `<output_dir>/index`, or an app data folder to "
                            "train against its library")
    collection: str = setting("", "collection base name; empty = the app's `collection`")

    # Output and runtime
    output_dir: str = setting("runs/jmlr", "checkpoints (`checkpoints/step-N`, `final/`) and metrics")
    checkpoint_every: int = setting(100, "resumable checkpoint every N steps (0 = only the final one)")
    keep_checkpoints: int = setting(2, "resumable checkpoints kept (each holds optimizer state)")
    reindex_every: int = setting(0, "`train_sides = both`: re-embed the collection every N steps (always at the end)")
    log_every: int = setting(1, "steps between metrics rows")
    device: str = setting("", "`auto`, `cpu` or `cuda`; empty = the app's `device` (under accelerate launch, each "
                          "process gets its own GPU)")
    model_cache: str = setting("", "converted generator cache; empty = the app's `model_cache`")

    @property
    def output_path(self) -> Path:
        return resolve_path(self.output_dir)

    @property
    def data_path(self) -> Path:
        return resolve_path(self.data_dir) if self.data_dir else self.output_path / "index"

    @property
    def retriever_trains(self) -> bool:
        """lambda 0 or a zero retriever rate is the 'separately trained' baseline: no retriever update."""
        return self.lambda_ret > 0 and self.lr_retriever > 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        merged = dataclasses.replace(self, **changes)
        validate(merged)
        return merged

    def assistant_settings(self, **changes: Any) -> Settings:
        """The app's settings this run trains for: the app's own, with this run's store and models."""
        base = load_settings()
        values: dict[str, Any] = {"data_dir": self.data_path, "index_samples_on_start": False,
                                  "adapter_path": "", "checkpoint": "", "model_cache": str(base.model_cache_dir),
                                  "choice_format": self.choice_format}
        inherited = {"generator_model": self.generator_model, "embedding_model": self.retriever_model,
                     "collection": self.collection, "device": self.device, "model_cache": self.model_cache,
                     "guidelines_dir": resolve_path(self.guidelines_dir) if self.guidelines_dir else ""}
        values.update({name: value for name, value in inherited.items() if value})
        values.update(changes)
        return base.replace(**values)


def resolve_path(value: str | Path) -> Path:
    """Relative paths are relative to the working directory, as for any command-line tool."""
    return Path(value).expanduser().resolve()


def validate(cfg: TrainConfig) -> None:
    """Refuse settings that would fail later, with the reason, before any model loads."""
    checks = [
        (cfg.precision in ("nf4", "bf16", "fp32"), f"precision must be nf4, bf16 or fp32 (got {cfg.precision!r})"),
        (cfg.train_sides in ("query", "both"), f"train_sides must be query or both (got {cfg.train_sides!r})"),
        (cfg.choice_format in CHOICE_FORMATS,
         f"choice_format must be one of {', '.join(CHOICE_FORMATS)} (got {cfg.choice_format!r})"),
        (cfg.retriever_loss in ("rank", "kl"), f"retriever_loss must be rank or kl (got {cfg.retriever_loss!r})"),
        (cfg.utility_norm in ("none", "zscore"), f"utility_norm must be none or zscore (got {cfg.utility_norm!r})"),
        (cfg.gold_weight >= 0, f"gold_weight must be 0 or more (got {cfg.gold_weight})"),
        (cfg.scheduler in ("linear", "constant"), f"scheduler must be linear or constant (got {cfg.scheduler!r})"),
        (cfg.n_candidates >= 2, "n_candidates must be at least 2"),
        (2 <= cfg.k_sampled <= cfg.n_candidates, "k_sampled must be between 2 and n_candidates"),
        (1 <= cfg.k_context <= cfg.n_candidates, "k_context must be between 1 and n_candidates"),
        (cfg.tau_lm > 0 and cfg.tau_r > 0, "tau_lm and tau_r must be positive"),
        (cfg.lambda_ret >= 0, "lambda must be 0 or more"),
        (cfg.lr_generator >= 0 and cfg.lr_retriever >= 0, "learning rates must be 0 or more"),
        (cfg.epochs >= 1 and cfg.batch_size >= 1 and cfg.grad_accum >= 1, "epochs, batch_size, grad_accum >= 1"),
        (min(cfg.max_steps, cfg.pause_after_steps, cfg.checkpoint_every, cfg.reindex_every) >= 0,
         "step counts must be >= 0"),
        (cfg.lora_r >= 1 and bool(cfg.lora_target_modules), "lora_r must be >= 1 with some target modules"),
        (cfg.utility_batch_size >= 1 and cfg.keep_checkpoints >= 1, "utility_batch_size, keep_checkpoints >= 1"),
        (cfg.device in ("", "auto", "cpu", "cuda"), f"device must be auto, cpu or cuda (got {cfg.device!r})"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"Invalid training config: {message}.")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults < TOML file < overrides (e.g. from `--set key=value`)."""
    toml_path = Path(path) if path else None
    if toml_path is not None and not toml_path.is_file():
        raise FileNotFoundError(f"Training config {toml_path} does not exist.")
    source = Source(toml_path=toml_path, toml_table="trainer", key_aliases=KEY_ALIASES)
    cfg = load_dataclass(TrainConfig, source, overrides)
    validate(cfg)
    return cfg


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`key=value` strings from the command line."""
    result = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value (got {pair!r}).")
        key, value = pair.split("=", 1)
        result[key.strip()] = value.strip()
    return result
