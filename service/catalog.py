"""Discovery: which finished datasets the shard folder holds, rescanned on every request.

A dataset is a real folder directly under the shard folder, named like a dataset id,
whose manifest.json exists, parses and has the fields the API relies on. The
pipeline writes the manifest last and atomically, so a dataset being written (shards
and a .progress journal, no manifest) is simply not there yet, and appears on the
first request after its manifest does. A manifest that cannot be read or parsed is
skipped rather than answered with a 500: it may be mid-replacement.

Rescanning is a listdir plus one stat per dataset; a manifest is parsed again only
when its (mtime, size, inode) changes. Concurrent requests may race on the cache;
the worst outcome is parsing a manifest twice.
"""

import bisect
import json
import os
from dataclasses import dataclass

from generator.format import DATASET_ID_PATTERN, MANIFEST_NAME, SHARD_NAME_PATTERN
from service.paths import is_direct_child_folder, open_inside, real_root, resolve_inside

SHA256_HEX = 64


class NotFound(LookupError):
    """No such dataset, shard, row or file in the catalog (HTTP 404); the message names it."""


class InvalidManifest(ValueError):
    """A manifest lacks a field the catalog relies on."""


@dataclass(frozen=True)
class Dataset:
    """One finished dataset: its folder and its parsed manifest."""

    id: str
    """The folder name, which is the id in every URL."""
    folder: str
    """Path of the folder: the real shard folder joined with the id."""
    manifest: dict
    """The parsed manifest.json."""
    row_starts: list
    """Global index of the first row of each shard, in manifest order (rows count across shards)."""

    @property
    def shards(self) -> list:
        return self.manifest["shards"]

    @property
    def rows(self) -> int:
        return self.manifest["totals"]["rows"]

    def shard(self, name: str) -> dict | None:
        return next((entry for entry in self.shards if entry["name"] == name), None)

    def locate_row(self, index: int) -> tuple:
        """Global row index -> (shard entry, row within that shard); NotFound past the end."""
        if not 0 <= index < self.rows:
            raise NotFound(f"dataset {self.id} has {self.rows} rows, numbered from 0: there is no row {index}")
        position = bisect.bisect_right(self.row_starts, index) - 1  # shards with 0 rows share a start: skipped
        return self.shards[position], index - self.row_starts[position]


def check_manifest(manifest) -> None:
    """Raise InvalidManifest unless the fields the API reads are there with the right types."""

    def require(condition, field_name: str) -> None:
        if not condition:
            raise InvalidManifest(f"manifest field {field_name} is invalid")

    def count(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    try:
        fmt, band, totals, shards = manifest["format"], manifest["band"], manifest["totals"], manifest["shards"]
        require(count(fmt["tokens_per_sequence"]) and fmt["tokens_per_sequence"] > 0, "format.tokens_per_sequence")
        require(count(fmt["record_batch_rows"]) and fmt["record_batch_rows"] > 0, "format.record_batch_rows")
        require(isinstance(band["name"], str) and 0 <= band["lo"] < band["hi"] <= 1, "band")
        require(all(count(totals[key]) for key in ("shards", "rows", "tokens", "bytes")), "totals")
        require(all(isinstance(manifest[key], dict) for key in ("generator", "config", "acceptance")),
                "generator, config or acceptance")
        require(isinstance(shards, list), "shards")
        names = [entry["name"] for entry in shards]
        require(all(isinstance(n, str) and SHARD_NAME_PATTERN.fullmatch(n) for n in names), "shards[].name")
        require(len(set(names)) == len(names), "shards[].name (duplicates)")
        require(all(count(entry["rows"]) and count(entry["bytes"]) for entry in shards), "shards[].rows or bytes")
        require(all(isinstance(entry["sha256"], str) and len(entry["sha256"]) == SHA256_HEX for entry in shards),
                "shards[].sha256")
        require(totals["rows"] == sum(entry["rows"] for entry in shards), "totals.rows (differs from the shards)")
    except (KeyError, TypeError) as error:
        raise InvalidManifest(f"manifest lacks or mistypes a field ({type(error).__name__}: {error})") from None


class Catalog:
    """The datasets under one shard folder, discovered afresh on each call."""

    def __init__(self, shards_dir: str):
        self.root = real_root(shards_dir)
        self._parsed = {}  # dataset id -> ((mtime_ns, size, inode) of its manifest, Dataset)

    def datasets(self) -> list:
        """Every finished dataset, sorted by id."""
        try:
            names = sorted(os.listdir(self.root))
        except OSError:
            return []  # the folder vanished or became unreadable: an empty catalog, not a crash
        found = {}
        for name in names:
            dataset = self._load(name)
            if dataset is not None:
                found[name] = dataset
        self._parsed = {name: self._parsed[name] for name in found if name in self._parsed}
        return list(found.values())

    def dataset(self, dataset_id: str) -> Dataset:
        dataset = self._load(dataset_id)
        if dataset is None:
            raise NotFound(f"no dataset {dataset_id!r} in the catalog: GET /v1/datasets lists them")
        return dataset

    def open_shard(self, dataset: Dataset, name: str):
        """The shard file opened read-only; NotFound unless the manifest lists it and it lies inside."""
        if not SHARD_NAME_PATTERN.fullmatch(name) or dataset.shard(name) is None:
            raise NotFound(f"dataset {dataset.id} has no shard {name!r}: GET /v1/datasets/{dataset.id}/shards lists them")
        return self.open_file(dataset, name)

    def open_file(self, dataset: Dataset, name: str):
        """A file of the dataset, by a name the caller has already validated."""
        file = open_inside(self.root, os.path.join(dataset.folder, name))
        if file is None:
            raise NotFound(f"{name} of dataset {dataset.id} is missing or unreadable")
        return file

    def _load(self, dataset_id: str) -> Dataset | None:
        """The dataset in folder `dataset_id`, from the cache while its manifest is unchanged."""
        if not DATASET_ID_PATTERN.fullmatch(dataset_id):
            return None
        folder = os.path.join(self.root, dataset_id)
        if not is_direct_child_folder(self.root, folder):
            return None
        manifest_path = resolve_inside(self.root, os.path.join(folder, MANIFEST_NAME))
        if manifest_path is None:
            return None
        try:
            status = os.stat(manifest_path)
        except OSError:
            return None  # no manifest yet: the dataset is still being written
        cached = self._parsed.get(dataset_id)
        if cached and cached[0] == (status.st_mtime_ns, status.st_size, status.st_ino):
            return cached[1]
        file = open_inside(self.root, manifest_path)
        if file is None:
            return None
        with file:
            opened = os.fstat(file.fileno())  # the key of the bytes actually read, should it change meanwhile
            try:
                manifest = json.load(file)
                check_manifest(manifest)
            except ValueError:  # bad JSON, undecodable bytes or InvalidManifest: maybe mid-replacement
                return None
        starts = [0]
        for entry in manifest["shards"][:-1]:
            starts.append(starts[-1] + entry["rows"])
        dataset = Dataset(dataset_id, folder, manifest, starts)
        self._parsed[dataset_id] = ((opened.st_mtime_ns, opened.st_size, opened.st_ino), dataset)
        return dataset
