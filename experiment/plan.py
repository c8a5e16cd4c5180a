"""A recipe expanded into concrete steps: the data each arm needs, then per (arm, seed) a chain
of a pre-pre-training run and one language run per target corpus. A variant's language runs
join the chain of the arm it starts from (`of`): one pre-pre-training run serves both.

Folders are named by content so that whatever can be shared is:

    OUT/data/<dataset or corpus id>/              made by the generators, named by their config
    OUT/pretrain/<arm>-seed<S>-<hash>/            hash of the resolved trainer config
    OUT/language/<corpus>/<arm>-seed<S>-<hash>/   (without its run folder) and the data it reads

A pre-pre-training run does not depend on the target corpus, so `CORPUS=` runs of one recipe
reuse it. Hashes see paths under OUT relative to OUT, so a copied or moved OUT is still reused; changing anything a run depends on changes its hash and gives a new folder, never a
silently reused old one.

Seeds: experiment seed S is the trainer's seed (initialisation and data order) and the seed of
the arm's training dataset; every band's validation dataset uses VALIDATION_SEED, which no
experiment seed may take, so validation rules are never trained on.
"""

import hashlib
import json
import os
from dataclasses import dataclass

from experiment.recipe import VALIDATION_SEED, CorpusSpec, Recipe, resolved_stage, stage_overrides
from experiment.steps import DataStep, TrainStep

NCA_VOCAB, DYCK_VOCAB, TEXT_VOCAB = 10_002, 128, 50_257


@dataclass(frozen=True)
class Chain:
    """One pre-pre-training arm (or scratch) and seed: its pre-pre-training run (None for scratch)
    and the language runs that start from it, of the arm itself and of its variants, per corpus."""

    arm: str
    """The arm whose pre-pre-training run this is (scratch: none)."""
    seed: int
    """Experiment seed."""
    pretrain: TrainStep | None
    """The pre-pre-training run."""
    language: tuple
    """(arm, corpus label, TrainStep) per language run."""

    @property
    def steps(self) -> list:
        return ([self.pretrain] if self.pretrain else []) + [step for _, _, step in self.language]


def pretrain_kind(arm: str) -> str:
    return "none" if arm == "scratch" else "nca" if arm.startswith("nca-") else arm


def content_hash(document) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]


def cost_per_token(config, vocab: int) -> float:
    """Multiply-adds per token of the blocks and the output layer: weighs stages for the ETA."""
    m = config.model
    return m.layers * (4 * m.d_model**2 + 3 * m.d_model * m.mlp_hidden) + m.d_model * vocab


def prepare_step(spec: CorpusSpec, out: str, workers: int) -> DataStep:
    command = ["trainer.data", "prepare", spec.source, "--out", os.path.join(out, "data"), "--validation-fraction",
               str(spec.validation_fraction), "--field", spec.field, "--column", spec.column, "--workers", str(workers)]
    if spec.split_at:
        command += ["--split-at", spec.split_at]
    return DataStep(f"corpus-{spec.label}", tuple(command))


def sequence_step(arm: str, seed: int, sequences: int, out: str, workers: int, compile_step: bool) -> DataStep:
    """The NCA or Dyck dataset of `arm` with this seed and row count."""
    data = os.path.join(out, "data")
    if arm == "dyck":
        return DataStep(f"dyck-seed{seed}", ("generator.dyck", "--sequences", str(sequences), "--seed", str(seed),
                                             "--out", data))
    band = arm.removeprefix("nca-")
    return DataStep(f"{arm}-seed{seed}", ("generator.pipeline", "--band", band, "--sequences", str(sequences),
                                          "--seed", str(seed), "--out", data, "--workers", str(workers),
                                          "--compile" if compile_step else "--no-compile", "--no-progress"))


class Planner:
    """Builds data steps and chains for one recipe under OUT; data folders are filled in as made."""

    def __init__(self, recipe: Recipe, out: str, cpus: int):
        self.recipe, self.out, self.cpus = recipe, os.path.abspath(out), cpus
        self.locate = lambda folder: folder
        self.cache_dir = os.path.join(self.out, "cache")
        self.threads = recipe.threads or max(cpus // recipe.processes, 1)

    def portable(self, value: str) -> str:
        """A path under OUT as OUT-relative (run names must not change when OUT moves); others unchanged."""
        return os.path.relpath(value, self.out) if value.startswith(self.out + os.sep) else value

    def pretrain_data_steps(self) -> dict:
        """{(arm, seed or 'validation'): DataStep} for every pre-pre-training arm."""
        recipe, steps = self.recipe, {}
        config, pretrain_steps = resolved_stage(recipe.pretrain, "nca", 0, self.threads, recipe.processes)
        sequences = pretrain_steps * config.train.micro_batch * config.train.grad_accum * recipe.processes
        for arm in recipe.pretrain_arms:
            if arm == "text":
                steps[(arm, "train")] = prepare_step(recipe.pretrain.text_source, self.out, self.cpus)
                continue
            for seed in recipe.seeds:
                steps[(arm, seed)] = sequence_step(arm, seed, sequences, self.out, recipe.pretrain.ray_workers,
                                                   recipe.pretrain.compile_step)
            steps[(arm, "validation")] = sequence_step(arm, VALIDATION_SEED, recipe.pretrain.validation_sequences,
                                                       self.out, recipe.pretrain.ray_workers,
                                                       recipe.pretrain.compile_step)
        return steps

    def corpus_steps(self) -> dict:
        return {spec.label: prepare_step(spec, self.out, self.cpus) for spec in self.recipe.corpora}

    def train_step(self, label: str, name: str, folder: str, stage, stage_name: str, seed: int, data: dict,
                   vocab: int, init_from: str = "", transfer: tuple = ()) -> TrainStep:
        """A trainer run of `stage` named `name` (folder) and `label` (progress), reading `data`
        ({'data.train': folder, 'data.validation': folder}) through the catalog (`self.locate`),
        started from `init_from` with a variant's `transfer` overrides."""
        config, steps = resolved_stage(stage, stage_name, seed, self.threads, self.recipe.processes, data["data.train"])
        overrides = [("stage", stage_name), *data.items(), *stage_overrides(stage, steps, seed, self.threads)]
        if init_from:
            overrides.append(("transfer.init_from", init_from))
        overrides += transfer
        portable = [(key, self.portable(value)) for key, value in overrides]
        run_dir = os.path.join(folder, f"{name}-{content_hash([stage.recipe, portable])}")
        served = [(key, self.locate(value) if key in data else value) for key, value in overrides]
        arguments = ("--recipe", stage.recipe, "--train.run_dir", run_dir, "--data.cache_dir", self.cache_dir,
                     *[part for key, value in served for part in (f"--{key}", value)])
        tokens = steps * config.train.micro_batch * config.train.grad_accum * config.model.context * self.recipe.processes
        return TrainStep(label, run_dir, steps, tokens, cost_per_token(config, vocab), arguments,
                         self.recipe.processes)

    def chains(self, data: dict, corpora: dict, locate) -> list:
        """Every (pre-pre-training arm, seed) chain, given the data folders: {(arm, seed|'validation'|'train'):
        folder} and {corpus label: corpus folder}, and locate(folder) -> the URL a trainer reads it from."""
        recipe, chains, self.locate = self.recipe, [], locate
        starting_from = {}  # pre-pre-training arm (or scratch) -> the arms whose language runs start from its run
        for arm in recipe.arms:
            starting_from.setdefault(recipe.pretrain_arm(arm), []).append(arm)
        for seed in recipe.seeds:
            for arm, language_arms in starting_from.items():
                pretrain = None
                name, label = f"{arm}-seed{seed}", f"{arm} seed {seed}"
                pretrain_dir = os.path.join(self.out, "pretrain")
                if arm == "text":
                    pretrain = self.train_step(f"{label} pretrain", name, pretrain_dir, recipe.pretrain, "language",
                                               seed, {"data.train": data[(arm, "train")]}, TEXT_VOCAB)
                elif arm != "scratch":
                    pretrain = self.train_step(f"{label} pretrain", name, pretrain_dir, recipe.pretrain, "nca", seed,
                                               {"data.train": data[(arm, seed)],
                                                "data.validation": data[(arm, "validation")]},
                                               DYCK_VOCAB if arm == "dyck" else NCA_VOCAB)
                init_from = os.path.join(pretrain.run_dir, f"step-{pretrain.steps:08d}") if pretrain else ""
                language = tuple(
                    (language_arm, corpus,
                     self.train_step(f"{language_arm} seed {seed} language on {corpus}", f"{language_arm}-seed{seed}",
                                     os.path.join(self.out, "language", corpus), recipe.language, "language", seed,
                                     {"data.train": corpora[corpus]}, TEXT_VOCAB, init_from,
                                     tuple(recipe.transfer_overrides(language_arm))))
                    for language_arm in language_arms for corpus in corpora)
                chains.append(Chain(arm, seed, pretrain, language))
        return chains
