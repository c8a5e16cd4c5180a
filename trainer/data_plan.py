"""Which rows a run trains on and which it validates on, decided once before training starts.

NCA stage: validation rules must be rules the model never trained on. Either a second
dataset (another seed: other rules altogether) or the last `holdout_rows` rows of the
training dataset, moved back to a rule boundary so no rule is split between the two.
The unigram baseline counts tokens on the first rows of the training range. A Dyck
dataset goes through the same stage: each of its sequences is drawn on its own, so the
hold-out is simply its last `holdout_rows` rows; a validation dataset must be of the
training dataset's format (NCA with NCA, Dyck with Dyck), never mixed.

Language stage: the corpus's train split trains and its validation split (documents held
out when it was prepared) validates; `data.validation` may name another corpus whose
validation split is used instead.

Either way the evaluation rows are the first `eval_rows` of the validation range.
"""

from dataclasses import dataclass

import numpy as np

from trainer.config import RunConfig
from trainer.rows import RowReader
from trainer.sources import DataError, SequenceDataset, corpus_folder, open_corpus_split, open_dataset

UNIGRAM_ROWS = 2048


@dataclass(frozen=True)
class DataPlan:
    """The datasets of a run and the rows it uses of each."""

    train: object
    """The training rows' source: a SequenceDataset (NCA) or a CorpusSplit (language)."""
    train_rows: tuple
    """[start, stop) of the training rows."""
    validation: object
    """Where validation rows come from (the training dataset when NCA rows are held out)."""
    validation_rows: tuple
    """[start, stop) of the evaluation rows."""

    @property
    def train_row_count(self) -> int:
        return self.train_rows[1] - self.train_rows[0]

    def train_blocks(self) -> tuple:
        return tuple(self.train.blocks(*self.train_rows))

    def describe(self) -> dict:
        return {"train": {"id": self.train.id, "digest": self.train.digest, "origin": self.train.origin,
                          "rows": list(self.train_rows)},
                "validation": {"id": self.validation.id, "digest": self.validation.digest,
                               "origin": self.validation.origin, "rows": list(self.validation_rows)}}


def holdout_cut(dataset: SequenceDataset, holdout_rows: int) -> int:
    """First held-out row: `holdout_rows` from the end, moved back until it starts a rule (NCA); Dyck
    sequences share nothing, so any row starts a hold-out."""
    cut = dataset.rows - holdout_rows
    if cut <= 0:
        raise DataError(f"data.holdout_rows={holdout_rows} leaves no training rows in {dataset.id} ({dataset.rows} rows): "
                        f"hold out fewer rows or pass --data.validation DATASET")
    if dataset.is_dyck:
        return cut
    with RowReader(dataset) as reader:
        while cut > 0:
            before, first = reader.column("rule_id", [cut - 1, cut])
            if before != first:
                return cut
            cut -= 1
    raise DataError(f"{dataset.id} holds a single rule: hold-out validation needs several; "
                    f"pass --data.validation DATASET")


def plan_language_data(config: RunConfig) -> tuple:
    """(train split, its rows, validation split, its rows) of the corpus named by data.train."""
    context = config.model.context
    train_folder = corpus_folder(config.data.train, config.data.cache_dir)
    validation_folder = corpus_folder(config.data.validation, config.data.cache_dir) if config.data.validation else train_folder
    train = open_corpus_split(train_folder, "train", context)
    validation = open_corpus_split(validation_folder, "validation", context)
    for split in (train, validation):
        if not split.rows:
            raise DataError(f"{split.id} holds fewer than {context + 1} tokens: no window of model.context={context} "
                            f"fits; use a larger corpus or a smaller context")
    return train, (0, train.rows), validation, (0, validation.rows)


def plan_data(config: RunConfig, world: int) -> DataPlan:
    """Open the datasets and choose the rows; DataError (one line) when they cannot serve this run."""
    if config.stage == "language":
        train, train_rows, validation, held = plan_language_data(config)
    else:
        train, train_rows, validation, held = plan_nca_data(config)
    if world > train_rows[1] - train_rows[0]:
        raise DataError(f"{world} ranks but only {train_rows[1] - train_rows[0]} training rows: use fewer ranks "
                        f"or a larger dataset")
    evaluated = (held[0], min(held[1], held[0] + config.train.eval_rows))
    return DataPlan(train, train_rows, validation, evaluated)


def plan_nca_data(config: RunConfig) -> tuple:
    """(train dataset, its rows, validation dataset, its rows) for NCA or Dyck shards."""
    train = open_dataset(config.data.train, config.data.cache_dir)
    needed = config.model.context + 1
    if train.tokens_per_sequence < needed:
        raise DataError(f"{train.id} holds {train.tokens_per_sequence} tokens per row but model.context="
                        f"{config.model.context} needs {needed}: lower model.context")
    if config.data.validation:
        validation = open_dataset(config.data.validation, config.data.cache_dir)
        if validation.format_name != train.format_name:
            raise DataError(f"validation dataset {validation.id} is {validation.format_name} but training dataset "
                            f"{train.id} is {train.format_name}: validate on a dataset of the same kind "
                            f"(another seed of the same generator)")
        if validation.tokens_per_sequence != train.tokens_per_sequence or validation.vocab_size != train.vocab_size:
            raise DataError(f"validation dataset {validation.id} has another token layout than {train.id}: "
                            f"use a dataset of the same kind")
        train_rows, held = (0, train.rows), (0, validation.rows)
    else:
        validation, cut = train, holdout_cut(train, config.data.holdout_rows)
        train_rows, held = (0, cut), (cut, train.rows)
    return train, train_rows, validation, held


def read_rows(source, rows: tuple, tokens: int) -> np.ndarray:
    """The first `tokens` tokens of the rows [start, stop) of a row source, in order."""
    with source.open_reader() as reader:
        return reader.tokens(np.arange(*rows))[:, :tokens]


def unigram_rows(plan: DataPlan, tokens: int) -> np.ndarray:
    start = plan.train_rows[0]
    return read_rows(plan.train, (start, min(plan.train_rows[1], start + UNIGRAM_ROWS)), tokens)
