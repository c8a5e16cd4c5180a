"""Discovery while serving: half-written datasets stay hidden, a manifest that appears shows its
dataset on the next request, manifests that do not parse are left out and logged once, manifests
of ncaforge 0.1.0 still serve, and the shard folder is never written."""

import json
import logging
import os
import shutil
import threading

import pytest
from fastapi.testclient import TestClient

from generator.format import MANIFEST_NAME
from service.app import create_app
from service.catalog import Catalog
from tests.conftest import ROOT
from tests.service_datasets import copy_dataset, made_datasets, tree_snapshot

OLD_MANIFEST = os.path.join(ROOT, "tests", "data", "manifest-format1-v0.1.0.json")
OLD_DATASET_ID = "high-3000-3892b4eb6d1b"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return made_datasets(tmp_path_factory)


def listed(client) -> list:
    response = client.get("/v1/datasets")
    assert response.status_code == 200
    return [item["id"] for item in response.json()["items"]]


def test_a_dataset_being_written_is_hidden_until_its_manifest_appears(made, tmp_path):
    copy_dataset(made.high, tmp_path)
    writing = copy_dataset(made.mid, tmp_path, with_manifest=False)
    (writing / ".progress").mkdir()
    (writing / ".progress" / "part-00000.json").write_text(made.mid.manifest.shards[0].model_dump_json())
    (writing / ".tmp-123-part-00003.arrow").write_bytes(b"ARROW1 half written")
    client = TestClient(create_app(str(tmp_path)))
    assert listed(client) == [made.high.id]
    for suffix in ("", "/shards", "/rows/0", "/histogram.png", "/shards/part-00000.arrow"):
        assert client.get(f"/v1/datasets/{made.mid.id}{suffix}").status_code == 404
    shutil.copy(made.mid.folder / MANIFEST_NAME, writing / MANIFEST_NAME)  # the writer finishes
    assert listed(client) == sorted([made.high.id, made.mid.id])
    assert client.get(f"/v1/datasets/{made.mid.id}/rows/0").status_code == 200


def catalog_warnings(caplog) -> list:
    return [record.getMessage() for record in caplog.records
            if record.name == "ncaforge.catalog" and record.levelno == logging.WARNING]


@pytest.mark.parametrize("broken, reason", [
    ('{"dataset_id": "mid-', "not valid JSON"), ("", "not valid JSON"), ("[]", "format None"),
    ('{"dataset_id": "x"}', "format None"), ("\xff\xfe not utf-8", "not valid JSON"),
])
def test_a_manifest_that_does_not_parse_is_left_out_and_logged_once_per_version(made, tmp_path, caplog, broken, reason):
    copy_dataset(made.high, tmp_path)
    folder = copy_dataset(made.mid, tmp_path, with_manifest=False)
    (folder / MANIFEST_NAME).write_bytes(broken.encode("latin-1"))
    client = TestClient(create_app(str(tmp_path)))
    with caplog.at_level(logging.WARNING, logger="ncaforge.catalog"):
        assert listed(client) == [made.high.id]
        assert client.get(f"/v1/datasets/{made.mid.id}").status_code == 404
        assert listed(client) == [made.high.id]
    [warning] = catalog_warnings(caplog)  # three requests, one line
    assert warning.startswith(f"dataset {made.mid.id} is left out of the catalog: {made.mid.id}/{MANIFEST_NAME}: ")
    assert reason in warning and "\n" not in warning
    shutil.copy(made.mid.folder / MANIFEST_NAME, folder / MANIFEST_NAME)  # replaced by a good one
    assert listed(client) == sorted([made.high.id, made.mid.id])


def test_an_unknown_format_version_is_refused_naming_the_version_and_the_others_still_serve(made, tmp_path, caplog):
    copy_dataset(made.high, tmp_path)
    folder = copy_dataset(made.mid, tmp_path, with_manifest=False)
    document = json.loads(made.mid.manifest.to_json_bytes())
    document["format"]["version"] = 99
    (folder / MANIFEST_NAME).write_text(json.dumps(document))
    client = TestClient(create_app(str(tmp_path)))
    with caplog.at_level(logging.WARNING, logger="ncaforge.catalog"):
        for _ in range(3):
            assert listed(client) == [made.high.id]
            assert client.get(f"/v1/datasets/{made.mid.id}/rows/0").status_code == 404
        assert client.get(f"/v1/datasets/{made.high.id}/rows/0").status_code == 200
    [warning] = catalog_warnings(caplog)
    assert "format version 99 is not one this ncaforge reads" in warning
    (folder / MANIFEST_NAME).write_text(json.dumps(document) + " ")  # a new version of the file: logged again
    with caplog.at_level(logging.WARNING, logger="ncaforge.catalog"):
        assert listed(client) == [made.high.id]
    assert len(catalog_warnings(caplog)) == 2


def test_a_manifest_made_by_ncaforge_0_1_0_is_listed_and_summarised(made, tmp_path):
    """Format 1 as ncaforge 0.1.0 wrote it (no environment.workers): the manifest alone, no shard files."""
    folder = tmp_path / OLD_DATASET_ID
    folder.mkdir()
    shutil.copy(OLD_MANIFEST, folder / MANIFEST_NAME)
    client = TestClient(create_app(str(tmp_path)))
    [item] = client.get("/v1/datasets").json()["items"]
    assert (item["id"], item["rows"], item["generator"]["version"]) == (OLD_DATASET_ID, 3000, "0.1.0")
    summary = client.get(f"/v1/datasets/{OLD_DATASET_ID}").json()
    assert summary["format"]["version"] == 1 and summary["environment"]["workers"] is None
    [shard] = client.get(f"/v1/datasets/{OLD_DATASET_ID}/shards").json()["items"]
    assert shard["name"] == "part-00000.arrow" and shard["rows"] == 3000
    assert client.get(shard["url"]).status_code == 404  # the shard file is not there


def test_a_changed_manifest_is_reread_and_a_removed_dataset_disappears(made, tmp_path):
    folder = copy_dataset(made.mid, tmp_path)
    client = TestClient(create_app(str(tmp_path)))
    assert client.get(f"/v1/datasets/{made.mid.id}").json()["lineage"]["version"] == made.mid.manifest.generator.version
    rebuilt = made.mid.manifest.generator.model_copy(update={"version": "9.9.9-rebuilt"})
    (folder / MANIFEST_NAME).write_bytes(made.mid.manifest.model_copy(update={"generator": rebuilt}).to_json_bytes())
    assert client.get(f"/v1/datasets/{made.mid.id}").json()["lineage"]["version"] == "9.9.9-rebuilt"
    shutil.rmtree(folder)
    assert listed(client) == []
    assert client.get(f"/v1/datasets/{made.mid.id}").status_code == 404


def test_concurrent_lookups_while_a_manifest_is_rewritten_never_fail(made, tmp_path):
    """Requests run in threads: lookups and rescans racing with a manifest that changes under them
    (and with the cache being rebuilt) always find the dataset, never raise."""
    folder = copy_dataset(made.mid, tmp_path)
    catalog = Catalog(str(tmp_path))
    versions = [made.mid.manifest.to_json_bytes(), made.mid.manifest.to_json_bytes() + b" "]  # same content, new key
    failures, stop = [], threading.Event()

    def look_up() -> None:
        while not stop.is_set():
            try:
                assert catalog.dataset(made.mid.id).id == made.mid.id
                assert [dataset.id for dataset in catalog.datasets()] == [made.mid.id]
            except Exception as error:  # collected: an exception in a thread would not fail the test
                failures.append(repr(error))

    threads = [threading.Thread(target=look_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for change in range(200):
        temporary = folder / f".tmp-{change}"
        temporary.write_bytes(versions[change % 2])
        os.replace(temporary, folder / MANIFEST_NAME)  # as the pipeline writes it: atomically
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []


def test_folders_that_are_not_dataset_ids_are_ignored(made, tmp_path):
    for name in (".hidden", "-dash", "with space"):
        shutil.copytree(made.mid.folder, tmp_path / name)
    (tmp_path / "not-a-folder").write_text("{}")
    assert listed(TestClient(create_app(str(tmp_path)))) == []


def test_the_shard_folder_is_unchanged_after_every_endpoint_is_exercised(made):
    before = tree_snapshot(made.root)
    client = TestClient(create_app(str(made.root)))
    for dataset in (made.high, made.mid):
        base = f"/v1/datasets/{dataset.id}"
        shard = dataset.manifest.shards[0].name
        etag = f'"{dataset.manifest.shards[0].sha256}"'
        requests = [("GET", "/healthz", {}), ("GET", "/v1/datasets?band=high&limit=1", {}), ("GET", base, {}),
                    ("GET", f"{base}/shards?min_ratio=0.3", {}), ("GET", f"{base}/shards/{shard}", {}),
                    ("GET", f"{base}/shards/{shard}", {"Range": "bytes=5-99"}),
                    ("GET", f"{base}/shards/{shard}", {"Range": "bytes=999999999-"}),
                    ("GET", f"{base}/shards/{shard}", {"If-None-Match": etag}), ("HEAD", f"{base}/shards/{shard}", {}),
                    ("GET", f"{base}/rows/1", {}), ("GET", f"{base}/rows/1/preview.png", {}),
                    ("GET", f"{base}/rows/1/preview.gif", {}), ("GET", f"{base}/histogram.png", {}),
                    ("GET", f"{base}/rows/99999999", {}), ("GET", f"{base}/shards/part-99999.arrow", {})]
        for method, path, headers in requests:
            assert client.request(method, path, headers=headers).status_code in (200, 206, 304, 404, 416)
    assert tree_snapshot(made.root) == before
