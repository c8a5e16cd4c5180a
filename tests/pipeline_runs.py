"""Shared by the pipeline's tests: the small dataset they make, and real `python -m generator.pipeline`
processes to start, watch (the journal) and hold still (SIGSTOP of their shard workers)."""

import os
import signal
import subprocess
import sys
import time

import psutil

from generator.config import DatasetConfig, GeneratorConfig
from generator.shards import file_sha256
from tests.conftest import ROOT

SEED, SEQUENCES, CANDIDATES_PER_SHARD = 5, 1500, 1024  # ~470 rows a shard: 4 shards, the last one cut short
CLI_ARGS = ["--band", "high", "--seed", str(SEED), "--sequences", str(SEQUENCES), "--candidates-per-shard",
            str(CANDIDATES_PER_SHARD), "--batch", "256", "--no-compile", "--no-progress"]


def small_config() -> DatasetConfig:
    generator_config = GeneratorConfig(seed=SEED, band="high", compile=False, rules_per_batch=256)
    return DatasetConfig(sequences=SEQUENCES, candidates_per_shard=CANDIDATES_PER_SHARD, generator=generator_config)


def dataset_files(dataset_dir: str) -> dict:
    """name -> sha256 of every file a finished dataset holds (hidden journal and temporaries excluded)."""
    return {name: file_sha256(os.path.join(dataset_dir, name)) for name in sorted(os.listdir(dataset_dir))
            if not name.startswith(".")}


def pipeline_process(out: str, *extra, env=None, cli_args=CLI_ARGS) -> subprocess.Popen:
    """`python -m generator.pipeline` with `cli_args` (the small dataset's by default) into `out`."""
    return subprocess.Popen([sys.executable, "-m", "generator.pipeline", *cli_args, "--out", out, *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_journal(dataset_dir: str, entries: int, process: subprocess.Popen, timeout: float = 240) -> None:
    journal = os.path.join(dataset_dir, ".progress")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.isdir(journal) and len([n for n in os.listdir(journal) if n.endswith(".json")]) >= entries:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError(f"no {entries} journal entries in {timeout} s")


def freeze_workers(driver: subprocess.Popen) -> list:
    """SIGSTOP every shard worker of a running driver, so it cannot finish before the test strikes, however many
    cores the machine has; returns the frozen processes."""
    workers = [p for p in psutil.Process(driver.pid).children(recursive=True) if "ShardWorker" in " ".join(p.cmdline())]
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    return workers
