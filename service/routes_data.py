"""The data endpoints: shard bytes, single rows, previews of a row, the histogram picture, the manifest.

A token corpus's files are served where a dataset's shards are, the same way (Range, ETag,
304); it has no rows, previews or histogram, and those endpoints say so in their 404. A Dyck
dataset's shards and rows are served like an NCA dataset's; its row preview.png is the
sequence's depth profile, and it has no animation or histogram (404 saying so).
Every entry's manifest.json is served byte for byte, so a client can rebuild its folder.

Handlers are plain functions, so FastAPI runs them in its thread pool: file reads,
zstd decompression and image encoding never block the event loop. Binary answers
declare their media type in `responses`, so /openapi.json says what each one sends.
"""

import hashlib

from fastapi import APIRouter, Depends, Path, Request, Response

from generator.format import HISTOGRAM_NAME, MANIFEST_NAME, ShardRecord
from service.catalog import Catalog, Dataset, DyckDataset, FileUnreadable
from service.corpora import Corpus
from service.downloads import CACHE_CONTROL, file_response, not_modified
from service.pictures import animation_gif, dyck_png, frames_of, strip_png
from service.routes_catalog import NOT_FOUND, DatasetIdPath, catalog
from service.rows import read_row
from service.schemas import AnyManifest, AnyRow, DyckRowRecord, ErrorDetail, RowRecord

router = APIRouter(prefix="/v1/datasets/{dataset_id}", tags=["data"])

ARROW_FILE_MEDIA_TYPE = "application/vnd.apache.arrow.file"
TOKEN_FILE_MEDIA_TYPE = "application/octet-stream"
RowIndexPath = Path(ge=0, description="Global row index: rows count through the shards in manifest order.")
ShardNamePath = Path(description="Shard file name as listed by the shards endpoint, e.g. part-00000.arrow "
                                 "(a token corpus's: train.bin or validation.bin).")

UNREADABLE = {500: {"model": ErrorDetail, "description": "A file the manifest lists cannot be read (logged)."}}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def binary(description: str, *media_types: str) -> dict:
    """The `responses` of an endpoint answering bytes of one of `media_types`, and its errors."""
    return {200: {"content": {media_type: BINARY for media_type in media_types}, "description": description},
            304: {"description": "Not modified: If-None-Match named the current ETag."}, **NOT_FOUND, **UNREADABLE}


SHARD_MEDIA_TYPES = (ARROW_FILE_MEDIA_TYPE, TOKEN_FILE_MEDIA_TYPE)
"""A shard is an Arrow IPC file; a token corpus's file is raw uint16 tokens."""
SHARD_RESPONSES = {**binary("The whole file: an Arrow shard, or a token corpus's tokens.", *SHARD_MEDIA_TYPES),
                   206: {"content": {media_type: BINARY for media_type in SHARD_MEDIA_TYPES},
                         "description": "The requested byte range."},
                   416: {"model": ErrorDetail, "description": "Range not satisfiable: no byte of it exists."}}


@router.head("/shards/{name}", name="shard_headers", response_class=Response, responses=SHARD_RESPONSES,
             summary="Shard headers (HEAD)")
@router.get("/shards/{name}", name="shard_bytes", response_class=Response, responses=SHARD_RESPONSES)
def get_shard(request: Request, dataset_id: str = DatasetIdPath, name: str = ShardNamePath,
              datasets: Catalog = Depends(catalog)) -> Response:
    """The shard's exact bytes, streamed (a token corpus's train.bin or validation.bin the same way).
    ETag is the quoted sha256 (strong); If-None-Match gives 304. One range per request (bytes=a-b, bytes=a-,
    bytes=-n) gives 206 with Content-Range, or 416 with Content-Range: bytes */size when no byte of it exists.
    If-Range with the ETag is honoured. Several ranges in one header are answered with the whole file (200),
    as RFC 9110 allows."""
    dataset = datasets.dataset(dataset_id)
    file = datasets.open_shard(dataset, name)
    media_type = TOKEN_FILE_MEDIA_TYPE if isinstance(dataset, Corpus) else ARROW_FILE_MEDIA_TYPE
    return file_response(request, file, f'"{dataset.shard(name).sha256}"', media_type)


NCA_COLUMNS = ("rule_id", "trajectory_id", "ratio")
DYCK_COLUMNS = ("sequence_id",)


def load_row(datasets: Catalog, dataset: Dataset | DyckDataset, entry: ShardRecord, row_in_shard: int) -> dict:
    """The values of row `row_in_shard` of the shard `entry`, as located by dataset.locate_row."""
    columns = DYCK_COLUMNS if isinstance(dataset, DyckDataset) else NCA_COLUMNS
    with datasets.open_shard(dataset, entry.name) as file:
        try:
            return read_row(file, row_in_shard, dataset.manifest.format.record_batch_rows, columns)
        except FileUnreadable as error:
            raise FileUnreadable(f"{entry.name} of dataset {dataset.id} {error}") from None


@router.get("/rows/{index}", name="row_json", responses={**NOT_FOUND, **UNREADABLE})
def get_row(index: int = RowIndexPath, dataset_id: str = DatasetIdPath,
            datasets: Catalog = Depends(catalog)) -> AnyRow:
    """One row, read from its record batch alone: of an NCA dataset its rule id, trajectory id, gzip ratio and
    tokens; of a Dyck dataset its sequence id and tokens."""
    dataset = datasets.row_dataset(dataset_id)
    entry, row_in_shard = dataset.locate_row(index)
    row = load_row(datasets, dataset, entry, row_in_shard)
    record = DyckRowRecord if isinstance(dataset, DyckDataset) else RowRecord
    return AnyRow(record(dataset_id=dataset.id, index=index, shard=entry.name, row_in_shard=row_in_shard,
                         **{**row, "tokens": row["tokens"].tolist()}))


def row_picture(request: Request, datasets: Catalog, dataset_id: str, index: int, kind: str) -> Response:
    if kind == "png":
        dataset = datasets.row_dataset(dataset_id)
    else:
        dataset = datasets.nca_dataset(dataset_id, "rows", "animation")
    entry, row_in_shard = dataset.locate_row(index)
    etag = f'W/"{entry.sha256[:32]}-{row_in_shard}-{kind}"'  # weak: the same row, drawn by this renderer
    cached = not_modified(request, etag)
    if cached is not None:
        return cached
    row = load_row(datasets, dataset, entry, row_in_shard)
    if isinstance(dataset, DyckDataset):
        title = f"{dataset.id}  row {index}  sequence {row['sequence_id']}: depth after each token, colour = bracket pair"
        body, media_type = dyck_png(row["tokens"], dataset.config, title), "image/png"
    elif kind == "png":
        frames = frames_of(row["tokens"], dataset.config)
        title = f"{dataset.id}  row {index}  rule {row['rule_id']}  ratio {row['ratio']:.3f}"
        body, media_type = strip_png(frames, title), "image/png"
    else:
        body, media_type = animation_gif(frames_of(row["tokens"], dataset.config)), "image/gif"
    return Response(body, media_type=media_type, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})


@router.get("/rows/{index}/preview.png", name="row_preview_png", response_class=Response,
            responses=binary("The row's frames as one PNG strip (a Dyck row: its depth profile).", "image/png"))
def get_row_png(request: Request, index: int = RowIndexPath, dataset_id: str = DatasetIdPath,
                datasets: Catalog = Depends(catalog)) -> Response:
    """All frames of the row's trajectory as one PNG strip, nine to a line, under a title. For a Dyck
    dataset: the depth after each token of the sequence, one column per token, coloured by bracket pair."""
    return row_picture(request, datasets, dataset_id, index, "png")


@router.get("/rows/{index}/preview.gif", name="row_preview_gif", response_class=Response,
            responses=binary("The row's frames as a looping animated GIF.", "image/gif"))
def get_row_gif(request: Request, index: int = RowIndexPath, dataset_id: str = DatasetIdPath,
                datasets: Catalog = Depends(catalog)) -> Response:
    """The row's trajectory as an animated GIF, one frame every 150 ms, looping (NCA datasets only)."""
    return row_picture(request, datasets, dataset_id, index, "gif")


@router.get("/histogram.png", name="histogram_png", response_class=Response,
            responses=binary("The candidate-ratio histogram, the band shaded.", "image/png"))
def get_histogram(request: Request, dataset_id: str = DatasetIdPath, datasets: Catalog = Depends(catalog)) -> Response:
    """The generator's histogram of every candidate rule's gzip ratio, the band shaded
    (the same numbers are in the summary's acceptance.histogram). NCA datasets only."""
    return small_file(request, datasets, datasets.nca_dataset(dataset_id, "histogram"), HISTOGRAM_NAME, "image/png")


@router.get("/manifest.json", name="manifest_json", response_class=Response, responses={
    200: {"model": AnyManifest, "description": "The manifest.json file, byte for byte."},
    304: {"description": "Not modified: If-None-Match named the current ETag."}, **NOT_FOUND, **UNREADABLE})
def get_manifest(request: Request, dataset_id: str = DatasetIdPath, datasets: Catalog = Depends(catalog)) -> Response:
    """The dataset's (NCA or Dyck) or token corpus's manifest.json, byte for byte, ETag its quoted sha256: with
    the shards (or a corpus's files) it rebuilds the folder, which the trainer can open like a local one."""
    return small_file(request, datasets, datasets.dataset(dataset_id), MANIFEST_NAME, "application/json")


def small_file(request: Request, datasets: Catalog, dataset: Dataset | DyckDataset | Corpus, name: str,
               media_type: str) -> Response:
    """A small file of the folder read whole, ETag its quoted sha256, 304 on If-None-Match."""
    with datasets.open_file(dataset, name) as file:
        body = file.read()
    etag = f'"{hashlib.sha256(body).hexdigest()}"'
    return not_modified(request, etag) or Response(body, media_type=media_type,
                                                   headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
