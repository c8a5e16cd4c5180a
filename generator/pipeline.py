"""`make shards`: generate a dataset on Ray and write verified, resumable Arrow shards.

The work is cut into shards, each a fixed range of candidate rule ids, so the rows
do not depend on how many workers make them or in which order they finish.
Actors make shards; the driver writes them in index order (Arrow IPC, zstd,
atomically), journals each, and stops once it holds the requested number of rows,
cutting the last shard short. Pictures and the manifest come last.

Re-running the same command resumes: shards matching their recorded sha256 are
kept, anything missing, truncated or corrupt is named and regenerated. A finished
dataset is never rewritten; a re-run checks it and restores a damaged shard from
its rule ids, which must give the recorded bytes again.

    python -m generator.pipeline --band high --sequences 160000 --seed 0 --out shards
"""

import hashlib
import json
import math
import os
import shutil
import sys
import time

import numpy as np

from generator.bands import expected_acceptance, parse_band
from generator.config import DatasetConfig, RunOptions, dataset_content
from generator.errors import ConfigError
from generator.format import (FORMAT_VERSION, HISTOGRAM_NAME, MANIFEST_NAME, PREVIEW_NAME, decode_frames,
                              histogram_edges, read_manifest, shard_name)
from generator.journal import check_existing, record, remove_journal
from generator.shards import rows_to_table, write_shard

TARGET_SHARD_ROWS = 8192  # 16.8 MB of tokens: small enough to resume cheaply, large enough to batch well
CANDIDATE_GRANULE = 1024  # candidates_per_shard is a multiple of this
MIN_EXPECTED_ACCEPTANCE = 1e-3
DISK_HEADROOM = 1.1


class PipelineError(Exception):
    """The run cannot go on; the message names the cause and what to do."""


def resolve_config(config: DatasetConfig) -> DatasetConfig:
    """Validate, and fill candidates_per_shard from the band's expected acceptance when 0."""
    config.validate()
    band = parse_band(config.generator.band)
    acceptance = expected_acceptance(band)
    if acceptance < MIN_EXPECTED_ACCEPTANCE:
        raise ConfigError(f"band {band.name} accepts almost no random rules (expected {acceptance:.2%}); "
                          f"random rules score 0.02-0.66, so pick a band inside that range, e.g. high or 0.35-0.6")
    if config.candidates_per_shard:
        return config
    rows_per_candidate = acceptance * config.generator.trajectories_per_rule
    granules = max(1, math.ceil(TARGET_SHARD_ROWS / rows_per_candidate / CANDIDATE_GRANULE))
    return DatasetConfig.from_dict({**config.to_dict(), "candidates_per_shard": granules * CANDIDATE_GRANULE})


def dataset_id(config: DatasetConfig, device_kind: str) -> str:
    """'<band>-<sequences>-<hash>': the hash covers everything that decides the bytes, which is
    the manifest's config, the format version and the kind of device."""
    document = json.dumps({"format_version": FORMAT_VERSION, "device": device_kind, "dataset": dataset_content(config)},
                          sort_keys=True)
    return f"{parse_band(config.generator.band).name}-{config.sequences}-{hashlib.sha256(document.encode()).hexdigest()[:12]}"


def estimated_bytes(config: DatasetConfig) -> int:
    """Upper bound of the dataset's size on disk: uncompressed tokens plus the small columns."""
    return int(config.sequences * (2 * config.generator.nca.tokens_per_sequence + 20) * DISK_HEADROOM)


def preflight(config: DatasetConfig, options: RunOptions) -> None:
    """Every check that can fail before any work starts; raises ConfigError, creates nothing."""
    existing = os.path.abspath(options.out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:  # a real probe: permission bits do not stop root, and read-only file systems ignore them
        os.close(os.open(probe := os.path.join(existing, f".ncaforge-probe-{os.getpid()}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.remove(probe)
    except OSError as error:
        raise ConfigError(f"OUT={options.out} cannot be written ({existing}: {error.strerror}): "
                          f"choose another OUT or fix its permissions") from None
    need, free = estimated_bytes(config), shutil.disk_usage(existing).free
    if need > free:
        raise ConfigError(f"OUT={options.out} has {free / 1e9:.2f} GB free but the dataset needs up to "
                          f"{need / 1e9:.2f} GB: free some space, choose another OUT, or ask for fewer TOKENS")
    if options.ray_address:
        from generator.cluster import check_reachable

        check_reachable(options.ray_address)


def shard_entry(index: int, config: DatasetConfig, result: dict, rows_missing: int) -> tuple:
    """The rows of a made shard the dataset still needs, as a table, and the shard's journal entry.

    The shard that completes the dataset counts its candidates up to its last kept rule;
    any other shard was scored over its whole range (its worker's row bound exceeded
    what the range gave), and counts all of it."""
    first_rule = index * config.candidates_per_shard
    take = min(len(result["rule_ids"]), rows_missing)
    consumed = len(result["candidate_ids"])
    if take == rows_missing and take:
        consumed = int(result["rule_ids"][take - 1]) - first_rule + 1
    candidate_ratios = result["candidate_ratios"][:consumed]
    ratios = result["ratios"][:take]
    table = rows_to_table(result["rule_ids"][:take], result["trajectory_ids"][:take], ratios, result["tokens"][:take])
    entry = {
        "index": index, "name": shard_name(index), "rows": take,
        "tokens": take * config.generator.nca.tokens_per_sequence,
        "first_rule_id": first_rule, "stop_rule_id": first_rule + consumed, "candidates": consumed,
        "accepted_rules": int(parse_band(config.generator.band).accepts(candidate_ratios).sum()),
        "ratio_min": float(ratios.min()) if take else None,
        "ratio_mean": float(ratios.mean()) if take else None,
        "ratio_max": float(ratios.max()) if take else None,
        "candidate_ratio_min": float(candidate_ratios.min()),
        "candidate_ratio_max": float(candidate_ratios.max()),
        "candidate_histogram": np.histogram(candidate_ratios, bins=histogram_edges())[0].tolist(),
    }
    return table, entry


class ShardWriter:
    """Writes shards as they arrive: repairs at once, new shards strictly in index order
    (a new shard's row count depends on every shard before it)."""

    def __init__(self, config: DatasetConfig, dataset_dir: str, existing, bar):
        self.config, self.dataset_dir, self.bar = config, dataset_dir, bar
        self.entries = dict(existing.valid)
        self.repairs = dict(existing.damaged)
        self.known_rows = sum(e["rows"] for e in {**existing.valid, **existing.damaged}.values())
        self.next_index = max([*existing.valid, *existing.damaged], default=-1) + 1
        self.waiting = {}  # index -> result of a new shard that arrived before its predecessors
        self.new_rows = self.new_shards = 0

    @property
    def rows_missing(self) -> int:
        return max(0, self.config.sequences - self.known_rows - self.new_rows)

    def accept(self, index: int, result: dict) -> None:
        if index in self.repairs:
            self._repair(self.repairs.pop(index), result)
            return
        self.waiting[index] = result
        while self.next_index in self.waiting and self.rows_missing:
            entry = self._write(self.next_index, self.waiting.pop(self.next_index), self.rows_missing)
            self.new_rows += entry["rows"]
            self.new_shards += 1
            self.next_index += 1
        if not self.rows_missing:
            self.waiting.clear()  # speculative shards past the end are not needed

    def _repair(self, recorded: dict, result: dict) -> None:
        """Rewrite a damaged shard from its rule ids; it must come out with the recorded bytes."""
        table, _ = shard_entry(recorded["index"], self.config, result, recorded["rows"])
        written = write_shard(os.path.join(self.dataset_dir, recorded["name"]), table)
        if written["sha256"] != recorded["sha256"]:
            raise PipelineError(f"{recorded['name']} came out different from its record (sha256 {written['sha256'][:12]} "
                                f"!= {recorded['sha256'][:12]}): the dataset was made on another kind of device or "
                                f"library version; make it again under a fresh OUT")
        self.entries[recorded["index"]] = recorded
        self.bar.update(recorded["tokens"])

    def _write(self, index: int, result: dict, rows_missing: int) -> dict:
        table, entry = shard_entry(index, self.config, result, rows_missing)
        os.makedirs(self.dataset_dir, exist_ok=True)  # appears with its first shard, not before
        entry.update(write_shard(os.path.join(self.dataset_dir, entry["name"]), table))
        self.entries[index] = entry
        record(self.dataset_dir, entry)
        self.bar.update(entry["tokens"])
        accepted = sum(e["accepted_rules"] for e in self.entries.values())
        candidates = sum(e["candidates"] for e in self.entries.values())
        self.bar.set_postfix_str(f"acceptance {accepted / max(candidates, 1):.1%}, shard {entry['name']}", refresh=False)
        return entry


def make_shards(ray, workers: list, config: DatasetConfig, writer: ShardWriter) -> None:
    """Keep every actor busy (two queued shards each) until the writer holds every row."""
    rows_per_shard = expected_acceptance(parse_band(config.generator.band)) * config.candidates_per_shard
    repairs = sorted(writer.repairs)
    slots = [worker for worker in workers for _ in range(2)]
    pending, next_new = {}, writer.next_index

    def more_wanted() -> bool:
        waiting = sum(len(result["rule_ids"]) for result in writer.waiting.values())
        in_flight = sum(1 for index, _ in pending.values() if index >= writer.next_index)
        return writer.rows_missing > waiting + in_flight * rows_per_shard

    while True:
        while slots and (repairs or more_wanted()):
            if repairs:
                index = repairs.pop(0)
            else:
                index, next_new = next_new, next_new + 1
            worker = slots.pop()
            first = index * config.candidates_per_shard
            # rows still missing now bound what this shard can contribute: earlier shards only lower it
            max_rows = writer.repairs[index]["rows"] if index in writer.repairs else writer.rows_missing
            pending[worker.make_shard.remote(first, first + config.candidates_per_shard, max_rows)] = (index, worker)
        if not pending:
            return
        [ref], _ = ray.wait(list(pending), num_returns=1)
        index, worker = pending.pop(ref)
        slots.append(worker)
        try:
            result = ray.get(ref)
        except Exception as error:  # RayActorError or RayTaskError, after every restart and retry
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise PipelineError(f"making {shard_name(index)} failed ({type(error).__name__}: {first_line}); "
                                f"re-run the same command to resume") from None
        writer.accept(index, result)
        if writer.new_shards >= 4 and writer.new_rows == 0 and not writer.known_rows:
            raise PipelineError(f"band {config.generator.band} accepted no rule among the first "
                                f"{writer.new_shards * config.candidates_per_shard} candidates: widen the band")
        if writer.new_shards:
            rows_per_shard = writer.new_rows / writer.new_shards


def write_pictures(dataset_dir: str, config: DatasetConfig, manifest: dict) -> None:
    """histogram.png of every candidate's ratio, and preview.png of the first trajectories."""
    from generator.plots import save_histogram
    from generator.render import preview_image, save_atomically
    from generator.shards import read_shard

    band = parse_band(config.generator.band)
    acceptance = manifest["acceptance"]
    title = (f"{manifest['dataset_id']}: {acceptance['candidates']:,} candidate rules, "
             f"{acceptance['acceptance_rate']:.1%} accepted")
    save_histogram(acceptance["histogram"]["counts"], acceptance["histogram"]["edges"],
                   os.path.join(dataset_dir, HISTOGRAM_NAME), band, title)
    first = next(s for s in manifest["shards"] if s["rows"])
    rows = read_shard(os.path.join(dataset_dir, first["name"]), config.generator.nca.tokens_per_sequence).slice(0, 4)
    trajectories = [decode_frames(tokens, config.generator.nca.grid_size)
                    for tokens in rows.column("tokens").to_numpy(zero_copy_only=False)]
    titles = [f"rule {r}  trajectory {t}  ratio {x:.3f}" for r, t, x in
              zip(rows.column("rule_id").to_pylist(), rows.column("trajectory_id").to_pylist(), rows.column("ratio").to_pylist())]
    save_atomically(preview_image(trajectories, titles), os.path.join(dataset_dir, PREVIEW_NAME))


def local_device_kind(options: RunOptions) -> str:
    """The kind of device a local runtime's actors would use (plan_workers decides it for real)."""
    import torch

    return "cuda" if options.device != "cpu" and torch.cuda.is_available() else "cpu"


def finish(dataset_dir: str, identity: str, config: DatasetConfig, existing, writer: ShardWriter, device: dict) -> dict:
    """Write the pictures and, last, the manifest (unless repairing a finished dataset); drop the journal."""
    from generator.atomic import write_json_atomically
    from generator.manifest import build_manifest

    if existing.complete:
        manifest = read_manifest(dataset_dir)
    else:
        manifest = build_manifest(identity, config, device, [writer.entries[i] for i in sorted(writer.entries)])
        write_pictures(dataset_dir, config, manifest)
        write_json_atomically(os.path.join(dataset_dir, MANIFEST_NAME), manifest)
    remove_journal(dataset_dir)
    return manifest


def run(config: DatasetConfig, options: RunOptions) -> dict:
    """Make (or resume, or check) the dataset; return a summary of what is on disk and how long it took."""
    from tqdm import tqdm

    from generator.cluster import plan_workers, ray_runtime, start_workers

    config = resolve_config(config)
    preflight(config, options)
    started = time.perf_counter()
    checked_dir, existing = None, None
    if not options.ray_address:  # a finished local dataset is checked without starting Ray
        checked_dir = os.path.join(options.out, dataset_id(config, local_device_kind(options)))
        existing = check_existing(checked_dir)
        if existing.complete and not existing.damaged:
            return {"dataset_dir": checked_dir, "dataset_id": os.path.basename(checked_dir), "already_complete": True,
                    "manifest": read_manifest(checked_dir), "seconds": time.perf_counter() - started}
    with ray_runtime(options) as ray:
        plan = plan_workers(ray.cluster_resources(), options)
        identity = dataset_id(config, plan.device)
        dataset_dir = os.path.join(options.out, identity)
        if dataset_dir != checked_dir:  # a cluster, or actors on another kind of device than guessed
            existing = check_existing(dataset_dir)
        for line in existing.problems:
            print(f"{identity}: {line}: regenerating it", file=sys.stderr)
        summary = {"dataset_dir": dataset_dir, "dataset_id": identity, "workers": plan, "resumed_shards": len(existing.valid)}
        if existing.complete and not existing.damaged:
            return {**summary, "already_complete": True, "seconds": time.perf_counter() - started,
                    "manifest": read_manifest(dataset_dir)}
        nothing_to_make = not existing.damaged and sum(e["rows"] for e in existing.valid.values()) >= config.sequences
        workers = start_workers(ray, plan, config.generator, warm_up=not nothing_to_make)
        warm = time.perf_counter()
        total = config.sequences * config.generator.nca.tokens_per_sequence
        done = sum(e["tokens"] for e in existing.valid.values())
        with tqdm(total=total, initial=done, unit="tok", unit_scale=True, desc=identity, file=sys.stderr,
                  disable=not options.progress, smoothing=0.1) as bar:
            writer = ShardWriter(config, dataset_dir, existing, bar)
            make_shards(ray, workers, config, writer)
        manifest = finish(dataset_dir, identity, config, existing, writer, ray.get(workers[0].describe.remote()))
        written = time.perf_counter()
        worker_peak_rss = max(ray.get([w.peak_rss.remote() for w in workers]))
    written_tokens = sum(writer.entries[i]["tokens"] for i in writer.entries if i not in existing.valid)
    return {**summary, "already_complete": False, "manifest": manifest, "seconds": time.perf_counter() - started,
            "start_up_seconds": warm - started, "generation_seconds": written - warm,
            "written_tokens": written_tokens, "worker_peak_rss": worker_peak_rss}


def print_summary(summary: dict) -> None:
    manifest, totals = summary["manifest"], summary["manifest"]["totals"]
    acceptance = manifest["acceptance"]
    raw = totals["tokens"] * 2
    lines = [
        f"dataset   {summary['dataset_dir']}" + ("  (already complete: checked, nothing written)" if summary["already_complete"] else ""),
        f"id        {summary['dataset_id']}",
        f"rows      {totals['rows']:,} sequences, {totals['tokens']:,} tokens, {totals['shards']} shards",
        f"bytes     {totals['bytes'] / 1e6:,.1f} MB on disk ({totals['bytes'] / raw:.2f} of the raw uint16 tokens)",
        f"band      {manifest['band']['name']}: {acceptance['accepted_rules']:,} of {acceptance['candidates']:,} "
        f"candidate rules accepted ({acceptance['acceptance_rate']:.1%})",
    ]
    if not summary["already_complete"]:
        plan = summary["workers"]
        rate = summary["written_tokens"] / max(summary["generation_seconds"], 1e-9)
        lines += [
            f"time      {summary['seconds']:.1f} s: {summary['start_up_seconds']:.1f} s Ray start-up and compile, "
            f"{summary['generation_seconds']:.1f} s making and writing {summary['written_tokens']:,} tokens "
            f"({rate:,.0f} tokens/s)",
            f"workers   {plan.count} x {plan.device} ({plan.threads} thread(s) each); "
            f"{summary['resumed_shards']} shard(s) kept from an earlier run",
            f"memory    peak RSS: driver {peak_rss_of_driver() / 1e9:.2f} GB, largest worker {summary['worker_peak_rss'] / 1e9:.2f} GB",
        ]
    lines.append(f"verify    python -m generator verify {summary['dataset_dir']}")
    print("\n".join(lines))


def peak_rss_of_driver() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build_parser():
    import argparse

    from generator.arguments import OneLineParser, add_generator_options, positive_int

    parser = OneLineParser(prog="python -m generator.pipeline", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_options(parser)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--sequences", type=positive_int, help="rows to write (default 160,000: the paper's 164M tokens)")
    size.add_argument("--tokens", type=positive_int, help="training tokens to write: sequences = ceil(tokens / 1024)")
    parser.add_argument("--out", default="shards", help="output folder; the dataset goes to OUT/<dataset-id>/")
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS", ""),
                        help="join this Ray cluster (host:port); default $RAY_ADDRESS, else a local runtime on 127.0.0.1")
    parser.add_argument("--workers", type=positive_int, help="generation actors (default: see generator/cluster.py)")
    parser.add_argument("--threads-per-worker", type=positive_int, help="torch threads per CPU actor")
    parser.add_argument("--candidates-per-shard", type=positive_int, help="rule ids per shard (default: ~8,192 rows a shard)")
    parser.add_argument("--trajectories-per-rule", type=positive_int, default=1, help="sequences per accepted rule")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(batch=1024)
    return parser


def main(argv=None) -> int:
    from generator.config import GeneratorConfig

    args = build_parser().parse_args(argv)
    sequences = math.ceil(args.tokens / 1024) if args.tokens else (args.sequences or DatasetConfig.sequences)
    generator = GeneratorConfig(seed=args.seed, band=args.band, compile=args.compile,
                                rules_per_batch=args.batch, trajectories_per_rule=args.trajectories_per_rule)
    config = DatasetConfig(sequences=sequences, candidates_per_shard=args.candidates_per_shard or 0, generator=generator)
    options = RunOptions(out=args.out, ray_address=args.ray_address, workers=args.workers or 0,
                         threads_per_worker=args.threads_per_worker or 0, device=args.device.strip().lower(),
                         progress=not args.no_progress)
    try:
        print_summary(run(config, options))
    except ConfigError as error:
        print(f"python -m generator.pipeline: error: {error}", file=sys.stderr)
        return 2
    except PipelineError as error:
        print(f"python -m generator.pipeline: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m generator.pipeline: interrupted: re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
