"""The catalog's REST API against real pipeline datasets: listing, filters, paging, summaries,
shard bytes with ranges and ETags, single rows, previews, the histogram, and 404/422 answers."""

import hashlib
import io
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from generator import __version__
from generator.format import decode_frames
from generator.render import PALETTE
from service.app import create_app
from tests.service_datasets import copy_dataset, made_datasets


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return made_datasets(tmp_path_factory)


@pytest.fixture(scope="module")
def client(made):
    return TestClient(create_app(str(made.root)))


def ids(response) -> list:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_list_shows_each_finished_dataset_with_its_totals(client, made):
    body = client.get("/v1/datasets").json()
    assert body["total"] == 2 and [item["id"] for item in body["items"]] == sorted([made.high.id, made.mid.id])
    item = next(item for item in body["items"] if item["id"] == made.mid.id)
    totals = made.mid.manifest.totals
    assert (item["rows"], item["tokens"], item["shards"], item["bytes"]) == (
        totals.rows, totals.tokens, totals.shards, totals.bytes)
    assert item["band"] == {"name": "mid", "lo": 0.3, "hi": 0.4}
    assert item["generator"]["git_commit"] == made.mid.manifest.generator.git_commit
    assert client.get(item["links"]["self"]).json()["id"] == made.mid.id


@pytest.mark.parametrize("band, expected", [("high", ["high"]), ("web", ["high"]), ("0.5-1", ["high"]),
                                             ("mid", ["mid"]), ("code", ["mid"]), ("0.3-0.4", ["mid"]), ("low", [])])
def test_list_filters_by_band_name_alias_or_range(client, made, band, expected):
    assert ids(client.get("/v1/datasets", params={"band": band})) == [getattr(made, b).id for b in expected]


@pytest.mark.parametrize("params, expected", [
    ({"min_ratio": 0.5}, ["high"]),
    ({"max_ratio": 0.45}, ["mid"]),
    ({"min_ratio": 0.3, "max_ratio": 0.4}, ["mid"]),
    ({"min_ratio": 0.35}, ["high"]),  # mid's band starts at 0.3, below the range
    ({"min_ratio": 0.2, "max_ratio": 0.9}, ["mid"]),  # high's band reaches 1.0, past the range
])
def test_list_ratio_range_keeps_datasets_whose_band_lies_inside_it(client, made, params, expected):
    assert ids(client.get("/v1/datasets", params=params)) == [getattr(made, b).id for b in expected]


def test_list_filters_by_generator_version_and_min_tokens(client, made):
    assert len(ids(client.get("/v1/datasets", params={"generator_version": __version__}))) == 2
    assert ids(client.get("/v1/datasets", params={"generator_version": "99.0.0"})) == []
    bigger_than_mid = made.mid.manifest.totals.tokens + 1
    assert ids(client.get("/v1/datasets", params={"min_tokens": bigger_than_mid})) == [made.high.id]


def test_list_pages_carry_total_and_next_prev_links_that_keep_the_filters(client, made):
    first = client.get("/v1/datasets", params={"limit": 1, "min_tokens": 1}).json()
    assert (first["total"], first["offset"], len(first["items"]), first["links"]["prev"]) == (2, 0, 1, None)
    assert "min_tokens=1" in first["links"]["next"]
    second = client.get(first["links"]["next"]).json()
    assert second["offset"] == 1 and second["links"]["next"] is None
    assert [first["items"][0]["id"], second["items"][0]["id"]] == sorted([made.high.id, made.mid.id])
    assert client.get(second["links"]["prev"]).json()["items"] == first["items"]
    assert client.get("/v1/datasets", params={"offset": 5}).json()["items"] == []


def test_summary_holds_config_lineage_acceptance_histogram_and_links(client, made):
    manifest = made.high.manifest
    summary = client.get(f"/v1/datasets/{made.high.id}").json()
    assert summary["config"] == manifest.config and summary["band"] == {"name": "high", "lo": 0.5, "hi": 1.0}
    assert summary["lineage"] == manifest.generator.model_dump()
    assert summary["totals"] == manifest.totals.model_dump() and summary["format"]["record_batch_rows"] == 1024
    histogram = summary["acceptance"]["histogram"]
    assert len(histogram["edges"]) == len(histogram["counts"]) + 1
    assert sum(histogram["counts"]) == summary["acceptance"]["candidates"] == manifest.acceptance.candidates
    assert summary["environment"] == manifest.environment.model_dump(mode="json")
    assert client.get(summary["links"]["shards"]).json()["total"] == len(manifest.shards)
    assert client.get(summary["links"]["first_row"]).json()["index"] == 0


def test_shard_list_gives_sizes_checksums_ratio_ranges_and_working_urls(client, made):
    body = client.get(f"/v1/datasets/{made.mid.id}/shards").json()
    assert body["total"] == len(made.mid.manifest.shards) == 3
    first_row = 0
    for position, (item, entry) in enumerate(zip(body["items"], made.mid.manifest.shards)):
        assert item == {**entry.model_dump(), "first_row": first_row, "url": item["url"]}
        assert item["first_row"] == first_row
        first_row += entry.rows
        content = client.get(item["url"]).content
        assert content == made.mid.shard_bytes(position) and hashlib.sha256(content).hexdigest() == item["sha256"]


def test_shard_list_keeps_shards_whose_ratio_range_overlaps_the_request(client, made):
    shards = made.mid.manifest.shards
    cut = sorted(s.ratio_min for s in shards)[1]  # some shards start above this ratio, some at or below
    expected = [s.name for s in shards if s.ratio_min <= cut]
    assert 0 < len(expected) < len(shards)
    body = client.get(f"/v1/datasets/{made.mid.id}/shards", params={"max_ratio": cut}).json()
    assert [item["name"] for item in body["items"]] == expected and body["total"] == len(expected)
    high_shards = client.get(f"/v1/datasets/{made.high.id}/shards", params={"min_ratio": 0.3, "max_ratio": 0.4})
    assert high_shards.json()["total"] == 0


def test_shard_list_pages(client, made):
    first = client.get(f"/v1/datasets/{made.mid.id}/shards", params={"limit": 2}).json()
    assert [item["index"] for item in first["items"]] == [0, 1] and first["links"]["prev"] is None
    rest = client.get(first["links"]["next"]).json()
    assert [item["index"] for item in rest["items"]] == [2] and rest["links"]["next"] is None


def shard_url(dataset) -> str:
    return f"/v1/datasets/{dataset.id}/shards/{dataset.manifest.shards[0].name}"


def test_shard_bytes_are_the_file_with_its_sha256_as_strong_etag(client, made):
    response = client.get(shard_url(made.high))
    entry = made.high.manifest.shards[0]
    assert response.status_code == 200 and response.content == made.high.shard_bytes(0)
    assert response.headers["etag"] == f'"{entry.sha256}"'
    assert response.headers["content-length"] == str(entry.bytes)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "application/vnd.apache.arrow.file"


@pytest.mark.parametrize("header, first, last", [
    ("bytes=0-99", 0, 99), ("bytes=1000-", 1000, None), ("bytes=-100", -100, None),
    ("bytes=7-7", 7, 7), ("bytes=-999999999", 0, None), ("bytes=100-999999999", 100, None),
])
def test_a_single_range_gets_206_with_exactly_those_bytes(client, made, header, first, last):
    data = made.high.shard_bytes(0)
    expected = data[first:] if last is None else data[first:last + 1]
    response = client.get(shard_url(made.high), headers={"Range": header})
    assert response.status_code == 206 and response.content == expected
    start = data.index(expected) if first < 0 else first
    assert response.headers["content-range"] == f"bytes {start}-{start + len(expected) - 1}/{len(data)}"
    assert response.headers["content-length"] == str(len(expected))


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{beyond}", "bytes=-0"])
def test_an_unsatisfiable_range_gets_416_naming_the_size(client, made, header):
    size = made.high.manifest.shards[0].bytes
    response = client.get(shard_url(made.high), headers={"Range": header.format(size=size, beyond=size + 10)})
    assert response.status_code == 416 and response.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "items=0-9", "bytes=9-2", "bytes=abc"])
def test_multiple_or_malformed_ranges_get_the_whole_file(client, made, header):
    response = client.get(shard_url(made.mid), headers={"Range": header})
    assert response.status_code == 200 and response.content == made.mid.shard_bytes(0)


def test_if_none_match_with_the_etag_gets_304_without_body(client, made):
    etag = f'"{made.high.manifest.shards[0].sha256}"'
    for header in (etag, "*", f'"other", W/{etag}'):
        response = client.get(shard_url(made.high), headers={"If-None-Match": header})
        assert response.status_code == 304 and response.content == b"" and response.headers["etag"] == etag
    assert client.get(shard_url(made.high), headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_range_honours_the_range_only_for_the_current_etag(client, made):
    etag = f'"{made.mid.manifest.shards[0].sha256}"'
    current = client.get(shard_url(made.mid), headers={"Range": "bytes=0-9", "If-Range": etag})
    stale = client.get(shard_url(made.mid), headers={"Range": "bytes=0-9", "If-Range": '"an-older-sha"'})
    assert current.status_code == 206 and len(current.content) == 10
    assert stale.status_code == 200 and stale.content == made.mid.shard_bytes(0)


def test_head_gives_the_headers_without_the_body(client, made):
    size = made.high.manifest.shards[0].bytes
    whole = client.head(shard_url(made.high))
    part = client.head(shard_url(made.high), headers={"Range": "bytes=10-19"})
    assert whole.status_code == 200 and whole.content == b"" and whole.headers["content-length"] == str(size)
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 10-19/{size}"


def test_rows_across_record_batch_and_shard_boundaries_match_the_shard_files(client, made):
    shards = made.high.manifest.shards
    assert len(shards) > 1 and shards[0].rows > 1024, "the high dataset must span two shards and two batches"
    table = made.high.table()
    first_of_second_shard = shards[0].rows
    for index in (0, 1023, 1024, first_of_second_shard - 1, first_of_second_shard, table.num_rows - 1):
        row = client.get(f"/v1/datasets/{made.high.id}/rows/{index}").json()
        in_second = index >= first_of_second_shard
        assert (row["shard"], row["row_in_shard"]) == (shards[int(in_second)].name,
                                                       index - first_of_second_shard * in_second)
        assert row["dataset_id"] == made.high.id and row["index"] == index
        assert row["rule_id"] == table["rule_id"][index].as_py()
        assert row["trajectory_id"] == table["trajectory_id"][index].as_py()
        assert row["ratio"] == table["ratio"][index].as_py()
        assert row["tokens"] == table["tokens"][index].as_py()


def test_a_row_is_read_from_its_record_batch_alone(made, tmp_path):
    """Wipe the first record batch of a shard copy: rows of its second batch still read, rows of the
    first answer 500 naming the shard. Reading the whole shard would fail for both."""
    folder = copy_dataset(made.high, tmp_path)
    shard = folder / made.high.manifest.shards[0].name
    data = bytearray(shard.read_bytes())
    data[8:1_000_000] = bytes(1_000_000 - 8)  # after the magic, well inside batch 0 (~1.7 MB), before batch 1
    shard.write_bytes(bytes(data))
    client = TestClient(create_app(str(tmp_path)), raise_server_exceptions=False)
    table = made.high.table()
    second_batch = client.get(f"/v1/datasets/{made.high.id}/rows/1030")
    assert second_batch.status_code == 200 and second_batch.json()["tokens"] == table["tokens"][1030].as_py()
    first_batch = client.get(f"/v1/datasets/{made.high.id}/rows/5")
    assert first_batch.status_code == 500 and shard.name in first_batch.json()["detail"]


def test_a_row_past_the_end_is_404_naming_the_row_count(client, made):
    rows = made.mid.manifest.totals.rows
    for index in (rows, 10**30):
        response = client.get(f"/v1/datasets/{made.mid.id}/rows/{index}")
        assert response.status_code == 404 and f"has {rows} rows" in response.json()["detail"]


def frames_of_row(made_dataset, index: int) -> np.ndarray:
    return decode_frames(made_dataset.table()["tokens"][index].as_py(), 12)


def test_png_preview_shows_every_frame_of_the_row_in_its_colours(client, made):
    index = 1030
    response = client.get(f"/v1/datasets/{made.high.id}/rows/{index}/preview.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content)).convert("RGB")
    frames = frames_of_row(made.high, index)
    assert frames.shape == (27, 12, 12)
    cell, gap, title, per_row = 8, 2, 14, 9  # generator.render.strip_image's layout
    tile = 12 * cell + gap
    assert image.size == (per_row * tile + gap, 3 * tile + gap + title)
    for frame in (0, 13, 26):
        for y, x in ((0, 0), (5, 7), (11, 11)):
            left, top = gap + (frame % per_row) * tile + x * cell, title + gap + (frame // per_row) * tile + y * cell
            assert image.getpixel((left + cell // 2, top + cell // 2)) == tuple(PALETTE[frames[frame, y, x]])


def test_gif_preview_animates_all_27_frames_of_the_row(client, made):
    response = client.get(f"/v1/datasets/{made.mid.id}/rows/150/preview.gif")
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    gif = Image.open(io.BytesIO(response.content))
    frames = frames_of_row(made.mid, 150)
    assert gif.n_frames == 27 and gif.size == (12 * 16, 12 * 16)
    for frame in (0, 26):
        gif.seek(frame)
        rgb = gif.convert("RGB")
        assert all(rgb.getpixel((x * 16 + 8, y * 16 + 8)) == tuple(PALETTE[frames[frame, y, x]])
                   for y in range(12) for x in range(12))


def test_previews_revalidate_with_their_etag(client, made):
    url = f"/v1/datasets/{made.mid.id}/rows/3/preview.png"
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"/v1/datasets/{made.mid.id}/rows/4/preview.png").headers["etag"] != etag


def test_histogram_png_is_the_datasets_own_picture(client, made):
    response = client.get(f"/v1/datasets/{made.mid.id}/histogram.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == (made.mid.folder / "histogram.png").read_bytes()
    assert client.get(f"/v1/datasets/{made.mid.id}/histogram.png",
                      headers={"If-None-Match": response.headers["etag"]}).status_code == 304


def test_openapi_docs_describe_every_endpoint_and_the_filter_semantics(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/v1/datasets", "/v1/datasets/{dataset_id}", "/v1/datasets/{dataset_id}/shards",
            "/v1/datasets/{dataset_id}/shards/{name}", "/v1/datasets/{dataset_id}/rows/{index}",
            "/v1/datasets/{dataset_id}/rows/{index}/preview.png", "/v1/datasets/{dataset_id}/rows/{index}/preview.gif",
            "/v1/datasets/{dataset_id}/histogram.png", "/v1/datasets/{dataset_id}/manifest.json"} <= set(spec["paths"])
    parameters = {p["name"]: p for p in spec["paths"]["/v1/datasets"]["get"]["parameters"]}
    assert "band.lo >= min_ratio and band.hi <= max_ratio" in parameters["min_ratio"]["description"]


BINARY_MEDIA_TYPES = {"application/vnd.apache.arrow.file", "application/octet-stream", "image/png", "image/gif"}


def test_openapi_names_a_response_schema_for_every_endpoint_and_answer(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    operations = [(method, path, operation) for path, methods in spec["paths"].items()
                  for method, operation in methods.items()]
    assert len(operations) == 11  # 10 paths, the shard's with GET and HEAD
    for method, path, operation in operations:
        for status, response in operation["responses"].items():
            where = f"{method.upper()} {path} {status}"
            if status == "304":
                assert "content" not in response, where  # no body
                continue
            if "application/json" in response["content"]:
                [(media_type, content)] = response["content"].items()
                reference = content["schema"]["$ref"]
                assert reference.startswith("#/components/schemas/") and reference.split("/")[-1] in schemas, where
                continue
            for media_type, content in response["content"].items():  # a shard: Arrow, or a corpus's raw tokens
                assert media_type in BINARY_MEDIA_TYPES and content["schema"]["format"] == "binary", where
            assert response["description"], where
        if path != "/healthz":
            assert {"422"} <= set(operation["responses"]), f"{method} {path}"
        if "{dataset_id}" in path:
            assert operation["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorDetail")


def test_a_listed_shard_that_cannot_be_read_is_a_logged_500_not_a_404(made, tmp_path, caplog):
    """A real fault: a directory where the manifest lists a shard file. Opening it works (no EACCES as
    root) but it is no file, like a shard whose disk gives EIO: the operator must hear of it."""
    folder = copy_dataset(made.mid, tmp_path)
    name = made.mid.manifest.shards[0].name
    (folder / name).unlink()
    (folder / name).mkdir()
    client = TestClient(create_app(str(tmp_path)), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="ncaforge.catalog"):
        for path in (f"/shards/{name}", "/rows/0", "/rows/0/preview.png"):
            response = client.get(f"/v1/datasets/{made.mid.id}{path}")
            assert response.status_code == 500, path
            assert response.json() == {"detail": f"{name} of dataset {made.mid.id} cannot be read (not a regular file)"}
    errors = [record.getMessage() for record in caplog.records if record.name == "ncaforge.catalog"]
    assert len(errors) == 3 and all("answered 500" in line and name in line and str(tmp_path) not in line for line in errors)
    assert client.get(f"/v1/datasets/{made.mid.id}/shards/{made.mid.manifest.shards[1].name}").status_code == 200


@pytest.mark.parametrize("path, parameter", [
    ("/v1/datasets?offset=-1", "offset"), ("/v1/datasets?limit=0", "limit"), ("/v1/datasets?limit=1001", "limit"),
    ("/v1/datasets?min_ratio=1.5", "min_ratio"), ("/v1/datasets?max_ratio=-0.1", "max_ratio"),
    ("/v1/datasets?min_ratio=abc", "min_ratio"), ("/v1/datasets?min_ratio=nan", "min_ratio"),
    ("/v1/datasets?min_tokens=-1", "min_tokens"), ("/v1/datasets?band=huge", "band"),
    ("/v1/datasets?min_ratio=0.6&max_ratio=0.4", "min_ratio"),
    ("/v1/datasets/{mid}/shards?min_ratio=2", "min_ratio"), ("/v1/datasets/{mid}/shards?limit=0", "limit"),
    ("/v1/datasets/{mid}/shards?min_ratio=0.4&max_ratio=0.3", "min_ratio"),
    ("/v1/datasets/{mid}/rows/-1", "index"), ("/v1/datasets/{mid}/rows/abc", "index"),
    ("/v1/datasets/{mid}/rows/1.5", "index"), ("/v1/datasets/{mid}/rows/-3/preview.png", "index"),
])
def test_malformed_parameters_get_422_naming_the_parameter(client, made, path, parameter):
    response = client.get(path.format(mid=made.mid.id))
    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["detail"]] == [parameter]
    assert all(error["msg"] for error in response.json()["detail"])


@pytest.mark.parametrize("path", [
    "/v1/datasets/{unknown}", "/v1/datasets/{unknown}/shards", "/v1/datasets/{unknown}/shards/part-00000.arrow",
    "/v1/datasets/{unknown}/rows/0", "/v1/datasets/{unknown}/rows/0/preview.gif", "/v1/datasets/{unknown}/histogram.png",
    "/v1/datasets/{mid}/shards/part-99999.arrow", "/v1/datasets/{mid}/shards/manifest.json",
    "/v1/datasets/{mid}/shards/histogram.png", "/v1/datasets/{mid}/shards/part-0.arrow",
])
def test_unknown_datasets_shards_and_files_get_404(client, made, path):
    response = client.get(path.format(unknown="high-1-000000000000", mid=made.mid.id))
    assert response.status_code == 404 and response.json()["detail"]
