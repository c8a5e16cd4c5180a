"""Rows of a dataset by global index, read lazily from memory-mapped Arrow files.

A row lives in one record batch of one shard (1,024 rows, ~2 MB of tokens). The reader
maps each shard file once, locates a batch through the IPC footer, decompresses it on
first use and keeps the most recent few decoded batches, so a shuffle that visits the
rows of a window of batches decodes each batch once. Nothing reads a whole shard, and
no rank ever holds a whole dataset in memory.
"""

import bisect
from collections import OrderedDict

import numpy as np
import pyarrow as pa



class RowReader:
    """Token rows of one dataset; open it in the process that reads (DataLoader workers each open their own)."""

    def __init__(self, dataset, cached_batches: int = 16):
        """dataset: a trainer.sources.SequenceDataset."""
        self.dataset = dataset
        self.cached_batches = cached_batches
        self.shard_starts = np.cumsum([0] + [shard.rows for shard in dataset.shards]).tolist()
        self._maps, self._readers = {}, {}
        self._decoded = OrderedDict()  # (shard position, batch index) -> (rows, tokens_per_sequence) uint16

    def close(self) -> None:
        self._readers.clear()
        self._decoded.clear()
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()

    def __enter__(self) -> "RowReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def locate(self, row: int) -> tuple:
        """Global row -> (shard position, record batch index, row within the batch)."""
        position = bisect.bisect_right(self.shard_starts, row) - 1
        batch, offset = divmod(row - self.shard_starts[position], self.dataset.record_batch_rows)
        return position, batch, offset

    def _reader(self, position: int) -> pa.ipc.RecordBatchFileReader:
        """The shard's IPC reader, its file mapped on first use."""
        if position not in self._readers:
            self._maps[position] = pa.memory_map(self.dataset.shards[position].path)
            self._readers[position] = pa.ipc.open_file(self._maps[position])
        return self._readers[position]

    def _batch_tokens(self, position: int, batch: int) -> np.ndarray:
        key = (position, batch)
        if key in self._decoded:
            self._decoded.move_to_end(key)
            return self._decoded[key]
        record_batch = self._reader(position).get_batch(batch)
        column = record_batch.column("tokens").flatten().to_numpy(zero_copy_only=False)
        tokens = np.array(column, dtype=np.uint16).reshape(record_batch.num_rows, self.dataset.tokens_per_sequence)
        self._decoded[key] = tokens
        if len(self._decoded) > self.cached_batches:
            self._decoded.popitem(last=False)
        return tokens

    def tokens(self, rows) -> np.ndarray:
        """(len(rows), tokens_per_sequence) uint16 tokens of the given global rows, in that order."""
        out = np.empty((len(rows), self.dataset.tokens_per_sequence), dtype=np.uint16)
        for i, row in enumerate(rows):
            position, batch, offset = self.locate(int(row))
            out[i] = self._batch_tokens(position, batch)[offset]
        return out

    def column(self, name: str, rows) -> np.ndarray:
        """One scalar column (rule_id, trajectory_id, ratio) of the given rows."""
        values = []
        for row in rows:
            position, batch, offset = self.locate(int(row))
            values.append(self._reader(position).get_batch(batch).column(name)[offset].as_py())
        return np.asarray(values)
