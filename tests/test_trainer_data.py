"""The trainer's data path on a real pipeline dataset: lazy rows, the sample order, the loader."""

import numpy as np
import pytest
import pyarrow as pa

from tests.service_datasets import made_datasets
from trainer.loader import StreamSpec, micro_batch_loader
from trainer.order import SampleStream, epoch_order, micro_batch_positions, record_blocks
from trainer.rows import RowReader
from trainer.sources import DataError, open_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The 1,150-row, 2-shard band-high dataset; its first shard holds more than one record batch."""
    return open_dataset(str(made_datasets(tmp_path_factory).high.folder))


def all_rows(dataset) -> pa.Table:
    tables = []
    for shard in dataset.shards:
        with pa.memory_map(shard.path) as source:
            tables.append(pa.ipc.open_file(source).read_all())
    return pa.concat_tables(tables)


def test_row_reader_matches_a_full_read_across_batch_and_shard_boundaries(dataset):
    table = all_rows(dataset)
    expected = np.stack(table.column("tokens").to_numpy(zero_copy_only=False))
    rows = [0, 1023, 1024, dataset.shards[0].rows - 1, dataset.shards[0].rows, dataset.rows - 1, 5, 1024]
    with RowReader(dataset, cached_batches=2) as reader:
        assert np.array_equal(reader.tokens(rows), expected[rows])
        assert reader.column("rule_id", rows).tolist() == [table.column("rule_id")[r].as_py() for r in rows]


def test_local_dataset_with_a_corrupt_shard_is_refused(dataset, tmp_path):
    import shutil

    copy = tmp_path / dataset.id
    shutil.copytree(dataset.origin, copy)
    shard = copy / dataset.shards[1].name
    data = bytearray(shard.read_bytes())
    data[100] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match="does not match its manifest"):
        open_dataset(str(copy))


def test_epoch_order_is_a_permutation_and_a_pure_function(dataset):
    blocks = record_blocks([s.rows for s in dataset.shards], dataset.record_batch_rows, 0, dataset.rows)
    assert sum(b - a for a, b in blocks) == dataset.rows
    first = epoch_order(blocks, 2, seed=0, epoch=0, digest=dataset.digest)
    assert sorted(first.tolist()) == list(range(dataset.rows))
    assert np.array_equal(first, epoch_order(blocks, 2, seed=0, epoch=0, digest=dataset.digest))
    for other in (epoch_order(blocks, 2, 0, 1, dataset.digest), epoch_order(blocks, 2, 1, 0, dataset.digest),
                  epoch_order(blocks, 2, 0, 0, "another digest")):
        assert not np.array_equal(first, other)
    clipped = record_blocks([s.rows for s in dataset.shards], dataset.record_batch_rows, 100, 1100)
    assert sorted(epoch_order(clipped, 2, 0, 0, "d").tolist()) == list(range(100, 1100))


def test_positions_of_ranks_and_accumulation_tile_the_stream():
    world, micro, accum = 3, 2, 2
    seen = np.concatenate([micro_batch_positions(j, accum, micro, rank, world)
                           for rank in range(world) for j in range(4 * accum)])
    assert sorted(seen.tolist()) == list(range(4 * world * micro * accum))


def spec(dataset, rank, world, train_rows=(0, 1100), micro=3, accum=2):
    blocks = tuple(record_blocks([s.rows for s in dataset.shards], dataset.record_batch_rows, *train_rows))
    return StreamSpec(dataset, blocks, 2, 7, micro, accum, rank, world, 129)


def take(loader, count):
    batches = iter(loader)
    out = [next(batches) for _ in range(count)]
    del batches
    return out


def test_ranks_with_loader_workers_see_every_row_once_per_epoch(dataset):
    """Two ranks, two DataLoader workers each: over two epochs (crossing the boundary mid-batch),
    every stream position lands on exactly one rank and each epoch covers every training row once."""
    world, micro, accum, rows = 2, 3, 2, 1100
    global_batch = world * micro * accum
    steps = -(-2 * rows // global_batch)  # enough whole steps to cover two epochs
    positions_to_row = {}
    for rank in range(world):
        loader = micro_batch_loader(spec(dataset, rank, world), start=0, workers=2)
        for index, (row_ids, tokens) in enumerate(take(loader, steps * accum)):
            assert tokens.shape == (micro, 129)
            for position, row in zip(micro_batch_positions(index, accum, micro, rank, world).tolist(), row_ids.tolist()):
                assert position not in positions_to_row
                positions_to_row[position] = row
    assert sorted(positions_to_row) == list(range(steps * global_batch))
    for epoch in range(2):
        epoch_rows = [positions_to_row[p] for p in range(epoch * rows, (epoch + 1) * rows)]
        assert sorted(epoch_rows) == list(range(rows))
    assert [positions_to_row[p] for p in range(rows)] != [positions_to_row[p] for p in range(rows, 2 * rows)]


def test_a_loader_started_at_micro_batch_k_continues_the_same_stream(dataset):
    full = take(micro_batch_loader(spec(dataset, 1, 2), start=0, workers=2), 9)
    resumed = take(micro_batch_loader(spec(dataset, 1, 2), start=5, workers=1), 4)
    for (rows_a, tokens_a), (rows_b, tokens_b) in zip(full[5:], resumed):
        assert rows_a.tolist() == rows_b.tolist() and (tokens_a == tokens_b).all()


def test_the_stream_reads_what_the_rows_hold(dataset):
    stream = SampleStream(list(spec(dataset, 0, 1).blocks), 2, 7, dataset.digest)
    rows = stream.rows_at(np.arange(0, 5))
    (row_ids, tokens), = take(micro_batch_loader(spec(dataset, 0, 1, micro=5, accum=1), 0, 0), 1)
    assert row_ids.tolist() == rows.tolist()
    with RowReader(dataset) as reader:
        assert (tokens.numpy() == reader.tokens(rows)[:, :129]).all()


def test_the_in_context_baseline_is_fitted_inside_its_grid(dataset):
    """A best smoothing at the grid's edge would mean a weaker baseline than the data allows."""
    from trainer.baselines import ALPHAS, summarise_baselines, unigram_distribution
    from trainer.objective import target_frames, target_mask

    with RowReader(dataset) as reader:
        samples = reader.tokens(np.arange(64))[:, :1025]
        unigram = unigram_distribution(reader.tokens(np.arange(64, 1024))[:, :1025], dataset.vocab_size)
    frames = target_frames(1024, 38).numpy()
    result = summarise_baselines(samples, unigram, target_mask(1024, 37).numpy(), frames, 27)
    assert ALPHAS[0] < result["in_context_unigram"]["alpha"] < ALPHAS[-1]
    assert result["in_context_unigram"]["loss"] < result["unigram"]["loss"]
