"""The client against a real, flaky HTTP server on 127.0.0.1: dropped connections, stalls and 5xx
answers are retried with backoff and downloads resume from the bytes already received; 4xx answers
are final at once; a server that keeps failing gives one line naming the number of attempts."""

import hashlib
import json
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.client import CatalogClient, CatalogError

DATASET_ID = "high-3-000000000000"
SHARD = "part-00000.arrow"
SHARD_BYTES = os.urandom(300_000)
PIECE = 100_000
STALL_SECONDS = 3.0
CLIENT_TIMEOUT = 1.0  # a stalled answer times out well before the server gives it


class FlakyCatalog(BaseHTTPRequestHandler):
    """A catalog of one dataset with one shard. Each request takes the next fault from the server's
    script for its kind ("list" or "shard"), if any: "drop" sends half the body and closes the
    connection, "stall" answers only after STALL_SECONDS, a number is answered as that status."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        kind = "shard" if self.path.endswith(f"/shards/{SHARD}") else "list"
        self.server.requests.append((kind, self.headers.get("Range")))
        faults = self.server.faults[kind]
        fault = faults.pop(0) if faults else None
        if fault == "stall":
            time.sleep(STALL_SECONDS)
        elif isinstance(fault, int):
            return self.answer(fault, b'{"detail": "scripted failure"}', "application/json")
        if kind == "list":
            listing = {"total": 1, "offset": 0, "limit": 50, "links": {},
                       "items": [{"name": SHARD, "bytes": len(SHARD_BYTES), "sha256": hashlib.sha256(SHARD_BYTES).hexdigest()}]}
            return self.answer(200, json.dumps(listing).encode(), "application/json")
        first, last = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers["Range"]).groups())
        body = SHARD_BYTES[first:last + 1]
        extra = {"Content-Range": f"bytes {first}-{first + len(body) - 1}/{len(SHARD_BYTES)}"}
        self.answer(206, body[:len(body) // 2] if fault == "drop" else body, "application/octet-stream",
                    length=len(body), headers=extra)
        if fault == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    def answer(self, status: int, body: bytes, media_type: str, length: int | None = None, headers=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass  # the test reads server.requests instead


@pytest.fixture
def flaky():
    """A running FlakyCatalog on 127.0.0.1; the test sets server.faults before its first request."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyCatalog)
    server.requests, server.faults = [], {"list": [], "shard": []}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client_of(server, cache_dir) -> CatalogClient:
    return CatalogClient(f"http://127.0.0.1:{server.server_address[1]}", token="", cache_dir=str(cache_dir),
                         timeout=CLIENT_TIMEOUT)


def test_a_dropped_connection_a_stall_and_503s_are_retried_and_the_download_resumes(flaky, tmp_path):
    flaky.faults = {"list": [503, "stall"], "shard": ["drop", 503]}
    with client_of(flaky, tmp_path) as client:
        [path] = client.download_dataset(DATASET_ID, piece_bytes=PIECE)
    with open(path, "rb") as file:
        assert file.read() == SHARD_BYTES
    resumed = PIECE // 2  # the dropped piece delivered half of its bytes, and they were kept
    assert flaky.requests == [("list", None)] * 3 + [
        ("shard", "bytes=0-99999"),  # dropped half-way
        ("shard", f"bytes={resumed}-{resumed + PIECE - 1}"),  # 503
        ("shard", f"bytes={resumed}-{resumed + PIECE - 1}"),
        ("shard", f"bytes={resumed + PIECE}-{resumed + 2 * PIECE - 1}"),
        ("shard", f"bytes={resumed + 2 * PIECE}-{len(SHARD_BYTES) - 1}"),
    ]


def test_a_server_that_keeps_failing_gives_one_line_after_the_bounded_attempts(flaky, tmp_path):
    flaky.faults = {"list": [], "shard": [503] * 10}
    with client_of(flaky, tmp_path) as client, pytest.raises(CatalogError) as error:
        client.download_dataset(DATASET_ID, piece_bytes=PIECE)
    message = str(error.value)
    assert "answered 503 after 4 attempt(s): scripted failure" in message and "\n" not in message
    assert [kind for kind, _ in flaky.requests] == ["list"] + ["shard"] * 4
    assert not (tmp_path / DATASET_ID / SHARD).exists()


def test_a_4xx_is_not_retried(flaky, tmp_path):
    flaky.faults = {"list": [404], "shard": []}
    with client_of(flaky, tmp_path) as client, pytest.raises(CatalogError, match="answered 404: scripted failure"):
        client.shards(DATASET_ID)
    assert len(flaky.requests) == 1
