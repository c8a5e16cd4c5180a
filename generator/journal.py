"""What a dataset folder already holds: the per-shard journal and the check of existing shards.

While a dataset is being written, every finished shard gets a journal entry
(.progress/part-NNNNN.json, written atomically after the shard itself): its
manifest record plus its candidate statistics and the worker that made it. A resumed
run keeps each shard whose file matches its entry's sha256 and regenerates the rest,
reporting each by name. Once the manifest exists it is the record instead, and the
journal is removed. Entries are parsed with a pydantic model (JournalEntry), so a shard
name that is not part-NNNNN.arrow never becomes a path.
"""

import json
import os
import shutil
from dataclasses import dataclass, field

from pydantic import Field, NonNegativeInt, ValidationError, model_validator

from generator.atomic import remove_temporaries, write_bytes_atomically
from generator.errors import PipelineError
from generator.format import MANIFEST_NAME, ShardRecord, WorkerRecord, first_problem, load_manifest, shard_name
from generator.shards import file_sha256

JOURNAL_DIR = ".progress"


class JournalEntry(ShardRecord):
    """A shard's manifest record plus what the manifest only keeps summed over all shards."""

    candidate_ratio_min: float = Field(description="Lowest gzip ratio among the candidates the shard scored.")
    candidate_ratio_max: float = Field(description="Highest gzip ratio among them.")
    candidate_histogram: list[NonNegativeInt] = Field(description="Candidates per bin of format.histogram_edges().")
    worker: WorkerRecord | None = Field(None, description="The environment of the worker that made the shard; None in "
                                                          "entries journalled before workers were recorded.")

    @model_validator(mode="after")
    def _name_matches_index(self) -> "JournalEntry":
        if self.name != shard_name(self.index):
            raise ValueError(f"name {self.name} is not the name of shard {self.index}, {shard_name(self.index)}")
        return self

    def shard_record(self) -> ShardRecord:
        """The part the manifest lists."""
        return ShardRecord(**self.model_dump(include=set(ShardRecord.model_fields)))

    def to_json_bytes(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True) + "\n").encode()


@dataclass
class ExistingShards:
    """The shards found on disk, sorted into those to keep and those to make again."""

    complete: bool
    """A manifest exists: the dataset was finished before."""
    valid: dict = field(default_factory=dict)
    """index -> record (JournalEntry, or the manifest's ShardRecord) of each shard whose file matches its sha256."""
    damaged: dict = field(default_factory=dict)
    """index -> record of each recorded shard that is missing, truncated or corrupt."""
    problems: list = field(default_factory=list)
    """One line per damaged shard, naming it."""
    removed_temporaries: list = field(default_factory=list)
    """Temporary files of interrupted writers, deleted."""


def journal_dir(dataset_dir: str) -> str:
    return os.path.join(dataset_dir, JOURNAL_DIR)


def record(dataset_dir: str, entry: JournalEntry) -> None:
    """Journal a shard that is now on disk under its final name."""
    os.makedirs(journal_dir(dataset_dir), exist_ok=True)
    write_bytes_atomically(os.path.join(journal_dir(dataset_dir), entry.name.replace(".arrow", ".json")),
                           entry.to_json_bytes())


def read_journal_entry(path: str) -> JournalEntry:
    """One entry; PipelineError naming the file when it is not a valid entry."""
    try:
        with open(path, "rb") as f:
            return JournalEntry.model_validate_json(f.read())
    except ValidationError as error:
        raise PipelineError(f"{path}: {first_problem(error)}: the journal is damaged; delete this file and re-run "
                            f"to make its shard again") from None


def journal_entries(dataset_dir: str) -> list:
    folder = journal_dir(dataset_dir)
    if not os.path.isdir(folder):
        return []
    return [read_journal_entry(os.path.join(folder, name)) for name in sorted(os.listdir(folder)) if name.endswith(".json")]


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
    records = load_manifest(dataset_dir).shards if complete else journal_entries(dataset_dir)
    for shard in records:
        path = os.path.join(dataset_dir, shard.name)
        if not os.path.exists(path):
            existing.problems.append(f"{shard.name} is missing")
        elif os.path.getsize(path) != shard.bytes:
            existing.problems.append(f"{shard.name} is truncated or padded ({os.path.getsize(path)} of {shard.bytes} bytes)")
        elif file_sha256(path) != shard.sha256:
            existing.problems.append(f"{shard.name} is corrupt (sha256 differs from the record)")
        else:
            existing.valid[shard.index] = shard
            continue
        existing.damaged[shard.index] = shard
    return existing
