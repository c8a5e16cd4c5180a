"""The JSON documents the catalog answers with, as typed pydantic models.

Every JSON endpoint declares one of these as its response model, so /openapi.json
publishes a named schema for each answer and a client can generate types from it.
Manifest sections (format, lineage, totals, acceptance, environment) reuse the
manifest's own models from generator.format, a Dyck dataset's those of
generator.dyck.format, and a token corpus's those of trainer.corpus.format: a summary is the manifest, reorganised, and the format modules
stay the one place a field is defined. Where an answer is one of several kinds (an NCA
dataset, a Dyck dataset or a token corpus), its document carries `kind`, and the endpoint
declares a named union of them (a RootModel), so /openapi.json still names one schema per answer.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from generator.bands import Band
from generator.dyck.format import DyckEnvironment, DyckFormatRecord, DyckManifest, DyckShardRecord
from generator.format import Acceptance, Environment, FormatRecord, GeneratorLineage, Manifest, ShardRecord, Totals
from trainer.corpus.format import (CorpusFormat, CorpusManifest, PrepareConfig, SourceRecord, TokenizerRecord,
                                   ValidationRecord)

KIND_DESCRIPTION = ("What the entry holds: 'nca-shards' (NCA sequences in Arrow shards), 'token-corpus', or 'dyck' "
                    "(k-Dyck bracket sequences in Arrow shards, the paper's Dyck baseline).")


class ApiModel(BaseModel):
    """Base of every response document: immutable, and no field beyond those declared."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Health(ApiModel):
    status: Literal["ok"] = Field(description="Always 'ok' while the process answers.")


class ErrorDetail(ApiModel):
    """FastAPI's error shape, for every error but 422 (which lists each invalid parameter)."""

    detail: str = Field(description="What went wrong and, where there is one, what to do instead.")


class DatasetLinks(ApiModel):
    self: str = Field(description="This dataset's summary.")
    shards: str = Field(description="Its shard list.")
    manifest: str = Field(description="Its manifest.json, byte for byte.")
    histogram: str = Field(description="Its candidate-ratio histogram (PNG).")
    rows: str = Field(description="URL template of one row: replace {index} with a global row index.")
    first_row: str | None = Field(description="Row 0 as JSON; null when the dataset has no rows.")
    first_preview: str | None = Field(description="Row 0 as a PNG strip; null when the dataset has no rows.")


class DatasetItem(ApiModel):
    """One entry of the dataset list: enough to choose a dataset without fetching its summary."""

    id: str = Field(description="Dataset id, the dataset's folder name and its key in every URL.")
    kind: Literal["nca-shards"] = Field("nca-shards", description=KIND_DESCRIPTION)
    band: Band = Field(description="Complexity band: rows have lo < gzip ratio < hi.")
    rows: int = Field(description="Sequences in the dataset.")
    tokens: int = Field(description="Tokens stored: rows x tokens per sequence.")
    shards: int = Field(description="Shard files.")
    bytes: int = Field(description="Bytes of all shard files.")
    seed: int = Field(description="Dataset seed: every random draw derives from (seed, rule, trajectory).")
    generator: GeneratorLineage = Field(description="Which code made the dataset.")
    acceptance_rate: float = Field(description="Share of candidate rules the band kept.")
    links: DatasetLinks


class DatasetSummary(ApiModel):
    """The manifest without its shard list (paged separately), with lineage and links."""

    id: str = Field(description="Dataset id (the folder name).")
    kind: Literal["nca-shards"] = Field("nca-shards", description=KIND_DESCRIPTION)
    dataset_id: str = Field(description="The id the manifest records; equal to id.")
    band: Band = Field(description="Complexity band: rows have lo < gzip ratio < hi.")
    lineage: GeneratorLineage = Field(description="Which code made the dataset.")
    format: FormatRecord
    config: dict[str, Any] = Field(description="The resolved dataset config that decided the bytes.")
    seed_scheme: dict[str, Any] = Field(description="How every random draw derives from (seed, rule, trajectory).")
    complexity: dict[str, Any] = Field(description="The exact gzip complexity definition.")
    sharding: str = Field(description="How candidate rule ids map to shards.")
    totals: Totals
    acceptance: Acceptance = Field(description="Candidates scored and kept, with the histogram of every ratio.")
    environment: Environment
    links: DatasetLinks


class ShardItem(ShardRecord):
    """One shard of a dataset as its manifest records it, with its place among the rows and its URL."""

    first_row: int = Field(description="Global index of its first row: rows count through the shards in order.")
    url: str = Field(description="Where to GET its bytes (Range supported).")


class PageLinks(ApiModel):
    self: str = Field(description="This page.")
    next: str | None = Field(description="The next page, same filters; null on the last page.")
    prev: str | None = Field(description="The previous page, same filters; null on the first page.")


class Page(ApiModel):
    """One page of a list: `items` holds up to `limit` entries from `offset` on."""

    total: int = Field(description="Entries matching the filters, on all pages.")
    offset: int = Field(description="Index of the first entry of this page.")
    limit: int = Field(description="Entries per page.")
    items: list = Field(description="The entries of this page.")
    links: PageLinks


class CorpusLinks(ApiModel):
    self: str = Field(description="This corpus's summary.")
    shards: str = Field(description="Its files, train.bin and validation.bin.")
    manifest: str = Field(description="Its manifest.json, byte for byte: with the files, a complete corpus folder.")


class CorpusItem(ApiModel):
    """One token corpus in the dataset list: enough to choose it without fetching its summary."""

    id: str = Field(description="Corpus id, the corpus's folder name and its key in every URL.")
    kind: Literal["token-corpus"] = Field("token-corpus", description=KIND_DESCRIPTION)
    documents: int = Field(description="Documents in both splits.")
    tokens: int = Field(description="Tokens stored in both splits, one end-of-text token per document included.")
    shards: int = Field(description="Token files (train.bin, validation.bin); served where a dataset's shards are.")
    bytes: int = Field(description="Bytes of the token files.")
    tokenizer: str = Field(description="Tokenizer name (gpt2).")
    source: str = Field(description="Kind of source the documents came from (text, jsonl, jsonl.zst, parquet, stdlib).")
    ncaforge: str = Field(description="ncaforge version that prepared it.")
    links: CorpusLinks


class CorpusTotals(ApiModel):
    documents: int = Field(description="Documents in both splits.")
    tokens: int = Field(description="Tokens in both splits.")
    text_bytes: int = Field(description="UTF-8 bytes of the documents' text.")
    files: int = Field(description="Token files.")
    bytes: int = Field(description="Bytes of the token files.")


class CorpusSummary(ApiModel):
    """A token corpus's manifest without its file records (listed by the shards endpoint), with totals and links."""

    id: str = Field(description="Corpus id (the folder name).")
    kind: Literal["token-corpus"] = Field("token-corpus", description=KIND_DESCRIPTION)
    corpus_id: str = Field(description="The id the manifest records; equal to id.")
    format: CorpusFormat
    ncaforge: str = Field(description="ncaforge version that prepared it.")
    source: SourceRecord
    tokenizer: TokenizerRecord
    validation: ValidationRecord
    config: PrepareConfig
    totals: CorpusTotals
    links: CorpusLinks


class CorpusFileItem(ApiModel):
    """One token file of a corpus, in the shape of a shard item: name, bytes, sha256, url."""

    name: str = Field(description="File name: train.bin or validation.bin.")
    split: Literal["train", "validation"] = Field(description="The split the file holds.")
    documents: int = Field(description="Documents in the split.")
    tokens: int = Field(description="Tokens in the file (uint16, little-endian).")
    text_bytes: int = Field(description="UTF-8 bytes of the documents' text (for bits per byte).")
    bytes: int = Field(description="File size: 2 x tokens.")
    sha256: str = Field(description="sha256 of the file's bytes, lowercase hex; its ETag.")
    url: str = Field(description="Where to GET its bytes (Range supported).")


class DyckLinks(ApiModel):
    self: str = Field(description="This dataset's summary.")
    shards: str = Field(description="Its shard list.")
    manifest: str = Field(description="Its manifest.json, byte for byte.")
    rows: str = Field(description="URL template of one row: replace {index} with a global row index.")
    first_row: str | None = Field(description="Row 0 as JSON; null when the dataset has no rows.")
    first_preview: str | None = Field(description="Row 0's depth profile as a PNG; null when the dataset has no rows.")


class DyckItem(ApiModel):
    """A Dyck dataset in the dataset list: enough to choose it without fetching its summary."""

    id: str = Field(description="Dataset id, the dataset's folder name and its key in every URL.")
    kind: Literal["dyck"] = Field("dyck", description=KIND_DESCRIPTION)
    rows: int = Field(description="Sequences in the dataset.")
    tokens: int = Field(description="Tokens stored: rows x tokens per sequence.")
    shards: int = Field(description="Shard files.")
    bytes: int = Field(description="Bytes of all shard files.")
    seed: int = Field(description="Dataset seed: every draw derives from (seed, sequence id, position).")
    pairs: int = Field(description="Bracket pairs k; the vocabulary is 2k.")
    max_depth: int = Field(description="Each word's depth limit is drawn from 1..max_depth.")
    p_open: float = Field(description="Probability of opening a bracket below the limit.")
    generator: GeneratorLineage = Field(description="Which code made the dataset.")
    links: DyckLinks


class DyckSummary(ApiModel):
    """A Dyck dataset's manifest without its shard list (paged separately), with lineage and links."""

    id: str = Field(description="Dataset id (the folder name).")
    kind: Literal["dyck"] = Field("dyck", description=KIND_DESCRIPTION)
    dataset_id: str = Field(description="The id the manifest records; equal to id.")
    lineage: GeneratorLineage = Field(description="Which code made the dataset.")
    format: DyckFormatRecord
    config: dict[str, Any] = Field(description="The resolved Dyck config that decided the bytes.")
    seed_scheme: dict[str, Any] = Field(description="How every draw derives from (seed, sequence id, position).")
    sharding: str = Field(description="How sequence ids map to shards.")
    totals: Totals
    environment: DyckEnvironment
    links: DyckLinks


class DyckShardItem(DyckShardRecord):
    """One shard of a Dyck dataset as its manifest records it, with its place among the rows and its URL."""

    first_row: int = Field(description="Global index of its first row: rows count through the shards in order.")
    url: str = Field(description="Where to GET its bytes (Range supported).")


class DatasetPage(Page):
    items: list[Annotated[DatasetItem | DyckItem | CorpusItem, Field(discriminator="kind")]] = Field(
        description="The datasets and corpora of this page, sorted by id; `kind` tells them apart.")


class ShardPage(Page):
    items: list[ShardItem] = Field(description="The shards of this page, in manifest order.")


class DyckShardPage(Page):
    items: list[DyckShardItem] = Field(description="The Dyck dataset's shards of this page, in manifest order.")


class CorpusFilePage(Page):
    items: list[CorpusFileItem] = Field(description="The corpus's files of this page: train.bin, validation.bin.")


class AnySummary(RootModel[Annotated[DatasetSummary | DyckSummary | CorpusSummary, Field(discriminator="kind")]]):
    """GET /v1/datasets/{id}: a DatasetSummary for NCA shards, a DyckSummary for a Dyck dataset, a CorpusSummary
    for a token corpus (see `kind`)."""


class AnyShardPage(RootModel[ShardPage | DyckShardPage | CorpusFilePage]):
    """GET /v1/datasets/{id}/shards: a ShardPage for NCA shards, a DyckShardPage for a Dyck dataset's, a
    CorpusFilePage for a token corpus's files."""


class AnyManifest(RootModel[Manifest | DyckManifest | CorpusManifest]):
    """A manifest.json as written: a Manifest (format ncaforge-nca-shards), a DyckManifest (format
    ncaforge-dyck-shards) or a CorpusManifest (format ncaforge-token-corpus)."""


class RowLocation(ApiModel):
    """Where a row of a dataset of Arrow shards, NCA or Dyck, was read: each kind's record adds its columns."""

    dataset_id: str = Field(description="Dataset id.")
    index: int = Field(description="Global row index.")
    shard: str = Field(description="Shard file holding the row.")
    row_in_shard: int = Field(description="Row number inside that shard.")


class RowRecord(RowLocation):
    """One row (sequence) of a dataset, read from its shard."""

    rule_id: int = Field(description="The rule that made the trajectory.")
    trajectory_id: int = Field(description="Which trajectory of that rule.")
    ratio: float = Field(description="The rule's gzip ratio.")
    tokens: list[int] = Field(description="The sequence: 27 frames of 10000, 36 patch tokens, 10001.")


class DyckRowRecord(RowLocation):
    """One row (sequence) of a Dyck dataset, read from its shard."""

    sequence_id: int = Field(description="The sequence's id: its draws derive from (seed, sequence id, position).")
    tokens: list[int] = Field(description="The sequence: pair i opens with token i and closes with token pairs + i.")


class AnyRow(RootModel[RowRecord | DyckRowRecord]):
    """GET /v1/datasets/{id}/rows/{index}: a RowRecord for an NCA dataset, a DyckRowRecord for a Dyck dataset."""
