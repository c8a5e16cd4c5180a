"""The real server: `python -m service` under uvicorn on 127.0.0.1, real HTTP requests, loopback only."""

import contextlib
import hashlib
import io
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.client import CatalogClient
from service.settings import TOKEN_ENV
from tests.conftest import ROOT, free_port
from tests.service_datasets import made_datasets

START_TIMEOUT = 60
SMALL_PIECE = 16 * 1024  # many requests per shard, so two unlocked downloads would overlap


def environment_without_token() -> dict:
    return {key: value for key, value in os.environ.items() if key != TOKEN_ENV}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return made_datasets(tmp_path_factory)


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    port: int
    stdout: Path
    """Where the server's stdout goes: its start-up lines, then uvicorn's access log. A file, not a
    pipe: a pipe nobody reads would block the server once its buffer filled."""

    def stdout_lines(self) -> list:
        return self.stdout.read_text().splitlines()


@contextlib.contextmanager
def serving(shards_dir: Path, logs: Path):
    """A running `python -m service` over `shards_dir` on 127.0.0.1, its output in files under `logs`,
    stopped cleanly (and checked to have stopped so) on exit."""
    port = free_port()
    stdout, log = logs / "stdout.log", logs / "stderr.log"
    with open(stdout, "w") as out, open(log, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port), "--shards", str(shards_dir)],
                                   cwd=ROOT, env=environment_without_token(), stdout=out, stderr=err)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            assert process.poll() is None, f"the server exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"no answer on {base_url} within {START_TIMEOUT} s: {log.read_text()}"
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield RunningServer(base_url, port, stdout)
    finally:
        process.terminate()
        status = process.wait(timeout=30)
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status says what stopped it
    assert status in (0, -signal.SIGTERM), log.read_text()
    assert "Finished server process" in log.read_text()


@pytest.fixture(scope="module")
def server(made, tmp_path_factory):
    """A running `python -m service` over both datasets, stopped cleanly at the end of the module."""
    with serving(made.root, tmp_path_factory.mktemp("uvicorn")) as running:
        yield running


def raw_get(port: int, target: str) -> bytes:
    """One HTTP/1.1 GET with the target sent exactly as written (clients would normalise '..')."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_server_announces_its_address_and_that_loopback_needs_no_token(server, made):
    startup = server.stdout_lines()[:2]  # printed before /healthz first answered
    assert startup[0].endswith(": 2 finished dataset(s), rescanned on every request")
    assert startup[1] == f"listening on 127.0.0.1:{server.port}, no token required (loopback only); API docs at /docs"


def test_real_requests_list_stream_a_range_and_draw_a_preview(server, made):
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.get("/v1/datasets").json()["total"] == 2
        shard = client.get(f"/v1/datasets/{made.high.id}/shards").json()["items"][0]
        piece = client.get(shard["url"], headers={"Range": "bytes=1000000-1999999"})
        assert piece.status_code == 206 and piece.content == made.high.shard_bytes(0)[1_000_000:2_000_000]
        assert piece.headers["etag"] == f'"{shard["sha256"]}"'
        preview = client.get(f"/v1/datasets/{made.mid.id}/rows/7/preview.png")
        assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).format == "PNG"
        assert client.get("/docs").status_code == 200


def test_the_client_downloads_a_verified_shard_over_real_http(server, made, tmp_path):
    with CatalogClient(server.base_url, cache_dir=str(tmp_path)) as client:
        path = client.download_shard(made.high.id, made.high.manifest.shards[0].name, piece_bytes=512 * 1024)
    with open(path, "rb") as file:
        assert file.read() == made.high.shard_bytes(0)


def download_after_barrier(base_url: str, cache_dir: str, dataset_id: str, barrier, results) -> None:
    """One trainer rank: wait for the other, then download the whole dataset into the shared cache."""
    with CatalogClient(base_url, cache_dir=cache_dir) as client:
        barrier.wait()
        paths = client.download_dataset(dataset_id, piece_bytes=SMALL_PIECE)
    results.put([(path, hashlib.sha256(Path(path).read_bytes()).hexdigest()) for path in paths])


def two_ranks(target, *args) -> list:
    """What target(*args, barrier, results) put in `results` in each of two spawned processes started
    together (the barrier), as two trainer ranks on one machine would; both must exit cleanly."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    ranks = [context.Process(target=target, args=(*args, barrier, results)) for _ in range(2)]
    for rank in ranks:
        rank.start()
    got = [results.get(timeout=120) for _ in ranks]
    for rank in ranks:
        rank.join(timeout=30)
        assert rank.exitcode == 0
    return got


def test_two_processes_sharing_a_cache_download_each_shard_once(server, made, tmp_path):
    shard_gets = f'"GET /v1/datasets/{made.mid.id}/shards/part-'
    before = sum(shard_gets in line for line in server.stdout_lines())
    got = two_ranks(download_after_barrier, server.base_url, str(tmp_path), made.mid.id)
    expected = [(str(tmp_path / made.mid.id / entry.name), entry.sha256) for entry in made.mid.manifest.shards]
    assert got == [expected, expected]
    one_download = sum(math.ceil(entry.bytes / SMALL_PIECE) for entry in made.mid.manifest.shards)
    assert sum(shard_gets in line for line in server.stdout_lines()) - before == one_download


@pytest.mark.parametrize("target", ["/v1/datasets/../../../etc/passwd", "/v1/datasets/../shards",
                                    "/v1/datasets/%2e%2e/%2e%2e/etc/passwd", "/v1/datasets/..%2f..%2fetc%2fpasswd/shards"])
def test_unnormalised_dot_segments_on_the_wire_get_404(server, target):
    response = raw_get(server.port, target)
    assert response.startswith(b"HTTP/1.1 404 ") and b"root:" not in response


def non_loopback_address() -> str | None:
    """This machine's address on its default route, if it has one (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_server_is_bound_to_loopback_only(server):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with pytest.raises(OSError):
        socket.create_connection((address, server.port), timeout=5).close()


def test_a_non_loopback_host_without_a_token_exits_before_binding(made):
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "service", "--host", "0.0.0.0", "--port", str(port),
                             "--shards", str(made.root)], cwd=ROOT, env=environment_without_token(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and f"set {TOKEN_ENV}" in result.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
