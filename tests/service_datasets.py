"""Shared by the catalog's tests: real datasets made by the pipeline once per session, and helpers.

Two datasets in different bands, so filters have something to tell apart:

    high   1,150 rows in 2 shards; the first holds more than 1,024 rows, so rows are read
           on both sides of a record-batch boundary and of a shard boundary
    mid      200 rows in 3 shards

The pipeline is deterministic for a seed, so the layout is the same on every run;
tests still assert the layout they rely on. Making both takes most of the suite's
time (two local Ray runtimes, eager rollouts), hence the cache: every module's fixture
asks made_datasets(), which runs the pipeline only the first time in the session; under
pytest-xdist the workers share one folder, made by the first to ask.
"""

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from generator.atomic import write_bytes_atomically
from generator.config import DatasetConfig, GeneratorConfig, RunOptions
from generator.format import MANIFEST_NAME, Manifest, load_manifest

CONFIGS = {
    "high": DatasetConfig(sequences=1150, candidates_per_shard=2304,
                          generator=GeneratorConfig(band="high", seed=0, compile=False, rules_per_batch=256)),
    "mid": DatasetConfig(sequences=200, candidates_per_shard=1024,
                         generator=GeneratorConfig(band="mid", seed=0, compile=False, rules_per_batch=256)),
}

_made = {}


@dataclass(frozen=True)
class MadeDataset:
    id: str
    folder: Path
    manifest: Manifest

    def shard_path(self, position: int) -> Path:
        return self.folder / self.manifest.shards[position].name

    def shard_bytes(self, position: int) -> bytes:
        return self.shard_path(position).read_bytes()

    def table(self) -> pa.Table:
        """Every row of the dataset, in global row order, read with pyarrow alone."""
        tables = []
        for position in range(len(self.manifest.shards)):
            with pa.memory_map(str(self.shard_path(position))) as source:
                tables.append(pa.ipc.open_file(source).read_all())
        return pa.concat_tables(tables)


@dataclass(frozen=True)
class MadeDatasets:
    root: Path
    """The shard folder holding both datasets; tests must not change it (copy it instead)."""
    high: MadeDataset
    mid: MadeDataset


def made_datasets(tmp_path_factory) -> MadeDatasets:
    """Both datasets, made by generator.pipeline.run the first time any test asks. Under pytest-xdist the
    folder is the session's, next to the workers' own: the first worker to ask makes it while holding a lock
    and then lists the datasets in a file; the others wait on the lock and read that list, so none touches
    the folder again (a run would take its dataset lock there, a file other tests would see appear)."""
    if not _made:
        if os.environ.get("PYTEST_XDIST_WORKER"):
            root = tmp_path_factory.getbasetemp().parent / "catalog-shards"
        else:
            root = tmp_path_factory.mktemp("catalog-shards")
        listing = root.parent / "catalog-shards.json"
        with open(root.parent / "catalog-shards.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not listing.exists():
                from generator.pipeline import run

                folders = {band: run(config, RunOptions(out=str(root), progress=False)).dataset_dir
                           for band, config in CONFIGS.items()}
                write_bytes_atomically(str(listing), json.dumps(folders).encode())
            for band, folder in json.loads(listing.read_text()).items():
                _made[band] = MadeDataset(os.path.basename(folder), Path(folder), load_manifest(folder))
        _made["root"] = root
    return MadeDatasets(_made["root"], _made["high"], _made["mid"])


def copy_dataset(dataset: MadeDataset, shards_dir: Path, with_manifest: bool = True) -> Path:
    """A copy of the dataset folder under `shards_dir` (created if needed), optionally without its manifest."""
    ignore = shutil.ignore_patterns(MANIFEST_NAME) if not with_manifest else None
    return Path(shutil.copytree(dataset.folder, shards_dir / dataset.id, ignore=ignore))


def damaged_copy(folder: Path, shards_dir: Path, file_name: str) -> Path:
    """A copy of the folder under `shards_dir` with one byte flipped in the middle of `file_name`: the file keeps
    its size, so only its sha256 can tell."""
    copy = Path(shutil.copytree(folder, shards_dir / folder.name))
    data = bytearray((copy / file_name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / file_name).write_bytes(bytes(data))
    return copy


def tree_snapshot(root: Path) -> dict:
    """relative path -> (size, mtime_ns) of every file and folder under root, symlinks not followed."""
    snapshot = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = os.path.join(folder, name)
            status = os.lstat(path)
            snapshot[os.path.relpath(path, root)] = (status.st_size, status.st_mtime_ns)
    return snapshot
