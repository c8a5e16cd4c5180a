"""The end of a run: the pictures, then the manifest, written last, then the journal goes.

A dataset without manifest.json is unfinished to every reader, so the manifest is
written only after every shard and picture is on disk. A finished dataset that only
needed a damaged shard restored keeps its manifest untouched.
"""

import os

from generator.atomic import write_bytes_atomically
from generator.bands import parse_band
from generator.config import DatasetConfig
from generator.format import HISTOGRAM_NAME, MANIFEST_NAME, PREVIEW_NAME, DeviceRecord, Manifest, decode_frames, load_manifest
from generator.journal import ExistingShards, remove_journal
from generator.shard_writer import ShardWriter
from generator.shards import read_shard

PREVIEW_ROWS = 4


def write_pictures(dataset_dir: str, config: DatasetConfig, manifest: Manifest) -> None:
    """histogram.png of every candidate's ratio, and preview.png of the first trajectories."""
    from generator.plots import save_histogram  # Pillow, loaded only when a dataset is finished
    from generator.render import preview_image, save_atomically

    acceptance = manifest.acceptance
    title = f"{manifest.dataset_id}: {acceptance.candidates:,} candidate rules, {acceptance.acceptance_rate:.1%} accepted"
    save_histogram(acceptance.histogram.counts, acceptance.histogram.edges, os.path.join(dataset_dir, HISTOGRAM_NAME),
                   parse_band(config.generator.band), title)
    first = next(shard for shard in manifest.shards if shard.rows)
    rows = read_shard(os.path.join(dataset_dir, first.name), manifest.tokens_per_sequence).slice(0, PREVIEW_ROWS)
    trajectories = [decode_frames(tokens, config.generator.nca.grid_size)
                    for tokens in rows.column("tokens").to_numpy(zero_copy_only=False)]
    titles = [f"rule {r}  trajectory {t}  ratio {x:.3f}" for r, t, x in
              zip(rows.column("rule_id").to_pylist(), rows.column("trajectory_id").to_pylist(), rows.column("ratio").to_pylist())]
    save_atomically(preview_image(trajectories, titles), os.path.join(dataset_dir, PREVIEW_NAME))


def finish(dataset_dir: str, identity: str, config: DatasetConfig, existing: ExistingShards, writer: ShardWriter,
           device: DeviceRecord) -> Manifest:
    """Write the pictures and, last, the manifest (unless repairing a finished dataset); drop the journal."""
    from generator.manifest import build_manifest  # imports the seed scheme, so torch: not for a one-line refusal

    if existing.complete:
        manifest = load_manifest(dataset_dir)
    else:
        manifest = build_manifest(identity, config, device, [writer.entries[i] for i in sorted(writer.entries)])
        write_pictures(dataset_dir, config, manifest)
        write_bytes_atomically(os.path.join(dataset_dir, MANIFEST_NAME), manifest.to_json_bytes())
    remove_journal(dataset_dir)
    return manifest
