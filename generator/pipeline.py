"""`make shards`: generate a dataset on Ray and write verified, resumable Arrow shards.

The work is cut into shards, each a fixed range of candidate rule ids, so the rows
do not depend on how many workers make them or in which order they finish.
Actors make shards; the driver writes them in index order (Arrow IPC, zstd,
atomically), journals each, and stops once it holds the requested number of rows,
cutting the last shard short. Pictures and the manifest come last.

Re-running the same command resumes: shards matching their recorded sha256 are
kept, anything missing, truncated or corrupt is named and regenerated. A finished
dataset is never rewritten; a re-run checks it and restores a damaged shard from
its rule ids, which must give the recorded bytes again. Every worker must run the
driver's ncaforge, torch, numpy, zlib and Python versions; a failed shard's full
traceback goes to OUT/.ncaforge-logs/<dataset-id>.log.

    python -m generator.pipeline --band high --sequences 160000 --seed 0 --out shards
"""

# This module is the command line; the run itself is spread by concern over
#   planning.py      config resolution, dataset id, preflight checks
#   runner.py        run() and its RunSummary: Ray, actors, the scheduling loop, the finish
#   cluster.py       the Ray runtime, the actor layout and the actors
#   scheduling.py    the loop that keeps the actors busy, and the failure log
#   shard_writer.py  cutting, writing and journalling shards
#   provenance.py    worker versions, and the refusal to mix them
#   finishing.py     pictures and the manifest

import math
import os
import sys

from generator.config import DatasetConfig, RunOptions
from generator.errors import ConfigError, PipelineError
from generator.format import ManifestError
from generator.runner import RunSummary, run


def summary_lines(summary: RunSummary) -> list:
    manifest = summary.manifest
    totals, acceptance = manifest.totals, manifest.acceptance
    raw = totals.tokens * 2
    lines = [
        f"dataset   {summary.dataset_dir}" + ("  (already complete: checked, nothing written)" if summary.already_complete else ""),
        f"id        {summary.dataset_id}",
        f"rows      {totals.rows:,} sequences, {totals.tokens:,} tokens, {totals.shards} shards",
        f"bytes     {totals.bytes / 1e6:,.1f} MB on disk ({totals.bytes / raw:.2f} of the raw uint16 tokens)",
        f"band      {manifest.band.name}: {acceptance.accepted_rules:,} of {acceptance.candidates:,} "
        f"candidate rules accepted ({acceptance.acceptance_rate:.1%})",
    ]
    if not summary.already_complete:
        plan = summary.workers
        rate = summary.written_tokens / max(summary.generation_seconds, 1e-9)
        lines += [
            f"time      {summary.seconds:.1f} s: {summary.start_up_seconds:.1f} s Ray start-up (and compile), "
            f"{summary.generation_seconds:.1f} s making and writing {summary.written_tokens:,} tokens "
            f"({rate:,.0f} tokens/s)",
            f"workers   {plan.count} x {plan.device} ({plan.threads} thread(s) each); "
            f"{summary.resumed_shards} shard(s) kept from an earlier run",
            f"memory    peak RSS: driver {summary.driver_peak_rss / 1e9:.2f} GB, "
            f"largest worker {summary.worker_peak_rss / 1e9:.2f} GB",
        ]
    lines.append(f"verify    python -m generator verify {summary.dataset_dir}")
    return lines


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
    generator_config = GeneratorConfig(seed=args.seed, band=args.band, compile=args.compile,
                                       rules_per_batch=args.batch, trajectories_per_rule=args.trajectories_per_rule)
    config = DatasetConfig(sequences=sequences, candidates_per_shard=args.candidates_per_shard or 0,
                           generator=generator_config)
    options = RunOptions(out=args.out, ray_address=args.ray_address, workers=args.workers or 0,
                         threads_per_worker=args.threads_per_worker or 0, device=args.device.strip().lower(),
                         progress=not args.no_progress)
    try:
        print("\n".join(summary_lines(run(config, options))))
    except ConfigError as error:
        print(f"python -m generator.pipeline: error: {error}", file=sys.stderr)
        return 2
    except (PipelineError, ManifestError) as error:
        print(f"python -m generator.pipeline: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m generator.pipeline: interrupted: re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
