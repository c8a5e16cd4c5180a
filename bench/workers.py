"""A pool of single-threaded worker processes, the layout that uses all cores best.

Two processes of one thread each beat one process of two threads for this
workload (2.75M against 2.36M accepted tokens/s here), but only when each is
pinned to one intra-op thread (OMP_NUM_THREADS=1); otherwise they fight over
the cores. Every task returns its work counts, so rates come from what was done.
"""

import multiprocessing as mp
import os
import time

_rule_generator = None


def _init(config):
    import torch

    torch.set_num_threads(1)
    global _rule_generator
    from generator.generate import RuleGenerator

    _rule_generator = RuleGenerator(config)


def _warm(_):
    """Compile both shapes (probe and training batch) before anything is timed."""
    import numpy as np

    started = time.perf_counter()
    _rule_generator.generate(0, _rule_generator.config.rules_per_batch)
    _rule_generator.sequences(np.arange(_rule_generator.config.rules_per_batch))
    return time.perf_counter() - started


def _run(task):
    kind, start, stop = task
    import numpy as np

    if kind.startswith("naive-"):
        from bench.naive import naive_run

        return naive_run(kind.removeprefix("naive-"), _rule_generator.config, start, stop)
    ids = np.arange(start, stop)
    per_rule = _rule_generator.config.trajectories_per_rule
    if kind == "score":
        _rule_generator.score(ids)
        return {"candidates": len(ids), "accepted_rules": 0, "tokens": 0}
    if kind == "rollout":
        tokens = _rule_generator.sequences(ids)
        return {"candidates": 0, "accepted_rules": len(ids), "tokens": tokens.size}
    rows = _rule_generator.generate(start, stop)
    return {"candidates": len(ids), "accepted_rules": len(rows.rule_ids) // per_rule, "tokens": rows.tokens.size}


def make_pool(config, workers: int):
    """Start `workers` spawned processes, each with its own warmed-up generator."""
    os.environ["OMP_NUM_THREADS"] = "1"
    pool = mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(config,))
    warm = max(pool.map(_warm, range(workers), chunksize=1))
    return pool, warm


def timed(pool, tasks) -> tuple:
    """Run tasks across the pool; return (summed work counts, seconds)."""
    started = time.perf_counter()
    total = {"candidates": 0, "accepted_rules": 0, "tokens": 0}
    for counts in pool.imap_unordered(_run, tasks, chunksize=1):
        for key in total:
            total[key] += counts[key]
    return total, time.perf_counter() - started
