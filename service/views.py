"""Manifests turned into the documents the API returns (service.schemas), and the list filters.

The manifest is already the full record of a dataset; the views reorganise it for
a reader (lineage together, totals together, the shard list on its own pages) and
add links, so a client navigates by URL instead of assembling paths. A Dyck dataset
(DyckItem, DyckSummary, DyckShardItem) and a token corpus (CorpusItem, CorpusSummary,
CorpusFileItem) get their own documents from their manifests.
"""

from fastapi import Request

from generator.bands import Band
from generator.format import ShardRecord, ShardsManifest
from service.catalog import Dataset, DyckDataset, ShardedDataset
from service.corpora import Corpus
from service.schemas import (ApiModel, CorpusFileItem, CorpusItem, CorpusLinks, CorpusSummary, CorpusTotals,
                             DatasetItem, DatasetLinks, DatasetSummary, DyckItem, DyckLinks, DyckShardItem, DyckSummary,
                             ShardItem)


def url(request: Request, route: str, **params) -> str:
    return str(request.url_for(route, **params))


def shard_links(request: Request, dataset: ShardedDataset) -> dict:
    """The links every dataset of Arrow shards has, NCA or Dyck: its summary, shard list, manifest and rows."""
    first_row = {"dataset_id": dataset.id, "index": 0}
    summary = url(request, "dataset_summary", dataset_id=dataset.id)
    return dict(
        self=summary,
        shards=url(request, "shard_list", dataset_id=dataset.id),
        manifest=url(request, "manifest_json", dataset_id=dataset.id),
        rows=summary + "/rows/{index}",
        first_row=url(request, "row_json", **first_row) if dataset.rows else None,
        first_preview=url(request, "row_preview_png", **first_row) if dataset.rows else None,
    )


def manifest_sections(summary: type[ApiModel], manifest: ShardsManifest) -> dict:
    """The manifest's sections a summary repeats as they are: those it names alike (dataset_id, format, totals ...)."""
    return {name: getattr(manifest, name) for name in summary.model_fields if name in type(manifest).model_fields}


def dataset_links(request: Request, dataset: Dataset) -> DatasetLinks:
    return DatasetLinks(**shard_links(request, dataset), histogram=url(request, "histogram_png", dataset_id=dataset.id))


def dataset_item(request: Request, dataset: Dataset) -> DatasetItem:
    """One entry of GET /v1/datasets: enough to choose a dataset without fetching its summary."""
    manifest = dataset.manifest
    return DatasetItem(id=dataset.id, band=manifest.band, **dict(manifest.totals), seed=dataset.config.generator.seed,
                       generator=manifest.generator, acceptance_rate=manifest.acceptance.acceptance_rate,
                       links=dataset_links(request, dataset))


def dataset_summary(request: Request, dataset: Dataset) -> DatasetSummary:
    """GET /v1/datasets/{id}: the manifest without its shard list (paged separately), plus lineage
    and links. acceptance.histogram holds the candidate-ratio histogram as numbers (edges, counts)."""
    manifest = dataset.manifest
    return DatasetSummary(id=dataset.id, lineage=manifest.generator, **manifest_sections(DatasetSummary, manifest),
                          links=dataset_links(request, dataset))


def dyck_item(request: Request, dataset: DyckDataset) -> DyckItem:
    """A Dyck dataset's entry of GET /v1/datasets."""
    manifest, config = dataset.manifest, dataset.config
    return DyckItem(id=dataset.id, **dict(manifest.totals), seed=config.seed, pairs=config.pairs,
                    max_depth=config.max_depth, p_open=config.p_open, generator=manifest.generator,
                    links=DyckLinks(**shard_links(request, dataset)))


def dyck_summary(request: Request, dataset: DyckDataset) -> DyckSummary:
    """GET /v1/datasets/{id} of a Dyck dataset: its manifest without the shard list, with links."""
    manifest = dataset.manifest
    return DyckSummary(id=dataset.id, lineage=manifest.generator, **manifest_sections(DyckSummary, manifest),
                       links=DyckLinks(**shard_links(request, dataset)))


def shard_item(request: Request, dataset: Dataset | DyckDataset, position: int) -> ShardItem | DyckShardItem:
    """One entry of GET /v1/datasets/{id}/shards, as its manifest records it; first_row is the global index of its
    first row."""
    entry = dataset.shards[position]
    item = DyckShardItem if isinstance(dataset, DyckDataset) else ShardItem
    return item(**dict(entry), first_row=dataset.row_starts[position],
                url=url(request, "shard_bytes", dataset_id=dataset.id, name=entry.name))


def corpus_links(request: Request, corpus: Corpus) -> CorpusLinks:
    return CorpusLinks(self=url(request, "dataset_summary", dataset_id=corpus.id),
                       shards=url(request, "shard_list", dataset_id=corpus.id),
                       manifest=url(request, "manifest_json", dataset_id=corpus.id))


def corpus_totals(corpus: Corpus) -> CorpusTotals:
    files = corpus.files
    return CorpusTotals(documents=sum(f.documents for f in files), tokens=corpus.tokens,
                        text_bytes=sum(f.text_bytes for f in files), files=len(files), bytes=sum(f.bytes for f in files))


def corpus_item(request: Request, corpus: Corpus) -> CorpusItem:
    """A token corpus's entry of GET /v1/datasets."""
    manifest, totals = corpus.manifest, corpus_totals(corpus)
    return CorpusItem(id=corpus.id, documents=totals.documents, tokens=totals.tokens, shards=totals.files,
                      bytes=totals.bytes, tokenizer=manifest.tokenizer.name, source=manifest.source.kind,
                      ncaforge=manifest.ncaforge, links=corpus_links(request, corpus))


def corpus_summary(request: Request, corpus: Corpus) -> CorpusSummary:
    """GET /v1/datasets/{id} of a token corpus: its manifest without the file records, with totals and links."""
    manifest = corpus.manifest
    return CorpusSummary(id=corpus.id, corpus_id=manifest.corpus_id, format=manifest.format, ncaforge=manifest.ncaforge,
                         source=manifest.source, tokenizer=manifest.tokenizer, validation=manifest.validation,
                         config=manifest.config, totals=corpus_totals(corpus), links=corpus_links(request, corpus))


def corpus_file_item(request: Request, corpus: Corpus, split: str) -> CorpusFileItem:
    """One entry of GET /v1/datasets/{id}/shards for a token corpus."""
    record = corpus.manifest.split(split)
    return CorpusFileItem(name=record.file, split=split, documents=record.documents, tokens=record.tokens,
                          text_bytes=record.text_bytes, bytes=record.bytes, sha256=record.sha256,
                          url=url(request, "shard_bytes", dataset_id=corpus.id, name=record.file))


def entry_item(request: Request, entry: Dataset | DyckDataset | Corpus) -> DatasetItem | DyckItem | CorpusItem:
    if isinstance(entry, Corpus):
        return corpus_item(request, entry)
    if isinstance(entry, DyckDataset):
        return dyck_item(request, entry)
    return dataset_item(request, entry)


def entry_matches(entry: Dataset | DyckDataset | Corpus, kind: str | None, band: Band | None, min_ratio: float | None,
                  max_ratio: float | None, generator_version: str | None, min_tokens: int) -> bool:
    """The /v1/datasets filters: the kind; same band (by bounds, so aliases and LO-HI match names), band
    inside [min_ratio, max_ratio] (unset: [0, 1]), exact generator version, at least min_tokens tokens.
    A token corpus or a Dyck dataset has no band, so any band filter leaves it out; a corpus's version is
    the ncaforge that prepared it."""
    if kind is not None and entry.kind != kind:
        return False
    if isinstance(entry, (Corpus, DyckDataset)):
        unbanded = band is None and min_ratio is None and max_ratio is None
        version = entry.manifest.ncaforge if isinstance(entry, Corpus) else entry.manifest.generator.version
        tokens = entry.tokens if isinstance(entry, Corpus) else entry.manifest.totals.tokens
        return unbanded and generator_version in (None, version) and tokens >= min_tokens
    manifest = entry.manifest
    lo, hi = manifest.band.lo, manifest.band.hi
    if band is not None and (abs(band.lo - lo) > 1e-9 or abs(band.hi - hi) > 1e-9):
        return False
    if lo < (min_ratio or 0.0) or hi > (1.0 if max_ratio is None else max_ratio):
        return False
    if generator_version is not None and manifest.generator.version != generator_version:
        return False
    return manifest.totals.tokens >= min_tokens


def shard_overlaps(entry: ShardRecord, min_ratio: float | None, max_ratio: float | None) -> bool:
    """The shard-list ratio filter: the shard's [ratio_min, ratio_max] overlaps the requested range.
    Without a range every shard matches; with one, a shard without rows (no ratios) does not."""
    if min_ratio is None and max_ratio is None:
        return True
    if entry.ratio_min is None or entry.ratio_max is None:
        return False
    return entry.ratio_max >= (min_ratio or 0.0) and entry.ratio_min <= (1.0 if max_ratio is None else max_ratio)
