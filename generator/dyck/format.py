"""The Dyck dataset format: the contract between the Dyck generator, the catalog and the trainer.

A Dyck dataset is a folder OUT/dyck-<sequences>-<hash>/ holding

    part-00000.arrow ...   Arrow IPC files, zstd level 3, record batches of 1,024 rows
    preview.png            depth profiles of the first sequences
    manifest.json          written last: a dataset without it is incomplete

laid out like an NCA dataset (generator.format) so the same readers serve and train on it:
one row per sequence, `sequence_id` (uint64) and `tokens` (fixed-size list of uint16), rows
in sequence-id order. What tells the two apart is the manifest's format name,
`ncaforge-dyck-shards`: every reader dispatches on it, and generator.format.load_manifest
refuses a Dyck manifest (and this module an NCA one), so neither is read as the other.

The manifest is typed (`DyckManifest`, pydantic), reusing the NCA manifest's sections where
they mean the same (lineage, totals); it holds no timestamps or paths, so the same command
writes the same bytes. This module imports pyarrow and pydantic only.
"""

import hashlib
import json
import os
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, NonNegativeInt, PositiveInt, ValidationError, model_validator

from generator.dyck.config import DyckConfig
from generator.errors import ConfigError
from generator.format import (COMPRESSION, COMPRESSION_LEVEL, MANIFEST_NAME, RECORD_BATCH_ROWS, SHA256_PATTERN,
                              GeneratorLineage, ManifestError, ManifestModel, Totals, first_problem)

FORMAT_NAME = "ncaforge-dyck-shards"
FORMAT_VERSION = 1
KIND = "dyck"
"""The catalog's `kind` of a Dyck dataset."""
SHARDING = ("shard k holds sequence ids [k * sequences_per_shard, (k + 1) * sequences_per_shard), "
            "the last shard up to the requested number of sequences")


def dataset_id(config: DyckConfig) -> str:
    """'dyck-<sequences>-<hash>': the hash covers everything that decides the bytes (the config and the format)."""
    document = json.dumps({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": config.to_dict()},
                          sort_keys=True)
    return f"dyck-{config.sequences}-{hashlib.sha256(document.encode()).hexdigest()[:12]}"


def shard_schema(tokens_per_sequence: int) -> pa.Schema:
    """The fixed schema of every shard of a Dyck dataset with rows of this many tokens."""
    return pa.schema(
        [
            pa.field("sequence_id", pa.uint64(), nullable=False),
            pa.field("tokens", pa.list_(pa.field("token", pa.uint16(), nullable=False), tokens_per_sequence), nullable=False),
        ],
        metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)},
    )


class BracketTokens(ManifestModel):
    """How brackets are numbered."""

    pairs: PositiveInt = Field(description="Bracket pairs k.")
    first_open: NonNegativeInt = Field(description="Token of pair 0's opening bracket; pair i opens with first_open + i (0).")
    first_close: NonNegativeInt = Field(description="Token of pair 0's closing bracket; pair i closes with first_close + i (k).")


class DyckFormatRecord(ManifestModel):
    """How the shards are laid out: enough to read them with pyarrow alone."""

    name: Literal["ncaforge-dyck-shards"] = Field(description="Format name.")
    version: int = Field(description="Format version; readers refuse versions they do not know.")
    tokens_per_sequence: PositiveInt = Field(description="Tokens stored per row (1025).")
    token_dtype: Literal["uint16"] = Field(description="Storage type of a token.")
    record_batch_rows: PositiveInt = Field(description="Rows per Arrow record batch.")
    compression: str = Field(description="Arrow IPC buffer compression.")
    compression_level: int = Field(description="Compression level.")
    columns: dict[str, str] = Field(alias="schema", description="Column name -> Arrow type.")
    row_order: str = Field(description="Sort order of the rows.")
    brackets: BracketTokens = Field(description="How brackets map to tokens.")
    vocab_size: PositiveInt = Field(description="Token ids in use: 0 .. vocab_size - 1 (2 x pairs).")


class DyckShardRecord(ManifestModel):
    """One shard file: which sequences it holds, and its bytes."""

    index: NonNegativeInt = Field(description="Shard number k; the file is part-k.arrow.")
    name: str = Field(pattern=r"^part-\d{5}\.arrow$", description="File name inside the dataset folder.")
    rows: NonNegativeInt = Field(description="Rows (sequences) in the file.")
    tokens: NonNegativeInt = Field(description="rows x tokens_per_sequence.")
    bytes: NonNegativeInt = Field(description="File size.")
    sha256: str = Field(pattern=SHA256_PATTERN, description="sha256 of the file's bytes, lowercase hex.")
    first_sequence_id: NonNegativeInt = Field(description="Sequence id of its first row; the rows follow in order.")


class DyckEnvironment(ManifestModel):
    """The libraries that made and wrote the rows (the draws are exact integer arithmetic, so numpy's
    version should not change a token; zstd's could change the compressed bytes)."""

    python: str
    numpy: str
    pyarrow: str
    platform: str


class DyckManifest(ManifestModel):
    """manifest.json of a Dyck dataset: everything needed to trust, read and regenerate it."""

    dataset_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="The dataset's folder name.")
    format: DyckFormatRecord
    generator: GeneratorLineage
    config: dict[str, Any] = Field(description="The resolved DyckConfig (generator.dyck.config).")
    seed_scheme: dict[str, Any] = Field(description="How every draw derives from (seed, sequence id, position).")
    sharding: str = Field(description="How sequence ids map to shards.")
    totals: Totals
    shards: list[DyckShardRecord]
    environment: DyckEnvironment

    @model_validator(mode="after")
    def _consistent(self) -> "DyckManifest":
        names = [shard.name for shard in self.shards]
        if len(set(names)) != len(names):
            raise ValueError("shards[].name has duplicates")
        for field_name in ("shards", "rows", "tokens", "bytes"):
            listed = len(self.shards) if field_name == "shards" else sum(getattr(s, field_name) for s in self.shards)
            if getattr(self.totals, field_name) != listed:
                raise ValueError(f"totals.{field_name} is {getattr(self.totals, field_name)} but the shards add up to {listed}")
        try:
            DyckConfig.from_dict(self.config).validate()
        except (TypeError, ConfigError) as error:
            raise ValueError(f"config is not a valid DyckConfig ({error})") from None
        return self

    @property
    def tokens_per_sequence(self) -> int:
        return self.format.tokens_per_sequence

    def dyck_config(self) -> DyckConfig:
        return DyckConfig.from_dict(self.config)

    def row_starts(self) -> list:
        """Global index of the first row of each shard, in manifest order."""
        starts = [0]
        for shard in self.shards[:-1]:
            starts.append(starts[-1] + shard.rows)
        return starts

    def to_json_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, indent 1, trailing newline): the same manifest, the same bytes."""
        document = self.model_dump(mode="json", by_alias=True)
        return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()


def format_record(config: DyckConfig) -> DyckFormatRecord:
    schema = shard_schema(config.tokens_per_sequence)
    return DyckFormatRecord(
        name=FORMAT_NAME, version=FORMAT_VERSION, tokens_per_sequence=config.tokens_per_sequence, token_dtype="uint16",
        record_batch_rows=RECORD_BATCH_ROWS, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL,
        columns={field.name: str(field.type) for field in schema}, row_order="sequence_id",
        brackets=BracketTokens(pairs=config.pairs, first_open=0, first_close=config.pairs), vocab_size=config.vocab_size)


def format_name(data: bytes | str) -> str | None:
    """The format name a manifest's bytes claim, or None when they are not a JSON manifest."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    fmt = document.get("format") if isinstance(document, dict) else None
    return fmt.get("name") if isinstance(fmt, dict) else None


def parse_dyck_manifest(data: bytes | str, where: str = MANIFEST_NAME) -> DyckManifest | None:
    """The Dyck manifest in `data`; None when the bytes do not claim the Dyck format (not JSON, or
    another format name); ManifestError naming `where` and the problem, in one line, when they claim
    it but break it (another version, a field missing or wrong)."""
    if format_name(data) != FORMAT_NAME:
        return None
    document = json.loads(data)
    version = document["format"].get("version")
    if version != FORMAT_VERSION:
        raise ManifestError(f"{where}: format {FORMAT_NAME!r} version {version!r} is not one this ncaforge reads "
                            f"({FORMAT_VERSION}): make the dataset again with python -m generator.dyck")
    try:
        return DyckManifest.model_validate(document)
    except ValidationError as error:
        raise ManifestError(f"{where}: {first_problem(error)}: the manifest is damaged; make the dataset again") from None


def load_dyck_manifest(dataset_dir: str) -> DyckManifest:
    """The manifest of a finished Dyck dataset folder; ManifestError when missing, unreadable, invalid or not Dyck."""
    path = os.path.join(dataset_dir, MANIFEST_NAME)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ManifestError(f"{dataset_dir} has no {MANIFEST_NAME}: give a finished dataset folder (a dataset being "
                            f"written has none yet; re-run python -m generator.dyck to finish it)") from None
    except OSError as error:
        raise ManifestError(f"{path} cannot be read ({error.strerror}): check its permissions") from None
    manifest = parse_dyck_manifest(data, path)
    if manifest is None:
        raise ManifestError(f"{path}: format {format_name(data)!r} is not {FORMAT_NAME!r}: this is not a Dyck dataset")
    return manifest
