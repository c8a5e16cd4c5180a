"""The trainer's client: listing, resolving, Range-piece downloads that resume and verify,
the local cache, and one-line errors when the catalog is down or a checksum does not match."""

import math

import pytest
from fastapi.testclient import TestClient

from generator.format import MANIFEST_NAME
from service.app import create_app
from service.client import LOCK_PREFIX, PARTIAL_PREFIX, CatalogClient, CatalogError
from service.settings import TOKEN_ENV
from tests.conftest import free_port
from tests.service_datasets import copy_dataset, made_datasets

BASE_URL = "http://testserver"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return made_datasets(tmp_path_factory)


class RecordingClient:
    """A CatalogClient over an in-process app, recording the Range header of every shard request."""

    def __init__(self, shards_dir, cache_dir, app_token=None, token=None):
        http = TestClient(create_app(str(shards_dir), token=app_token))
        self.ranges = []
        http.event_hooks = {"request": [self._record], "response": []}
        self.catalog = CatalogClient(BASE_URL, token=token, cache_dir=str(cache_dir), http=http)

    def _record(self, request) -> None:
        if "/shards/" in request.url.path:
            self.ranges.append(request.headers.get("range"))


@pytest.fixture
def recording(made, tmp_path):
    return RecordingClient(made.root, tmp_path / "cache")


def test_a_shard_downloads_in_range_pieces_byte_identical_to_the_file(recording, made, tmp_path):
    entry = made.high.manifest.shards[0]
    piece = 256 * 1024
    path = recording.catalog.download_shard(made.high.id, entry.name, piece_bytes=piece)
    assert path == str(tmp_path / "cache" / made.high.id / entry.name)
    with open(path, "rb") as file:
        assert file.read() == made.high.shard_bytes(0)
    starts = range(0, entry.bytes, piece)
    assert recording.ranges == [f"bytes={start}-{min(start + piece, entry.bytes) - 1}" for start in starts]
    assert len(recording.ranges) == math.ceil(entry.bytes / piece) > 1
    assert not (tmp_path / "cache" / made.high.id / (PARTIAL_PREFIX + entry.name)).exists()


def test_an_interrupted_download_resumes_from_the_partial_file(recording, made, tmp_path):
    entry, data = made.high.manifest.shards[0], made.high.shard_bytes(0)
    folder = tmp_path / "cache" / made.high.id
    folder.mkdir(parents=True)
    (folder / (PARTIAL_PREFIX + entry.name)).write_bytes(data[:100_000])  # what an earlier run got
    path = recording.catalog.download_shard(made.high.id, entry.name, piece_bytes=1 << 20)
    assert recording.ranges == ["bytes=100000-1148575", f"bytes=1148576-{entry.bytes - 1}"]
    with open(path, "rb") as file:
        assert file.read() == data


def test_a_verified_cached_shard_is_not_downloaded_again_but_a_damaged_one_is(recording, made):
    name = made.mid.manifest.shards[1].name
    path = recording.catalog.download_shard(made.mid.id, name)
    assert len(recording.ranges) == 1
    assert recording.catalog.download_shard(made.mid.id, name) == path and len(recording.ranges) == 1
    with open(path, "r+b") as file:
        file.write(b"\0\0\0\0")
    recording.catalog.download_shard(made.mid.id, name)
    assert len(recording.ranges) == 2
    with open(path, "rb") as file:
        assert file.read() == made.mid.shard_bytes(1)


def test_a_partial_file_longer_than_the_shard_is_discarded(recording, made, tmp_path):
    entry = made.mid.manifest.shards[0]
    folder = tmp_path / "cache" / made.mid.id
    folder.mkdir(parents=True)
    (folder / (PARTIAL_PREFIX + entry.name)).write_bytes(b"x" * (entry.bytes + 1))
    path = recording.catalog.download_shard(made.mid.id, entry.name)
    assert recording.ranges == [f"bytes=0-{entry.bytes - 1}"]
    with open(path, "rb") as file:
        assert file.read() == made.mid.shard_bytes(0)


@pytest.fixture
def tampered(made, tmp_path):
    """A catalog whose manifest lists a wrong sha256 for the mid dataset's first shard."""
    folder = copy_dataset(made.mid, tmp_path / "tampered")
    wrong = made.mid.manifest.shards[0].model_copy(update={"sha256": "0" * 64})
    manifest = made.mid.manifest.model_copy(update={"shards": [wrong, *made.mid.manifest.shards[1:]]})
    (folder / MANIFEST_NAME).write_bytes(manifest.to_json_bytes())
    return tmp_path / "tampered"


def test_a_checksum_mismatch_raises_and_leaves_no_file_behind(made, tampered, tmp_path):
    client = RecordingClient(tampered, tmp_path / "cache").catalog
    name = made.mid.manifest.shards[0].name
    with pytest.raises(CatalogError) as error:
        client.download_shard(made.mid.id, name, piece_bytes=32 * 1024)
    message = str(error.value)
    assert f"checksum mismatch for {made.mid.id}/{name}" in message and "deleted" in message and "\n" not in message
    assert [path.name for path in (tmp_path / "cache" / made.mid.id).iterdir()] == [LOCK_PREFIX + name]  # the lock stays


def test_a_shard_changed_on_the_server_restarts_the_download_instead_of_splicing(made, tampered, tmp_path, monkeypatch):
    """The listing promised the true sha; the server's ETag differs, so If-Range makes it send the
    whole file, which replaces the stale partial file and verifies."""
    recording = RecordingClient(tampered, tmp_path / "cache")
    true_listing = [entry.model_dump() for entry in made.mid.manifest.shards]
    monkeypatch.setattr(recording.catalog, "shards", lambda dataset_id: true_listing)
    name = true_listing[0]["name"]
    folder = tmp_path / "cache" / made.mid.id
    folder.mkdir(parents=True)
    (folder / (PARTIAL_PREFIX + name)).write_bytes(b"stale bytes of an older shard")
    path = recording.catalog.download_shard(made.mid.id, name, piece_bytes=16 * 1024)
    assert len(recording.ranges) == 1  # one request, answered 200 with the whole file
    with open(path, "rb") as file:
        assert file.read() == made.mid.shard_bytes(0)


def test_an_unreachable_catalog_fails_with_one_clear_line_after_its_attempts(tmp_path):
    base_url = f"http://127.0.0.1:{free_port()}"
    with CatalogClient(base_url, cache_dir=str(tmp_path)) as client, pytest.raises(CatalogError) as error:
        client.list_datasets()
    assert str(error.value) == (f"catalog at {base_url} is unreachable (connection refused) after 4 attempt(s): "
                                f"start it with make serve or check the URL")


def test_http_errors_name_the_status_and_the_reason(made, tmp_path):
    client = RecordingClient(made.root, tmp_path, app_token="a-long-enough-test-token-0123456789",
                             token="a-long-enough-test-token-0123456789").catalog
    with pytest.raises(CatalogError, match="answered 404: no dataset 'high-1-000000000000' in the catalog"):
        client.dataset("high-1-000000000000")
    with pytest.raises(CatalogError, match="is not a dataset id"):
        client.shards("../../etc")
    unauthorised = RecordingClient(made.root, tmp_path, app_token="a-long-enough-test-token-0123456789",
                                   token="wrong").catalog
    with pytest.raises(CatalogError, match=f"answered 401: .*{TOKEN_ENV}"):
        unauthorised.list_datasets()


def test_listing_follows_every_page_and_passes_the_filters(recording, made):
    assert [item["id"] for item in recording.catalog.list_datasets(limit=1)] == sorted([made.high.id, made.mid.id])
    assert [item["id"] for item in recording.catalog.list_datasets(band="code", limit=1)] == [made.mid.id]
    assert recording.catalog.dataset(made.mid.id)["totals"] == made.mid.manifest.totals.model_dump()
    assert [s["name"] for s in recording.catalog.shards(made.mid.id)] == [s.name for s in made.mid.manifest.shards]


def test_a_whole_dataset_downloads_in_manifest_order(recording, made):
    paths = recording.catalog.download_dataset(made.mid.id)
    assert [path.rsplit("/", 1)[1] for path in paths] == [s.name for s in made.mid.manifest.shards]
    for position, path in enumerate(paths):
        with open(path, "rb") as file:
            assert file.read() == made.mid.shard_bytes(position)
