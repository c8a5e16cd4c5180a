"""Generator benchmark: rollout, scoring and end-to-end rates, each beside a same-run baseline.

Both the batched generator and the naive per-rule loop (`bench.naive`) run on the
same pool of single-threaded worker processes, one per core, so their ratio
compares programs, not machines. The roofline is the machine's fp32 matmul rate
measured in this run: useful cell updates per second times the FLOPs a dense
implementation of the network spends per cell update, over matmul FLOP/s.
Compile time is paid once per worker before timing and printed separately.

    python -m bench.generator [--quick]
"""

import argparse
import os
import time

from bench.report import print_table, rate
from bench.workers import make_pool, timed
from generator.config import GeneratorConfig


def matmul_flops(threads: int, size: int = 1024, seconds: float = 1.5) -> float:
    """fp32 FLOP/s of square matmuls on `threads` threads: the machine's compute roof."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        runs += 1
    elapsed = time.perf_counter() - started
    torch.set_num_threads(previous)
    return runs * 2 * size**3 / elapsed


def flops_per_cell_update(nca) -> int:
    """Multiply-adds of the dense network per cell (3x3 conv over the input channels, two 1x1s), x2."""
    c, h, k = nca.conv_channels, nca.hidden_channels, nca.num_colours
    return 2 * (9 * nca.input_channels * c + c * h + h * k)


def cell_updates(counts: dict, nca) -> int:
    """Useful cell updates behind a task's counts: probe steps per candidate, training steps per rule."""
    probe_steps = nca.burn_in + nca.probe_frames - 1
    training_steps = nca.burn_in + nca.frames - 1
    return nca.grid_size**2 * (counts["candidates"] * probe_steps + counts["accepted_rules"] * training_steps)


def split(kind: str, first: int, per_task: int, tasks: int) -> list:
    return [(kind, first + i * per_task, first + (i + 1) * per_task) for i in range(tasks)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.generator", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the work, for a smoke run")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    workers = os.cpu_count() or 1
    config = GeneratorConfig(seed=0, band="high", compile=True, rules_per_batch=1024)
    nca = config.nca

    roof = matmul_flops(workers)
    pool, warm = make_pool(config, workers)
    n = lambda count: max(1, int(count * scale))
    with pool:
        fast = {
            "rollout": timed(pool, split("rollout", 10**6, 4096, n(4 * workers))),
            "score": timed(pool, split("score", 2 * 10**6, 4096, n(4 * workers))),
            "generate": timed(pool, split("generate", 3 * 10**6, 16384, n(2 * workers))),
        }
        naive = {
            "rollout": timed(pool, split("naive-rollout", 10**6, n(100), 2 * workers)),
            "score": timed(pool, split("naive-score", 2 * 10**6, n(200), 2 * workers)),
            "generate": timed(pool, split("naive-generate", 3 * 10**6, n(200), 2 * workers)),
        }

    def per_second(results, key):
        counts, seconds = results
        return counts[key] / seconds

    end_to_end = fast["generate"]
    achieved = cell_updates(end_to_end[0], nca) * flops_per_cell_update(nca) / end_to_end[1]
    accepted = end_to_end[0]["accepted_rules"] / max(end_to_end[0]["candidates"], 1)
    print(f"generator: {workers} worker processes x 1 thread, cpu, compiled step "
          f"(compile {warm:.0f} s per worker, not timed), band high accepts {accepted:.1%}")
    rows = []
    for label, kind, key in [("rollout tokens/s", "rollout", "tokens"),
                             ("complexity scoring rules/s", "score", "candidates"),
                             ("accepted tokens/s end to end, band high", "generate", "tokens")]:
        ours, baseline = per_second(fast[kind], key), per_second(naive[kind], key)
        rows.append((label, rate(ours), f"naive per-rule loop {rate(baseline)}", f"{ours / baseline:.1f}x"))
    rows.append(("roofline: cell updates/s x dense FLOPs", f"{achieved / 1e9:.1f} GFLOP/s",
                 f"fp32 matmul {roof / 1e9:.0f} GFLOP/s", f"{achieved / roof:.0%}"))
    print_table(rows)
    print(f"  dense FLOPs per cell update: {flops_per_cell_update(nca)} "
          f"(3x3 conv {nca.input_channels}->{nca.conv_channels}, 1x1 {nca.conv_channels}->{nca.hidden_channels}, "
          f"1x1 {nca.hidden_channels}->{nca.num_colours}); probe and training steps both count")


if __name__ == "__main__":
    main()
