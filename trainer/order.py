"""The order in which training sees rows: a pure function of (seed, epoch, dataset digest).

The sample stream is the concatenation of epoch orders; each epoch order is one
permutation of the training rows. Position p of the stream is row
order(epoch = p // N)[p % N]. An optimiser step takes the next global batch of
positions, and each rank, accumulation step and DataLoader worker computes which
positions are its own from its coordinates alone:

    position = step * global_batch + (accumulation * world + rank) * micro_batch + i

So ranks never overlap, every row is seen exactly once per epoch, and a run resumed
at step k reads exactly what an uninterrupted run would have: nothing depends on
scheduling, timing or how many batches an earlier process happened to prefetch.

The permutation is two-level, as streaming loaders do it: record batches (1,024 rows)
are shuffled, then rows within each window of `window` consecutive batches. A reader
then decodes each record batch about once per window instead of once per row, at the
cost of rows only mixing with ~window x 1,024 others per step.
"""

import hashlib

import numpy as np


def record_blocks(shard_rows: list, batch_rows: int, start: int, stop: int) -> list:
    """[first, end) global row ranges of every record batch, clipped to the rows [start, stop)."""
    blocks, shard_start = [], 0
    for rows in shard_rows:
        for first in range(shard_start, shard_start + rows, batch_rows):
            end = min(first + batch_rows, shard_start + rows)
            clipped = (max(first, start), min(end, stop))
            if clipped[0] < clipped[1]:
                blocks.append(clipped)
        shard_start += rows
    return blocks


def order_rng(seed: int, epoch: int, digest: str) -> np.random.Generator:
    words = np.frombuffer(hashlib.sha256(f"{seed}:{epoch}:{digest}".encode()).digest(), dtype=np.uint32)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words.tolist())))


def epoch_order(blocks: list, window: int, seed: int, epoch: int, digest: str) -> np.ndarray:
    """The rows of `blocks` in epoch `epoch`'s order (int64)."""
    rng = order_rng(seed, epoch, digest)
    shuffled = [blocks[i] for i in rng.permutation(len(blocks))]
    pieces = []
    for first in range(0, len(shuffled), window):
        rows = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in shuffled[first:first + window]])
        pieces.append(rows[rng.permutation(len(rows))])
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)


class SampleStream:
    """Global stream position -> row, over endless epochs, keeping the current epoch's order."""

    def __init__(self, blocks: list, window: int, seed: int, digest: str):
        self.blocks, self.window, self.seed, self.digest = blocks, window, seed, digest
        self.rows = sum(b - a for a, b in blocks)
        self._epoch, self._order = None, None

    def rows_at(self, positions: np.ndarray) -> np.ndarray:
        out = np.empty(len(positions), dtype=np.int64)
        for i, position in enumerate(positions):
            epoch, index = divmod(int(position), self.rows)
            if epoch != self._epoch:
                self._epoch, self._order = epoch, epoch_order(self.blocks, self.window, self.seed, epoch, self.digest)
            out[i] = self._order[index]
        return out


def micro_batch_positions(micro_batch_index: int, grad_accum: int, micro_batch: int, rank: int,
                          world: int) -> np.ndarray:
    """Stream positions of a rank's micro-batch number `micro_batch_index` (counted from step 0)."""
    step, accumulation = divmod(micro_batch_index, grad_accum)
    global_batch = micro_batch * grad_accum * world
    first = step * global_batch + (accumulation * world + rank) * micro_batch
    return np.arange(first, first + micro_batch, dtype=np.int64)
