"""Where a stage's sequences live, resolved to verified local files: NCA or Dyck shards from a
catalog dataset URL or a dataset folder, or a prepared token corpus folder for the language stage.

The trainer knows the shard format and the catalog client, nothing of how rows were
generated. From a catalog (`http://HOST:PORT/v1/datasets/<id>`) the shards come through
`service.client.CatalogClient`, which downloads in verified Range pieces into a cache
that the ranks of one machine share under a file lock. From a folder, the typed manifest
is read and every shard's size and sha256 are checked before training starts.

Both kinds are row sources to the loader: an NCA or Dyck row is one stored sequence, a corpus
"row" is one window of context + 1 tokens (trainer.corpus). Each gives its rows' count,
its record blocks for the two-level shuffle (trainer.order), a reader of rows by id, and
how many leading targets of a row the loss ignores (the NCA first frame, a random grid; none
for Dyck words or text). NCA and Dyck shards share a layout but not a meaning: the manifest's
format name says which a dataset holds, and SequenceDataset.format_name carries it on.

The dataset digest names the content: the sha256 of the dataset id and every shard's
(name, rows, sha256). It is the same whether the dataset was read from a folder or a
catalog, so the data order (a function of seed, epoch and digest) is too.
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass

import numpy as np

from generator.config import DatasetConfig
from generator.dyck.format import FORMAT_NAME as DYCK_FORMAT_NAME, parse_dyck_manifest
from generator.format import FORMAT_NAME as NCA_FORMAT_NAME, MANIFEST_NAME, ManifestError, load_manifest
from generator.shards import file_sha256
from trainer.corpus import CorpusError, TokenCorpus, open_corpus
from trainer.corpus.format import FORMAT_NAME as CORPUS_FORMAT_NAME, MANIFEST_NAME as CORPUS_MANIFEST_NAME
from trainer.order import record_blocks

CATALOG_URL = re.compile(r"(?P<base>https?://[^/]+(?:/.*?)?)/v1/datasets/(?P<id>[^/?#]+)/?")


class DataError(Exception):
    """The data cannot be used; the message says why and what to do, in one line."""


@dataclass(frozen=True)
class ShardFile:
    """One verified shard on local disk."""

    name: str
    """File name, part-NNNNN.arrow."""
    path: str
    """Local path of the verified file."""
    rows: int
    """Rows in the file."""
    sha256: str
    """sha256 of its bytes."""


@dataclass(frozen=True)
class SequenceDataset:
    """A dataset of token sequences ready to read: its shards and its token layout."""

    id: str
    """Dataset id."""
    origin: str
    """The URL or folder it came from."""
    shards: tuple
    """ShardFile per shard, in row order."""
    tokens_per_sequence: int
    """Tokens stored per row (1026 for NCA, 1025 for Dyck)."""
    tokens_per_frame: int | None
    """Tokens of one frame, markers included (38 for a 12x12 grid); None for Dyck, which has no frames."""
    vocab_size: int
    """Token ids in use: 0 .. vocab_size - 1 (10,002 for NCA, 128 for Dyck)."""
    record_batch_rows: int
    """Rows per Arrow record batch."""
    band: str
    """Complexity band name (for reports); empty for Dyck."""
    format_name: str = NCA_FORMAT_NAME
    """The manifest's format name: ncaforge-nca-shards or ncaforge-dyck-shards."""

    @property
    def rows(self) -> int:
        return sum(shard.rows for shard in self.shards)

    @property
    def digest(self) -> str:
        listing = [[shard.name, shard.rows, shard.sha256] for shard in self.shards]
        return hashlib.sha256(json.dumps({"dataset_id": self.id, "shards": listing}).encode()).hexdigest()

    @property
    def is_dyck(self) -> bool:
        return self.format_name == DYCK_FORMAT_NAME

    @property
    def masked_targets(self) -> int:
        """Leading targets the loss ignores: the rest of the first frame (a random grid) for NCA; none for
        Dyck, whose first token already starts a word."""
        return self.tokens_per_frame - 1 if self.tokens_per_frame else 0

    def blocks(self, start: int, stop: int) -> list:
        return record_blocks([shard.rows for shard in self.shards], self.record_batch_rows, start, stop)

    def open_reader(self, cached_batches: int = 16):
        from trainer.rows import RowReader

        return RowReader(self, cached_batches)


@dataclass(frozen=True)
class CorpusSplit:
    """One split of a prepared token corpus; its windows of context + 1 tokens are the rows."""

    corpus: TokenCorpus
    """The opened corpus."""
    split: str
    """'train' or 'validation'."""
    context: int
    """Tokens a model reads at once; a window holds context + 1."""

    BLOCK_WINDOWS = 1024

    @property
    def id(self) -> str:
        return f"{self.corpus.id}:{self.split}"

    @property
    def origin(self) -> str:
        return self.corpus.folder

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.corpus.digest}:{self.split}:{self.context}".encode()).hexdigest()

    @property
    def rows(self) -> int:
        return self.corpus.windows(self.split, self.context)

    @property
    def vocab_size(self) -> int:
        return self.corpus.vocab_size

    @property
    def tokens_per_sequence(self) -> int:
        return self.context + 1

    @property
    def masked_targets(self) -> int:
        return 0

    @property
    def bytes_per_token(self) -> float:
        return self.corpus.bytes_per_token(self.split)

    def blocks(self, start: int, stop: int) -> list:
        return record_blocks([self.rows], self.BLOCK_WINDOWS, start, stop)

    def open_reader(self, cached_batches: int = 0) -> "CorpusSplit":
        return self

    def tokens(self, rows) -> np.ndarray:
        return self.corpus.window_tokens(self.split, rows, self.context)

    def close(self) -> None:
        """Nothing to release: the corpus maps its files once per process."""

    def __enter__(self) -> "CorpusSplit":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tokens_per_frame(config: dict) -> int:
    """Frame length of a dataset from its recorded config: (grid / 2)^2 patches and two markers."""
    return DatasetConfig.from_dict(config).generator.nca.tokens_per_frame


def load_sequence_manifest(folder: str):
    """The folder's manifest: a DyckManifest when it claims the Dyck format, else an NCA Manifest;
    DataError in one line when it is missing, unreadable, damaged or of another format."""
    try:
        with open(os.path.join(folder, MANIFEST_NAME), "rb") as f:
            data = f.read()
    except OSError:
        data = b""  # load_manifest names the problem
    try:
        return parse_dyck_manifest(data, os.path.join(folder, MANIFEST_NAME)) or load_manifest(folder)
    except ManifestError as error:
        raise DataError(str(error)) from None


def open_local(folder: str) -> SequenceDataset:
    """A finished dataset folder (NCA or Dyck), every shard checked against the manifest."""
    if not os.path.isdir(folder):
        raise DataError(f"{folder} is not a folder: give a dataset folder (OUT/<dataset-id>) or a catalog URL "
                        f"http://HOST:PORT/v1/datasets/<id>")
    manifest = load_sequence_manifest(folder)
    shards = []
    for entry in manifest.shards:
        path = os.path.join(folder, entry.name)
        if not os.path.isfile(path) or os.path.getsize(path) != entry.bytes or file_sha256(path) != entry.sha256:
            raise DataError(f"{path} is missing or does not match its manifest (size or sha256): "
                            f"restore it with python -m generator.pipeline (same command) or verify the dataset")
        shards.append(ShardFile(entry.name, path, entry.rows, entry.sha256))
    fmt, dyck = manifest.format, manifest.format.name == DYCK_FORMAT_NAME
    return SequenceDataset(manifest.dataset_id, folder, tuple(shards), fmt.tokens_per_sequence,
                           None if dyck else tokens_per_frame(manifest.config), fmt.vocab_size, fmt.record_batch_rows,
                           "" if dyck else manifest.band.name, fmt.name)


def catalog_fetch(url: str, cache_dir: str, fetch) -> tuple:
    """(dataset id, fetch(client, id)) for a catalog dataset URL; every catalog failure is one DataError line."""
    from service.client import CatalogClient, CatalogError

    match = CATALOG_URL.fullmatch(url)
    if not match:
        raise DataError(f"{url} is not a catalog dataset URL: use http://HOST:PORT/v1/datasets/<id>")
    try:
        with CatalogClient(match["base"], cache_dir=cache_dir or None) as client:
            return match["id"], fetch(client, match["id"])
    except CatalogError as error:
        raise DataError(str(error)) from None


def open_catalog(url: str, cache_dir: str) -> SequenceDataset:
    """A catalog dataset (NCA or Dyck), its shards downloaded (or found in the cache) and verified."""

    def fetch(client, dataset_id):
        summary = client.dataset(dataset_id)
        if summary.get("kind") == "token-corpus":
            raise DataError(f"{url} is a token corpus, not NCA shards: train on it with --stage language")
        return summary, client.shards(dataset_id), client.download_dataset(dataset_id)

    dataset_id, (summary, listing, paths) = catalog_fetch(url, cache_dir, fetch)
    fmt = summary["format"]
    dyck = fmt["name"] == DYCK_FORMAT_NAME
    shards = tuple(ShardFile(entry["name"], path, entry["rows"], entry["sha256"]) for entry, path in zip(listing, paths))
    return SequenceDataset(dataset_id, url, shards, fmt["tokens_per_sequence"],
                           None if dyck else tokens_per_frame(summary["config"]), fmt["vocab_size"],
                           fmt["record_batch_rows"], "" if dyck else summary["band"]["name"], fmt["name"])


def is_corpus(folder: str) -> bool:
    """Whether a folder holds a prepared token corpus (rather than NCA shards)."""
    try:
        with open(os.path.join(folder, CORPUS_MANIFEST_NAME), encoding="utf-8") as f:
            return json.load(f).get("format", {}).get("name") == CORPUS_FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


def open_dataset(spec: str, cache_dir: str = "") -> SequenceDataset:
    """NCA or Dyck shards from a catalog URL or a local folder, opened and verified; DataError in one line otherwise."""
    if spec.startswith(("http://", "https://")):
        return open_catalog(spec, cache_dir)
    if is_corpus(spec):
        raise DataError(f"{spec} is a token corpus, not NCA shards: train on it with --stage language")
    return open_local(spec)


def corpus_folder(spec: str, cache_dir: str = "") -> str:
    """A corpus folder, or a catalog corpus URL downloaded (verified, cached) to one."""
    if not spec.startswith(("http://", "https://")):
        return spec
    return catalog_fetch(spec, cache_dir, lambda client, corpus_id: client.download_corpus(corpus_id))[1]


def open_corpus_split(folder: str, split: str, context: int) -> CorpusSplit:
    """One split of a prepared corpus folder, verified; DataError in one line otherwise."""
    if os.path.isdir(folder) and not is_corpus(folder) and os.path.exists(os.path.join(folder, "manifest.json")):
        raise DataError(f"{folder} holds NCA shards, not a token corpus: prepare one with python -m trainer.data "
                        f"prepare SOURCE, or train on NCA shards with --stage nca")
    try:
        corpus = open_corpus(folder)
    except CorpusError as error:
        raise DataError(str(error)) from None
    return CorpusSplit(corpus, split, context)
