"""Which software made the rows, and the refusal to mix: every worker must run the driver's versions.

The rows depend on the torch version and the kind of device, the gzip ratios (so which
rules are accepted) on the zlib build, and everything on the ncaforge code. So each
worker describes itself (`describe_worker`, a WorkerRecord), the driver compares every
description with its own versions before any shard is written, and again for every shard
that arrives (an actor restarted on another node) or was kept from an earlier run, and
refuses a difference in one line naming the node. `git_lineage` records which commit of
ncaforge made a dataset (NCA or Dyck) or a training run. Where the code has no .git
(a Docker image, a Ray job's uploaded working folder), LINEAGE_VARIABLES tell it: the
Dockerfile bakes them in at build time.

NCAFORGE_TEST_FAKE_VERSIONS ('torch=0.0,zlib=1.0') makes a worker report other versions,
so the refusal can be tested through real Ray on one machine; the driver never reads it.
"""

import importlib.metadata
import os
import platform
import subprocess
import zlib

import numpy as np

from generator import __version__
from generator.errors import PipelineError
from generator.format import GeneratorLineage, WorkerRecord

FAKE_VERSIONS_VARIABLE = "NCAFORGE_TEST_FAKE_VERSIONS"
LINEAGE_VARIABLES = ("NCAFORGE_GIT_COMMIT", "NCAFORGE_GIT_DIRTY")
"""The commit, and 'true'/'false' for uncommitted changes, of code that runs without its .git folder."""
COMPARED = ("ncaforge", "torch", "numpy", "zlib", "python", "kind")
"""The WorkerRecord fields that must equal the driver's: each can change the rows."""


def installed_torch_version() -> str:
    """torch's version without importing torch (a driver on a cluster need not load it)."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def driver_versions(device_kind: str) -> dict:
    """The driver's values of the COMPARED fields; `device_kind` is the kind the run planned."""
    return {"ncaforge": __version__, "torch": installed_torch_version(), "numpy": np.__version__,
            "zlib": zlib.ZLIB_RUNTIME_VERSION, "python": platform.python_version(), "kind": device_kind}


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


def fake_versions() -> dict:
    """field -> version from NCAFORGE_TEST_FAKE_VERSIONS, for tests only."""
    text = os.environ.get(FAKE_VERSIONS_VARIABLE, "")
    return dict(pair.split("=", 1) for pair in text.split(",") if "=" in pair)


def describe_worker(device: str, compiled_step: bool) -> WorkerRecord:
    """This process, as a worker making rows on `device` ('cpu', 'cuda', 'cuda:N')."""
    import ray
    import torch

    kind = "cuda" if device.startswith("cuda") else "cpu"
    name = torch.cuda.get_device_name(torch.device(device)) if kind == "cuda" else cpu_model_name() or platform.machine()
    record = {"node": ray.util.get_node_ip_address(), "kind": kind, "name": name, "torch": torch.__version__,
              "numpy": np.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION, "python": platform.python_version(),
              "ncaforge": __version__, "compiled_step": compiled_step}
    return WorkerRecord(**{**record, **fake_versions()})


def check_same_versions(worker: WorkerRecord, driver: dict, who: str) -> None:
    """Raise PipelineError when `worker` differs from the driver in any COMPARED field.
    `who` starts the message, subject and verb: 'worker on node 10.0.0.2 runs'."""
    for field in COMPARED:
        theirs, ours = getattr(worker, field), driver[field]
        if theirs != ours:
            label = "device kind" if field == "kind" else field
            raise PipelineError(f"{who} {label} {theirs} but the driver runs {ours}: install the same versions everywhere")


def distinct_workers(records) -> list:
    """The distinct worker environments among `records` (None skipped), sorted by node.

    Not one record per actor with the shards it made: which actor makes which shard
    depends on scheduling, so the same dataset made twice (or with another worker count,
    or resumed) would get a different manifest. The set of (node, versions) does not."""
    unique = {record.model_dump_json(): record for record in records if record is not None}
    return sorted(unique.values(), key=lambda record: (record.node, record.model_dump_json()))


def git_lineage() -> GeneratorLineage:
    """The commit the generator ran from, and whether its tree had uncommitted changes: from git, else from
    LINEAGE_VARIABLES, else 'unknown'."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit_variable, dirty_variable = LINEAGE_VARIABLES
    told = GeneratorLineage(name="ncaforge", version=__version__, git_commit=os.environ.get(commit_variable) or "unknown",
                            git_dirty={"true": True, "false": False}.get(os.environ.get(dirty_variable, "").lower()))
    if not os.path.exists(os.path.join(root, ".git")):
        return told
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return told
    if commit.returncode:
        return told
    return told.model_copy(update={"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())})
