"""Shared test setup: one torch thread (tests are small), free ports, and the order in which `make test`
hands modules to its pytest-xdist workers (`-n N --dist loadfile`: a module runs whole in one worker, so its
module-scoped fixtures run once). The packages are imported from the editable install that make setup does."""

import itertools
import os
import socket

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The repository's root folder."""

torch.set_num_threads(1)

LONGEST_FIRST = ["test_experiment", "test_pipeline", "test_multihost_generation", "test_multihost_training",
                 "test_trainer_torchrun", "test_trainer_language", "test_dyck_serving", "test_generate", "test_lock"]
"""The modules that take 30 s to 5 minutes each when run alone, longest first; the short ones come after them
and fill whichever worker is free (xdist, with --no-loadscope-reorder, hands out files in this order)."""

PORT_BLOCK = 1000
"""Ports per xdist worker: worker gwN takes 20000 + N * PORT_BLOCK onwards. That is above Ray's worker ports
(10002-19999) and below the kernel's ephemeral range (32768 up), so no two workers, and no port the kernel
hands out, ever meet."""


def pytest_collection_modifyitems(config, items):
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a module's own order is kept


def _worker_ports():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return None
    first = 20000 + int(worker[2:]) * PORT_BLOCK
    return itertools.cycle(range(first, first + PORT_BLOCK))


_ports = _worker_ports()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now: the kernel's choice in a plain run; the
    next free one of this worker's own block under pytest-xdist, so that another worker cannot take it
    between this probe and its use, and a port a test expects to stay closed stays closed."""
    for _ in range(PORT_BLOCK if _ports else 1):
        port = next(_ports) if _ports else 0
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError(f"no free port in this worker's block of {PORT_BLOCK}: raise PORT_BLOCK in tests/conftest.py")
