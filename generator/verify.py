"""`python -m generator verify OUT/<dataset-id>`: check a dataset against its manifest, then remake rows.

Every shard is checked for size, sha256, schema, row count, row order, rule-id
range and ratios inside the band; a folder's stray shard files are reported too.
Then `sample` rows spread over the dataset are regenerated from the manifest's
config alone and compared with the stored ones: tokens byte for byte, the ratio
exactly. Each problem is one line naming the shard; any problem means exit 1.
A manifest this code cannot read (unknown format version, missing field) is one
such problem, and nothing else is checked.
"""

import dataclasses
import os

import numpy as np

from generator.errors import ConfigError
from generator.format import MANIFEST_NAME, SHARD_NAME_PATTERN, Manifest, ManifestError, ShardRecord, load_manifest
from generator.shards import ShardError, file_sha256, read_shard

REGENERATION_BATCH = 16  # a few rows: one lane-wide batch each, no compile


def check_shard(dataset_dir: str, manifest: Manifest, shard: ShardRecord) -> tuple:
    """(table or None, problems) for one shard of the manifest."""
    path = os.path.join(dataset_dir, shard.name)
    if not os.path.exists(path):
        return None, [f"{shard.name}: missing"]
    if os.path.getsize(path) != shard.bytes or file_sha256(path) != shard.sha256:
        return None, [f"{shard.name}: truncated or corrupt ({os.path.getsize(path)} bytes, sha256 differs from the manifest)"]
    try:
        table = read_shard(path, manifest.tokens_per_sequence)
    except ShardError as error:
        return None, [str(error)]
    problems = []
    rules = table.column("rule_id").to_numpy().astype(np.int64)
    trajectories = table.column("trajectory_id").to_numpy().astype(np.int64)
    ratios = table.column("ratio").to_numpy()
    band = manifest.band
    if len(table) != shard.rows:
        problems.append(f"{shard.name}: {len(table)} rows, the manifest says {shard.rows}")
    order = rules * 2**32 + trajectories
    if len(order) and (np.diff(order) <= 0).any():
        problems.append(f"{shard.name}: rows are not sorted by (rule_id, trajectory_id)")
    if len(rules) and (rules.min() < shard.first_rule_id or rules.max() >= shard.stop_rule_id):
        problems.append(f"{shard.name}: rule ids outside [{shard.first_rule_id}, {shard.stop_rule_id})")
    if not band.accepts(ratios).all():
        problems.append(f"{shard.name}: ratios outside the band {band.lo} < ratio < {band.hi}")
    return table, problems


def sample_rows(manifest: Manifest, count: int) -> list:
    """(shard record, row within it) for `count` rows spread evenly over the dataset, first and last included."""
    total = manifest.totals.rows
    starts = manifest.row_starts()
    picks = []
    for row in sorted(set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())):
        shard = int(np.searchsorted(starts, row, side="right") - 1)
        picks.append((manifest.shards[shard], row - starts[shard]))
    return picks


def regenerate_and_compare(manifest: Manifest, tables: dict, picks: list) -> list:
    """Remake each picked row from (config, rule id, trajectory id) and compare it with the stored row."""
    from generator.generate import RuleGenerator

    config = dataclasses.replace(manifest.dataset_config().generator, device="cpu", compile=False,
                                 rules_per_batch=REGENERATION_BATCH)
    problems = []
    with RuleGenerator(config) as rule_generator:
        for shard, offset in picks:
            row = tables[shard.name].slice(offset, 1).to_pylist()[0]
            ratio = rule_generator.score([row["rule_id"]])[0]
            tokens = rule_generator.sequences([row["rule_id"]])[row["trajectory_id"]]
            where = f"{shard.name} row {offset} (rule {row['rule_id']}, trajectory {row['trajectory_id']})"
            if ratio != row["ratio"]:
                problems.append(f"{where}: regenerated ratio {ratio!r} differs from the stored {row['ratio']!r}")
            if tokens.tobytes() != np.asarray(row["tokens"], dtype=np.uint16).tobytes():
                problems.append(f"{where}: regenerated tokens differ from the stored ones")
    return problems


def verify(dataset_dir: str, sample: int = 8) -> tuple:
    """(problems, a one-line summary). Raises ConfigError when the folder is not a finished dataset."""
    if not os.path.isfile(os.path.join(dataset_dir, MANIFEST_NAME)):
        raise ConfigError(f"{dataset_dir} has no {MANIFEST_NAME}: give a finished dataset folder, OUT/<dataset-id>")
    try:
        manifest = load_manifest(dataset_dir)
    except ManifestError as error:
        return [str(error)], "not checked"
    problems, tables = [], {}
    for shard in manifest.shards:
        table, shard_problems = check_shard(dataset_dir, manifest, shard)
        problems += shard_problems
        if table is not None:
            tables[shard.name] = table
    listed = {shard.name for shard in manifest.shards}
    problems += [f"{name}: a shard file the manifest does not list" for name in sorted(os.listdir(dataset_dir))
                 if SHARD_NAME_PATTERN.fullmatch(name) and name not in listed]
    picks = [(shard, offset) for shard, offset in sample_rows(manifest, sample) if shard.name in tables]
    problems += regenerate_and_compare(manifest, tables, picks)
    device = manifest.environment.device.kind
    summary = (f"{len(manifest.shards)} shards, {manifest.totals.rows:,} rows checked against the manifest; "
               f"{len(picks)} rows regenerated on cpu" + (f" (made on {device})" if device != "cpu" else ""))
    return problems, summary
