"""Discovery while serving: half-written datasets stay hidden, a manifest that appears shows its
dataset on the next request, broken manifests are skipped, and the shard folder is never written."""

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from generator.format import MANIFEST_NAME
from service.app import create_app
from tests.service_datasets import copy_dataset, made_datasets, tree_snapshot


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
    (writing / ".progress" / "part-00000.json").write_text(json.dumps(made.mid.manifest["shards"][0]))
    (writing / ".tmp-123-part-00003.arrow").write_bytes(b"ARROW1 half written")
    client = TestClient(create_app(str(tmp_path)))
    assert listed(client) == [made.high.id]
    for suffix in ("", "/shards", "/rows/0", "/histogram.png", "/shards/part-00000.arrow"):
        assert client.get(f"/v1/datasets/{made.mid.id}{suffix}").status_code == 404
    shutil.copy(made.mid.folder / MANIFEST_NAME, writing / MANIFEST_NAME)  # the writer finishes
    assert listed(client) == sorted([made.high.id, made.mid.id])
    assert client.get(f"/v1/datasets/{made.mid.id}/rows/0").status_code == 200


@pytest.mark.parametrize("broken", ['{"dataset_id": "mid-', "", "[]", '{"dataset_id": "x"}', "\xff\xfe not utf-8"])
def test_an_unreadable_or_incomplete_manifest_is_skipped_not_a_500(made, tmp_path, broken):
    copy_dataset(made.high, tmp_path)
    folder = copy_dataset(made.mid, tmp_path, with_manifest=False)
    (folder / MANIFEST_NAME).write_bytes(broken.encode("latin-1"))
    client = TestClient(create_app(str(tmp_path)))
    assert listed(client) == [made.high.id]
    assert client.get(f"/v1/datasets/{made.mid.id}").status_code == 404
    shutil.copy(made.mid.folder / MANIFEST_NAME, folder / MANIFEST_NAME)  # replaced by a good one
    assert listed(client) == sorted([made.high.id, made.mid.id])


def test_a_changed_manifest_is_reread_and_a_removed_dataset_disappears(made, tmp_path):
    folder = copy_dataset(made.mid, tmp_path)
    client = TestClient(create_app(str(tmp_path)))
    assert client.get(f"/v1/datasets/{made.mid.id}").json()["lineage"]["version"] == made.mid.manifest["generator"]["version"]
    changed = {**made.mid.manifest, "generator": {**made.mid.manifest["generator"], "version": "9.9.9-rebuilt"}}
    (folder / MANIFEST_NAME).write_text(json.dumps(changed))
    assert client.get(f"/v1/datasets/{made.mid.id}").json()["lineage"]["version"] == "9.9.9-rebuilt"
    shutil.rmtree(folder)
    assert listed(client) == []
    assert client.get(f"/v1/datasets/{made.mid.id}").status_code == 404


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
        shard = dataset.manifest["shards"][0]["name"]
        etag = f'"{dataset.manifest["shards"][0]["sha256"]}"'
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
