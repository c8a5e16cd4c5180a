"""Pipeline benchmark: written tokens/s of `make shards` next to the bare generator's, same run.

Both make the same dataset, band high, the same shard ranges. The bare generator
runs them on the benchmark's worker pool (one single-threaded process per core)
and keeps nothing. The pipeline runs for real into a temporary folder: local Ray
runtime, actors, Arrow IPC writes with zstd, sha256, journal, manifest. Both rates
leave out the one-time compile; the pipeline's is also given over its whole wall
time, start-up included.

    python -m bench.pipeline [--quick]
"""

import argparse
import os
import shutil
import tempfile

from bench.report import print_table, rate
from bench.workers import make_pool, timed
from generator.config import DatasetConfig, GeneratorConfig, RunOptions


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the work, for a smoke run")
    args = parser.parse_args(argv)
    from generator.pipeline import run
    from generator.planning import resolve_config

    sequences = 12_000 if args.quick else 60_000
    config = resolve_config(DatasetConfig(sequences=sequences, generator=GeneratorConfig(band="high", seed=1)))
    out = tempfile.mkdtemp(prefix="ncaforge-bench-")
    try:
        summary = run(config, RunOptions(out=out, progress=False))
        manifest = summary.manifest
        shards = [("generate", s.first_rule_id, s.first_rule_id + config.candidates_per_shard) for s in manifest.shards]
        pool, _ = make_pool(config.generator, os.cpu_count() or 1)
        with pool:
            counts, seconds = timed(pool, shards)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    bare = counts["tokens"] / seconds
    steady = summary.written_tokens / summary.generation_seconds
    whole = summary.written_tokens / summary.seconds
    plan = summary.workers
    print(f"pipeline: {sequences:,} sequences in band high, {len(shards)} shards, {manifest.totals.bytes / 1e6:.0f} MB "
          f"written; {plan.count} Ray actor(s) x {plan.threads} thread(s); bare generator on {os.cpu_count()} processes")
    print_table([
        ("written tokens/s, pipeline (compile excluded)", rate(steady), f"bare generator {rate(bare)}", f"{steady / bare:.0%}"),
        ("written tokens/s, pipeline whole wall time", rate(whole), f"bare generator {rate(bare)}", f"{whole / bare:.0%}"),
    ])
    print(f"  pipeline wall time {summary.seconds:.1f} s = {summary.start_up_seconds:.1f} s Ray start-up and "
          f"compile + {summary.generation_seconds:.1f} s making and writing shards, pictures and manifest")


if __name__ == "__main__":
    main()
