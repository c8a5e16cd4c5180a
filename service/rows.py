"""One row of a shard, read from its own record batch without loading the rest of the file.

Shards are Arrow IPC files whose record batches hold exactly record_batch_rows rows
(the last fewer), so row r lives in batch r // record_batch_rows. The IPC footer
locates that batch: one request reads and decompresses one batch (~2 MB of tokens)
whatever the shard's size. Reads go through the already opened, path-checked file,
so no second path lookup can be redirected. No memory map is made (a map's buffers
would pin it past the request): the batch is read into memory, every value returned
is a copy, and the file is the caller's to close.
"""

import numpy as np
import pyarrow as pa

from service.catalog import FileUnreadable


def read_row(file, row_in_shard: int, record_batch_rows: int, columns: tuple) -> dict:
    """{column: value} of row `row_in_shard` of the shard in `file`: each of the scalar `columns` (NCA: rule_id,
    trajectory_id, ratio; Dyck: sequence_id) as a Python value, and tokens as a uint16 numpy array.
    FileUnreadable, its message starting with a verb phrase about the shard, when the file breaks the format."""
    batch_index, offset = divmod(row_in_shard, record_batch_rows)
    try:
        reader = pa.ipc.open_file(file)
        if batch_index >= reader.num_record_batches:
            raise FileUnreadable(f"has {reader.num_record_batches} record batches; row {row_in_shard} needs batch {batch_index}")
        row = reader.get_batch(batch_index).slice(offset, 1)
        if row.num_rows != 1:
            raise FileUnreadable(f"batch {batch_index} is shorter than {record_batch_rows} rows")
        values = {name: row.column(name)[0].as_py() for name in columns}
        values["tokens"] = np.array(row.column("tokens").flatten().to_numpy(zero_copy_only=False), dtype=np.uint16)  # a copy
        return values
    except (OSError, ValueError, KeyError, pa.ArrowException) as error:
        raise FileUnreadable(f"is not a readable Arrow IPC shard ({type(error).__name__}: {error})") from None
