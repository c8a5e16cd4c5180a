"""The dataset format: the contract between the generator, the catalog and the trainer.

A dataset is a folder OUT/<dataset-id>/ holding

    part-00000.arrow ...   Arrow IPC files, zstd-compressed buffers, RECORD_BATCH_ROWS rows per batch
    manifest.json          written last: a dataset without it is incomplete
    histogram.png          gzip ratios of every candidate rule, the band shaded
    preview.png            the first few trajectories as strips of frames

Each row is one trajectory of one accepted rule: rule_id, trajectory_id, the rule's
gzip ratio, and the tokens as a fixed-size list of uint16. Rows are sorted by
(rule_id, trajectory_id). Record batches of 1024 rows (2 MB of tokens) let a reader
fetch any row by seeking to its batch through the file footer, without reading the
rest of the shard.

The manifest is typed (`Manifest`, pydantic): the pipeline builds one, and `verify`, the
catalog and the trainer read one through `load_manifest`, which refuses a format name or
version this code does not know in one line. Fields added after format 1 was first written
are optional, so datasets made by earlier releases still load. This module imports pyarrow,
pydantic and the pure config modules only, so readers do not load torch.
"""

import hashlib
import json
import os
import re
from typing import Any, Literal, Self, TypeVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError, model_validator

from generator.bands import Band
from generator.config import DatasetConfig

FORMAT_NAME = "ncaforge-nca-shards"
DYCK_FORMAT_NAME = "ncaforge-dyck-shards"  # generator.dyck.format's, named here only to refuse it clearly
FORMAT_VERSION = 1
READABLE_FORMAT_VERSIONS = (1,)
MANIFEST_NAME = "manifest.json"
HISTOGRAM_NAME = "histogram.png"
PREVIEW_NAME = "preview.png"
SHARD_NAME_PATTERN = re.compile(r"part-\d{5}\.arrow")
RECORD_BATCH_ROWS = 1024
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3  # 0.86 of raw size for band high, 0.54 for mid, ~190 MB/s on one core
HISTOGRAM_BIN_WIDTH = 0.05
DATASET_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SHA256_PATTERN = r"^[0-9a-f]{64}$"
ManifestT = TypeVar("ManifestT", bound=BaseModel)


def shard_name(index: int) -> str:
    return f"part-{index:05d}.arrow"


def shard_schema(tokens_per_sequence: int) -> pa.Schema:
    """The fixed schema of every shard of a dataset whose sequences have this many tokens."""
    return pa.schema(
        [
            pa.field("rule_id", pa.uint64(), nullable=False),
            pa.field("trajectory_id", pa.uint32(), nullable=False),
            pa.field("ratio", pa.float64(), nullable=False),
            pa.field("tokens", pa.list_(pa.field("token", pa.uint16(), nullable=False), tokens_per_sequence), nullable=False),
        ],
        metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)},
    )


def ipc_write_options() -> pa.ipc.IpcWriteOptions:
    return pa.ipc.IpcWriteOptions(compression=pa.Codec(COMPRESSION, COMPRESSION_LEVEL))


def histogram_edges() -> list:
    """Bin edges of the candidate-ratio histogram in every manifest: 0, 0.05, ..., 1.0."""
    bins = round(1 / HISTOGRAM_BIN_WIDTH)
    return [round(i * HISTOGRAM_BIN_WIDTH, 10) for i in range(bins + 1)]


def decode_frames(tokens, grid_size: int = 12) -> np.ndarray:
    """One sequence of tokens -> (frames, H, W) uint8 colours: drop the frame markers and split
    each patch token a + 10 b + 100 c + 1000 d back into its 2x2 cells a b / c d."""
    patches_per_side = grid_size // 2
    framed = np.asarray(tokens, dtype=np.int64).reshape(-1, patches_per_side**2 + 2)
    patches = framed[:, 1:-1].reshape(-1, patches_per_side, patches_per_side)
    digits = np.stack([(patches // 10**i) % 10 for i in range(4)], axis=-1)  # a, b, c, d
    grid = digits.reshape(-1, patches_per_side, patches_per_side, 2, 2).transpose(0, 1, 3, 2, 4)
    return grid.reshape(-1, grid_size, grid_size).astype(np.uint8)


class ManifestError(ValueError):
    """A manifest is missing, unreadable, of an unknown format or version, or lacks a field;
    the message names the file and what to do."""


class ManifestModel(BaseModel):
    """Base of every manifest section: unknown fields are an error (a new field needs a default or a
    new format version), and a parsed manifest is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FrameTokens(ManifestModel):
    start: int = Field(description="Token that opens every frame (10000).")
    end: int = Field(description="Token that closes every frame (10001).")


class ShardsFormat(ManifestModel):
    """The layout every dataset of Arrow shards shares, NCA or Dyck: each kind's record narrows the name
    (and the description of tokens_per_sequence) and adds its token fields after row_order."""

    name: str = Field(description="Format name.")
    version: int = Field(description="Format version; readers refuse versions they do not know.")
    tokens_per_sequence: PositiveInt = Field(description="Tokens stored per row.")
    token_dtype: Literal["uint16"] = Field(description="Storage type of a token.")
    record_batch_rows: PositiveInt = Field(description="Rows per Arrow record batch.")
    compression: str = Field(description="Arrow IPC buffer compression.")
    compression_level: int = Field(description="Compression level.")
    columns: dict[str, str] = Field(alias="schema", description="Column name -> Arrow type.")
    row_order: str = Field(description="Sort order of the rows.")

    @classmethod
    def of_schema(cls, schema: pa.Schema, row_order: str, **token_fields) -> Self:
        """The record of shards of this schema (its metadata names the format and version), written as every
        ncaforge shard is: uint16 tokens, RECORD_BATCH_ROWS rows per batch, COMPRESSION at COMPRESSION_LEVEL."""
        return cls(name=schema.metadata[b"format"].decode(), version=int(schema.metadata[b"format_version"]),
                   tokens_per_sequence=schema.field("tokens").type.list_size, token_dtype="uint16",
                   record_batch_rows=RECORD_BATCH_ROWS, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL,
                   columns={field.name: str(field.type) for field in schema}, row_order=row_order, **token_fields)


class FormatRecord(ShardsFormat):
    """How the shards are laid out: enough to read them with pyarrow alone."""

    name: Literal["ncaforge-nca-shards"] = Field(description="Format name.")
    tokens_per_sequence: PositiveInt = Field(description="Tokens stored per row (27 frames x 38 = 1026).")
    frame_tokens: FrameTokens = Field(description="The frame marker tokens.")
    vocab_size: PositiveInt = Field(description="Token ids in use: 0 .. vocab_size - 1.")


class GeneratorLineage(ManifestModel):
    """Which code made the dataset."""

    name: str = Field(description="Always 'ncaforge'.")
    version: str = Field(description="ncaforge version of the driver.")
    git_commit: str = Field(description="Commit the driver ran from, or 'unknown'.")
    git_dirty: bool | None = Field(description="Whether its tree had uncommitted changes; null when unknown.")


class ShardFile(ManifestModel):
    """What every shard record holds, NCA or Dyck: the file, its rows and its bytes."""

    index: NonNegativeInt = Field(description="Shard number k; the file is part-k.arrow.")
    name: str = Field(pattern=r"^part-\d{5}\.arrow$", description="File name inside the dataset folder.")
    rows: NonNegativeInt = Field(description="Rows (sequences) in the file.")
    tokens: NonNegativeInt = Field(description="rows x tokens_per_sequence.")
    bytes: NonNegativeInt = Field(description="File size.")
    sha256: str = Field(pattern=SHA256_PATTERN, description="sha256 of the file's bytes, lowercase hex.")


class Totals(ManifestModel):
    shards: NonNegativeInt
    rows: NonNegativeInt
    tokens: NonNegativeInt
    bytes: NonNegativeInt

    @classmethod
    def of_shards(cls, shards: list[ShardFile]) -> Self:
        return cls(shards=len(shards), rows=sum(s.rows for s in shards), tokens=sum(s.tokens for s in shards),
                   bytes=sum(s.bytes for s in shards))


class ShardRecord(ShardFile):
    """One shard file: its place in the dataset, its bytes, and the candidates it scored."""

    first_rule_id: NonNegativeInt = Field(description="First candidate rule id the shard scored.")
    stop_rule_id: NonNegativeInt = Field(description="One past the last candidate rule id it scored.")
    candidates: NonNegativeInt = Field(description="Candidate rules scored: stop_rule_id - first_rule_id.")
    accepted_rules: NonNegativeInt = Field(description="Candidates inside the band.")
    ratio_min: float | None = Field(description="Lowest gzip ratio of its rows; null without rows.")
    ratio_mean: float | None = Field(description="Mean gzip ratio of its rows; null without rows.")
    ratio_max: float | None = Field(description="Highest gzip ratio of its rows; null without rows.")


class Histogram(ManifestModel):
    bin_width: float = Field(description="Width of a bin (0.05).")
    edges: list[float] = Field(description="Bin edges, 0 .. 1.")
    counts: list[NonNegativeInt] = Field(description="Candidates per bin; len(edges) - 1 of them.")


class Acceptance(ManifestModel):
    """How many candidate rules the band kept, and the ratio of every candidate."""

    candidates: NonNegativeInt
    accepted_rules: NonNegativeInt
    acceptance_rate: float
    expected_acceptance_rate: float = Field(description="What SPEC section 3's table predicts for this band.")
    candidate_ratio_min: float
    candidate_ratio_max: float
    histogram: Histogram


class DeviceRecord(ManifestModel):
    """The device and libraries the rows were made with."""

    kind: Literal["cpu", "cuda"] = Field(description="Kind of device; part of the dataset id.")
    name: str = Field(description="CPU model or GPU name.")
    torch: str = Field(description="torch version.")
    numpy: str = Field(description="numpy version.")
    compiled_step: bool = Field(description="Whether the step ran through torch.compile (same bits as eager).")


class WorkerRecord(DeviceRecord):
    """The environment of workers that made shards, on one node. The pipeline refuses to mix
    versions, so records of one dataset differ only in node and device name. It lists no shard
    indices: which worker makes which shard depends on scheduling, and the same dataset must
    get the same manifest."""

    node: str = Field(description="Ray node (IP address) the workers ran on.")
    python: str = Field(description="Python version.")
    zlib: str = Field(description="zlib runtime version: gzip ratios depend on it.")
    ncaforge: str = Field(description="ncaforge version.")


class WriterRecord(ManifestModel):
    """The driver, which writes the files."""

    python: str
    pyarrow: str
    ray: str
    platform: str


class Environment(ManifestModel):
    device: DeviceRecord = Field(description="The workers' device and libraries.")
    writer: WriterRecord = Field(description="The driver's versions.")
    workers: list[WorkerRecord] | None = Field(
        None, description="Each distinct environment (node, versions) of the workers that made shards, sorted by "
                          "node; absent in manifests made before workers were recorded.")


class ShardsManifest(ManifestModel):
    """What every manifest of Arrow shards holds and checks, NCA or Dyck. Each kind declares its own
    sections after these three, `totals` and `shards` among them (their place in the published schema
    is the kind's): the shards' rows, tokens and bytes must add up to the totals."""

    dataset_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="The dataset's folder name.")
    format: ShardsFormat
    generator: GeneratorLineage

    @model_validator(mode="after")
    def _totals_match_shards(self) -> Self:
        names = [shard.name for shard in self.shards]
        if len(set(names)) != len(names):
            raise ValueError("shards[].name has duplicates")
        for field_name in ("shards", "rows", "tokens", "bytes"):
            listed = len(self.shards) if field_name == "shards" else sum(getattr(s, field_name) for s in self.shards)
            if getattr(self.totals, field_name) != listed:
                raise ValueError(f"totals.{field_name} is {getattr(self.totals, field_name)} but the shards add up to {listed}")
        return self

    @property
    def tokens_per_sequence(self) -> int:
        return self.format.tokens_per_sequence

    def row_starts(self) -> list:
        """Global index of the first row of each shard, in manifest order."""
        starts = [0]
        for shard in self.shards[:-1]:
            starts.append(starts[-1] + shard.rows)
        return starts

    def json_document(self) -> dict:
        """The manifest as the JSON document it is written as."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, indent 1, trailing newline): the same manifest, the same bytes."""
        return (json.dumps(self.json_document(), indent=1, sort_keys=True) + "\n").encode()


class Manifest(ShardsManifest):
    """manifest.json: everything needed to trust, read and regenerate a dataset."""

    format: FormatRecord
    config: dict[str, Any] = Field(description="The resolved DatasetConfig, without runtime-only fields.")
    band: Band
    seed_scheme: dict[str, Any] = Field(description="How every random draw derives from (seed, rule, trajectory).")
    complexity: dict[str, Any] = Field(description="The exact gzip complexity definition.")
    sharding: str = Field(description="How candidate rule ids map to shards.")
    totals: Totals
    shards: list[ShardRecord]
    acceptance: Acceptance
    environment: Environment

    def dataset_config(self) -> DatasetConfig:
        """The config that made the rows (runtime-only fields at their defaults)."""
        return DatasetConfig.from_dict(self.config)

    def json_document(self) -> dict:
        """Without environment.workers when there is none, as manifests made before workers were recorded were written."""
        document = super().json_document()
        if document["environment"]["workers"] is None:
            del document["environment"]["workers"]
        return document


def parse_manifest(data: bytes | str, where: str = MANIFEST_NAME) -> Manifest:
    """Parse manifest bytes; raise ManifestError naming `where` and the problem."""
    try:
        document = json.loads(data)
    except ValueError as error:
        raise ManifestError(f"{where}: not valid JSON ({error}): the dataset is damaged or still being written") from None
    name, version = claimed_format(document)
    if name == DYCK_FORMAT_NAME:
        raise ManifestError(f"{where}: format {name!r} is not {FORMAT_NAME!r}: this is a Dyck dataset, which NCA tools "
                            f"do not read (generator.dyck.format does; re-running its python -m generator.dyck command "
                            f"checks it)")
    if name != FORMAT_NAME:
        raise ManifestError(f"{where}: format {name!r} is not {FORMAT_NAME!r}: this is not an ncaforge dataset")
    if version not in READABLE_FORMAT_VERSIONS:
        raise ManifestError(f"{where}: format version {version!r} is not one this ncaforge reads "
                            f"({', '.join(map(str, READABLE_FORMAT_VERSIONS))}): use the ncaforge release that made "
                            f"the dataset, or make it again with this one")
    return validated(Manifest, document, where)


def claimed_format(document: Any) -> tuple:
    """(name, version) of the format a parsed manifest document claims; None for each it does not say."""
    fmt = document.get("format") if isinstance(document, dict) else None
    return (fmt.get("name"), fmt.get("version")) if isinstance(fmt, dict) else (None, None)


def validated(model: type[ManifestT], document: Any, where: str) -> ManifestT:
    """`document` as a `model` manifest; ManifestError naming `where` and its first problem when it is not one."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ManifestError(f"{where}: {first_problem(error)}: the manifest is damaged; make the dataset again") from None


def first_problem(error: ValidationError) -> str:
    """'field shards.0.name: <what is wrong> (N problem(s))': a validation error as one line."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"field {location}: {first['msg']} ({error.error_count()} problem(s))"


def read_manifest_bytes(dataset_dir: str, when_missing: str) -> bytes:
    """The bytes of the folder's manifest.json; ManifestError saying `when_missing` when it has none,
    or naming the file and the cause when it cannot be read."""
    path = os.path.join(dataset_dir, MANIFEST_NAME)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ManifestError(when_missing) from None
    except OSError as error:
        raise ManifestError(f"{path} cannot be read ({error.strerror}): check its permissions") from None


def load_manifest(dataset_dir: str) -> Manifest:
    """The manifest of a finished dataset folder; ManifestError when missing, unreadable or invalid."""
    data = read_manifest_bytes(dataset_dir, f"{dataset_dir} has no {MANIFEST_NAME}: give a finished dataset folder, "
                                            f"OUT/<dataset-id> (a dataset being written has none yet)")
    return parse_manifest(data, os.path.join(dataset_dir, MANIFEST_NAME))


def manifest_digest(dataset_dir: str) -> str:
    """sha256 of manifest.json's bytes: names exactly one dataset's content."""
    with open(os.path.join(dataset_dir, MANIFEST_NAME), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
