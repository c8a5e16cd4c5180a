"""One run of the pipeline, start to end: plan, start Ray and its actors, make shards, finish.

`run` makes, resumes or checks a dataset and returns a RunSummary, the same fields on
every path (a dataset found complete costs no Ray start-up, and its timings are zero).
A finished local dataset is checked before Ray starts; on a cluster the kind of device,
and so the dataset id, is only known once Ray reports its resources.
"""

import os
import resource
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass

from tqdm import tqdm

from generator.cluster import WorkerPlan, ask_each, plan_workers, ray_runtime, start_workers
from generator.config import DatasetConfig, RunOptions
from generator.finishing import finish
from generator.format import DeviceRecord, Manifest, load_manifest
from generator.journal import check_existing
from generator.lock import dataset_lock
from generator.planning import dataset_id, local_device_kind, preflight, resolve_config
from generator.provenance import check_same_versions, driver_versions
from generator.scheduling import make_shards, run_log_path
from generator.shard_writer import ShardWriter


@dataclass(frozen=True)
class RunSummary:
    """What one run left on disk and what it cost."""

    dataset_dir: str
    """OUT/<dataset-id>: the dataset's folder."""
    dataset_id: str
    """The dataset's id, its folder's name."""
    manifest: Manifest
    """The dataset's manifest as written (or as found, when already complete)."""
    already_complete: bool
    """The dataset was finished and intact before the run: nothing was written."""
    seconds: float
    """Wall time of the whole run."""
    start_up_seconds: float = 0.0
    """Ray start-up, actor creation and, for a compiled step, its compilation; 0 when already complete."""
    generation_seconds: float = 0.0
    """Making and writing the shards, the pictures and the manifest; 0 when already complete."""
    written_tokens: int = 0
    """Tokens in the shards this run wrote (kept and restored shards not counted)."""
    workers: WorkerPlan | None = None
    """The actor layout; None when the dataset was checked without starting Ray."""
    resumed_shards: int = 0
    """Shards kept from an earlier run."""
    worker_peak_rss: int = 0
    """Peak resident memory of the largest actor, in bytes; 0 when no actor ran."""
    driver_peak_rss: int = 0
    """Peak resident memory of this process, in bytes."""


def peak_rss_of_this_process() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(config: DatasetConfig, options: RunOptions) -> RunSummary:
    """Make (or resume, or check) the dataset; return what is on disk and how long it took."""
    with ExitStack() as locks:
        return locked_run(config, options, locks)


def locked_run(config: DatasetConfig, options: RunOptions, locks: ExitStack) -> RunSummary:
    """run's work; a dataset folder is locked (generator/lock.py) before it is checked, until run returns."""
    config = resolve_config(config)
    preflight(config, options)
    started = time.perf_counter()

    def complete(dataset_dir: str, **fields) -> RunSummary:
        return RunSummary(dataset_dir=dataset_dir, dataset_id=os.path.basename(dataset_dir), already_complete=True,
                          manifest=load_manifest(dataset_dir), seconds=time.perf_counter() - started,
                          driver_peak_rss=peak_rss_of_this_process(), **fields)

    checked_dir, existing = None, None
    if not options.ray_address:  # a finished local dataset is checked without starting Ray
        checked_dir = os.path.join(options.out, dataset_id(config, local_device_kind(options)))
        locks.enter_context(dataset_lock(checked_dir))
        existing = check_existing(checked_dir)
        if existing.complete and not existing.damaged:
            return complete(checked_dir, resumed_shards=len(existing.valid))
    with ray_runtime(options) as ray:
        plan = plan_workers(ray.cluster_resources(), options)
        identity = dataset_id(config, plan.device)
        dataset_dir = os.path.join(options.out, identity)
        if dataset_dir != checked_dir:  # a cluster, or actors on another kind of device than guessed
            locks.enter_context(dataset_lock(dataset_dir))
            existing = check_existing(dataset_dir)
        if existing.complete and not existing.damaged:
            return complete(dataset_dir, workers=plan, resumed_shards=len(existing.valid))
        for line in existing.problems:
            print(f"{identity}: {line}: regenerating it", file=sys.stderr)
        driver = driver_versions(plan.device)
        if not existing.complete:  # journalled shards are kept only if made with the driver's versions too
            for entry in existing.valid.values():
                if entry.worker:
                    check_same_versions(entry.worker, driver, f"{entry.name} (kept from an earlier run) was made with")
        nothing_to_make = not existing.damaged and sum(shard.rows for shard in existing.valid.values()) >= config.sequences
        workers, records, nodes = start_workers(ray, plan, config.generator, driver, warm_up=not nothing_to_make)
        warm = time.perf_counter()
        total = config.sequences * config.generator.nca.tokens_per_sequence
        done = sum(shard.tokens for shard in existing.valid.values())
        with tqdm(total=total, initial=done, unit="tok", unit_scale=True, desc=identity, file=sys.stderr,
                  disable=not options.progress, smoothing=0.1) as bar:
            writer = ShardWriter(config, dataset_dir, existing, bar)
            make_shards(ray, workers, nodes, config, writer, driver, run_log_path(options.out, identity))
        first = min(records, key=lambda record: record.node)  # not whichever actor answered first: same manifest
        device = DeviceRecord(**first.model_dump(include=set(DeviceRecord.model_fields)))
        manifest = finish(dataset_dir, identity, config, existing, writer, device)
        written = time.perf_counter()
        worker_peak_rss = max(ask_each(ray, workers, "peak_rss"), default=0)
        ask_each(ray, workers, "close")
    written_tokens = sum(writer.entries[i].tokens for i in writer.entries if i not in existing.valid)
    return RunSummary(dataset_dir=dataset_dir, dataset_id=identity, manifest=manifest, already_complete=False,
                      seconds=time.perf_counter() - started, start_up_seconds=warm - started,
                      generation_seconds=written - warm, written_tokens=written_tokens, workers=plan,
                      resumed_shards=len(existing.valid), worker_peak_rss=worker_peak_rss,
                      driver_peak_rss=peak_rss_of_this_process())
