"""The metadata endpoints: which datasets exist, what each one is, and its shards.

A token corpus is an entry like a dataset: listed with kind 'token-corpus', summarised
by a CorpusSummary, its two token files listed where a dataset's shards are. A Dyck
dataset (kind 'dyck') has shards and rows like an NCA dataset, but no band or ratios.

Filters that FastAPI cannot check alone (a band name, min_ratio > max_ratio) answer
422 in FastAPI's own validation format, so clients parse one error shape.
"""

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from generator.bands import CHOICES, parse_band
from generator.errors import ConfigError
from service.catalog import Catalog, DyckDataset
from service.corpora import Corpus, Kind
from service.paging import LimitQuery, OffsetQuery, page
from service.schemas import (AnyShardPage, AnySummary, CorpusFilePage, DatasetPage, DyckShardPage, ErrorDetail,
                             ShardPage)
from service.views import (corpus_file_item, corpus_summary, dataset_summary, dyck_summary, entry_item, entry_matches,
                           shard_item, shard_overlaps)
from trainer.corpus.format import SPLITS

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
    kind: Kind | None = Query(None, description="Only entries of this kind: 'nca-shards' (NCA datasets), "
                                                "'token-corpus' (prepared token corpora) or 'dyck' (Dyck datasets)."),
    band: str | None = Query(None, description=f"Only datasets made in this band: {CHOICES}. "
                                               "Matched by bounds, so 'web' and '0.5-1' both find 'high' datasets. "
                                               "A token corpus or a Dyck dataset has no band: any band or ratio "
                                               "filter leaves them out."),
    min_ratio: float | None = Query(None, ge=0, le=1, description="Only datasets whose band lies within "
                                    "[min_ratio, max_ratio]: band.lo >= min_ratio and band.hi <= max_ratio (unset: 0)."),
    max_ratio: float | None = Query(None, ge=0, le=1, description="Upper end of the ratio range (see min_ratio; unset: 1)."),
    generator_version: str | None = Query(None, description="Only entries made by this ncaforge version, e.g. 0.1.0 "
                                                            "(for a corpus, the version that prepared it)."),
    min_tokens: int = Query(0, ge=0, description="Only entries holding at least this many tokens."),
    offset: int = OffsetQuery,
    limit: int = LimitQuery,
    datasets: Catalog = Depends(catalog),
) -> DatasetPage:
    """Finished datasets and token corpora (manifest written), sorted by id, filtered, one page at a time;
    each item's `kind` says which. One still being written is not listed; one that appears shows up on
    the next request."""
    check_ratio_range(min_ratio, max_ratio)
    try:
        wanted_band = parse_band(band) if band is not None else None
    except ConfigError as error:
        raise unprocessable("band", str(error)) from None
    found = [entry for entry in datasets.datasets()
             if entry_matches(entry, kind, wanted_band, min_ratio, max_ratio, generator_version, min_tokens)]
    return page(DatasetPage, found, offset, limit, request, lambda entry: entry_item(request, entry))


@router.get("/datasets/{dataset_id}", name="dataset_summary", responses=NOT_FOUND)
def get_dataset(request: Request, dataset_id: str = DatasetIdPath, datasets: Catalog = Depends(catalog)) -> AnySummary:
    """The manifest summary of an NCA dataset (kind 'nca-shards'): band, lineage (generator version, git commit,
    dirty tree), config, seed scheme, complexity definition, totals, acceptance statistics with the
    candidate-ratio histogram as numbers (acceptance.histogram.edges and counts), format, environment, and links
    to the shards, manifest, histogram and rows. Of a Dyck dataset (kind 'dyck'): lineage, format, config, seed
    scheme, totals, environment and links. Of a token corpus (kind 'token-corpus'): its format, source,
    tokenizer, validation rule, prepare config, totals and links to its files and manifest."""
    entry = datasets.dataset(dataset_id)
    summarise = (corpus_summary if isinstance(entry, Corpus) else dyck_summary if isinstance(entry, DyckDataset)
                 else dataset_summary)
    return AnySummary(summarise(request, entry))


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
) -> AnyShardPage:
    """The dataset's shards in manifest order: name, rows, first_row (global index of its first row),
    tokens, bytes, sha256, ratio range, candidate rule-id range and download URL. For a Dyck dataset: name,
    rows, first_row, first sequence id, tokens, bytes, sha256 and download URL. For a token corpus, its
    files train.bin and validation.bin: name, split, documents, tokens, bytes, sha256 and download URL.
    Dyck shards and corpus files have no ratios, so a ratio range lists none of them."""
    check_ratio_range(min_ratio, max_ratio)
    entry = datasets.dataset(dataset_id)
    unranged = min_ratio is None and max_ratio is None
    if isinstance(entry, Corpus):
        splits = list(SPLITS) if unranged else []
        return AnyShardPage(page(CorpusFilePage, splits, offset, limit, request,
                                 lambda split: corpus_file_item(request, entry, split)))
    if isinstance(entry, DyckDataset):
        positions = list(range(len(entry.shards))) if unranged else []
        return AnyShardPage(page(DyckShardPage, positions, offset, limit, request,
                                 lambda position: shard_item(request, entry, position)))
    positions = [i for i, shard in enumerate(entry.shards) if shard_overlaps(shard, min_ratio, max_ratio)]
    return AnyShardPage(page(ShardPage, positions, offset, limit, request,
                             lambda position: shard_item(request, entry, position)))
