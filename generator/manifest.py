"""The manifest: everything needed to trust, reproduce and regenerate a dataset, written last.

It holds the format and schema, the generator's version and git commit, the resolved
config, the seed scheme, the exact complexity definition, every shard (rows, bytes,
sha256, ratio range, candidate-id range), acceptance statistics with the candidate
ratio histogram, and the device and library versions. It holds no timestamps or
paths, so an interrupted-and-resumed run writes the same bytes as an uninterrupted one.
"""

import os
import platform
import subprocess
import sys

import numpy as np

from generator import __version__
from generator.bands import expected_acceptance, parse_band
from generator.complexity import DEFINITION
from generator.config import DatasetConfig, dataset_content
from generator.format import (COMPRESSION, COMPRESSION_LEVEL, FORMAT_NAME, FORMAT_VERSION, HISTOGRAM_BIN_WIDTH,
                              RECORD_BATCH_ROWS, histogram_edges, shard_schema)
from generator.seeds import SCHEME

SHARD_FIELDS = ("index", "name", "rows", "tokens", "bytes", "sha256", "first_rule_id", "stop_rule_id",
                "candidates", "accepted_rules", "ratio_min", "ratio_mean", "ratio_max")


def git_lineage() -> dict:
    """The commit the generator ran from, and whether its tree had uncommitted changes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"git_commit": "unknown", "git_dirty": None}
    if commit.returncode:
        return {"git_commit": "unknown", "git_dirty": None}
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def writer_environment() -> dict:
    """Versions on the driver, which writes the files."""
    import pyarrow
    import ray

    return {"python": platform.python_version(), "pyarrow": pyarrow.__version__, "ray": ray.__version__,
            "platform": f"{sys.platform}-{platform.machine()}"}


def acceptance_statistics(config: DatasetConfig, entries: list) -> dict:
    counts = np.sum([entry["candidate_histogram"] for entry in entries], axis=0).astype(int).tolist()
    candidates = sum(entry["candidates"] for entry in entries)
    accepted = sum(entry["accepted_rules"] for entry in entries)
    band = parse_band(config.generator.band)
    return {
        "candidates": candidates,
        "accepted_rules": accepted,
        "acceptance_rate": accepted / candidates if candidates else 0.0,
        "expected_acceptance_rate": expected_acceptance(band),
        "candidate_ratio_min": min(entry["candidate_ratio_min"] for entry in entries),
        "candidate_ratio_max": max(entry["candidate_ratio_max"] for entry in entries),
        "histogram": {"bin_width": HISTOGRAM_BIN_WIDTH, "edges": histogram_edges(), "counts": counts},
    }


def build_manifest(dataset_id: str, config: DatasetConfig, device: dict, entries: list) -> dict:
    """The manifest document for shards described by journal `entries` (sorted by index)."""
    band = parse_band(config.generator.band)
    tokens_per_sequence = config.generator.nca.tokens_per_sequence
    schema = shard_schema(tokens_per_sequence)
    shards = [{field: entry[field] for field in SHARD_FIELDS} for entry in entries]
    return {
        "dataset_id": dataset_id,
        "format": {
            "name": FORMAT_NAME, "version": FORMAT_VERSION, "tokens_per_sequence": tokens_per_sequence,
            "token_dtype": "uint16", "record_batch_rows": RECORD_BATCH_ROWS,
            "compression": COMPRESSION, "compression_level": COMPRESSION_LEVEL,
            "schema": {field.name: str(field.type) for field in schema},
            "row_order": "rule_id, then trajectory_id",
            "frame_tokens": {"start": 10000, "end": 10001}, "vocab_size": 10002,
        },
        "generator": {"name": "ncaforge", "version": __version__, **git_lineage()},
        "config": dataset_content(config),
        "band": {"name": band.name, "lo": band.lo, "hi": band.hi},
        "seed_scheme": SCHEME,
        "complexity": {**DEFINITION, "probe_frames": config.generator.nca.probe_frames, "gzip_level": 9,
                       "bytes_per_token": 4},
        "sharding": "shard k scores candidate rule ids [k * candidates_per_shard, (k + 1) * candidates_per_shard) "
                    "and keeps those in the band; the last shard stops after the requested number of rows",
        "totals": {
            "shards": len(shards), "rows": sum(s["rows"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards), "bytes": sum(s["bytes"] for s in shards),
        },
        "shards": shards,
        "acceptance": acceptance_statistics(config, entries),
        "environment": {"device": device, "writer": writer_environment()},
    }
