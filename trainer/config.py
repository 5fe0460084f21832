"""The training configuration: one dataclass, read from a TOML file, every knob of the JMLR trainer.

Values come from the dataclass defaults, then the TOML file (top level or a [trainer] table), then
`--set key=value` overrides on the command line. Empty model/cache strings mean "whatever the
assistant's own settings say", so an adapter is trained for the generator the app actually runs.
"""
from __future__ import annotations

import dataclasses
import logging
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_DIR, Settings, load_settings

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_ALIASES = {"lambda": "lambda_ret"}  # `lambda` reads naturally in TOML but is a Python keyword


@dataclass
class TrainConfig:
    """Every knob of a run. Comments double as the README's table (see trainer/configs/default.toml)."""

    # Models
    generator_model: str = ""  # "" = the assistant's generator_model setting ("packaged" SmolLM2-135M)
    precision: str = "nf4"  # nf4 (QLoRA) | bf16 | fp32; nf4 falls back to fp32 when bitsandbytes is missing
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    retriever_model: str = ""  # "" = the assistant's embedding_model setting ("packaged" all-MiniLM-L6-v2)
    train_sides: str = "query"  # query (passages stay as indexed) | both (passage encoder trains; re-index)

    # The method (DESIGN.md, "The joint training method")
    n_candidates: int = 20  # passages retrieved per question with the current query encoder, each epoch
    k_sampled: int = 10  # passages sampled from them per step (dynamic sampling) for the retriever loss
    k_context: int = 5  # top passages by retriever score in the generator's context
    retriever_loss: str = "rank"  # rank (JMLR pairwise logistic) | kl (perplexity distillation)
    tau_lm: float = 0.1  # kl: temperature on the answer losses
    tau_r: float = 0.1  # temperature on retriever scores (cosines): both losses use s / tau_r
    lambda_ret: float = 1.0  # total = L_gen + lambda * L_ret (TOML key: `lambda`); 0 = retriever frozen
    include_rationale: bool = False  # target = "<letter>. <option>" (+ "\n<rationale>" when true)
    max_length: int = 2048  # tokens per prompt + target; prompts are cut from the left beyond it
    utility_batch_size: int = 8  # (passage, question) pairs per no-grad forward when scoring utility

    # Optimisation
    lr_generator: float = 2e-4
    lr_retriever: float = 2e-5
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # gradient clipping, per model (0 = off)
    warmup_steps: int = 0
    scheduler: str = "linear"  # linear (warm-up then linear decay to 0) | constant (warm-up then flat)
    epochs: int = 1
    batch_size: int = 1  # questions per micro-batch (per process); activation memory grows with it
    grad_accum: int = 4  # micro-batches per optimizer step: 4 questions per update by default
    max_steps: int = 0  # stop after this many optimizer steps (0 = run all epochs)
    seed: int = 42
    gradient_checkpointing: bool = False  # saves memory on big models, costs time

    # Data
    train_file: str = "guidelines/qa/train.jsonl"  # any JSONL in the QA record format (e.g. build_cloze output)
    dev_file: str = "guidelines/qa/dev.jsonl"
    train_limit: int = 0  # use the first N training questions (after a seeded shuffle); 0 = all
    dev_every: int = 0  # dev accuracy every N steps and at the end (0 = never)
    dev_limit: int = 50  # dev questions per dev evaluation
    guidelines_dir: str = "guidelines"  # PDFs indexed into data_dir when its collection is empty
    data_dir: str = ""  # Chroma store + PDFs to train against; "" = <output_dir>/index
    collection: str = "guidelines"  # base name; the passage encoder's fingerprint is appended (as in the app)

    # Output and runtime
    output_dir: str = "runs/jmlr"
    checkpoint_every: int = 100  # resumable checkpoint every N steps (0 = only at the end)
    keep_checkpoints: int = 2  # resumable checkpoints kept (each holds optimizer state)
    reindex_every: int = 0  # train_sides=both: re-embed the collection every N steps (0 = only at the end)
    log_every: int = 1  # steps between metrics rows
    device: str = "auto"  # auto | cpu | cuda (under accelerate launch, each process gets its own GPU)
    model_cache: str = ""  # converted generator cache; "" = the assistant's model_cache

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

    def replace(self, **changes: Any) -> "TrainConfig":
        merged = dataclasses.replace(self, **changes)
        validate(merged)
        return merged

    def assistant_settings(self, **changes: Any) -> Settings:
        """The app's settings this run trains for: same models, the training store, no env surprises."""
        base = load_settings()
        values: dict[str, Any] = {"data_dir": self.data_path, "collection": self.collection,
                                  "index_samples_on_start": False, "adapter_path": "", "checkpoint": "",
                                  "guidelines_dir": resolve_path(self.guidelines_dir)}
        if self.generator_model:
            values["generator_model"] = self.generator_model
        if self.retriever_model:
            values["embedding_model"] = self.retriever_model
        values["model_cache"] = self.model_cache or str(base.model_cache_dir)
        values.update(changes)
        return base.replace(**values)


def resolve_path(value: str | Path) -> Path:
    """Relative paths are relative to the working directory, as for any command-line tool."""
    return Path(value).expanduser().resolve()


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name.startswith("list"):
            if isinstance(raw, str):
                return [part.strip() for part in raw.split(",") if part.strip()]
            return [str(item) for item in raw]
        if kind_name == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind_name == "int":
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            return int(raw)
        if kind_name == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ValueError(f"Training setting {name!r} has the value {raw!r}, which is not a valid {kind_name}.") \
            from None


def validate(cfg: TrainConfig) -> None:
    """Refuse settings that would fail later, with the reason, before any model loads."""
    checks = [
        (cfg.precision in ("nf4", "bf16", "fp32"), f"precision must be nf4, bf16 or fp32 (got {cfg.precision!r})"),
        (cfg.train_sides in ("query", "both"), f"train_sides must be query or both (got {cfg.train_sides!r})"),
        (cfg.retriever_loss in ("rank", "kl"), f"retriever_loss must be rank or kl (got {cfg.retriever_loss!r})"),
        (cfg.scheduler in ("linear", "constant"), f"scheduler must be linear or constant (got {cfg.scheduler!r})"),
        (cfg.n_candidates >= 2, "n_candidates must be at least 2"),
        (2 <= cfg.k_sampled <= cfg.n_candidates, "k_sampled must be between 2 and n_candidates"),
        (1 <= cfg.k_context <= cfg.n_candidates, "k_context must be between 1 and n_candidates"),
        (cfg.tau_lm > 0 and cfg.tau_r > 0, "tau_lm and tau_r must be positive"),
        (cfg.lambda_ret >= 0, "lambda must be 0 or more"),
        (cfg.lr_generator >= 0 and cfg.lr_retriever >= 0, "learning rates must be 0 or more"),
        (cfg.epochs >= 1 and cfg.batch_size >= 1 and cfg.grad_accum >= 1, "epochs, batch_size, grad_accum >= 1"),
        (cfg.max_steps >= 0 and cfg.checkpoint_every >= 0 and cfg.reindex_every >= 0, "step counts must be >= 0"),
        (cfg.lora_r >= 1 and bool(cfg.lora_target_modules), "lora_r must be >= 1 with some target modules"),
        (cfg.utility_batch_size >= 1 and cfg.keep_checkpoints >= 1, "utility_batch_size, keep_checkpoints >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"Invalid training config: {message}.")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults < TOML file < overrides (e.g. from `--set key=value`)."""
    kinds = {f.name: f.type for f in fields(TrainConfig)}
    values: dict[str, Any] = {}

    def put(key: str, raw: Any, where: str) -> None:
        name = _ALIASES.get(key, key)
        if name not in kinds:
            raise ValueError(f"Unknown training setting {key!r} in {where}. Known: {', '.join(sorted(kinds))}.")
        values[name] = _coerce(key, raw, kinds[name])

    if path:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Training config {path} does not exist.")
        with path.open("rb") as handle:
            table = tomllib.load(handle)
        for key, raw in table.get("trainer", table).items():
            put(key, raw, str(path))
    for key, raw in (overrides or {}).items():
        put(key, raw, "the overrides")
    cfg = TrainConfig(**values)
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


DEFAULT_CONFIG = PROJECT_DIR / "trainer" / "configs" / "default.toml"
