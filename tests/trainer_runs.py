"""Shared by the trainer's tests: a micro model, a real catalog process, and real torchrun launches.

Trainer tests run the real entry point (`torchrun trainer/main.py`, or plain python) as a
subprocess on small datasets the real pipeline made (tests.service_datasets), on this machine
or, like the catalog, on a simulated host of tests.hosts. The micro model (1 layer, d_model 32,
context 128) keeps a step around 0.1 s on one core while exercising everything the tiny-cpu
recipe does.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from service.settings import TOKEN_ENV, TOKEN_FILE_ENV
from tests.conftest import ROOT, free_port

MAIN = os.path.join(ROOT, "trainer", "main.py")
MICRO_MODEL = ["--model.layers", "1", "--model.d_model", "32", "--model.heads", "2", "--model.mlp_hidden", "64",
               "--model.context", "128", "--train.progress", "false", "--train.threads", "1",
               "--optim.warmup_steps", "2", "--optim.lr", "1e-2", "--optim.decay", "constant"]


def environment() -> dict:
    """The test's environment for child processes: one thread, loopback-only gloo, no catalog token."""
    env = {key: value for key, value in os.environ.items() if key not in (TOKEN_ENV, TOKEN_FILE_ENV)}
    return {**env, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1"}


def torchrun_command(nproc: int, args: list, rendezvous: list = None) -> list:
    """torchrun with `rendezvous` (its launcher options); by default one node with a static rendezvous on
    127.0.0.1 (nothing listens on other interfaces)."""
    if nproc == 0:
        return [sys.executable, MAIN, *args]
    rendezvous = rendezvous or ["--nnodes", "1", "--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    return [sys.executable, "-m", "torch.distributed.run", *rendezvous, "--nproc-per-node", str(nproc),
            "--monitor-interval", "0.5", MAIN, *args]


def start_trainer(nproc: int, args: list, log: Path, rendezvous: list = None, host=None,
                  env: dict = None) -> subprocess.Popen:
    """A trainer job in its own process group (so a test can kill all of it), output to `log`; on `host` (a
    tests.hosts.Host) when given, with `env` added to the test's environment."""
    command, env = torchrun_command(nproc, args, rendezvous), {**environment(), **(env or {})}
    with open(log, "ab") as out:
        if host:
            return host.popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(process: subprocess.Popen, log: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Wait for a started job (killing all of it if it outlives `timeout`); its exit code and output."""
    try:
        process.wait(timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, log.read_text(errors="replace"), "")


def run_trainer(nproc: int, args: list, log: Path, timeout: float = 300, **where) -> subprocess.CompletedProcess:
    """Run a job to the end; `where` is start_trainer's rendezvous, host and env."""
    return finish(start_trainer(nproc, args, log, **where), log, timeout)


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
def catalog_server(shards_dir: Path, log: Path, host=None, token: str = None):
    """A real `python -m service` under uvicorn, stopped at the end: on 127.0.0.1, or on `host` (a
    tests.hosts.Host; `shards_dir` a path on it) at its own address with a bearer `token`."""
    address, port = (host.address, 8000) if host else ("127.0.0.1", free_port())
    command = [sys.executable, "-m", "service", "--host", address, "--port", str(port), "--shards", str(shards_dir)]
    env = {**environment(), **({TOKEN_ENV: token} if token else {})}
    with open(log, "ab") as out:
        process = (host.popen(command, env=env, stdout=out, stderr=subprocess.STDOUT) if host else
                   subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text(errors="replace"):  # printed once the socket is bound
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"catalog did not start: {log.read_text()}")
            time.sleep(0.2)
        yield f"http://{address}:{port}"
    finally:
        process.terminate()
        process.wait(30)
