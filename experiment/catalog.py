"""The experiment's data served by the project's own catalog, so every trainer run reads its
data the way a trainer on another machine would: by URL, downloaded in verified pieces into a
cache (service.client), never by a path into the data folder.

The catalog is a child process (`python -m service`) on a free port, serving OUT/data
read-only, started once per invocation and stopped with it (PR_SET_PDEATHSIG if the driver
is killed). Its port changes between invocations; that is harmless, because run folders are
named by the data's folder and a resumed run pins its data by content digest, not by URL.
"""

import os
import selectors
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

from experiment.recipe import ExperimentError
from experiment.steps import die_with_parent

START_TIMEOUT_SECONDS = 60.0


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for_line(child: subprocess.Popen, prefix: str, timeout: float) -> None:
    """Read the child's stdout until a line starts with `prefix`; ExperimentError if it exits or times out."""
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.5):
            continue
        line = child.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
        if line.startswith(prefix):
            return
    child.kill()
    raise ExperimentError(f"the experiment's catalog did not start ({' / '.join(seen[-2:]) or 'no output'}): "
                          f"check that python -m service runs here")


@contextmanager
def serving(data_dir: str, host: str = "127.0.0.1"):
    """Yield a function folder -> catalog URL for every dataset and corpus under `data_dir`."""
    port = free_port(host)
    child = subprocess.Popen([sys.executable, "-m", "service", "--host", host, "--port", str(port), "--shards", data_dir,
                              "--no-access-log"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, text=True, preexec_fn=die_with_parent)
    try:
        wait_for_line(child, "listening on", START_TIMEOUT_SECONDS)
        base = f"http://{host}:{port}/v1/datasets"
        yield lambda folder: f"{base}/{os.path.basename(os.path.normpath(folder))}"
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
