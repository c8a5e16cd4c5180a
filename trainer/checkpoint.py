"""Checkpoints that survive a crash: RUN/step-NNNNNNNN/, written whole or not at all.

A checkpoint folder holds model.pt, optimizer.pt, state.pt (schedule, RNG states,
data position) and meta.json (resolved config, vocabulary, dataset digest, code
version, world size, and the size and sha256 of every other file). Everything is
written into RUN/.tmp-step-NNNNNNNN/, fsynced, and the folder renamed: a folder under
a step name is complete. meta.json is written last inside it, and on resume every
file is checked against it, so a checkpoint damaged afterwards (truncated by a full
disk, a bad copy) is skipped with a warning and the previous one used. Only rank 0
writes; the newest `keep` checkpoints stay.
"""

import json
import os
import re
import shutil
import sys

import torch

from generator.atomic import fsync_folder
from generator.shards import file_sha256

CHECKPOINT_NAME = re.compile(r"step-(\d{8})")
TEMP_PREFIX = ".tmp-"
META_NAME = "meta.json"
STATE_FILES = ("model.pt", "optimizer.pt", "state.pt")


class CheckpointError(Exception):
    """A checkpoint cannot be used for this run; the message says why and what to do."""


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def fsync_file(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save_checkpoint(run_dir: str, step: int, states: dict, meta: dict, keep: int) -> str:
    """Write states {'model.pt': ..., 'optimizer.pt': ..., 'state.pt': ...} and meta atomically; prune."""
    final = os.path.join(run_dir, checkpoint_name(step))
    temporary = os.path.join(run_dir, f"{TEMP_PREFIX}{checkpoint_name(step)}")
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    files = {}
    for name in STATE_FILES:
        path = os.path.join(temporary, name)
        torch.save(states[name], path)
        fsync_file(path)
        files[name] = {"bytes": os.path.getsize(path), "sha256": file_sha256(path)}
    with open(os.path.join(temporary, META_NAME), "w", encoding="utf-8") as f:
        json.dump({**meta, "step": step, "files": files}, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    fsync_folder(temporary)
    if os.path.exists(final):  # a re-run reached a step it had saved before: replace it whole
        shutil.rmtree(final)
    os.replace(temporary, final)
    fsync_folder(run_dir)
    for old in checkpoint_steps(run_dir)[:-keep]:
        shutil.rmtree(os.path.join(run_dir, checkpoint_name(old)), ignore_errors=True)
    return final


def checkpoint_steps(run_dir: str) -> list:
    """Steps of the checkpoint folders in the run, oldest first."""
    if not os.path.isdir(run_dir):
        return []
    return sorted(int(m.group(1)) for name in os.listdir(run_dir) if (m := CHECKPOINT_NAME.fullmatch(name)))


def read_meta(folder: str) -> dict:
    """meta.json of a checkpoint folder, every file checked against it; CheckpointError otherwise."""
    try:
        with open(os.path.join(folder, META_NAME), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{folder}: {META_NAME} is missing or unreadable ({error})") from None
    for name, expected in meta.get("files", {}).items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or os.path.getsize(path) != expected["bytes"] or file_sha256(path) != expected["sha256"]:
            raise CheckpointError(f"{folder}: {name} is missing, truncated or corrupt")
    if set(meta.get("files", {})) != set(STATE_FILES):
        raise CheckpointError(f"{folder}: {META_NAME} does not list {', '.join(STATE_FILES)}")
    return meta


def latest_checkpoint(run_dir: str) -> tuple:
    """(folder, meta) of the newest complete checkpoint, or (None, None); damaged ones are skipped
    with a warning on stderr."""
    for step in reversed(checkpoint_steps(run_dir)):
        folder = os.path.join(run_dir, checkpoint_name(step))
        try:
            return folder, read_meta(folder)
        except CheckpointError as error:
            print(f"warning: skipping checkpoint {error}", file=sys.stderr)
    return None, None


def remove_partial_checkpoints(run_dir: str) -> list:
    """Delete the temporary folders of checkpoints whose writer died; return their names."""
    names = [name for name in os.listdir(run_dir) if name.startswith(TEMP_PREFIX)] if os.path.isdir(run_dir) else []
    for name in names:
        shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)
    return names


def load_states(folder: str) -> dict:
    """The state files of a checked checkpoint, on the CPU."""
    return {name: torch.load(os.path.join(folder, name), map_location="cpu", weights_only=False) for name in STATE_FILES}
