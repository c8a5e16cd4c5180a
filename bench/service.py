"""Catalog load benchmark: a bounded mixed load on the real server, each figure beside a same-run baseline.

The real server (`python -m service`, uvicorn, access log off so logging is not
what gets measured) runs on 127.0.0.1 over a band-high dataset made once by the
pipeline and reused from /tmp afterwards. 2,000 requests at concurrency 32, from
httpx.AsyncClient, mix dataset lists, summaries, shard lists, single rows, PNG
previews and 1 MiB shard Range pieces; every answer is checked (status, length)
and any wrong one counts as an error, which fails the run. Baselines: /healthz
under the same load (the framework's floor: no disk, no JSON beyond a constant),
and for shard streaming, reading the same files from the page cache in this process.
Client and server share the machine's cores, so the figures are a lower bound for
a server with cores of its own.

    python -m bench.service [--requests 2000] [--concurrency 32] [--shards /tmp/ncaforge-bench-service]
"""

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import httpx
import numpy as np

from bench.report import print_table, rate
from generator.config import DatasetConfig, GeneratorConfig, RunOptions, dataset_content
from service.catalog import Catalog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET = DatasetConfig(sequences=2500, candidates_per_shard=2048,
                        generator=GeneratorConfig(band="high", seed=7, compile=False, rules_per_batch=256))
PIECE_BYTES = 1 << 20
MIX = {"list datasets": 15, "dataset summary": 10, "shard list": 10, "row JSON": 30, "preview PNG": 10, "shard range 1 MiB": 25}
STREAM_SECONDS = 2.0  # at least this long per streaming measurement, so a rate is not one lucky read


def dataset_in(out: str):
    """The benchmark's dataset under `out`, made by the pipeline unless a finished copy is there."""
    wanted = dataset_content(DATASET)
    for dataset in Catalog(out).datasets():
        if dataset_content(dataset.config) == wanted:
            return dataset, 0.0
    from generator.pipeline import run

    started = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    summary = run(DATASET, RunOptions(out=out, progress=False))
    return Catalog(out).dataset(summary.dataset_id), time.perf_counter() - started


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(shards_dir: str, port: int, stderr) -> subprocess.Popen:
    """The catalog on `port`, its stderr into the open file `stderr` (a pipe nobody drains could fill and
    block the server mid-benchmark)."""
    process = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port), "--shards", shards_dir,
                                "--no-access-log"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                               env={k: v for k, v in os.environ.items() if k != "NCAFORGE_CATALOG_TOKEN"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr.seek(0)
            raise SystemExit(f"the catalog exited at start-up: {stderr.read().decode().strip()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("the catalog did not answer /healthz within 60 s")


def plan_requests(dataset, count: int, seed: int = 0) -> list:
    """(kind, path, headers, expected status, expected body length or None), drawn reproducibly."""
    chooser = random.Random(seed)
    base = f"/v1/datasets/{dataset.id}"
    kinds, weights = zip(*MIX.items())
    plan = []
    for kind in chooser.choices(kinds, weights, k=count):
        row = chooser.randrange(dataset.rows)
        shard = chooser.choice(dataset.shards)
        if kind == "list datasets":
            plan.append((kind, "/v1/datasets?band=high", {}, 200, None))
        elif kind == "dataset summary":
            plan.append((kind, base, {}, 200, None))
        elif kind == "shard list":
            plan.append((kind, f"{base}/shards", {}, 200, None))
        elif kind == "row JSON":
            plan.append((kind, f"{base}/rows/{row}", {}, 200, None))
        elif kind == "preview PNG":
            plan.append((kind, f"{base}/rows/{row}/preview.png", {}, 200, None))
        else:
            start = chooser.randrange(0, shard.bytes, PIECE_BYTES)
            end = min(start + PIECE_BYTES, shard.bytes) - 1
            plan.append((kind, f"{base}/shards/{shard.name}", {"Range": f"bytes={start}-{end}"}, 206, end - start + 1))
    return plan


async def run_load(base_url: str, plan: list, concurrency: int) -> tuple:
    """Run `plan` with `concurrency` requests in flight; return (seconds, {kind: [latencies]}, errors)."""
    latencies, errors, queue = defaultdict(list), [], iter(plan)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            for kind, path, headers, status, length in queue:
                started = time.perf_counter()
                try:
                    response = await client.get(path, headers=headers)
                    ok = response.status_code == status and (length is None or len(response.content) == length)
                    if not ok:
                        errors.append(f"{path}: {response.status_code} {response.text[:120]}")
                except httpx.HTTPError as error:
                    errors.append(f"{path}: {type(error).__name__}")
                latencies[kind].append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, errors


def streaming_rates(base_url: str, dataset) -> tuple:
    """MB/s of whole shards over HTTP (one stream at a time) and of reading the same files from disk."""
    paths = [os.path.join(dataset.folder, shard.name) for shard in dataset.shards]

    def measure(read_one) -> float:
        total, started = 0, time.perf_counter()
        while time.perf_counter() - started < STREAM_SECONDS:
            for position, path in enumerate(paths):
                total += read_one(position, path)
        return total / (time.perf_counter() - started) / 1e6

    def from_disk(position: int, path: str) -> int:
        with open(path, "rb") as file:
            return sum(len(block) for block in iter(lambda: file.read(PIECE_BYTES), b""))

    with httpx.Client(base_url=base_url, timeout=60) as client:

        def over_http(position: int, path: str) -> int:
            with client.stream("GET", f"/v1/datasets/{dataset.id}/shards/{dataset.shards[position].name}") as response:
                received = sum(len(chunk) for chunk in response.iter_bytes())
            if response.status_code != 200 or received != dataset.shards[position].bytes:
                raise SystemExit(f"streaming {path} returned {response.status_code}, {received} bytes")
            return received

        measure(from_disk)  # both measurements then read from a warm page cache
        return measure(over_http), measure(from_disk)


def percentiles(values: list) -> str:
    p50, p99 = np.percentile(np.asarray(values) * 1e3, [50, 99])
    return f"{p50:.1f} / {p99:.1f} ms"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests in the mixed load (default 2,000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--shards", default="/tmp/ncaforge-bench-service", help="where the dataset is made or reused")
    args = parser.parse_args(argv)

    dataset, made_seconds = dataset_in(args.shards)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_log = tempfile.TemporaryFile()
    server = start_server(args.shards, port, server_log)
    try:
        warm_up = plan_requests(dataset, 6 * len(MIX), seed=1)  # first imports and page-cache reads, not timed
        asyncio.run(run_load(base_url, warm_up, 4))
        floor_plan = [("healthz", "/healthz", {}, 200, None)] * (args.requests // 2)
        floor_seconds, floor_latencies, floor_errors = asyncio.run(run_load(base_url, floor_plan, args.concurrency))
        seconds, latencies, errors = asyncio.run(run_load(base_url, plan_requests(dataset, args.requests), args.concurrency))
        http_rate, disk_rate = streaming_rates(base_url, dataset)
    finally:
        server.terminate()
        server.wait(timeout=30)
        server_log.close()

    every = [latency for values in latencies.values() for latency in values]
    made = f"made by the pipeline in {made_seconds:.0f} s" if made_seconds else "reused"
    print(f"catalog: {args.requests:,} requests at concurrency {args.concurrency} on 127.0.0.1, uvicorn, 1 process; "
          f"dataset {dataset.id} ({len(dataset.shards)} shards, {dataset.manifest.totals.bytes / 1e6:.1f} MB, {made}); "
          f"client and server share this machine's {os.cpu_count()} cores")
    floor = len(floor_plan) / floor_seconds
    print_table([
        ("mixed requests/s", rate(args.requests / seconds), f"/healthz {rate(floor)}", f"{args.requests / seconds / floor:.0%}"),
        ("mixed latency p50 / p99", percentiles(every), f"/healthz {percentiles(floor_latencies['healthz'])}", ""),
        ("errors", str(len(errors)), f"/healthz {len(floor_errors)}", "must be 0"),
        ("shard streaming MB/s (whole shards, HTTP)", f"{http_rate:.0f}", f"raw file read (page cache) {disk_rate:.0f}",
         f"{http_rate / disk_rate:.0%}"),
    ])
    print_table([(kind, str(len(latencies[kind])), percentiles(latencies[kind])) for kind in MIX],
                header=("request kind", "count", "p50 / p99"))
    if errors or floor_errors:
        raise SystemExit(f"{len(errors) + len(floor_errors)} request(s) failed, e.g. {(errors or floor_errors)[0]}")


if __name__ == "__main__":
    main()
