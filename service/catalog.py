"""Discovery: which finished datasets the shard folder holds, rescanned on every request.

A dataset is a real folder directly under the shard folder, named like a dataset id,
whose manifest.json exists and parses as a `generator.format.Manifest` (known format
name and version, every field valid), as a Dyck dataset's `generator.dyck.format.DyckManifest`,
or as a token corpus's `CorpusManifest` (service.corpora): every kind is listed, looked up
and served alike, and the format name in the manifest decides which it is. The pipeline and
`prepare` write the manifest last and atomically, so a dataset being written (shards and
a .progress journal, no manifest) is simply not there yet, and appears on the first
request after its manifest does.

A manifest that does not parse is left out of the catalog and logged at WARNING on
the "ncaforge.catalog" logger with the ManifestError's one line, once per version of
the file: the refusal is cached under the manifest's (mtime, size, inode) like a
parsed manifest, so it is not re-read, nor re-logged, on every request.

Rescanning is a listdir plus one stat per dataset; a manifest is parsed again only
when its (mtime, size, inode) changes. Requests run in threads: each reads the cache
with one lookup, and changes to it (a parse, the pruning of vanished folders) happen
under a lock, so no request sees a half-updated cache and a manifest is parsed once.
"""

import bisect
import logging
import os
import threading
from dataclasses import dataclass
from typing import ClassVar

from generator.config import DatasetConfig
from generator.dyck.config import DyckConfig
from generator.dyck.format import KIND as DYCK_KIND, DyckManifest, parse_dyck_manifest
from generator.format import DATASET_ID_PATTERN, MANIFEST_NAME, Manifest, ManifestError, ShardRecord, parse_manifest
from service.corpora import NCA_KIND, Corpus, parse_corpus_manifest
from service.paths import is_direct_child_folder, open_inside, real_root, resolve_inside

log = logging.getLogger("ncaforge.catalog")


class NotFound(LookupError):
    """No such dataset, shard, row or file in the catalog (HTTP 404); the message names it."""


class FileUnreadable(Exception):
    """A file the catalog lists is there but cannot be read as promised (HTTP 500, logged);
    the message names the file and the cause, never the server's paths."""


@dataclass(frozen=True)
class ShardedDataset:
    """A finished dataset of Arrow shards, NCA or Dyck: its folder, its parsed manifest, where its rows start."""

    id: str
    """The folder name, which is the id in every URL."""
    folder: str
    """Path of the folder: the real shard folder joined with the id."""
    manifest: Manifest | DyckManifest
    """The parsed, validated manifest.json."""
    row_starts: list
    """Global index of the first row of each shard, in manifest order (rows count across shards)."""

    @property
    def shards(self) -> list:
        return self.manifest.shards

    @property
    def rows(self) -> int:
        return self.manifest.totals.rows

    def shard(self, name: str):
        return next((entry for entry in self.shards if entry.name == name), None)

    def locate_row(self, index: int) -> tuple:
        """Global row index -> (shard entry, row within that shard); NotFound past the end."""
        if not 0 <= index < self.rows:
            raise NotFound(f"dataset {self.id} has {self.rows} rows, numbered from 0: there is no row {index}")
        position = bisect.bisect_right(self.row_starts, index) - 1  # shards with 0 rows share a start: skipped
        return self.shards[position], index - self.row_starts[position]


@dataclass(frozen=True)
class Dataset(ShardedDataset):
    """One finished NCA dataset."""

    kind: ClassVar[str] = NCA_KIND
    manifest: Manifest
    """The parsed, validated manifest.json."""
    config: DatasetConfig
    """The config that made the rows, typed (the manifest keeps it as the dict it was saved as)."""

    @property
    def shards(self) -> list[ShardRecord]:
        return self.manifest.shards


@dataclass(frozen=True)
class DyckDataset(ShardedDataset):
    """One finished Dyck dataset (generator.dyck): rows like an NCA dataset's, no band, rules or histogram."""

    kind: ClassVar[str] = DYCK_KIND
    manifest: DyckManifest
    """The parsed, validated manifest.json."""

    @property
    def config(self) -> DyckConfig:
        return self.manifest.dyck_config()


@dataclass(frozen=True)
class CacheEntry:
    key: tuple
    """(mtime_ns, size, inode) of the manifest version this entry was made from."""
    dataset: Dataset | DyckDataset | Corpus | None
    """The dataset or corpus, or None when that manifest version was refused (and logged)."""


def dataset_config(manifest: Manifest, where: str) -> DatasetConfig:
    """The manifest's config as a DatasetConfig; ManifestError when its keys are not the config's."""
    try:
        return manifest.dataset_config()
    except (KeyError, TypeError) as error:
        raise ManifestError(f"{where}: field config does not describe a dataset ({type(error).__name__}: {error}): "
                            f"the manifest is damaged; make the dataset again") from None


class Catalog:
    """The datasets (NCA, Dyck) and token corpora under one shard folder, discovered afresh on each call."""

    def __init__(self, shards_dir: str):
        self.root = real_root(shards_dir)
        self._parsed = {}  # dataset id -> CacheEntry; replaced or changed under self._lock only
        self._lock = threading.Lock()

    def datasets(self) -> list[Dataset | DyckDataset | Corpus]:
        """Every finished dataset and corpus, sorted by id."""
        try:
            names = sorted(os.listdir(self.root))
        except OSError:
            return []  # the folder vanished or became unreadable: an empty catalog, not a crash
        found = [dataset for dataset in map(self._load, names) if dataset is not None]
        with self._lock:  # forget folders that are gone; refusals of folders still there stay, so stay quiet
            parsed = self._parsed
            self._parsed = {name: entry for name in names if (entry := parsed.get(name)) is not None}
        return found

    def dataset(self, dataset_id: str) -> Dataset | DyckDataset | Corpus:
        dataset = self._load(dataset_id)
        if dataset is None:
            raise NotFound(f"no dataset {dataset_id!r} in the catalog: GET /v1/datasets lists them")
        return dataset

    def row_dataset(self, dataset_id: str, what: str = "rows") -> Dataset | DyckDataset:
        """The NCA or Dyck dataset `dataset_id`; NotFound, saying why, when it is a token corpus, which has no `what`."""
        dataset = self.dataset(dataset_id)
        if isinstance(dataset, Corpus):
            raise NotFound(f"{dataset_id} is a token corpus: a token corpus has no {what}; download its files "
                           f"(GET /v1/datasets/{dataset_id}/shards lists them)")
        return dataset

    def nca_dataset(self, dataset_id: str, what: str, dyck_what: str | None = None) -> Dataset:
        """The NCA dataset `dataset_id`; NotFound, saying why, when it is a token corpus (which has no `what`)
        or a Dyck dataset (which has no `dyck_what`, default `what`)."""
        dataset = self.row_dataset(dataset_id, what)
        if isinstance(dataset, DyckDataset):
            raise NotFound(f"{dataset_id} is a Dyck dataset: a Dyck dataset has no {dyck_what or what}; "
                           f"GET /v1/datasets/{dataset_id}/rows/{{index}}/preview.png draws one of its rows")
        return dataset

    def open_shard(self, dataset: Dataset | Corpus, name: str):
        """A file the manifest lists (a shard, or a corpus's .bin file) opened read-only; NotFound unless
        the manifest lists it and it lies inside. Listed names are plain names: the manifest models
        (shard names) and service.corpora (corpus file names) refuse any other."""
        if dataset.shard(name) is None:
            raise NotFound(f"dataset {dataset.id} has no shard {name!r}: GET /v1/datasets/{dataset.id}/shards lists them")
        return self.open_file(dataset, name)

    def open_file(self, dataset: Dataset | Corpus, name: str):
        """A file of the dataset, by a name the caller has already validated: NotFound when it is missing
        (or resolves outside the shard folder), FileUnreadable when it is there but cannot be read."""
        try:
            file = open_inside(self.root, os.path.join(dataset.folder, name))
        except OSError as error:
            raise FileUnreadable(f"{name} of dataset {dataset.id} cannot be read ({error.strerror or error})") from None
        if file is None:
            raise NotFound(f"{name} of dataset {dataset.id} is missing")
        return file

    def _load(self, dataset_id: str) -> Dataset | Corpus | None:
        """The dataset or corpus in folder `dataset_id`, from the cache while its manifest is unchanged."""
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
        key = (status.st_mtime_ns, status.st_size, status.st_ino)
        cached = self._parsed.get(dataset_id)
        if cached is not None and cached.key == key:
            return cached.dataset
        with self._lock:
            cached = self._parsed.get(dataset_id)  # another request may have parsed it while we waited
            if cached is None or cached.key != key:
                cached = self._parse(dataset_id, folder, manifest_path, key)
                self._parsed[dataset_id] = cached
        return cached.dataset

    def _parse(self, dataset_id: str, folder: str, manifest_path: str, key: tuple) -> CacheEntry:
        """Read and validate one manifest whose stat gave `key`; a refusal is logged here, so once per version."""
        where = f"{dataset_id}/{MANIFEST_NAME}"
        try:
            file = open_inside(self.root, manifest_path)
            if file is None:
                raise ManifestError(f"{where} vanished or became a link outside the shard folder while being read")
            with file:
                opened = os.fstat(file.fileno())  # the key of the bytes actually read, should it change meanwhile
                data = file.read()
            corpus = parse_corpus_manifest(data, where)
            dyck = parse_dyck_manifest(data, where) if corpus is None else None
            if corpus is None and dyck is None:
                manifest = parse_manifest(data, where)
                config = dataset_config(manifest, where)
        except OSError as error:
            log.warning("dataset %s is left out of the catalog: %s cannot be read (%s)", dataset_id, where, error.strerror)
            return CacheEntry(key, None)
        except ManifestError as error:
            log.warning("dataset %s is left out of the catalog: %s", dataset_id, error)
            return CacheEntry(key, None)
        opened_key = (opened.st_mtime_ns, opened.st_size, opened.st_ino)
        if corpus is not None:
            return CacheEntry(opened_key, Corpus(dataset_id, folder, corpus))
        if dyck is not None:
            return CacheEntry(opened_key, DyckDataset(id=dataset_id, folder=folder, manifest=dyck,
                                                      row_starts=dyck.row_starts()))
        return CacheEntry(opened_key, Dataset(id=dataset_id, folder=folder, manifest=manifest,
                                              row_starts=manifest.row_starts(), config=config))
