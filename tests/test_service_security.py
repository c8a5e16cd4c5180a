"""Bad input and security: paths that try to leave the shard folder get 404 and never a byte from
outside; the bearer token guards /v1 when set; bad settings stop the server before it binds;
the catalog imports no torch."""

import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from service.__main__ import main
from service.app import create_app
from service.catalog import Catalog, NotFound
from service.client import CatalogClient, CatalogError
from service.settings import TOKEN_ENV, TOKEN_FILE_ENV, ServerSettings
from tests.conftest import ROOT
from tests.service_datasets import copy_dataset, made_datasets

SECRET = "TOP-SECRET-OUTSIDE-THE-SHARD-FOLDER"
TOKEN = "a-long-enough-test-token-0123456789"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return made_datasets(tmp_path_factory)


@pytest.fixture(scope="module")
def trap(made, tmp_path_factory):
    """A shard folder holding the mid dataset plus symlinks that point outside it:

    shards/mid-...                      a real dataset
    shards/high-1150-...  -> outside/   a complete dataset, but outside (symlinked folder)
    shards/mid-copy/part-00000.arrow -> outside/secret.txt   (symlinked shard; its manifest lists it)
    shards/linked-manifest/manifest.json -> outside/high-.../manifest.json
    """
    base = tmp_path_factory.mktemp("trap")
    outside, shards = base / "outside", base / "shards"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "manifest.json").write_text(SECRET)
    outside_dataset = copy_dataset(made.high, outside)
    copy_dataset(made.mid, shards)
    os.symlink(outside_dataset, shards / made.high.id)
    copied = copy_dataset(made.mid, base / "staging")
    os.rename(copied, shards / "mid-copy")
    shard = shards / "mid-copy" / made.mid.manifest.shards[0].name
    shard.unlink()
    os.symlink(outside / "secret.txt", shard)
    (shards / "linked-manifest").mkdir()
    os.symlink(outside_dataset / "manifest.json", shards / "linked-manifest" / "manifest.json")
    return shards


@pytest.fixture(scope="module")
def client(trap):
    return TestClient(create_app(str(trap)))


@pytest.mark.parametrize("path", [
    "/v1/datasets/%2e%2e/shards",
    "/v1/datasets/%2e%2e/histogram.png",
    "/v1/datasets/..%2F..%2Foutside/shards/secret.txt",
    "/v1/datasets/{mid}/shards/..%2F..%2Foutside%2Fsecret.txt",
    "/v1/datasets/{mid}/shards/%2e%2e%2Fmid-copy%2Fpart-00000.arrow",
    "/v1/datasets/{mid}/shards/%2Fetc%2Fpasswd",
    "/v1/datasets/%2Fetc%2Fpasswd/shards",
    "/v1/datasets/%2Fetc/histogram.png",
    "/v1/datasets/{mid}/shards/manifest.json",
    "/v1/datasets/{mid}%00/shards",
    "/v1/datasets/..%5C..%5Coutside/shards",
    "/v1/datasets/.%2e/rows/0",
])
def test_paths_leaving_the_shard_folder_get_404_and_nothing_from_outside(client, made, path):
    response = client.get(path.format(mid=made.mid.id))
    assert response.status_code == 404
    assert SECRET not in response.text and "root:" not in response.text


def test_a_symlinked_dataset_folder_pointing_outside_is_neither_listed_nor_served(client, made):
    assert [item["id"] for item in client.get("/v1/datasets").json()["items"]] == sorted(["mid-copy", made.mid.id])
    for suffix in ("", "/shards", "/shards/part-00000.arrow", "/rows/0", "/rows/0/preview.png", "/histogram.png"):
        assert client.get(f"/v1/datasets/{made.high.id}{suffix}").status_code == 404


def test_a_symlinked_shard_pointing_outside_gets_404_for_bytes_rows_and_previews(client, made):
    name = made.mid.manifest.shards[0].name
    for path in (f"/shards/{name}", "/rows/0", "/rows/0/preview.gif"):
        response = client.get(f"/v1/datasets/mid-copy{path}")
        assert response.status_code == 404 and SECRET not in response.text
    assert client.head(f"/v1/datasets/mid-copy/shards/{name}").status_code == 404
    second = made.mid.manifest.shards[1].name  # the dataset's real files still serve
    assert client.get(f"/v1/datasets/mid-copy/shards/{second}").content == made.mid.shard_bytes(1)


def test_a_manifest_symlinked_from_outside_does_not_make_a_dataset(client):
    assert client.get("/v1/datasets/linked-manifest").status_code == 404


def test_the_catalog_refuses_traversing_names_before_touching_the_disk(trap, made):
    catalog = Catalog(str(trap))
    for dataset_id in ("..", ".", "../outside", str(trap), "/etc", "mid-copy/../..", ""):
        with pytest.raises(NotFound):
            catalog.dataset(dataset_id)
    dataset = catalog.dataset(made.mid.id)
    for name in ("../mid-copy/part-00000.arrow", "/etc/passwd", "part-00000.arrow/..", "manifest.json"):
        with pytest.raises(NotFound):
            catalog.open_shard(dataset, name)


@pytest.fixture(scope="module")
def guarded(made):
    return TestClient(create_app(str(made.root), token=TOKEN))


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}])
def test_with_a_token_every_v1_endpoint_needs_the_exact_bearer_token(guarded, made, headers):
    shard = made.mid.manifest.shards[0].name
    for path in ("/v1/datasets", f"/v1/datasets/{made.mid.id}", f"/v1/datasets/{made.mid.id}/shards",
                 f"/v1/datasets/{made.mid.id}/shards/{shard}", f"/v1/datasets/{made.mid.id}/rows/0",
                 f"/v1/datasets/{made.mid.id}/rows/0/preview.png", f"/v1/datasets/{made.mid.id}/histogram.png",
                 "/v1/datasets/unknown-id"):
        response = guarded.get(path, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", path
        assert TOKEN_ENV in response.json()["detail"]


def test_with_the_right_token_the_api_answers_and_healthz_needs_none(guarded, made):
    assert guarded.get("/healthz").status_code == 200
    authorised = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get("/v1/datasets", headers=authorised).json()["total"] == 2
    shard = made.mid.manifest.shards[0].name
    response = guarded.get(f"/v1/datasets/{made.mid.id}/shards/{shard}", headers={**authorised, "Range": "bytes=0-9"})
    assert response.status_code == 206 and response.content == made.mid.shard_bytes(0)[:10]


@pytest.mark.parametrize("argv, environ, words", [
    (["--host", "0.0.0.0"], {}, f"host 0.0.0.0 is reachable from other machines, so the catalog needs a bearer token: set {TOKEN_ENV}"),
    (["--host", "192.168.1.5"], {TOKEN_ENV: "  "}, f"set {TOKEN_ENV}"),
    (["--host", "0.0.0.0"], {TOKEN_ENV: "short"}, f"{TOKEN_ENV} has 5 characters"),
    (["--port", "70000"], {}, "port 70000 is out of range: use a port in 1-65535"),
    (["--port", "0"], {}, "port 0 is out of range"),
    (["--port", "http"], {}, "port 'http' is not a number"),
    (["--shards", "/nonexistent/shards"], {}, "shard folder '/nonexistent/shards' does not exist"),
    (["--host", "0.0.0.0"], {TOKEN_FILE_ENV: "/nonexistent/token"},
     f"{TOKEN_FILE_ENV}=/nonexistent/token cannot be read (No such file or directory): point it at the file"),
    (["--host", "0.0.0.0"], {TOKEN_FILE_ENV: "/dev/null"}, f"{TOKEN_FILE_ENV}=/dev/null is empty: write the catalog token"),
])
def test_bad_settings_stop_the_server_with_one_line_before_binding(made, capsys, argv, environ, words):
    shards = [] if "--shards" in argv else ["--shards", str(made.root)]
    try:
        code = main(argv + shards, environ=environ)
    except SystemExit as exit_:  # argparse exits by itself
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err


def test_the_startup_line_says_whether_a_token_is_required(made):
    def line(host: str, environ: dict) -> str:
        return ServerSettings.from_environment(host, 8000, str(made.root), environ=environ).validate().listening_line()

    assert line("127.0.0.1", {}) == "listening on 127.0.0.1:8000, no token required (loopback only)"
    assert line("::1", {}) == "listening on [::1]:8000, no token required (loopback only)"
    assert line("0.0.0.0", {TOKEN_ENV: TOKEN}) == f"listening on 0.0.0.0:8000, bearer token required ({TOKEN_ENV})"
    assert line("127.0.0.1", {TOKEN_ENV: TOKEN}) == f"listening on 127.0.0.1:8000, bearer token required ({TOKEN_ENV})"


def test_a_token_in_a_secret_file_guards_the_catalog_and_reaches_the_client(made, tmp_path, monkeypatch):
    secret = tmp_path / "catalog_token"
    secret.write_text(TOKEN + "\n")
    settings = ServerSettings.from_environment("0.0.0.0", 8000, str(made.root), environ={TOKEN_FILE_ENV: str(secret)})
    assert settings.validate().token == TOKEN
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv(TOKEN_FILE_ENV, str(secret))
    http = TestClient(create_app(str(made.root), TOKEN))
    with CatalogClient("http://testserver", cache_dir=str(tmp_path / "cache"), http=http) as catalog:
        assert catalog.dataset(made.mid.id)["id"] == made.mid.id
    monkeypatch.setenv(TOKEN_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(CatalogError, match=f"^{TOKEN_FILE_ENV}=.*missing cannot be read"):
        CatalogClient("http://testserver", cache_dir=str(tmp_path / "cache"), http=http)


def test_importing_the_catalog_and_its_client_loads_no_torch_and_no_rollout_code():
    probe = ("import sys, json, service.app, service.client, service.__main__; "
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray') "
             "or m in ('generator.generate', 'generator.step', 'generator.rollout', 'generator.rules'))))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
