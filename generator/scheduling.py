"""The Ray scheduling loop: keep every actor busy until the shard writer holds every row.

Each actor has two shards queued, so it never waits for the driver. Repairs go first;
new shards are asked for only while the rows still missing exceed what is already
waiting or in flight (at the running rows-per-shard rate), so a run stops making
shards it will throw away.

A worker whose actor is gone for good (its process crashed past Ray's restarts, or
its node died: actors are pinned to their node) is dropped, and its shards go to the
other actors: a shard is a pure function of its rule ids, so the run finishes with
the same bytes on the nodes left. A shard that loses two workers stops the run
rather than take every worker down. While nothing arrives, the loop also looks every
NODE_CHECK_SECONDS for actors whose node Ray reports dead, so a silent node's shards
do not wait for Ray to fail its actors.

A shard whose code fails (an exception in make_shard), or the loss of the last
actor, stops the run with a one-line PipelineError; the full remote
traceback goes to OUT/.ncaforge-logs/<dataset-id>.log (appended, one block per
failure), which the line names. The log sits beside the datasets rather than in the
dataset's own folder, so it survives the re-run that finishes the dataset, and the
folder holds nothing but the dataset.
"""

import os
import sys
import time
import traceback
from collections import Counter

from generator.bands import expected_acceptance, parse_band
from generator.config import DatasetConfig
from generator.errors import PipelineError
from generator.format import shard_name
from generator.provenance import check_same_versions
from generator.shard_writer import ShardWriter

LOG_DIR = ".ncaforge-logs"
NODE_CHECK_SECONDS = 5.0
"""How long the loop waits for a shard before it checks that the actors' nodes are alive."""


def run_log_path(out: str, dataset_id: str) -> str:
    return os.path.join(out, LOG_DIR, f"{dataset_id}.log")


def log_failure(log_path: str, what: str, error: BaseException) -> None:
    """Append `what` and the error's full text (a RayTaskError's holds the remote traceback)."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n{''.join(traceback.format_exception(error))}\n")


def make_shards(ray, workers: list, nodes: dict, config: DatasetConfig, writer: ShardWriter, driver: dict,
                log_path: str) -> None:
    """Keep every actor busy (two queued shards each) until the writer holds every row. `nodes` maps each
    actor to the node it is pinned to; `driver` holds the versions every shard's worker must match
    (provenance.driver_versions). Actors lost for good are killed and removed from `workers`, which then
    holds the survivors."""
    rows_per_shard = expected_acceptance(parse_band(config.generator.band)) * config.candidates_per_shard
    redo = sorted(writer.repairs)  # shards to make before new ones: repairs, then shards of lost workers
    slots = [worker for worker in workers for _ in range(2)]
    pending, next_new, losses = {}, writer.next_index, Counter()

    def more_wanted() -> bool:
        waiting = sum(len(made.rule_ids) for made in writer.waiting.values())
        in_flight = sum(1 for index, _ in pending.values() if index >= writer.next_index)
        return writer.rows_missing > waiting + in_flight * rows_per_shard

    while True:
        while slots and (redo or more_wanted()):
            if redo:
                index = redo.pop(0)
            else:
                index, next_new = next_new, next_new + 1
            worker = slots.pop()
            first = index * config.candidates_per_shard
            # rows still missing now bound what this shard can contribute: earlier shards only lower it
            max_rows = writer.repairs[index].rows if index in writer.repairs else writer.rows_missing
            pending[worker.make_shard.remote(first, first + config.candidates_per_shard, max_rows)] = (index, worker)
        if not pending:
            return
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=NODE_CHECK_SECONDS)
        if not ready:
            alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
            lost = [worker for worker in workers if nodes[worker] not in alive]
            redo = sorted(redo + drop_workers(ray, lost, "their node died", workers, nodes, slots, pending))
            continue
        index, worker = pending.pop(ready[0])
        slots.append(worker)
        try:
            made = ray.get(ready[0])
        except ray.exceptions.RayActorError as error:  # the actor is gone, past its restarts and retries
            log_failure(log_path, f"making {shard_name(index)} lost its worker", error)
            reason = f"{type(error).__name__}, logged in {log_path}"
            pending[ready[0]] = (index, worker)  # given back with the worker's other shards
            redo = sorted(redo + drop_workers(ray, [worker], reason, workers, nodes, slots, pending))
            losses[index] += 1
            if losses[index] > 1:  # a shard that kills whichever worker makes it would take them all
                raise PipelineError(f"making {shard_name(index)} lost two workers ({type(error).__name__}); full "
                                    f"tracebacks in {log_path}; re-run the same command to resume") from None
            continue
        except Exception as error:  # RayTaskError: make_shard raised
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


def drop_workers(ray, lost: list, reason: str, workers: list, nodes: dict, slots: list, pending: dict) -> list:
    """Kill the actors `lost` for good and remove them from `workers`, `nodes` (actor -> node id), `slots` and
    `pending`; say so on stderr with `reason`; return the indices of the shards they still held."""
    if not lost:
        return []
    orphans = [ref for ref, (_, worker) in pending.items() if worker in lost]
    indices = sorted(pending.pop(ref)[0] for ref in orphans)
    addresses = {node["NodeID"]: node["NodeManagerAddress"] for node in ray.nodes()}
    where = sorted({addresses.get(nodes[worker], "unknown") for worker in lost})
    for worker in lost:
        ray.kill(worker, no_restart=True)
        workers.remove(worker)
        del nodes[worker]
    slots[:] = [worker for worker in slots if worker not in lost]
    if not workers:
        raise PipelineError(f"every worker is lost (the last on node {', '.join(where)}: {reason}): restart the "
                            f"cluster's nodes, then re-run the same command to resume")
    print(f"lost {len(lost)} worker(s) on node {', '.join(where)} ({reason}): {len(indices)} shard(s) "
          f"to remake on the {len(workers)} left", file=sys.stderr)
    return indices
