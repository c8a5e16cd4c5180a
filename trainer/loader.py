"""Micro-batches for one rank: a DataLoader over the deterministic sample stream of trainer.order.

Each DataLoader worker takes every num_workers-th micro-batch of its rank, starting at
the micro-batch the run resumes from, and the DataLoader returns workers' results in
round-robin order: the training loop sees the rank's micro-batches in order, whatever
the number of workers. Workers start with `spawn`, so they never inherit the trainer's
OpenMP or process-group state, and each maps the shard files itself.

An item is (rows, tokens): the global row ids (int64, for tests and audits) and the
first context + 1 tokens of each row (int64): inputs are tokens[:, :-1], targets
tokens[:, 1:].
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from trainer.order import SampleStream, micro_batch_positions


@dataclass(frozen=True)
class StreamSpec:
    """Everything that decides which rows a rank reads, in which order."""

    source: object
    """The training rows: a trainer.sources.SequenceDataset (NCA shards) or CorpusSplit (text windows)."""
    blocks: tuple
    """Record-block row ranges of the training rows (validation rows excluded)."""
    window: int
    """Record batches shuffled together."""
    seed: int
    """Run seed."""
    micro_batch: int
    """Rows per micro-batch."""
    grad_accum: int
    """Micro-batches per optimiser step."""
    rank: int
    """This rank."""
    world: int
    """Ranks in the job."""
    sample_tokens: int
    """Tokens kept per row: context + 1."""


class MicroBatches(IterableDataset):
    """The rank's micro-batches from number `start` on, endlessly."""

    def __init__(self, spec: StreamSpec, start: int):
        self.spec, self.start = spec, start

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        spec = self.spec
        stream = SampleStream(list(spec.blocks), spec.window, spec.seed, spec.source.digest)
        with spec.source.open_reader(cached_batches=spec.window + 2) as reader:
            index = self.start + worker
            while True:
                positions = micro_batch_positions(index, spec.grad_accum, spec.micro_batch, spec.rank, spec.world)
                rows = stream.rows_at(positions)
                tokens = reader.tokens(rows)[:, : spec.sample_tokens].astype(np.int64)
                yield torch.from_numpy(rows), torch.from_numpy(tokens)
                index += workers


def micro_batch_loader(spec: StreamSpec, start: int, workers: int) -> DataLoader:
    """A DataLoader yielding the rank's micro-batches in order from number `start`."""
    return DataLoader(MicroBatches(spec, start), batch_size=None, num_workers=workers,
                      multiprocessing_context="spawn" if workers else None, prefetch_factor=4 if workers else None)
