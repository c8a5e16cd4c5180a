"""The journal: entries round-trip through their files, and an entry whose shard name is not
part-NNNNN.arrow of its own index is refused before it can become a path."""

import json
import os

import pytest

from generator.errors import PipelineError
from generator.format import WorkerRecord
from generator.journal import JournalEntry, check_existing, journal_dir, journal_entries, record
from generator.shards import file_sha256

WORKER = WorkerRecord(node="10.0.0.2", kind="cpu", name="AMD EPYC", torch="2.13.0+cpu", numpy="2.4.6",
                      compiled_step=True, python="3.11.7", zlib="1.2.13", ncaforge="0.1.0")


def entry_for(dataset_dir, index: int, content: bytes) -> JournalEntry:
    """A shard file with `content` and the journal entry that describes it."""
    name = f"part-{index:05d}.arrow"
    path = os.path.join(dataset_dir, name)
    with open(path, "wb") as f:
        f.write(content)
    return JournalEntry(index=index, name=name, rows=2, tokens=2052, bytes=len(content), sha256=file_sha256(path),
                        first_rule_id=1024 * index, stop_rule_id=1024 * (index + 1), candidates=1024,
                        accepted_rules=2, ratio_min=0.51, ratio_mean=0.55, ratio_max=0.6,
                        candidate_ratio_min=0.02, candidate_ratio_max=0.66, candidate_histogram=[1] * 20, worker=WORKER)


def test_an_entry_round_trips_through_its_file(tmp_path):
    entries = [entry_for(tmp_path, 1, b"second"), entry_for(tmp_path, 0, b"first")]
    for entry in entries:
        record(str(tmp_path), entry)
    assert sorted(os.listdir(journal_dir(str(tmp_path)))) == ["part-00000.json", "part-00001.json"]
    assert journal_entries(str(tmp_path)) == sorted(entries, key=lambda entry: entry.index)
    assert entries[0].shard_record().model_dump() == {k: v for k, v in entries[0].model_dump().items()
                                                      if k not in ("candidate_ratio_min", "candidate_ratio_max",
                                                                   "candidate_histogram", "worker")}


@pytest.mark.parametrize("name", ["../../etc/passwd", "/tmp/part-00000.arrow", "part-0.arrow", "part-00001.arrow"])
def test_an_entry_with_a_bad_shard_name_is_refused_in_one_line(tmp_path, name):
    entry = entry_for(tmp_path, 0, b"first")
    os.makedirs(journal_dir(str(tmp_path)))
    with open(os.path.join(journal_dir(str(tmp_path)), "part-00000.json"), "w") as f:
        json.dump({**entry.model_dump(mode="json"), "name": name}, f)
    with pytest.raises(PipelineError, match=r"part-00000\.json: field .*name.*delete this file and re-run") as error:
        check_existing(str(tmp_path))
    assert "\n" not in str(error.value)


def test_check_existing_keeps_matching_shards_and_names_damaged_ones(tmp_path):
    kept, damaged = entry_for(tmp_path, 0, b"first"), entry_for(tmp_path, 1, b"second")
    record(str(tmp_path), kept)
    record(str(tmp_path), damaged)
    with open(tmp_path / damaged.name, "r+b") as f:
        f.write(b"S")
    existing = check_existing(str(tmp_path))
    assert not existing.complete and existing.valid == {0: kept} and existing.damaged == {1: damaged}
    assert existing.problems == ["part-00001.arrow is corrupt (sha256 differs from the record)"]
