"""Manifests turned into the JSON the API returns, and the filters of the list endpoints.

The manifest is already the full record of a dataset; the views reorganise it for
a reader (lineage together, totals together, the shard list on its own pages) and
add links, so a client navigates by URL instead of assembling paths.
"""

from fastapi import Request

from service.catalog import Dataset

SUMMARY_SECTIONS = ("format", "config", "seed_scheme", "complexity", "sharding", "totals", "acceptance", "environment")


def url(request: Request, route: str, **params) -> str:
    return str(request.url_for(route, **params))


def lineage(manifest: dict) -> dict:
    """Which generator made the dataset: name, version, git commit and whether its tree was dirty."""
    generator = manifest["generator"]
    return {key: generator.get(key) for key in ("name", "version", "git_commit", "git_dirty")}


def dataset_links(request: Request, dataset: Dataset) -> dict:
    first_row = {"dataset_id": dataset.id, "index": 0}
    links = {
        "self": url(request, "dataset_summary", dataset_id=dataset.id),
        "shards": url(request, "shard_list", dataset_id=dataset.id),
        "histogram": url(request, "histogram_png", dataset_id=dataset.id),
        "rows": url(request, "dataset_summary", dataset_id=dataset.id) + "/rows/{index}",
    }
    if dataset.rows:
        links["first_row"] = url(request, "row_json", **first_row)
        links["first_preview"] = url(request, "row_preview_png", **first_row)
    return links


def dataset_item(request: Request, dataset: Dataset) -> dict:
    """One entry of GET /v1/datasets: enough to choose a dataset without fetching its summary."""
    manifest = dataset.manifest
    return {
        "id": dataset.id,
        "band": manifest["band"],
        **{key: manifest["totals"][key] for key in ("rows", "tokens", "shards", "bytes")},
        "seed": manifest["config"].get("generator", {}).get("seed"),
        "generator": lineage(manifest),
        "acceptance_rate": manifest["acceptance"].get("acceptance_rate"),
        "links": dataset_links(request, dataset),
    }


def dataset_summary(request: Request, dataset: Dataset) -> dict:
    """GET /v1/datasets/{id}: the manifest without its shard list (paged separately), plus lineage
    and links. acceptance.histogram holds the candidate-ratio histogram as numbers (edges, counts)."""
    manifest = dataset.manifest
    return {
        "id": dataset.id,
        "dataset_id": manifest.get("dataset_id", dataset.id),
        "band": manifest["band"],
        "lineage": lineage(manifest),
        **{section: manifest.get(section) for section in SUMMARY_SECTIONS},
        "links": dataset_links(request, dataset),
    }


def shard_item(request: Request, dataset: Dataset, position: int) -> dict:
    """One entry of GET /v1/datasets/{id}/shards; first_row is the global index of its first row."""
    entry = dataset.shards[position]
    fields = ("index", "name", "rows", "tokens", "bytes", "sha256", "ratio_min", "ratio_mean", "ratio_max",
              "first_rule_id", "stop_rule_id")
    return {
        **{key: entry.get(key) for key in fields},
        "first_row": dataset.row_starts[position],
        "url": url(request, "shard_bytes", dataset_id=dataset.id, name=entry["name"]),
    }


def dataset_matches(dataset: Dataset, band, min_ratio: float, max_ratio: float,
                    generator_version: str | None, min_tokens: int) -> bool:
    """The /v1/datasets filters: same band (by bounds, so aliases and LO-HI match names), band
    inside [min_ratio, max_ratio], exact generator version, at least min_tokens tokens."""
    manifest = dataset.manifest
    lo, hi = manifest["band"]["lo"], manifest["band"]["hi"]
    if band is not None and (abs(band.lo - lo) > 1e-9 or abs(band.hi - hi) > 1e-9):
        return False
    if lo < min_ratio or hi > max_ratio:
        return False
    if generator_version is not None and manifest["generator"].get("version") != generator_version:
        return False
    return manifest["totals"]["tokens"] >= min_tokens


def shard_overlaps(entry: dict, min_ratio: float | None, max_ratio: float | None) -> bool:
    """The shard-list ratio filter: the shard's [ratio_min, ratio_max] overlaps the requested range.
    Without a range every shard matches; with one, a shard without rows (no ratios) does not."""
    if min_ratio is None and max_ratio is None:
        return True
    if entry.get("ratio_min") is None or entry.get("ratio_max") is None:
        return False
    return entry["ratio_max"] >= (min_ratio or 0.0) and entry["ratio_min"] <= (1.0 if max_ratio is None else max_ratio)
