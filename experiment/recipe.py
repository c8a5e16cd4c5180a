"""An experiment recipe: which arms, seeds, budgets, model and target corpus to compare.

A recipe is a TOML file in experiment/recipes/ (or any path). It is parsed into the typed,
frozen models below: an unknown key, arm or band, a wrong type or a budget the data cannot
meet is one ExperimentError line before anything runs. `CORPUS=` (`--corpus`) points the
same recipe at another target corpus.

Arms:
    scratch      the language stage from a fresh model (the reference)
    nca-<band>   pre-pre-training on NCA shards of that complexity band (generator.bands)
    dyck         pre-pre-training on k-Dyck shards (generator.dyck)
    text         pre-pre-training on natural text (`[pretrain] text_source`), the paper's C4 baseline
    <variant>    a name from `[variants]`: the pre-pre-training run of another arm (`of`), with the
                 language stage started from it differently (`transfer`: the paper's ablations,
                 re-initialising or freezing attention, MLP or norms, or rescaling)

Budgets are tokens; the trainer's steps are tokens / (micro_batch x grad_accum x context),
rounded up, so a budget is met or exceeded by less than one step.
"""

import dataclasses
import math
import os
import re
import tomllib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from generator.bands import NAMED_BANDS
from generator.format import first_problem
from trainer.config import TrainConfigError, TransferConfig, resolve_config

RECIPES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")
FIXED_ARMS = ("scratch", "dyck", "text")
TRANSFER_OPTIONS = tuple(field.name for field in dataclasses.fields(TransferConfig) if field.name != "init_from")
"""The trainer's transfer.* options a variant may set (transfer.init_from is the experiment's)."""
VALIDATION_SEED = 1_000_000
"""Seed of every band's validation dataset; no experiment seed may take it (experiment.plan)."""


class ExperimentError(Exception):
    """An experiment cannot run; the message names the problem and the fix, in one line."""


class RecipeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorpusSpec(RecipeModel):
    """A target corpus, prepared once by `python -m trainer.data prepare`."""

    source: str = Field(description="A text file, a folder, a .jsonl[.zst] or .parquet file, or 'stdlib'.")
    name: str = Field("", description="Its name in reports (the domain); empty: derived from the source.")
    validation_fraction: float = Field(0.05, gt=0, lt=1, description="Share of documents held out for validation.")
    split_at: str = Field("", description="Cut documents before lines matching this regex (one big file).")
    field: str = Field("text", description="JSON field of the text (JSON lines).")
    column: str = Field("text", description="Parquet column of the text.")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        base = os.path.basename(os.path.normpath(self.source))
        for suffix in (".zst", ".jsonl", ".parquet", ".txt", ".md"):
            base = base.removesuffix(suffix)
        return base or "corpus"


class StageSpec(RecipeModel):
    """One training stage: a trainer recipe, a token budget, overrides."""

    recipe: str = Field(description="Trainer recipe name (trainer/recipes) or path.")
    tokens: int = Field(gt=0, description="Training tokens per arm and seed.")
    eval_every: int = Field(gt=0, description="Steps between validation evaluations.")
    eval_rows: int = Field(64, gt=0, description="Validation sequences per evaluation.")
    overrides: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Trainer overrides 'section.key' -> value, applied to every run of the stage.")


class PretrainSpec(StageSpec):
    """The pre-pre-training stage and the data it reads."""

    validation_sequences: int = Field(256, gt=0, description="Held-out NCA / Dyck sequences (a separate seed).")
    text_source: CorpusSpec | None = Field(None, description="The natural-text corpus of the 'text' arm.")
    ray_workers: int = Field(1, gt=0, description="Ray generation workers for NCA data (generator.pipeline).")
    compile_step: bool = Field(True, description=(
        "torch.compile the NCA step: ~25x faster generation after ~40 s of compiling; off for tiny datasets."))


class VariantSpec(RecipeModel):
    """An arm that starts the language stage from another arm's pre-pre-training run in another way."""

    of: str = Field(description="The arm whose pre-pre-training run it starts from: nca-<band>, dyck or text; it "
                                "must be among the arms too.")
    transfer: dict[str, str | bool] = Field(min_length=1, description=(
        "Trainer transfer options: reinit, freeze (groups attn, mlp, norm) with reinit_layers, freeze_layers "
        "(the paper's ablations), rescale = true."))

    @field_validator("transfer", mode="before")
    @classmethod
    def _transfer_options(cls, transfer) -> dict:
        if not isinstance(transfer, dict):
            raise ValueError("give a table of transfer options, e.g. { reinit = \"mlp\" }")
        for key, value in transfer.items():
            if key not in TRANSFER_OPTIONS:
                raise ValueError(f"transfer option {key!r} is unknown: use {', '.join(TRANSFER_OPTIONS)}")
            if isinstance(value, bool) != (key == "rescale"):
                raise ValueError(f"transfer.{key} = {value!r}: give " +
                                 ("true or false" if key == "rescale" else "text, e.g. \"mlp\" or \"0:2\""))
        for group in ("reinit", "freeze"):
            if transfer.get(f"{group}_layers") and not transfer.get(group):
                raise ValueError(f"transfer.{group}_layers without transfer.{group}: name the groups it applies to")
        if not (transfer.get("reinit") or transfer.get("freeze") or transfer.get("rescale")):
            raise ValueError("the transfer options change nothing: set reinit, freeze or rescale = true, or use the "
                             "arm itself")
        return transfer


def is_builtin_arm(arm: str) -> bool:
    """scratch, dyck, text or nca-<named band>: an arm that needs no [variants] entry."""
    return arm in FIXED_ARMS or (arm.startswith("nca-") and arm[4:] in NAMED_BANDS)


class Recipe(RecipeModel):
    """experiment/recipes/<name>.toml."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Recipe name; names the report folder.")
    description: str = Field(description="What the recipe is for, and its expected run time on which machine.")
    variants: dict[str, VariantSpec] = Field(default_factory=dict, description=(
        "Arms by name that reuse another arm's pre-pre-training run and start the language stage from it "
        "differently (checked before the arms, which may name them)."))
    arms: tuple[str, ...] = Field(min_length=1, description=(
        "scratch, nca-<band>, dyck, text, or a name from variants; scratch is required."))
    seeds: tuple[int, ...] = Field(min_length=1, description="Paired seeds: each arm runs once per seed.")
    corpora: tuple[CorpusSpec, ...] = Field(min_length=1, description="Target corpora (domains).")
    pretrain: PretrainSpec = Field(description="Pre-pre-training stage.")
    language: StageSpec = Field(description="Language stage.")
    threads: int = Field(0, ge=0, description="Torch threads per process; 0: every core (divided among processes).")
    processes: int = Field(1, gt=0, description="Trainer processes per run (torchrun ranks; one per GPU).")
    notes: tuple[str, ...] = Field((), description="Paragraphs for the report: what the recipe can and cannot show.")

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, arms: tuple, info: ValidationInfo) -> tuple:
        variants = info.data.get("variants", {})  # absent when they failed: that error is reported first
        for arm in arms:
            if not is_builtin_arm(arm) and arm not in variants:
                raise ValueError(f"arm {arm!r} is unknown: use scratch, dyck, text, nca-<band> with a band among "
                                 f"{', '.join(NAMED_BANDS)}, or a name from [variants]")
        if "scratch" not in arms:
            raise ValueError("the arms must include scratch: every arm is scored against it")
        if len(set(arms)) != len(arms):
            raise ValueError("an arm is listed twice")
        for name, variant in variants.items():
            if is_builtin_arm(name) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name):
                raise ValueError(f"variant name {name!r}: use lower-case letters, digits, '.' and '-', and not the "
                                 f"name of a built-in arm")
            if variant.of == "scratch" or not is_builtin_arm(variant.of):
                raise ValueError(f"variants.{name}.of={variant.of!r}: name a pre-pre-training arm (nca-<band>, dyck "
                                 f"or text)")
            if name not in arms:
                raise ValueError(f"variants.{name} is not among the arms: add it to arms or remove it")
            if variant.of not in arms:
                raise ValueError(f"variants.{name}.of={variant.of!r} is not among the arms: add it, so the variant "
                                 f"is read beside the arm it varies")
        return arms

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: tuple) -> tuple:
        if len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= VALIDATION_SEED:
            raise ValueError(f"seeds must be distinct, non-negative and below {VALIDATION_SEED:,} (the validation "
                             f"data's seed)")
        return seeds

    def pretrain_arm(self, arm: str) -> str:
        """The arm whose pre-pre-training run `arm` starts from: a variant's `of`, else the arm itself."""
        return self.variants[arm].of if arm in self.variants else arm

    @property
    def pretrain_arms(self) -> tuple:
        """The arms whose pre-pre-training runs the experiment trains, each once."""
        return tuple(dict.fromkeys(self.pretrain_arm(arm) for arm in self.arms if arm != "scratch"))

    def transfer_overrides(self, arm: str) -> list:
        """('transfer.<option>', text) pairs of a variant's language runs; none for other arms."""
        options = self.variants[arm].transfer if arm in self.variants else {}
        return [(f"transfer.{key}", str(value).lower() if isinstance(value, bool) else str(value))
                for key, value in options.items()]


def recipe_path(name: str) -> str:
    path = name if name.endswith(".toml") or os.sep in name else os.path.join(RECIPES_DIR, f"{name}.toml")
    if not os.path.isfile(path):
        shipped = sorted(f.removesuffix(".toml") for f in os.listdir(RECIPES_DIR) if f.endswith(".toml"))
        raise ExperimentError(f"experiment recipe {name!r} not found: use one of {', '.join(shipped)} or a path "
                              f"to a .toml file")
    return path


def load_recipe(name: str, corpus: CorpusSpec | None = None) -> Recipe:
    """The recipe `name`, its corpora replaced by `corpus` when given, checked through and through."""
    path = recipe_path(name)
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(f"experiment recipe {path} is not valid TOML ({error}): fix the file") from None
    if corpus is not None:
        document["corpora"] = [corpus.model_dump()]
    try:
        recipe = Recipe.model_validate(document)
    except ValidationError as error:
        raise ExperimentError(f"experiment recipe {path}: {first_problem(error)}: fix the recipe") from None
    check_budgets(recipe, path)
    return recipe


def stage_overrides(stage: StageSpec, steps: int, seed: int, threads: int) -> list:
    """The trainer overrides every run of a stage gets: the recipe's, then budget, seed, evaluation, threads."""
    pairs = [(key, str(value).lower() if isinstance(value, bool) else str(value)) for key, value in stage.overrides.items()]
    return pairs + [("train.steps", str(steps)), ("train.seed", str(seed)), ("train.eval_every", str(stage.eval_every)),
                    ("train.eval_rows", str(stage.eval_rows)), ("train.threads", str(threads)),
                    ("train.checkpoint_every", str(min(stage.eval_every, steps))), ("train.progress", "false")]


def steps_for(stage: StageSpec, config, processes: int) -> int:
    """Optimiser steps that meet the stage's token budget with this trainer config on `processes` ranks."""
    per_step = config.train.micro_batch * config.train.grad_accum * config.model.context * processes
    return math.ceil(stage.tokens / per_step)


def resolved_stage(stage: StageSpec, stage_name: str, seed: int, threads: int, processes: int,
                   data: str = "-") -> tuple:
    """(RunConfig, steps) of one run of a stage; ExperimentError naming the stage when the trainer refuses it."""
    try:
        base = resolve_config(stage.recipe, [("stage", stage_name), ("data.train", data),
                                             *stage_overrides(stage, 1, seed, threads)])
        steps = steps_for(stage, base, processes)
        return resolve_config(stage.recipe, [("stage", stage_name), ("data.train", data),
                                             *stage_overrides(stage, steps, seed, threads)]), steps
    except TrainConfigError as error:
        raise ExperimentError(f"[{'pretrain' if stage_name == 'nca' else 'language'}] {error}") from None


def check_budgets(recipe: Recipe, path: str) -> None:
    """Refuse, before anything runs, budgets the data cannot meet and model shapes that cannot transfer."""
    language, _ = resolved_stage(recipe.language, "language", 0, recipe.threads, recipe.processes)
    if recipe.pretrain_arms:
        pretrain, _ = resolved_stage(recipe.pretrain, "nca", 0, recipe.threads, recipe.processes)
        for field in ("layers", "heads", "d_model", "mlp_hidden"):
            if getattr(pretrain.model, field) != getattr(language.model, field):
                raise ExperimentError(f"{path}: the pretrain recipe has model.{field}={getattr(pretrain.model, field)} "
                                      f"but the language recipe {getattr(language.model, field)}: blocks transfer only "
                                      f"between equal shapes")
        if recipe.pretrain.eval_rows > recipe.pretrain.validation_sequences:
            raise ExperimentError(f"{path}: [pretrain] eval_rows={recipe.pretrain.eval_rows} is more than the "
                                  f"{recipe.pretrain.validation_sequences} validation_sequences made: raise "
                                  f"validation_sequences or lower eval_rows")
        if pretrain.model.context > 1024:
            raise ExperimentError(f"{path}: pretrain context {pretrain.model.context} is longer than an NCA or Dyck "
                                  f"sequence (1025 tokens hold 1024 contexts): use model.context <= 1024")
    for name in recipe.variants:
        try:
            resolve_config(recipe.language.recipe, [("stage", "language"), ("data.train", "-"),
                                                    *stage_overrides(recipe.language, 1, 0, recipe.threads),
                                                    ("transfer.init_from", "-"), *recipe.transfer_overrides(name)])
        except TrainConfigError as error:
            raise ExperimentError(f"{path}: variants.{name}: {error}") from None
    if "text" in recipe.pretrain_arms and recipe.pretrain.text_source is None:
        raise ExperimentError(f"{path}: the text arm needs [pretrain.text_source] naming its corpus")
    sources = list(recipe.corpora) + ([recipe.pretrain.text_source] if "text" in recipe.pretrain_arms else [])
    for spec in sources:
        if spec.source != "stdlib" and not os.path.exists(spec.source):
            raise ExperimentError(f"{path}: corpus {spec.source} does not exist: fix the recipe or point CORPUS= at "
                                  f"a text file, a folder, a .jsonl[.zst] or .parquet file")
    labels = [corpus.label for corpus in recipe.corpora]
    if len(set(labels)) != len(labels):
        raise ExperimentError(f"{path}: two corpora share the name {labels}: give each a distinct name")


def corpus_from_path(path: str, split_at: str = "", validation_fraction: float | None = None) -> CorpusSpec:
    """The CorpusSpec of `CORPUS=path`; ExperimentError when the path does not exist."""
    if path != "stdlib" and not os.path.exists(path):
        raise ExperimentError(f"CORPUS={path} does not exist: give a text file, a folder, a .jsonl[.zst] or "
                              f".parquet file, or stdlib")
    options = {"source": path if path == "stdlib" else os.path.abspath(path), "split_at": split_at}
    if validation_fraction is not None:
        options["validation_fraction"] = validation_fraction
    return CorpusSpec(**options)
