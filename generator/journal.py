"""What a dataset folder already holds: the per-shard journal and the check of existing shards.

While a dataset is being written, every finished shard gets a journal entry
(.progress/part-NNNNN.json, written atomically after the shard itself): its
candidate range, rows, sha256 and candidate statistics. A resumed run keeps each
shard whose file matches its entry's sha256 and regenerates the rest, reporting
each by name. Once the manifest exists it is the record instead, and the journal
is removed.
"""

import json
import os
import shutil
from dataclasses import dataclass, field

from generator.atomic import remove_temporaries, write_json_atomically
from generator.format import MANIFEST_NAME, read_manifest
from generator.shards import file_sha256

JOURNAL_DIR = ".progress"


@dataclass
class ExistingShards:
    """The shards found on disk, sorted into those to keep and those to make again."""

    complete: bool
    """A manifest exists: the dataset was finished before."""
    valid: dict = field(default_factory=dict)
    """index -> entry of each shard whose file matches its recorded sha256."""
    damaged: dict = field(default_factory=dict)
    """index -> entry of each recorded shard that is missing, truncated or corrupt."""
    problems: list = field(default_factory=list)
    """One line per damaged shard, naming it."""
    removed_temporaries: list = field(default_factory=list)
    """Temporary files of interrupted writers, deleted."""


def journal_dir(dataset_dir: str) -> str:
    return os.path.join(dataset_dir, JOURNAL_DIR)


def record(dataset_dir: str, entry: dict) -> None:
    """Journal a shard that is now on disk under its final name."""
    os.makedirs(journal_dir(dataset_dir), exist_ok=True)
    write_json_atomically(os.path.join(journal_dir(dataset_dir), entry["name"].replace(".arrow", ".json")), entry)


def journal_entries(dataset_dir: str) -> list:
    folder = journal_dir(dataset_dir)
    if not os.path.isdir(folder):
        return []
    entries = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                entries.append(json.load(f))
    return entries


def remove_journal(dataset_dir: str) -> None:
    shutil.rmtree(journal_dir(dataset_dir), ignore_errors=True)


def check_existing(dataset_dir: str) -> ExistingShards:
    """Compare every recorded shard with its file; clean up interrupted writes."""
    complete = os.path.exists(os.path.join(dataset_dir, MANIFEST_NAME))
    existing = ExistingShards(complete=complete)
    if not os.path.isdir(dataset_dir):
        return existing
    existing.removed_temporaries = remove_temporaries(dataset_dir)
    if os.path.isdir(journal_dir(dataset_dir)):
        existing.removed_temporaries += remove_temporaries(journal_dir(dataset_dir))
    entries = read_manifest(dataset_dir)["shards"] if complete else journal_entries(dataset_dir)
    for entry in entries:
        path = os.path.join(dataset_dir, entry["name"])
        if not os.path.exists(path):
            existing.problems.append(f"{entry['name']} is missing")
        elif os.path.getsize(path) != entry["bytes"]:
            existing.problems.append(f"{entry['name']} is truncated or padded ({os.path.getsize(path)} of {entry['bytes']} bytes)")
        elif file_sha256(path) != entry["sha256"]:
            existing.problems.append(f"{entry['name']} is corrupt (sha256 differs from the record)")
        else:
            existing.valid[entry["index"]] = entry
            continue
        existing.damaged[entry["index"]] = entry
    return existing
