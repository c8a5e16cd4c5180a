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
and fill whichever worker is free (xdist, with --no-loadscope-reorder, hands out files in this order). The two
multihost modules take turns (tests/hosts.py, HOSTS_LOCK), so they come one after the other: one worker runs
both, rather than one waiting idle for the other."""

FIRST_PORT, EPHEMERAL_PORTS = 20000, 32768
"""Under pytest-xdist the workers split [FIRST_PORT, EPHEMERAL_PORTS) into blocks, one each: above Ray's worker
ports (10002-19999) and below the kernel's ephemeral range, so no two workers, and no port the kernel hands
out, ever meet."""


@pytest.hookimpl(trylast=True)  # after pytest's own reordering (by fixture scope), so this order is the last word
def pytest_collection_modifyitems(config, items):
    """Put the LONGEST_FIRST modules first, in that order."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a module's own order is kept


def _worker_ports() -> list:
    """This xdist worker's block of ports, or [] outside xdist. A worker that replaces a crashed one (numbered
    from the worker count up) shares a block with another; the bind probe still skips ports in use."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1))
    if not worker.startswith("gw"):
        return []
    size = (EPHEMERAL_PORTS - FIRST_PORT) // count
    first = FIRST_PORT + int(worker[2:]) % count * size
    return list(range(first, first + size))


_ports = itertools.cycle(_worker_ports() or [0])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now: the kernel's choice in a plain run; the
    next free one of this worker's own block under pytest-xdist, so that another worker cannot take it
    between this probe and its use, and a port a test expects to stay closed stays closed."""
    for _ in range(EPHEMERAL_PORTS - FIRST_PORT):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", next(_ports)))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("every port of this worker's block is taken: run fewer test workers (TEST_WORKERS)")
