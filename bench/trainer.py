"""Trainer benchmark: training tokens/s and MFU beside the machine's matmul rate, and the loader alone.

The model is the tiny-cpu recipe's (4 layers, d_model 256, fp32 on CPU), trained by the
real Trainer on a real band-high dataset (made once by the pipeline under bench/out/).
Model FLOP utilisation is the model's training FLOPs per token (6 x parameters in
matmuls, plus attention) times tokens/s, over the fp32 matmul rate measured in the
same run on the same threads. The loader is timed alone, reading the same stream of
micro-batches, with no worker process and with one: it must deliver at least 10x what
training consumes, or the trainer would wait on data.

    python -m bench.trainer [--quick]
"""

import argparse
import os
import shutil
import tempfile
import time

from bench.generator import matmul_flops
from bench.report import print_table, rate

BENCH_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "trainer-data")


def bench_dataset() -> str:
    """A 2,048-row band-high dataset, made by the pipeline the first time and reused after."""
    from generator.config import DatasetConfig, GeneratorConfig, RunOptions
    from generator.pipeline import run

    config = DatasetConfig(sequences=2048, generator=GeneratorConfig(band="high", seed=0))
    return run(config, RunOptions(out=BENCH_DATA, progress=False)).dataset_dir


def time_training(trainer, steps: int) -> float:
    """Training tokens/s over `steps` optimiser steps, after one untimed warm-up step."""
    from trainer.loader import StreamSpec, micro_batch_loader

    train = trainer.config.train
    spec = StreamSpec(trainer.plan.train, trainer.plan.train_blocks(), trainer.config.data.shuffle_window, train.seed,
                      train.micro_batch, train.grad_accum, 0, 1, trainer.config.model.context + 1)
    batches = iter(micro_batch_loader(spec, 0, workers=0))
    trainer._train_step(batches)
    started = time.perf_counter()
    for _ in range(steps):
        trainer._train_step(batches)
    return steps * trainer.global_batch * trainer.config.model.context / (time.perf_counter() - started)


def time_loader(trainer, micro_batches: int, workers: int) -> float:
    """Tokens/s of the rank's micro-batch stream alone, worker start-up excluded."""
    from trainer.loader import StreamSpec, micro_batch_loader

    train = trainer.config.train
    spec = StreamSpec(trainer.plan.train, trainer.plan.train_blocks(), trainer.config.data.shuffle_window, train.seed,
                      train.micro_batch, train.grad_accum, 0, 1, trainer.config.model.context + 1)
    batches = iter(micro_batch_loader(spec, 0, workers=workers))
    next(batches)
    started = time.perf_counter()
    for _ in range(micro_batches):
        next(batches)
    elapsed = time.perf_counter() - started
    del batches
    return micro_batches * train.micro_batch * trainer.config.model.context / elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, for a smoke run")
    args = parser.parse_args(argv)
    import torch

    from generator.provenance import cpu_model_name
    from trainer.config import resolve_config
    from trainer.distributed import Process
    from trainer.training import Trainer

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    data = bench_dataset()
    run_dir = tempfile.mkdtemp(prefix="ncaforge-bench-trainer-")
    try:
        config = resolve_config("tiny-cpu", [("data.train", data), ("train.run_dir", run_dir), ("train.progress", "false"),
                                             ("train.eval_rows", "8")])
        trainer = Trainer(config, Process(0, 1, 0, 1, torch.device("cpu")), resume=False)
        roof = matmul_flops(threads)
        training = time_training(trainer, 2 if args.quick else 5)
        loader_inline = time_loader(trainer, 20 if args.quick else 100, workers=0)
        loader_worker = time_loader(trainer, 20 if args.quick else 100, workers=1)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    achieved = training * trainer.model.flops_per_token()
    model = config.model
    print(f"trainer: tiny-cpu model ({model.layers} layers, d_model {model.d_model}, "
          f"{trainer.model.parameter_count(embeddings=False) / 1e6:.1f}M parameters without embeddings, "
          f"{trainer.model.flops_per_token() / 1e6:.0f} MFLOP per token), fp32, 1 process x {threads} threads, "
          f"batch {trainer.global_batch} x {model.context}; CPU: {cpu_model_name() or 'unknown'}")
    print_table([
        ("training tokens/s", rate(training), "", ""),
        ("model FLOP utilisation", f"{achieved / 1e9:.1f} GFLOP/s", f"fp32 matmul {roof / 1e9:.0f} GFLOP/s",
         f"{achieved / roof:.0%}"),
        ("loader tokens/s, in the training process", rate(loader_inline), f"training {rate(training)}",
         f"{loader_inline / training:.0f}x"),
        ("loader tokens/s, one worker process", rate(loader_worker), f"training {rate(training)}",
         f"{loader_worker / training:.0f}x"),
    ])


if __name__ == "__main__":
    main()
