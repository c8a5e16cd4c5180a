"""The metadata endpoints: which datasets exist, what each one is, and its shards.

Filters that FastAPI cannot check alone (a band name, min_ratio > max_ratio) answer
422 in FastAPI's own validation format, so clients parse one error shape.
"""

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from generator.bands import CHOICES, parse_band
from generator.errors import ConfigError
from service.catalog import Catalog
from service.paging import LimitQuery, OffsetQuery, page
from service.schemas import DatasetPage, DatasetSummary, ErrorDetail, ShardPage
from service.views import dataset_item, dataset_matches, dataset_summary, shard_item, shard_overlaps

router = APIRouter(prefix="/v1", tags=["catalog"])

NOT_FOUND = {404: {"model": ErrorDetail, "description": "No such dataset, shard, row or file in the catalog."}}

DatasetIdPath = Path(description="Dataset id: the dataset's folder name, e.g. high-3000-8ec9d4e538f8.")


def catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def unprocessable(parameter: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", parameter), "msg": message, "type": "value_error"}])


def check_ratio_range(min_ratio: float | None, max_ratio: float | None) -> None:
    if min_ratio is not None and max_ratio is not None and min_ratio > max_ratio:
        raise unprocessable("min_ratio", f"min_ratio={min_ratio} is above max_ratio={max_ratio}: swap them")


@router.get("/datasets", name="dataset_list")
def list_datasets(
    request: Request,
    band: str | None = Query(None, description=f"Only datasets made in this band: {CHOICES}. "
                                               "Matched by bounds, so 'web' and '0.5-1' both find 'high' datasets."),
    min_ratio: float = Query(0.0, ge=0, le=1, description="Only datasets whose band lies within "
                             "[min_ratio, max_ratio]: band.lo >= min_ratio and band.hi <= max_ratio."),
    max_ratio: float = Query(1.0, ge=0, le=1, description="Upper end of the ratio range (see min_ratio)."),
    generator_version: str | None = Query(None, description="Only datasets made by this generator version, e.g. 0.1.0."),
    min_tokens: int = Query(0, ge=0, description="Only datasets holding at least this many tokens."),
    offset: int = OffsetQuery,
    limit: int = LimitQuery,
    datasets: Catalog = Depends(catalog),
) -> DatasetPage:
    """Finished datasets (manifest written), sorted by id, filtered, one page at a time.
    A dataset still being written is not listed; one that appears shows up on the next request."""
    check_ratio_range(min_ratio, max_ratio)
    try:
        wanted_band = parse_band(band) if band is not None else None
    except ConfigError as error:
        raise unprocessable("band", str(error)) from None
    found = [d for d in datasets.datasets() if dataset_matches(d, wanted_band, min_ratio, max_ratio, generator_version, min_tokens)]
    return page(DatasetPage, found, offset, limit, request, lambda dataset: dataset_item(request, dataset))


@router.get("/datasets/{dataset_id}", name="dataset_summary", responses=NOT_FOUND)
def get_dataset(request: Request, dataset_id: str = DatasetIdPath, datasets: Catalog = Depends(catalog)) -> DatasetSummary:
    """The manifest summary: band, lineage (generator version, git commit, dirty tree), config, seed scheme,
    complexity definition, totals, acceptance statistics with the candidate-ratio histogram as numbers
    (acceptance.histogram.edges and counts), format, environment, and links to the shards, histogram and rows."""
    return dataset_summary(request, datasets.dataset(dataset_id))


@router.get("/datasets/{dataset_id}/shards", name="shard_list", responses=NOT_FOUND)
def list_shards(
    request: Request,
    dataset_id: str = DatasetIdPath,
    min_ratio: float | None = Query(None, ge=0, le=1, description="Only shards whose [ratio_min, ratio_max] "
                                    "overlaps [min_ratio, max_ratio]. With a range, shards without rows are left out."),
    max_ratio: float | None = Query(None, ge=0, le=1, description="Upper end of the ratio range (see min_ratio)."),
    offset: int = OffsetQuery,
    limit: int = LimitQuery,
    datasets: Catalog = Depends(catalog),
) -> ShardPage:
    """The dataset's shards in manifest order: name, rows, first_row (global index of its first row),
    tokens, bytes, sha256, ratio range, candidate rule-id range and download URL."""
    check_ratio_range(min_ratio, max_ratio)
    dataset = datasets.dataset(dataset_id)
    positions = [i for i, entry in enumerate(dataset.shards) if shard_overlaps(entry, min_ratio, max_ratio)]
    return page(ShardPage, positions, offset, limit, request, lambda position: shard_item(request, dataset, position))
