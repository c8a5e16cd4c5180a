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

The manifest is typed (`DyckManifest`, pydantic), built on generator.format's bases for any
dataset of Arrow shards (ShardsManifest, ShardsFormat, ShardFile) and reusing the NCA manifest's
sections where they mean the same (lineage, totals); it holds no timestamps or paths, so the same command
writes the same bytes. This module imports pyarrow and pydantic only.
"""

import hashlib
import json
import os
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from generator.dyck.config import DyckConfig
from generator.errors import ConfigError
from generator.format import (MANIFEST_NAME, ManifestError, ManifestModel, ShardFile, ShardsFormat, ShardsManifest,
                              Totals, claimed_format, read_manifest_bytes, validated)

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


class DyckFormatRecord(ShardsFormat):
    """How the shards are laid out: enough to read them with pyarrow alone."""

    name: Literal["ncaforge-dyck-shards"] = Field(description="Format name.")
    tokens_per_sequence: PositiveInt = Field(description="Tokens stored per row (1025).")
    brackets: BracketTokens = Field(description="How brackets map to tokens.")
    vocab_size: PositiveInt = Field(description="Token ids in use: 0 .. vocab_size - 1 (2 x pairs).")


class DyckShardRecord(ShardFile):
    """One shard file: which sequences it holds, and its bytes."""

    first_sequence_id: NonNegativeInt = Field(description="Sequence id of its first row; the rows follow in order.")


class DyckEnvironment(ManifestModel):
    """The libraries that made and wrote the rows (the draws are exact integer arithmetic, so numpy's
    version should not change a token; zstd's could change the compressed bytes)."""

    python: str
    numpy: str
    pyarrow: str
    platform: str


class DyckManifest(ShardsManifest):
    """manifest.json of a Dyck dataset: everything needed to trust, read and regenerate it."""

    format: DyckFormatRecord
    config: dict[str, Any] = Field(description="The resolved DyckConfig (generator.dyck.config).")
    seed_scheme: dict[str, Any] = Field(description="How every draw derives from (seed, sequence id, position).")
    sharding: str = Field(description="How sequence ids map to shards.")
    totals: Totals
    shards: list[DyckShardRecord]
    environment: DyckEnvironment

    @model_validator(mode="after")
    def _valid_config(self) -> "DyckManifest":
        try:
            DyckConfig.from_dict(self.config).validate()
        except (TypeError, ConfigError) as error:
            raise ValueError(f"config is not a valid DyckConfig ({error})") from None
        return self

    def dyck_config(self) -> DyckConfig:
        return DyckConfig.from_dict(self.config)


def format_record(config: DyckConfig) -> DyckFormatRecord:
    return DyckFormatRecord.of_schema(
        shard_schema(config.tokens_per_sequence), row_order="sequence_id",
        brackets=BracketTokens(pairs=config.pairs, first_open=0, first_close=config.pairs), vocab_size=config.vocab_size)


def format_name(data: bytes | str) -> str | None:
    """The format name a manifest's bytes claim, or None when they are not a JSON manifest."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return claimed_format(document)[0]


def parse_dyck_manifest(data: bytes | str, where: str = MANIFEST_NAME) -> DyckManifest | None:
    """The Dyck manifest in `data`; None when the bytes do not claim the Dyck format (not JSON, or
    another format name); ManifestError naming `where` and the problem, in one line, when they claim
    it but break it (another version, a field missing or wrong)."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    name, version = claimed_format(document)
    if name != FORMAT_NAME:
        return None
    if version != FORMAT_VERSION:
        raise ManifestError(f"{where}: format {FORMAT_NAME!r} version {version!r} is not one this ncaforge reads "
                            f"({FORMAT_VERSION}): make the dataset again with python -m generator.dyck")
    return validated(DyckManifest, document, where)


def load_dyck_manifest(dataset_dir: str) -> DyckManifest:
    """The manifest of a finished Dyck dataset folder; ManifestError when missing, unreadable, invalid or not Dyck."""
    data = read_manifest_bytes(dataset_dir, f"{dataset_dir} has no {MANIFEST_NAME}: give a finished dataset folder (a "
                                            f"dataset being written has none yet; re-run python -m generator.dyck to "
                                            f"finish it)")
    path = os.path.join(dataset_dir, MANIFEST_NAME)
    manifest = parse_dyck_manifest(data, path)
    if manifest is None:
        raise ManifestError(f"{path}: format {format_name(data)!r} is not {FORMAT_NAME!r}: this is not a Dyck dataset")
    return manifest
