"""The manifest: everything needed to trust, reproduce and regenerate a dataset, written last.

It holds the format and schema, the generator's version and git commit, the resolved
config, the seed scheme, the exact complexity definition, every shard (rows, bytes,
sha256, ratio range, candidate-id range), acceptance statistics with the candidate
ratio histogram, and the device and library versions of the driver and of every
distinct worker environment. It holds no timestamps, paths or process ids, so an
interrupted-and-resumed run writes the same bytes as an uninterrupted one.
"""

import platform
import sys

import numpy as np

from generator.bands import expected_acceptance, parse_band
from generator.complexity import DEFINITION
from generator.config import DatasetConfig, dataset_content
from generator.format import (HISTOGRAM_BIN_WIDTH, Acceptance, DeviceRecord, Environment, FormatRecord, FrameTokens,
                              Histogram, Manifest, Totals, WriterRecord, histogram_edges, shard_schema)
from generator.journal import JournalEntry
from generator.provenance import distinct_workers, git_lineage
from generator.seeds import SCHEME

SHARDING = ("shard k scores candidate rule ids [k * candidates_per_shard, (k + 1) * candidates_per_shard) "
            "and keeps those in the band; the last shard stops after the requested number of rows")


def writer_environment() -> WriterRecord:
    """Versions on the driver, which writes the files."""
    import pyarrow
    import ray

    return WriterRecord(python=platform.python_version(), pyarrow=pyarrow.__version__, ray=ray.__version__,
                        platform=f"{sys.platform}-{platform.machine()}")


def acceptance_statistics(config: DatasetConfig, entries: list) -> Acceptance:
    candidates = sum(entry.candidates for entry in entries)
    accepted = sum(entry.accepted_rules for entry in entries)
    counts = np.sum([entry.candidate_histogram for entry in entries], axis=0).astype(int).tolist()
    return Acceptance(
        candidates=candidates,
        accepted_rules=accepted,
        acceptance_rate=accepted / candidates if candidates else 0.0,
        expected_acceptance_rate=expected_acceptance(parse_band(config.generator.band)),
        candidate_ratio_min=min(entry.candidate_ratio_min for entry in entries),
        candidate_ratio_max=max(entry.candidate_ratio_max for entry in entries),
        histogram=Histogram(bin_width=HISTOGRAM_BIN_WIDTH, edges=histogram_edges(), counts=counts),
    )


def format_record(tokens_per_sequence: int) -> FormatRecord:
    return FormatRecord.of_schema(shard_schema(tokens_per_sequence), row_order="rule_id, then trajectory_id",
                                  frame_tokens=FrameTokens(start=10000, end=10001), vocab_size=10002)


def build_manifest(dataset_id: str, config: DatasetConfig, device: DeviceRecord, entries: list[JournalEntry]) -> Manifest:
    """The manifest of the shards described by journal `entries` (sorted by index); `device` is the
    workers' device and libraries (environment.device, kept from format 1's first release)."""
    shards = [entry.shard_record() for entry in entries]
    return Manifest(
        dataset_id=dataset_id,
        format=format_record(config.generator.nca.tokens_per_sequence),
        generator=git_lineage(),
        config=dataset_content(config),
        band=parse_band(config.generator.band),
        seed_scheme=SCHEME,
        complexity={**DEFINITION, "probe_frames": config.generator.nca.probe_frames, "gzip_level": 9, "bytes_per_token": 4},
        sharding=SHARDING,
        totals=Totals.of_shards(shards),
        shards=shards,
        acceptance=acceptance_statistics(config, entries),
        environment=Environment(device=device, writer=writer_environment(),
                                workers=distinct_workers(entry.worker for entry in entries)),
    )
