"""Shared test setup: one torch thread (tests are small), a free port. The packages are imported
from the editable install that make setup does."""

import os
import socket

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The repository's root folder."""

torch.set_num_threads(1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
