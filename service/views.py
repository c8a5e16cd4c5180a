"""Manifests turned into the documents the API returns (service.schemas), and the list filters.

The manifest is already the full record of a dataset; the views reorganise it for
a reader (lineage together, totals together, the shard list on its own pages) and
add links, so a client navigates by URL instead of assembling paths.
"""

from fastapi import Request

from generator.bands import Band
from generator.format import ShardRecord
from service.catalog import Dataset
from service.schemas import DatasetItem, DatasetLinks, DatasetSummary, ShardItem

SUMMARY_SECTIONS = ("format", "config", "seed_scheme", "complexity", "sharding", "totals", "acceptance", "environment")
"""Manifest sections the summary repeats as they are."""


def url(request: Request, route: str, **params) -> str:
    return str(request.url_for(route, **params))


def dataset_links(request: Request, dataset: Dataset) -> DatasetLinks:
    first_row = {"dataset_id": dataset.id, "index": 0}
    summary = url(request, "dataset_summary", dataset_id=dataset.id)
    return DatasetLinks(
        self=summary,
        shards=url(request, "shard_list", dataset_id=dataset.id),
        histogram=url(request, "histogram_png", dataset_id=dataset.id),
        rows=summary + "/rows/{index}",
        first_row=url(request, "row_json", **first_row) if dataset.rows else None,
        first_preview=url(request, "row_preview_png", **first_row) if dataset.rows else None,
    )


def dataset_item(request: Request, dataset: Dataset) -> DatasetItem:
    """One entry of GET /v1/datasets: enough to choose a dataset without fetching its summary."""
    manifest = dataset.manifest
    return DatasetItem(
        id=dataset.id,
        band=manifest.band,
        rows=manifest.totals.rows,
        tokens=manifest.totals.tokens,
        shards=manifest.totals.shards,
        bytes=manifest.totals.bytes,
        seed=dataset.config.generator.seed,
        generator=manifest.generator,
        acceptance_rate=manifest.acceptance.acceptance_rate,
        links=dataset_links(request, dataset),
    )


def dataset_summary(request: Request, dataset: Dataset) -> DatasetSummary:
    """GET /v1/datasets/{id}: the manifest without its shard list (paged separately), plus lineage
    and links. acceptance.histogram holds the candidate-ratio histogram as numbers (edges, counts)."""
    manifest = dataset.manifest
    return DatasetSummary(
        id=dataset.id,
        dataset_id=manifest.dataset_id,
        band=manifest.band,
        lineage=manifest.generator,
        **{section: getattr(manifest, section) for section in SUMMARY_SECTIONS},
        links=dataset_links(request, dataset),
    )


def shard_item(request: Request, dataset: Dataset, position: int) -> ShardItem:
    """One entry of GET /v1/datasets/{id}/shards; first_row is the global index of its first row."""
    entry = dataset.shards[position]
    return ShardItem(**dict(entry), first_row=dataset.row_starts[position],
                     url=url(request, "shard_bytes", dataset_id=dataset.id, name=entry.name))


def dataset_matches(dataset: Dataset, band: Band | None, min_ratio: float, max_ratio: float,
                    generator_version: str | None, min_tokens: int) -> bool:
    """The /v1/datasets filters: same band (by bounds, so aliases and LO-HI match names), band
    inside [min_ratio, max_ratio], exact generator version, at least min_tokens tokens."""
    manifest = dataset.manifest
    lo, hi = manifest.band.lo, manifest.band.hi
    if band is not None and (abs(band.lo - lo) > 1e-9 or abs(band.hi - hi) > 1e-9):
        return False
    if lo < min_ratio or hi > max_ratio:
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
