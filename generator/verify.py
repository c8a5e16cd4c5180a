"""`python -m generator verify OUT/<dataset-id>`: check a dataset against its manifest, then remake rows.

Every shard is checked for size, sha256, schema, row count, row order, rule-id
range and ratios inside the band; a folder's stray shard files are reported too.
Then `sample` rows spread over the dataset are regenerated from the manifest's
config alone and compared with the stored ones: tokens byte for byte, the ratio
exactly. Each problem is one line naming the shard; any problem means exit 1.
"""

import os

import numpy as np

from generator.bands import Band
from generator.config import GeneratorConfig
from generator.errors import ConfigError
from generator.format import FORMAT_NAME, FORMAT_VERSION, SHARD_NAME_PATTERN, read_manifest, tokens_per_sequence
from generator.shards import ShardError, file_sha256, read_shard


def check_shard(dataset_dir: str, manifest: dict, entry: dict) -> tuple:
    """(table or None, problems) for one shard of the manifest."""
    path = os.path.join(dataset_dir, entry["name"])
    if not os.path.exists(path):
        return None, [f"{entry['name']}: missing"]
    if os.path.getsize(path) != entry["bytes"] or file_sha256(path) != entry["sha256"]:
        return None, [f"{entry['name']}: truncated or corrupt ({os.path.getsize(path)} bytes, sha256 differs from the manifest)"]
    try:
        table = read_shard(path, tokens_per_sequence(manifest))
    except ShardError as error:
        return None, [str(error)]
    problems = []
    rules = table.column("rule_id").to_numpy().astype(np.int64)
    trajectories = table.column("trajectory_id").to_numpy().astype(np.int64)
    ratios = table.column("ratio").to_numpy()
    band = Band(**manifest["band"])
    if len(table) != entry["rows"]:
        problems.append(f"{entry['name']}: {len(table)} rows, the manifest says {entry['rows']}")
    order = rules * 2**32 + trajectories
    if len(order) and (np.diff(order) <= 0).any():
        problems.append(f"{entry['name']}: rows are not sorted by (rule_id, trajectory_id)")
    if len(rules) and (rules.min() < entry["first_rule_id"] or rules.max() >= entry["stop_rule_id"]):
        problems.append(f"{entry['name']}: rule ids outside [{entry['first_rule_id']}, {entry['stop_rule_id']})")
    if not band.accepts(ratios).all():
        problems.append(f"{entry['name']}: ratios outside the band {band.lo} < ratio < {band.hi}")
    return table, problems


def sample_rows(manifest: dict, count: int) -> list:
    """(shard entry, row within it) for `count` rows spread evenly over the dataset, first and last included."""
    total = manifest["totals"]["rows"]
    starts = np.cumsum([0] + [entry["rows"] for entry in manifest["shards"]])
    picks = []
    for row in sorted(set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())):
        shard = int(np.searchsorted(starts, row, side="right") - 1)
        picks.append((manifest["shards"][shard], row - int(starts[shard])))
    return picks


def regenerate_and_compare(manifest: dict, tables: dict, picks: list) -> list:
    """Remake each picked row from (config, rule id, trajectory id) and compare it with the stored row."""
    from generator.generate import RuleGenerator

    stored = manifest["config"]["generator"]
    generator = RuleGenerator(GeneratorConfig.from_dict({**stored, "device": "cpu", "compile": False, "rules_per_batch": 16}))
    problems = []
    for entry, offset in picks:
        row = tables[entry["name"]].slice(offset, 1).to_pylist()[0]
        ratio = generator.score([row["rule_id"]])[0]
        tokens = generator.sequences([row["rule_id"]])[row["trajectory_id"]]
        where = f"{entry['name']} row {offset} (rule {row['rule_id']}, trajectory {row['trajectory_id']})"
        if ratio != row["ratio"]:
            problems.append(f"{where}: regenerated ratio {ratio!r} differs from the stored {row['ratio']!r}")
        if tokens.tobytes() != np.asarray(row["tokens"], dtype=np.uint16).tobytes():
            problems.append(f"{where}: regenerated tokens differ from the stored ones")
    return problems


def verify(dataset_dir: str, sample: int = 8) -> tuple:
    """(problems, a one-line summary). Raises ConfigError when the folder is not a finished dataset."""
    if not os.path.isfile(os.path.join(dataset_dir, "manifest.json")):
        raise ConfigError(f"{dataset_dir} has no manifest.json: give a finished dataset folder, OUT/<dataset-id>")
    manifest = read_manifest(dataset_dir)
    if manifest.get("format", {}).get("name") != FORMAT_NAME or manifest["format"]["version"] != FORMAT_VERSION:
        return [f"manifest.json: format {manifest.get('format')} is not {FORMAT_NAME} v{FORMAT_VERSION}"], "not checked"
    problems, tables = [], {}
    for entry in manifest["shards"]:
        table, shard_problems = check_shard(dataset_dir, manifest, entry)
        problems += shard_problems
        if table is not None:
            tables[entry["name"]] = table
    listed = {entry["name"] for entry in manifest["shards"]}
    problems += [f"{name}: a shard file the manifest does not list" for name in sorted(os.listdir(dataset_dir))
                 if SHARD_NAME_PATTERN.fullmatch(name) and name not in listed]
    picks = [(entry, offset) for entry, offset in sample_rows(manifest, sample) if entry["name"] in tables]
    problems += regenerate_and_compare(manifest, tables, picks)
    device = manifest["environment"]["device"]["kind"]
    summary = (f"{len(manifest['shards'])} shards, {manifest['totals']['rows']:,} rows checked against the manifest; "
               f"{len(picks)} rows regenerated on cpu" + (f" (made on {device})" if device != "cpu" else ""))
    return problems, summary
