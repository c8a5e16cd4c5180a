"""The driver's side of a shard: cut a worker's rows to what the dataset needs, write, journal.

New shards are written strictly in index order, because a new shard's row count depends on
every shard before it (the last one is cut short). Repairs of damaged shards are written at
once and must come out with their recorded bytes. Every written shard is journalled, so a
killed run resumes from it.
"""

import os
from dataclasses import dataclass

import numpy as np

from generator.bands import parse_band
from generator.config import DatasetConfig
from generator.errors import PipelineError
from generator.format import WorkerRecord, histogram_edges, shard_name
from generator.journal import JournalEntry, record
from generator.shards import rows_to_table, write_shard


@dataclass(frozen=True)
class MadeShard:
    """What a worker returns for one range of candidate rule ids (see RuleGenerator.generate)."""

    candidate_ratios: np.ndarray
    """float64 (C,) the gzip ratio of each candidate scored, from the range's first id on."""
    rule_ids: np.ndarray
    """int64 (N,) rule id of each row, in (rule, trajectory) order."""
    trajectory_ids: np.ndarray
    """int64 (N,) trajectory id of each row."""
    ratios: np.ndarray
    """float64 (N,) the rule's gzip ratio, per row."""
    tokens: np.ndarray
    """uint16 (N, tokens_per_sequence)."""
    worker: WorkerRecord
    """The environment of the worker that made it."""


def write_cut_shard(dataset_dir: str, index: int, config: DatasetConfig, made: MadeShard, rows_missing: int) -> JournalEntry:
    """Write the rows of a made shard the dataset still needs; return the shard's journal entry.

    The shard that completes the dataset counts its candidates up to its last kept rule;
    any other shard was scored over its whole range (its worker's row bound exceeded
    what the range gave), and counts all of it."""
    first_rule = index * config.candidates_per_shard
    take = min(len(made.rule_ids), rows_missing)
    consumed = len(made.candidate_ratios)
    if take == rows_missing and take:
        consumed = int(made.rule_ids[take - 1]) - first_rule + 1
    candidate_ratios = made.candidate_ratios[:consumed]
    ratios = made.ratios[:take]
    table = rows_to_table(made.rule_ids[:take], made.trajectory_ids[:take], ratios, made.tokens[:take])
    written = write_shard(os.path.join(dataset_dir, shard_name(index)), table)
    return JournalEntry(
        index=index, name=shard_name(index), rows=take, tokens=take * config.generator.nca.tokens_per_sequence,
        bytes=written.bytes, sha256=written.sha256,
        first_rule_id=first_rule, stop_rule_id=first_rule + consumed, candidates=consumed,
        accepted_rules=int(parse_band(config.generator.band).accepts(candidate_ratios).sum()),
        ratio_min=float(ratios.min()) if take else None,
        ratio_mean=float(ratios.mean()) if take else None,
        ratio_max=float(ratios.max()) if take else None,
        candidate_ratio_min=float(candidate_ratios.min()),
        candidate_ratio_max=float(candidate_ratios.max()),
        candidate_histogram=np.histogram(candidate_ratios, bins=histogram_edges())[0].tolist(),
        worker=made.worker,
    )


class ShardWriter:
    """Writes shards as they arrive: repairs at once, new shards strictly in index order."""

    def __init__(self, config: DatasetConfig, dataset_dir: str, existing, bar):
        self.config, self.dataset_dir, self.bar = config, dataset_dir, bar
        self.entries = dict(existing.valid)  # index -> record of every shard on disk
        self.repairs = dict(existing.damaged)  # index -> record of a shard to make again
        self.known_rows = sum(shard.rows for shard in {**existing.valid, **existing.damaged}.values())
        self.next_index = max([*existing.valid, *existing.damaged], default=-1) + 1
        self.waiting = {}  # index -> MadeShard that arrived before its predecessors
        self.new_rows = self.new_shards = 0

    @property
    def rows_missing(self) -> int:
        return max(0, self.config.sequences - self.known_rows - self.new_rows)

    def accept(self, index: int, made: MadeShard) -> None:
        if index in self.repairs:
            self._repair(self.repairs.pop(index), made)
            return
        self.waiting[index] = made
        while self.next_index in self.waiting and self.rows_missing:
            entry = self._write(self.next_index, self.waiting.pop(self.next_index), self.rows_missing)
            self.new_rows += entry.rows
            self.new_shards += 1
            self.next_index += 1
        if not self.rows_missing:
            self.waiting.clear()  # speculative shards past the end are not needed

    def _repair(self, recorded, made: MadeShard) -> None:
        """Rewrite a damaged shard from its rule ids; it must come out with the recorded bytes."""
        entry = write_cut_shard(self.dataset_dir, recorded.index, self.config, made, recorded.rows)
        if entry.sha256 != recorded.sha256:
            raise PipelineError(f"{recorded.name} came out different from its record (sha256 {entry.sha256[:12]} "
                                f"!= {recorded.sha256[:12]}): the dataset was made on another kind of device or "
                                f"library version; make it again under a fresh OUT")
        self.entries[recorded.index] = recorded
        self.bar.update(recorded.tokens)

    def _write(self, index: int, made: MadeShard, rows_missing: int) -> JournalEntry:
        os.makedirs(self.dataset_dir, exist_ok=True)  # appears with its first shard, not before
        entry = write_cut_shard(self.dataset_dir, index, self.config, made, rows_missing)
        self.entries[index] = entry
        record(self.dataset_dir, entry)
        self.bar.update(entry.tokens)
        accepted = sum(e.accepted_rules for e in self.entries.values())
        candidates = sum(e.candidates for e in self.entries.values())
        self.bar.set_postfix_str(f"acceptance {accepted / max(candidates, 1):.1%}, shard {entry.name}", refresh=False)
        return entry
