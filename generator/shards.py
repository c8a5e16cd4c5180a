"""One shard on disk: rows to an Arrow IPC file (atomically), its sha256, and checks on read.

The same rows always give the same bytes (fixed schema, batch size and zstd level),
which is what lets a resumed or re-run job compare shards by sha256.
"""

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from generator.atomic import atomic_path
from generator.format import RECORD_BATCH_ROWS, ipc_write_options, shard_schema


class ShardError(Exception):
    """A shard on disk is missing, truncated, corrupt or not what the manifest says."""


def rows_to_table(rule_ids, trajectory_ids, ratios, tokens: np.ndarray) -> pa.Table:
    """Columns of N rows -> a table with the shard schema; tokens is (N, tokens_per_sequence) uint16."""
    tokens = np.ascontiguousarray(tokens, dtype=np.uint16)
    schema = shard_schema(tokens.shape[1])
    token_lists = pa.FixedSizeListArray.from_arrays(pa.array(tokens.reshape(-1), pa.uint16()), tokens.shape[1])
    columns = [
        pa.array(np.asarray(rule_ids, dtype=np.uint64)),
        pa.array(np.asarray(trajectory_ids, dtype=np.uint32)),
        pa.array(np.asarray(ratios, dtype=np.float64)),
        token_lists.cast(schema.field("tokens").type),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def file_digest(path: str):
    """A sha256 object fed with the file's bytes, so a caller appending to the file can go on feeding it."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256")


def file_sha256(path: str) -> str:
    return file_digest(path).hexdigest()


@dataclass(frozen=True)
class WrittenShard:
    """A shard file as it landed on disk."""

    bytes: int
    """File size."""
    sha256: str
    """sha256 of the file's bytes, lowercase hex."""


def write_shard(path: str, table: pa.Table) -> WrittenShard:
    """Write `table` as an Arrow IPC file via a temporary name; return its size and sha256."""
    with atomic_path(path) as temporary:
        with pa.OSFile(temporary, "wb") as sink, pa.ipc.new_file(sink, table.schema, options=ipc_write_options()) as writer:
            for batch in table.to_batches(max_chunksize=RECORD_BATCH_ROWS):
                writer.write_batch(batch)
    return WrittenShard(bytes=os.path.getsize(path), sha256=file_sha256(path))


def read_shard(path: str, tokens_per_sequence: int) -> pa.Table:
    """Read a whole shard and check its schema; raise ShardError naming the file otherwise.

    A plain read, not a memory map: the table outlives the open file, and with a map its
    uncompressed buffers would point into a mapping the caller cannot see or close."""
    try:
        with pa.OSFile(path, "rb") as source:
            table = pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowInvalid) as error:
        raise ShardError(f"{path}: not a readable Arrow IPC file ({error})") from None
    expected = shard_schema(tokens_per_sequence)
    if not table.schema.equals(expected, check_metadata=True):
        raise ShardError(f"{path}: schema {table.schema} differs from the format's {expected}")
    return table
