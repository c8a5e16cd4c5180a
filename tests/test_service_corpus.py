"""A prepared token corpus served by the catalog beside an NCA dataset: listed with its kind, summarised
by a typed CorpusSummary, its files served like shards and downloaded by the client into a folder that
open_corpus reads exactly as the original; no rows, no escape from the shard folder, nothing written."""

import hashlib
import json
import logging
import math
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from generator import __version__
from generator.format import MANIFEST_NAME
from service.app import create_app
from service.client import CatalogClient, CatalogError
from service.schemas import AnySummary, CorpusSummary
from tests.service_datasets import MadeDataset, copy_dataset, damaged_copy, made_datasets, tree_snapshot
from tests.test_service_uvicorn import raw_get, serving, two_ranks
from trainer.corpus import CorpusManifest, PrepareConfig, open_corpus, prepare_corpus
from trainer.corpus.format import load_corpus_manifest

STDLIB_FILES = ("bisect.py", "colorsys.py", "fnmatch.py", "heapq.py", "keyword.py", "json/__init__.py",
                "json/decoder.py", "json/encoder.py", "json/scanner.py", "json/tool.py")
"""Ten real documents; at validation fraction 0.2 one of them (the eighth) is held out."""
SMALL_PIECE = 16 * 1024
BASE_URL = "http://testserver"


@dataclass(frozen=True)
class Served:
    root: Path
    """The shard folder: the corpus and the mid NCA dataset, side by side."""
    manifest: CorpusManifest
    nca: MadeDataset

    @property
    def id(self) -> str:
        return self.manifest.corpus_id

    @property
    def folder(self) -> Path:
        return self.root / self.id

    def file_bytes(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    source = tmp_path_factory.mktemp("stdlib-sample")
    for name in STDLIB_FILES:
        shutil.copy(Path(sysconfig.get_paths()["stdlib"]) / name, source / name.replace("/", "_"))
    root = tmp_path_factory.mktemp("corpus-shards")
    prepared = prepare_corpus(PrepareConfig(source=str(source), out=str(root), validation_fraction=0.2), progress=False)
    assert prepared.manifest.splits.validation.tokens > 0 and prepared.manifest.splits.train.documents == 9
    nca = made_datasets(tmp_path_factory).mid
    copy_dataset(nca, root)
    return Served(root, load_corpus_manifest(prepared.folder), nca)  # as written: without the output folder


@pytest.fixture(scope="module")
def client(served):
    return TestClient(create_app(str(served.root)))


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    with serving(served.root, tmp_path_factory.mktemp("uvicorn-corpus")) as running:
        yield running


def listed(client, **params) -> list:
    response = client.get("/v1/datasets", params=params)
    assert response.status_code == 200, response.text
    return [(item["id"], item["kind"]) for item in response.json()["items"]]


def test_the_corpus_and_the_dataset_are_listed_with_their_kind_and_no_warning(served, caplog):
    with caplog.at_level(logging.WARNING, logger="ncaforge.catalog"):
        entries = listed(TestClient(create_app(str(served.root))))
    assert entries == sorted([(served.id, "token-corpus"), (served.nca.id, "nca-shards")])
    assert caplog.records == []  # before corpora were known: "left out of the catalog"


@pytest.mark.parametrize("params, kinds", [
    ({"kind": "token-corpus"}, ["token-corpus"]), ({"kind": "nca-shards"}, ["nca-shards"]),
    ({"band": "mid"}, ["nca-shards"]), ({"min_ratio": 0}, ["nca-shards"]), ({"max_ratio": 1}, ["nca-shards"]),
    ({"generator_version": __version__}, ["nca-shards", "token-corpus"]), ({"generator_version": "9.9"}, []),
    ({"kind": "token-corpus", "min_tokens": 1}, ["token-corpus"]), ({"kind": "token-corpus", "min_tokens": 10**9}, []),
])
def test_the_kind_filter_picks_one_kind_and_band_filters_leave_corpora_out(client, params, kinds):
    assert sorted(kind for _, kind in listed(client, **params)) == kinds


def test_an_unknown_kind_gets_422(client):
    response = client.get("/v1/datasets", params={"kind": "parquet"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "kind"


def test_the_corpus_item_and_summary_are_typed_and_match_the_manifest(client, served):
    manifest = served.manifest
    [item] = client.get("/v1/datasets", params={"kind": "token-corpus"}).json()["items"]
    splits = (manifest.splits.train, manifest.splits.validation)
    assert (item["tokens"], item["documents"], item["shards"], item["bytes"]) == (
        sum(s.tokens for s in splits), sum(s.documents for s in splits), 2, sum(s.bytes for s in splits))
    body = client.get(item["links"]["self"]).json()
    summary = AnySummary.model_validate(body).root
    assert isinstance(summary, CorpusSummary) and summary.kind == "token-corpus"
    assert (summary.corpus_id, summary.tokenizer, summary.config) == (served.id, manifest.tokenizer, manifest.config)
    assert summary.totals.text_bytes == sum(s.text_bytes for s in splits) and "splits" not in body
    assert client.get(summary.links.manifest).content == served.file_bytes(MANIFEST_NAME)
    assert client.get(f"/v1/datasets/{served.nca.id}").json()["kind"] == "nca-shards"


def test_the_corpus_files_are_listed_like_shards(client, served):
    body = client.get(f"/v1/datasets/{served.id}/shards").json()
    assert [(f["name"], f["split"], f["bytes"], f["sha256"], f["tokens"]) for f in body["items"]] == [
        (record.file, split, record.bytes, record.sha256, record.tokens)
        for split, record in (("train", served.manifest.splits.train), ("validation", served.manifest.splits.validation))]
    assert client.get(body["items"][0]["url"]).content == served.file_bytes("train.bin")
    assert client.get(f"/v1/datasets/{served.id}/shards", params={"min_ratio": 0.1}).json()["items"] == []


def test_corpus_files_serve_ranges_etags_304_416_and_head_like_shards(client, served):
    url, whole = f"/v1/datasets/{served.id}/shards/train.bin", served.file_bytes("train.bin")
    etag = f'"{served.manifest.splits.train.sha256}"'
    response = client.get(url)
    assert response.content == whole and response.headers["etag"] == etag
    assert response.headers["content-type"] == "application/octet-stream"
    piece = client.get(url, headers={"Range": "bytes=100-4195"})
    assert piece.status_code == 206 and piece.content == whole[100:4196]
    assert piece.headers["content-range"] == f"bytes 100-4195/{len(whole)}"
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    missed = client.get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert missed.status_code == 416 and missed.headers["content-range"] == f"bytes */{len(whole)}"
    head = client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(whole)) and head.content == b""


@pytest.mark.parametrize("which", ["corpus", "nca"])
def test_the_manifest_of_either_kind_is_served_byte_for_byte_with_its_sha256_as_etag(client, served, which):
    folder = served.folder if which == "corpus" else served.root / served.nca.id
    data = (folder / MANIFEST_NAME).read_bytes()
    url = f"/v1/datasets/{folder.name}/manifest.json"
    response = client.get(url)
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    assert (response.content, response.headers["etag"]) == (data, etag)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("path, what", [("/rows/0", "rows"), ("/rows/3/preview.png", "rows"),
                                        ("/rows/0/preview.gif", "rows"), ("/histogram.png", "histogram")])
def test_rows_previews_and_histogram_of_a_corpus_are_404_saying_it_has_none(client, served, path, what):
    response = client.get(f"/v1/datasets/{served.id}{path}")
    assert response.status_code == 404
    assert f"a token corpus has no {what}; download its files" in response.json()["detail"]


@pytest.mark.parametrize("path", [
    "/v1/datasets/%2e%2e/manifest.json", "/v1/datasets/..%2F..%2Fetc/manifest.json",
    "/v1/datasets/{corpus}%2F..%2F{nca}/manifest.json", "/v1/datasets/{corpus}/shards/manifest.json",
    "/v1/datasets/{corpus}/shards/..%2F{nca}%2Fmanifest.json", "/v1/datasets/{corpus}/shards/%2Fetc%2Fpasswd",
    "/v1/datasets/{corpus}/shards/.%2Ftrain.bin", "/v1/datasets/{corpus}/shards/train.bin%2F..%2Fvalidation.bin",
    "/v1/datasets/{corpus}/shards/part-00000.arrow", "/v1/datasets/{nca}/shards/train.bin",
])
def test_paths_escaping_through_the_corpus_endpoints_get_404(client, served, path):
    response = client.get(path.format(corpus=served.id, nca=served.nca.id))
    assert response.status_code == 404 and "root:" not in response.text


def test_unnormalised_dot_segments_to_a_corpus_file_get_404_on_the_wire(server, served):
    response = raw_get(server.port, f"/v1/datasets/{served.id}/shards/../../../../etc/passwd")
    assert response.startswith(b"HTTP/1.1 404 ") and b"root:" not in response


def test_a_corpus_file_symlinked_outside_is_404_and_a_manifest_naming_other_files_is_left_out(served, tmp_path, caplog):
    outside, shards = tmp_path / "outside", tmp_path / "shards"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"TOP-SECRET")
    linked = Path(shutil.copytree(served.folder, shards / served.id))
    (linked / "train.bin").unlink()
    (linked / "train.bin").symlink_to(outside / "secret.bin")
    renamed = Path(shutil.copytree(served.folder, shards / "renamed-corpus"))
    document = json.loads((renamed / MANIFEST_NAME).read_bytes())
    document["splits"]["train"]["file"] = "../outside/secret.bin"
    (renamed / MANIFEST_NAME).write_text(json.dumps(document))
    client = TestClient(create_app(str(shards)))
    with caplog.at_level(logging.WARNING, logger="ncaforge.catalog"):
        assert listed(client) == [(served.id, "token-corpus")]
        assert client.get("/v1/datasets/renamed-corpus/shards").status_code == 404
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith("dataset renamed-corpus is left out of the catalog: ") and "train.bin" in warning
    response = client.get(f"/v1/datasets/{served.id}/shards/train.bin")
    assert response.status_code == 404 and b"TOP-SECRET" not in response.content


def test_a_corpus_being_prepared_is_hidden_until_its_manifest_appears(served, tmp_path):
    folder = Path(shutil.copytree(served.folder, tmp_path / served.id, ignore=shutil.ignore_patterns(MANIFEST_NAME)))
    client = TestClient(create_app(str(tmp_path)))
    assert listed(client) == [] and client.get(f"/v1/datasets/{served.id}/shards/train.bin").status_code == 404
    shutil.copy(served.folder / MANIFEST_NAME, folder / MANIFEST_NAME)
    assert listed(client) == [(served.id, "token-corpus")]


def access_log_count(server, fragment: str) -> int:
    return sum(fragment in line for line in server.stdout_lines())


def test_the_client_downloads_a_corpus_over_real_http_that_open_corpus_reads_as_the_original(server, served, tmp_path):
    file_gets = f'"GET /v1/datasets/{served.id}/shards/'
    before = access_log_count(server, file_gets)
    with CatalogClient(server.base_url, cache_dir=str(tmp_path)) as catalog:
        folder = catalog.download_corpus(served.id, piece_bytes=SMALL_PIECE)
        assert folder == str(tmp_path / served.id)
        for name in ("train.bin", "validation.bin", MANIFEST_NAME):
            assert (tmp_path / served.id / name).read_bytes() == served.file_bytes(name)
        downloaded = access_log_count(server, file_gets) - before
        assert downloaded == sum(math.ceil(record.bytes / SMALL_PIECE)
                                 for record in (served.manifest.splits.train, served.manifest.splits.validation))
        assert catalog.download_corpus(served.id) == folder  # cached: verified, not fetched again
        assert access_log_count(server, file_gets) - before == downloaded
    copy, original = open_corpus(folder), open_corpus(str(served.folder))
    for split in ("train", "validation"):
        assert np.array_equal(copy.tokens(split), original.tokens(split))


def download_corpus_after_barrier(base_url: str, cache_dir: str, corpus_id: str, barrier, results) -> None:
    """One trainer rank: wait for the other, then download the whole corpus into the shared cache."""
    with CatalogClient(base_url, cache_dir=cache_dir) as catalog:
        barrier.wait()
        folder = catalog.download_corpus(corpus_id, piece_bytes=SMALL_PIECE)
    results.put(sorted((path.name, hashlib.sha256(path.read_bytes()).hexdigest()) for path in Path(folder).iterdir()
                       if not path.name.startswith(".")))


def test_two_processes_sharing_a_cache_download_each_corpus_file_once(server, served, tmp_path):
    train_gets = f'"GET /v1/datasets/{served.id}/shards/train.bin'
    before = access_log_count(server, train_gets)
    got = two_ranks(download_corpus_after_barrier, server.base_url, str(tmp_path), served.id)
    expected = sorted((name, hashlib.sha256(served.file_bytes(name)).hexdigest())
                      for name in ("train.bin", "validation.bin", MANIFEST_NAME))
    assert got == [expected, expected]
    pieces = math.ceil(served.manifest.splits.train.bytes / SMALL_PIECE)
    assert access_log_count(server, train_gets) - before == pieces


def test_a_corrupted_served_file_gives_the_checksum_error_and_no_manifest(served, tmp_path):
    folder = damaged_copy(served.folder, tmp_path / "shards", "train.bin")
    catalog = CatalogClient(BASE_URL, cache_dir=str(tmp_path / "cache"), http=TestClient(create_app(str(folder.parent))))
    with pytest.raises(CatalogError, match=f"checksum mismatch for {served.id}/train.bin"):
        catalog.download_corpus(served.id, piece_bytes=SMALL_PIECE)
    assert not (tmp_path / "cache" / served.id / MANIFEST_NAME).exists()  # not a corpus folder: open_corpus refuses it


def test_a_listing_unlike_the_manifest_or_an_nca_dataset_is_refused_in_one_line(client, served, tmp_path, monkeypatch):
    catalog = CatalogClient(BASE_URL, cache_dir=str(tmp_path), http=client)
    with pytest.raises(CatalogError, match="is not a token corpus: use download_dataset"):
        catalog.download_corpus(served.nca.id)
    real = catalog.shards
    monkeypatch.setattr(catalog, "shards", lambda corpus_id: [{**item, "sha256": "0" * 64} for item in real(corpus_id)])
    with pytest.raises(CatalogError, match=f"lists {served.id}/train.bin unlike its manifest"):
        catalog.download_corpus(served.id)
    assert not (tmp_path / served.id).exists()


def test_the_shard_folder_is_unchanged_after_every_corpus_endpoint_is_exercised(served):
    before = tree_snapshot(served.root)
    client = TestClient(create_app(str(served.root)))
    base, etag = f"/v1/datasets/{served.id}", f'"{served.manifest.splits.train.sha256}"'
    for method, path, headers in [
        ("GET", "/v1/datasets?kind=token-corpus", {}), ("GET", base, {}), ("GET", f"{base}/shards", {}),
        ("GET", f"{base}/manifest.json", {}), ("GET", f"/v1/datasets/{served.nca.id}/manifest.json", {}),
        ("GET", f"{base}/shards/train.bin", {"Range": "bytes=5-99"}), ("HEAD", f"{base}/shards/validation.bin", {}),
        ("GET", f"{base}/shards/train.bin", {"If-None-Match": etag}), ("GET", f"{base}/rows/0", {}),
        ("GET", f"{base}/histogram.png", {}), ("GET", f"{base}/shards/test.bin", {}),
    ]:
        assert client.request(method, path, headers=headers).status_code in (200, 206, 304, 404)
    assert tree_snapshot(served.root) == before
