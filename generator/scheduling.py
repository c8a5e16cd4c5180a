"""The Ray scheduling loop: keep every actor busy until the shard writer holds every row.

Each actor has two shards queued, so it never waits for the driver. Repairs go first;
new shards are asked for only while the rows still missing exceed what is already
waiting or in flight (at the running rows-per-shard rate), so a run stops making
shards it will throw away.

A shard that fails for good (Ray retried the task and restarted the actor
ACTOR_RESTARTS times) stops the run with a one-line PipelineError; the full remote
traceback goes to OUT/.ncaforge-logs/<dataset-id>.log (appended, one block per
failure), which the line names. The log sits beside the datasets rather than in the
dataset's own folder, so it survives the re-run that finishes the dataset, and the
folder holds nothing but the dataset.
"""

import os
import time
import traceback

from generator.bands import expected_acceptance, parse_band
from generator.config import DatasetConfig
from generator.errors import PipelineError
from generator.format import shard_name
from generator.provenance import check_same_versions
from generator.shard_writer import ShardWriter

LOG_DIR = ".ncaforge-logs"


def run_log_path(out: str, dataset_id: str) -> str:
    return os.path.join(out, LOG_DIR, f"{dataset_id}.log")


def log_failure(log_path: str, what: str, error: BaseException) -> None:
    """Append `what` and the error's full text (a RayTaskError's holds the remote traceback)."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n{''.join(traceback.format_exception(error))}\n")


def make_shards(ray, workers: list, config: DatasetConfig, writer: ShardWriter, driver: dict, log_path: str) -> None:
    """Keep every actor busy (two queued shards each) until the writer holds every row. `driver` holds
    the versions every shard's worker must match (provenance.driver_versions)."""
    rows_per_shard = expected_acceptance(parse_band(config.generator.band)) * config.candidates_per_shard
    repairs = sorted(writer.repairs)
    slots = [worker for worker in workers for _ in range(2)]
    pending, next_new = {}, writer.next_index

    def more_wanted() -> bool:
        waiting = sum(len(made.rule_ids) for made in writer.waiting.values())
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
            max_rows = writer.repairs[index].rows if index in writer.repairs else writer.rows_missing
            pending[worker.make_shard.remote(first, first + config.candidates_per_shard, max_rows)] = (index, worker)
        if not pending:
            return
        [ref], _ = ray.wait(list(pending), num_returns=1)
        index, worker = pending.pop(ref)
        slots.append(worker)
        try:
            made = ray.get(ref)
        except Exception as error:  # RayActorError or RayTaskError, after every restart and retry
            log_failure(log_path, f"making {shard_name(index)} failed", error)
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise PipelineError(f"making {shard_name(index)} failed ({type(error).__name__}: {first_line}); "
                                f"full traceback in {log_path}; re-run the same command to resume") from None
        check_same_versions(made.worker, driver, f"worker on node {made.worker.node} (making {shard_name(index)}) runs")
        writer.accept(index, made)
        if writer.new_shards >= 4 and writer.new_rows == 0 and not writer.known_rows:
            raise PipelineError(f"band {config.generator.band} accepted no rule among the first "
                                f"{writer.new_shards * config.candidates_per_shard} candidates: widen the band")
        if writer.new_shards:
            rows_per_shard = writer.new_rows / writer.new_shards
