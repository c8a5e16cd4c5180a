"""Typed configuration of a training run, loaded from a recipe file with command-line overrides.

A recipe is a TOML file in trainer/recipes/ (or any path) whose tables mirror the
dataclasses below: [model], [data], [optim], [train]. Any field can be overridden on
the command line as `--section.field value` (`--model.layers 4`, `--optim.lr 1e-3`).
Unknown keys and values of the wrong type are one-line errors that name the key and
the fix; nothing is silently ignored. The resolved config is saved with every run and
every checkpoint, and a resumed run must match it.
"""

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field

RECIPES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")
STAGES = ("nca", "language")
TRANSFER_GROUPS = ("attn", "mlp", "norm")


class TrainConfigError(ValueError):
    """A recipe or an override is invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class ModelConfig:
    """A Llama-style decoder: RMSNorm, rotary positions, SwiGLU, untied embeddings."""

    layers: int = 4
    """Transformer blocks."""
    heads: int = 4
    """Attention heads; d_model must be a multiple of it."""
    d_model: int = 256
    """Width of the residual stream."""
    mlp_hidden: int = 768
    """Hidden width of the SwiGLU MLP (the paper: 8192 for d_model 2048)."""
    rope_theta: float = 10_000.0
    """Base of the rotary position frequencies (the paper: 1e4)."""
    norm_eps: float = 1e-5
    """Epsilon of every RMSNorm."""
    context: int = 1024
    """Tokens the model reads at once; NCA sequences give 1024-token contexts."""
    vocab_multiple: int = 64
    """The embedding table is the data's vocabulary rounded up to a multiple of this."""
    init_std: float = 0.02
    """Standard deviation of every weight at initialisation (output projections scaled by
    1/sqrt(2 * layers), as GPT-2 does)."""


@dataclass(frozen=True)
class DataConfig:
    """Where the sequences come from and how they are ordered."""

    train: str = ""
    """A catalog dataset URL (http://HOST:PORT/v1/datasets/<id>) or a local dataset folder."""
    validation: str = ""
    """A second dataset of held-out rules (another seed), as a URL or folder. Empty: hold out
    the last `holdout_rows` rows of the training dataset instead."""
    holdout_rows: int = 256
    """Rows (whole rules) held out from the end of the training dataset for validation when
    `validation` is empty; ignored otherwise."""
    cache_dir: str = ""
    """Where catalog shards are cached; empty: ~/.cache/ncaforge/catalog."""
    loader_workers: int = 1
    """DataLoader worker processes per rank; 0 reads in the training process."""
    shuffle_window: int = 8
    """Record batches (1,024 rows each) whose rows are shuffled together: record batches are
    shuffled first, then rows within each window, so a worker decodes each batch once."""


@dataclass(frozen=True)
class OptimConfig:
    """Adam(W), warmup, decay and clipping (SPEC section 5)."""

    lr: float = 1e-4
    """Peak learning rate (the paper's NCA stage: 1e-4 at 1.6B parameters)."""
    betas: tuple = (0.9, 0.999)
    """Adam's beta1, beta2."""
    weight_decay: float = 0.0
    """Decoupled weight decay on matrices (the paper's NCA stage: none)."""
    warmup_steps: int = 5000
    """Linear warmup from 0 to lr over this many optimiser steps (the paper: 5,000)."""
    decay: str = "constant"
    """After warmup: 'constant' or 'cosine' (to min_lr_ratio * lr at the last step)."""
    min_lr_ratio: float = 0.1
    """Final learning rate of the cosine decay, as a fraction of lr."""
    grad_clip: float = 0.0
    """Clip the global gradient norm to this; 0 disables clipping (the paper's NCA stage)."""


@dataclass(frozen=True)
class TrainConfig:
    """The run: length, batch, evaluation, checkpoints, device."""

    run_dir: str = "runs/nca"
    """Folder of the run: config, metrics.jsonl, checkpoints step-NNNNNNNN/."""
    steps: int = 5000
    """Optimiser steps."""
    micro_batch: int = 8
    """Sequences per rank per forward pass."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimiser step; the global batch is
    micro_batch * grad_accum * world size."""
    seed: int = 0
    """Seeds the weights and the data order (with the epoch and the manifest digest)."""
    eval_every: int = 100
    """Evaluate every this many steps, and at the last step."""
    eval_rows: int = 128
    """Validation rows per evaluation (the same rows every time)."""
    checkpoint_every: int = 100
    """Write a checkpoint every this many steps, and at the last step."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept; older ones are deleted once a newer one is complete."""
    log_every: int = 1
    """Write a metrics line every this many steps."""
    device: str = "auto"
    """'auto' (CUDA when present), 'cpu' or 'cuda'. bf16 autocast on CUDA, fp32 on CPU."""
    threads: int = 0
    """torch threads per rank on CPU; 0 divides the cores among the local ranks."""
    collective_timeout: float = 60.0
    """Seconds a collective may wait for a rank before the job fails instead of hanging."""
    progress: bool = True
    """A progress bar on rank 0."""


@dataclass(frozen=True)
class TransferConfig:
    """How the language stage starts from an NCA checkpoint (SPEC section 5): every block and the
    final norm carried over, the embedding and output layer fresh, and the paper's ablations."""

    init_from: str = ""
    """A pre-pre-training checkpoint RUN/step-NNNNNNNN (a --stage nca run, or a --stage language run for
    natural-text pre-pre-training) to start from; empty trains from scratch."""
    reinit: str = ""
    """Comma-separated groups re-initialised instead of carried over: attn, mlp, norm."""
    reinit_layers: str = ""
    """Layer range A:B (Python slice, B exclusive) the reinit applies to; empty: every layer."""
    freeze: str = ""
    """Comma-separated groups (attn, mlp, norm) kept fixed during training, over freeze_layers."""
    freeze_layers: str = ""
    """Layer range A:B the freeze applies to; empty: every layer."""
    rescale: bool = False
    """Scale every carried-over block matrix (not the norms) to the RMS of the distribution it is drawn
    from at initialisation (trainer.model.initial_std), keeping its direction: tells what pre-pre-training
    learned apart from how large it left the weights (python -m trainer.weights measures that)."""

    def groups(self, field_name: str) -> tuple:
        names = tuple(name.strip() for name in getattr(self, field_name).split(",") if name.strip())
        for name in names:
            if name not in TRANSFER_GROUPS:
                raise TrainConfigError(f"transfer.{field_name}: unknown group {name!r}: use {', '.join(TRANSFER_GROUPS)}")
        return names

    def layer_range(self, field_name: str, layers: int) -> range:
        text = getattr(self, field_name).strip()
        if not text:
            return range(layers)
        try:
            first, last = (int(part) if part else None for part in text.split(":"))
        except ValueError:
            raise TrainConfigError(f"transfer.{field_name}={text!r}: write a layer range A:B, e.g. 0:2") from None
        chosen = range(layers)[slice(first, last)]
        if not chosen or (first or 0) >= layers or (last is not None and not -layers <= last <= layers):
            raise TrainConfigError(f"transfer.{field_name}={text!r} is outside the model's {layers} layers: "
                                   f"use A:B within 0:{layers}")
        return chosen


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; saved as config.json in the run folder."""

    stage: str = "nca"
    """'nca': pre-pre-training on NCA shards; 'language': training on a prepared token corpus,
    from scratch or from an NCA checkpoint (transfer.init_from)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network."""
    data: DataConfig = field(default_factory=DataConfig)
    """The datasets."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """The optimiser and its schedule."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The loop."""
    transfer: TransferConfig = field(default_factory=TransferConfig)
    """Language stage only: the NCA checkpoint to start from and the ablations."""

    def validate(self) -> "RunConfig":
        if self.stage not in STAGES:
            raise TrainConfigError(f"stage {self.stage!r} is unknown: use {', '.join(STAGES)}")
        m, t, o, d = self.model, self.train, self.optim, self.data
        positive = {"model.layers": m.layers, "model.heads": m.heads, "model.d_model": m.d_model,
                    "model.mlp_hidden": m.mlp_hidden, "model.context": m.context, "model.vocab_multiple": m.vocab_multiple,
                    "train.steps": t.steps, "train.micro_batch": t.micro_batch, "train.grad_accum": t.grad_accum,
                    "train.eval_every": t.eval_every, "train.eval_rows": t.eval_rows,
                    "train.checkpoint_every": t.checkpoint_every, "train.keep_checkpoints": t.keep_checkpoints,
                    "train.log_every": t.log_every, "data.shuffle_window": d.shuffle_window, "optim.lr": o.lr,
                    "train.collective_timeout": t.collective_timeout}
        for key, value in positive.items():
            if not value > 0:
                raise TrainConfigError(f"{key}={value}: use a positive value")
        for key, value in {"data.holdout_rows": d.holdout_rows, "data.loader_workers": d.loader_workers,
                           "optim.warmup_steps": o.warmup_steps, "optim.weight_decay": o.weight_decay,
                           "optim.grad_clip": o.grad_clip, "train.threads": t.threads, "train.seed": t.seed}.items():
            if value < 0:
                raise TrainConfigError(f"{key}={value}: use 0 or more")
        if m.d_model % m.heads or (m.d_model // m.heads) % 2:
            raise TrainConfigError(f"model.d_model={m.d_model} must split into {m.heads} heads of an even size: "
                                   f"change model.heads or model.d_model")
        if o.decay not in ("constant", "cosine"):
            raise TrainConfigError(f"optim.decay={o.decay!r}: use constant or cosine")
        if not 0 <= o.min_lr_ratio <= 1:
            raise TrainConfigError(f"optim.min_lr_ratio={o.min_lr_ratio}: use a fraction in [0, 1]")
        if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
            raise TrainConfigError(f"optim.betas={list(o.betas)}: use two numbers in [0, 1), e.g. [0.9, 0.999]")
        if t.device not in ("auto", "cpu", "cuda"):
            raise TrainConfigError(f"train.device={t.device!r}: use auto, cpu or cuda")
        transfer = self.transfer
        for name in ("reinit", "freeze"):
            transfer.groups(name)
            transfer.layer_range(f"{name}_layers", m.layers)
        if self.stage != "language" and (transfer.init_from or transfer.reinit or transfer.freeze):
            raise TrainConfigError("transfer options need --stage language: the NCA stage starts from scratch")
        if (transfer.reinit or transfer.reinit_layers) and not transfer.init_from:
            raise TrainConfigError("transfer.reinit needs transfer.init_from: there is nothing to re-initialise "
                                   "in a model trained from scratch")
        if transfer.rescale and not transfer.init_from:
            raise TrainConfigError("transfer.rescale needs transfer.init_from: a model trained from scratch starts "
                                   "at its initial scale already")
        if not d.train:
            raise TrainConfigError("no training data: pass --data URL_OR_FOLDER (a catalog dataset URL "
                                   "http://HOST:PORT/v1/datasets/<id> or a dataset folder)")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.type for f in dataclasses.fields(RunConfig) if dataclasses.is_dataclass(f.type)}
"""Section name -> its dataclass; the remaining top-level fields (stage) are plain values."""


def _coerce(key: str, value, kind):
    """`value` (from TOML or a command-line string) as `kind`, or TrainConfigError naming the key."""
    from_text = isinstance(value, str) and kind is not str
    try:
        if kind is bool:
            if from_text:
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind is int:
            if isinstance(value, bool) or isinstance(value, float):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is tuple:
            items = value.split(",") if from_text else value
            if not isinstance(items, (list, tuple)):
                raise ValueError
            return tuple(float(item) for item in items)
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except ValueError:
        pass
    name = kind.__name__ if kind is not tuple else "list of numbers (a,b)"
    raise TrainConfigError(f"{key}={value!r} is not a {name}: fix the recipe or the --{key} override")


def _field_types(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _section(cls, section: str, values: dict):
    if not isinstance(values, dict):
        raise TrainConfigError(f"[{section}] must be a table of keys, not {values!r}")
    kinds = _field_types(cls)
    for key in values:
        if key not in kinds:
            raise TrainConfigError(f"unknown key {section}.{key}: {cls.__name__} has "
                                   f"{', '.join(kinds)}; fix the recipe or the override")
    return cls(**{key: _coerce(f"{section}.{key}", value, kinds[key]) for key, value in values.items()})


def config_from_dict(document: dict) -> RunConfig:
    """A RunConfig from nested dicts (a parsed recipe, or a saved config.json)."""
    top = {f.name for f in dataclasses.fields(RunConfig)}
    for key in document:
        if key not in top:
            raise TrainConfigError(f"unknown recipe section or key {key!r}: use {', '.join(sorted(top))}")
    values = {}
    for key, value in document.items():
        if key in SECTIONS:
            values[key] = _section(SECTIONS[key], key, value)
        else:
            values[key] = _coerce(key, value, str)
    return RunConfig(**values)


def recipe_path(name: str) -> str:
    """A recipe name (tiny-cpu) or a path to a .toml file."""
    path = name if name.endswith(".toml") or os.sep in name else os.path.join(RECIPES_DIR, f"{name}.toml")
    if not os.path.isfile(path):
        shipped = sorted(f.removesuffix(".toml") for f in os.listdir(RECIPES_DIR) if f.endswith(".toml"))
        raise TrainConfigError(f"recipe {name!r} not found: use one of {', '.join(shipped)} or a path to a .toml file")
    return path


def load_recipe(name: str) -> dict:
    path = recipe_path(name)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise TrainConfigError(f"recipe {path} is not valid TOML ({error}): fix the file") from None


def apply_overrides(document: dict, overrides: list) -> dict:
    """Apply ('section.key', 'text') pairs to a recipe document; the types are checked later."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in document.items()}
    for key, text in overrides:
        section, _, name = key.partition(".")
        if not name:
            merged[section] = text
        else:
            if section not in SECTIONS:
                raise TrainConfigError(f"--{key}: unknown section {section!r}: use {', '.join(SECTIONS)}")
            merged.setdefault(section, {})[name] = text
    return merged


def resolve_config(recipe: str, overrides: list) -> RunConfig:
    """Recipe + overrides -> a validated RunConfig."""
    return config_from_dict(apply_overrides(load_recipe(recipe), overrides)).validate()
