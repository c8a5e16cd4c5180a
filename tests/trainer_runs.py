"""Shared by the trainer's tests: a micro model, a real catalog process, and real torchrun launches.

Trainer tests run the real entry point (`torchrun trainer/main.py`, or plain python) as a
subprocess on small datasets the real pipeline made (tests.service_datasets). The micro
model (1 layer, d_model 32, context 128) keeps a step around 0.1 s on one core while
exercising everything the tiny-cpu recipe does.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port

MAIN = os.path.join(ROOT, "trainer", "main.py")
MICRO_MODEL = ["--model.layers", "1", "--model.d_model", "32", "--model.heads", "2", "--model.mlp_hidden", "64",
               "--model.context", "128", "--train.progress", "false", "--train.threads", "1",
               "--optim.warmup_steps", "2", "--optim.lr", "1e-2", "--optim.decay", "constant"]


def environment() -> dict:
    """The test's environment for child processes: one thread, loopback-only gloo, no catalog token."""
    env = {key: value for key, value in os.environ.items() if key != "NCAFORGE_CATALOG_TOKEN"}
    return {**env, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1"}


def torchrun_command(nproc: int, args: list) -> list:
    """torchrun with a static rendezvous on 127.0.0.1 (nothing listens on other interfaces)."""
    if nproc == 0:
        return [sys.executable, MAIN, *args]
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "--monitor-interval", "0.5", MAIN, *args]


def start_trainer(nproc: int, args: list, log: Path) -> subprocess.Popen:
    """A trainer job in its own process group (so a test can kill all of it), output to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(torchrun_command(nproc, args), cwd=ROOT, env=environment(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def run_trainer(nproc: int, args: list, log: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    process = start_trainer(nproc, args, log)
    try:
        process.wait(timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, log.read_text(errors="replace"), "")


def run_killed_then_resumed(nproc: int, args: list, run_dir: Path, kill_after_step: int, logs: Path) -> None:
    """Start the job, kill -9 all of it once checkpoint `kill_after_step` exists, then resume it to the end."""
    job = start_trainer(nproc, [*args, "--train.run_dir", str(run_dir)], logs / "killed.log")
    deadline = time.monotonic() + 240
    while not (run_dir / f"step-{kill_after_step:08d}").exists():
        assert job.poll() is None and time.monotonic() < deadline, (logs / "killed.log").read_text()[-3000:]
        time.sleep(0.05)
    os.killpg(job.pid, 9)
    job.wait()
    resumed = run_trainer(nproc, [*args, "--train.run_dir", str(run_dir), "--resume"], logs / "resumed.log")
    assert resumed.returncode == 0, resumed.stdout[-3000:]


def assert_same_run(run_a: Path, run_b: Path, final_step: int) -> None:
    """Equal logged losses, gradient norms and evaluations, and bit-identical final weights."""
    import torch

    for kind, fields in (("train", ("step", "loss", "grad_norm", "lr", "tokens")), ("eval", ("step", "loss"))):
        assert [{f: r[f] for f in fields} for r in metrics(run_a, kind)] == \
               [{f: r[f] for f in fields} for r in metrics(run_b, kind)]
    weights_a, weights_b = (torch.load(run / f"step-{final_step:08d}" / "model.pt", weights_only=True)
                            for run in (run_a, run_b))
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)


def metrics(run_dir: Path, kind: str) -> list:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == kind]


@contextlib.contextmanager
def catalog_server(shards_dir: Path, log: Path):
    """A real `python -m service` under uvicorn on 127.0.0.1, stopped at the end."""
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port), "--shards", str(shards_dir)],
                                   cwd=ROOT, env=environment(), stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"catalog did not start: {log.read_text()}")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(30)
