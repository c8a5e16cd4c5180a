"""One row of a shard, read from its own record batch without loading the rest of the file.

Shards are Arrow IPC files whose record batches hold exactly record_batch_rows rows
(the last fewer), so row r lives in batch r // record_batch_rows. The file is memory
mapped and the IPC footer locates that batch: one request decompresses one batch
(~2 MB of tokens) whatever the shard's size. The map comes from the already opened,
path-checked file descriptor, so no second path lookup can be redirected.
"""

import mmap

import numpy as np
import pyarrow as pa


class ShardUnreadable(Exception):
    """A shard listed in a manifest cannot be read as the format promises (HTTP 500)."""


def read_row(file, row_in_shard: int, record_batch_rows: int) -> dict:
    """{rule_id, trajectory_id, ratio, tokens (uint16 numpy array)} of row `row_in_shard` of the shard in `file`."""
    batch_index, offset = divmod(row_in_shard, record_batch_rows)
    try:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        reader = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(mapped)))
        if batch_index >= reader.num_record_batches:
            raise ShardUnreadable(f"has {reader.num_record_batches} record batches; row {row_in_shard} needs batch {batch_index}")
        row = reader.get_batch(batch_index).slice(offset, 1)
        if row.num_rows != 1:
            raise ShardUnreadable(f"batch {batch_index} is shorter than {record_batch_rows} rows")
        tokens = np.array(row.column("tokens").flatten().to_numpy(zero_copy_only=False), dtype=np.uint16)
        return {
            "rule_id": row.column("rule_id")[0].as_py(),
            "trajectory_id": row.column("trajectory_id")[0].as_py(),
            "ratio": row.column("ratio")[0].as_py(),
            "tokens": tokens,
        }
    except (OSError, ValueError, KeyError, pa.ArrowException) as error:  # ValueError: mmap of an empty file
        raise ShardUnreadable(f"is not a readable Arrow IPC shard ({type(error).__name__}: {error})") from None
