"""The data endpoints: shard bytes, single rows, previews of a row, and the histogram picture.

Handlers are plain functions, so FastAPI runs them in its thread pool: file reads,
zstd decompression and image encoding never block the event loop. Binary answers
declare their media type in `responses`, so /openapi.json says what each one sends.
"""

import hashlib

from fastapi import APIRouter, Depends, Path, Request, Response

from generator.format import HISTOGRAM_NAME, ShardRecord
from service.catalog import Catalog, Dataset, FileUnreadable
from service.downloads import CACHE_CONTROL, file_response, not_modified
from service.pictures import animation_gif, frames_of, strip_png
from service.routes_catalog import NOT_FOUND, DatasetIdPath, catalog
from service.rows import read_row
from service.schemas import ErrorDetail, RowRecord

router = APIRouter(prefix="/v1/datasets/{dataset_id}", tags=["data"])

ARROW_FILE_MEDIA_TYPE = "application/vnd.apache.arrow.file"
RowIndexPath = Path(ge=0, description="Global row index: rows count through the shards in manifest order.")
ShardNamePath = Path(description="Shard file name as listed by the shards endpoint, e.g. part-00000.arrow.")

UNREADABLE = {500: {"model": ErrorDetail, "description": "A file the manifest lists cannot be read (logged)."}}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def binary(media_type: str, description: str) -> dict:
    """The `responses` of an endpoint answering `media_type` bytes, and its errors."""
    return {200: {"content": {media_type: BINARY}, "description": description},
            304: {"description": "Not modified: If-None-Match named the current ETag."}, **NOT_FOUND, **UNREADABLE}


SHARD_RESPONSES = {**binary(ARROW_FILE_MEDIA_TYPE, "The whole shard file."),
                   206: {"content": {ARROW_FILE_MEDIA_TYPE: BINARY}, "description": "The requested byte range."},
                   416: {"model": ErrorDetail, "description": "Range not satisfiable: no byte of it exists."}}


@router.head("/shards/{name}", name="shard_headers", response_class=Response, responses=SHARD_RESPONSES,
             summary="Shard headers (HEAD)")
@router.get("/shards/{name}", name="shard_bytes", response_class=Response, responses=SHARD_RESPONSES)
def get_shard(request: Request, dataset_id: str = DatasetIdPath, name: str = ShardNamePath,
              datasets: Catalog = Depends(catalog)) -> Response:
    """The shard's exact bytes, streamed. ETag is the quoted sha256 (strong); If-None-Match gives 304.
    One range per request (bytes=a-b, bytes=a-, bytes=-n) gives 206 with Content-Range, or 416 with
    Content-Range: bytes */size when no byte of it exists. If-Range with the ETag is honoured.
    Several ranges in one header are answered with the whole file (200), as RFC 9110 allows."""
    dataset = datasets.dataset(dataset_id)
    file = datasets.open_shard(dataset, name)
    return file_response(request, file, f'"{dataset.shard(name).sha256}"', ARROW_FILE_MEDIA_TYPE)


def load_row(datasets: Catalog, dataset: Dataset, entry: ShardRecord, row_in_shard: int) -> dict:
    """The values of row `row_in_shard` of the shard `entry`, as located by dataset.locate_row."""
    with datasets.open_shard(dataset, entry.name) as file:
        try:
            return read_row(file, row_in_shard, dataset.manifest.format.record_batch_rows)
        except FileUnreadable as error:
            raise FileUnreadable(f"{entry.name} of dataset {dataset.id} {error}") from None


@router.get("/rows/{index}", name="row_json", responses={**NOT_FOUND, **UNREADABLE})
def get_row(index: int = RowIndexPath, dataset_id: str = DatasetIdPath,
            datasets: Catalog = Depends(catalog)) -> RowRecord:
    """One row: rule id, trajectory id, gzip ratio and its tokens, read from its record batch alone."""
    dataset = datasets.dataset(dataset_id)
    entry, row_in_shard = dataset.locate_row(index)
    row = load_row(datasets, dataset, entry, row_in_shard)
    return RowRecord(dataset_id=dataset.id, index=index, shard=entry.name, row_in_shard=row_in_shard,
                     **{**row, "tokens": row["tokens"].tolist()})


def row_picture(request: Request, datasets: Catalog, dataset_id: str, index: int, kind: str) -> Response:
    dataset = datasets.dataset(dataset_id)
    entry, row_in_shard = dataset.locate_row(index)
    etag = f'W/"{entry.sha256[:32]}-{row_in_shard}-{kind}"'  # weak: the same row, drawn by this renderer
    cached = not_modified(request, etag)
    if cached is not None:
        return cached
    row = load_row(datasets, dataset, entry, row_in_shard)
    frames = frames_of(row["tokens"], dataset.config)
    if kind == "png":
        title = f"{dataset.id}  row {index}  rule {row['rule_id']}  ratio {row['ratio']:.3f}"
        body, media_type = strip_png(frames, title), "image/png"
    else:
        body, media_type = animation_gif(frames), "image/gif"
    return Response(body, media_type=media_type, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})


@router.get("/rows/{index}/preview.png", name="row_preview_png", response_class=Response,
            responses=binary("image/png", "The row's frames as one PNG strip."))
def get_row_png(request: Request, index: int = RowIndexPath, dataset_id: str = DatasetIdPath,
                datasets: Catalog = Depends(catalog)) -> Response:
    """All frames of the row's trajectory as one PNG strip, nine to a line, under a title."""
    return row_picture(request, datasets, dataset_id, index, "png")


@router.get("/rows/{index}/preview.gif", name="row_preview_gif", response_class=Response,
            responses=binary("image/gif", "The row's frames as a looping animated GIF."))
def get_row_gif(request: Request, index: int = RowIndexPath, dataset_id: str = DatasetIdPath,
                datasets: Catalog = Depends(catalog)) -> Response:
    """The row's trajectory as an animated GIF, one frame every 150 ms, looping."""
    return row_picture(request, datasets, dataset_id, index, "gif")


@router.get("/histogram.png", name="histogram_png", response_class=Response,
            responses=binary("image/png", "The candidate-ratio histogram, the band shaded."))
def get_histogram(request: Request, dataset_id: str = DatasetIdPath, datasets: Catalog = Depends(catalog)) -> Response:
    """The generator's histogram of every candidate rule's gzip ratio, the band shaded
    (the same numbers are in the summary's acceptance.histogram)."""
    dataset = datasets.dataset(dataset_id)
    with datasets.open_file(dataset, HISTOGRAM_NAME) as file:
        body = file.read()
    etag = f'"{hashlib.sha256(body).hexdigest()}"'
    return not_modified(request, etag) or Response(body, media_type="image/png",
                                                   headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
