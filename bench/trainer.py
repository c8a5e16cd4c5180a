"""Trainer benchmark: training tokens/s and MFU beside the machine's matmul rate, and the loader alone.

The model is the tiny-cpu recipe's (4 layers, d_model 256, fp32 on CPU), trained by the
real Trainer on a real band-high dataset (made once by the pipeline under bench/out/),
and, for the language stage, the same model with GPT-2's 50,257-word head on the
standard library's code (prepared once under bench/out/).
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


def bench_corpus() -> str:
    """The standard library's code as a token corpus, prepared the first time and reused after."""
    from trainer.corpus import PrepareConfig, prepare_corpus

    return prepare_corpus(PrepareConfig(source="stdlib", out=BENCH_DATA, validation_fraction=0.05), progress=False).folder


def time_training(trainer, steps: int) -> float:
    """Training tokens/s over `steps` optimiser steps, after one untimed warm-up step."""
    from trainer.loader import micro_batch_loader

    batches = iter(micro_batch_loader(trainer.stream_spec(), 0, workers=0))
    trainer._train_step(batches)
    started = time.perf_counter()
    for _ in range(steps):
        trainer._train_step(batches)
    return steps * trainer.global_batch * trainer.config.model.context / (time.perf_counter() - started)


def time_loader(trainer, micro_batches: int, workers: int) -> float:
    """Tokens/s of the rank's micro-batch stream alone, worker start-up excluded."""
    from trainer.loader import micro_batch_loader

    batches = iter(micro_batch_loader(trainer.stream_spec(), 0, workers=workers))
    next(batches)
    started = time.perf_counter()
    for _ in range(micro_batches):
        next(batches)
    elapsed = time.perf_counter() - started
    del batches
    return micro_batches * trainer.config.train.micro_batch * trainer.config.model.context / elapsed


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
    process = Process(0, 1, 0, 1, torch.device("cpu"))

    def make_trainer(recipe: str, data: str, run_dir: str, *overrides) -> Trainer:
        overrides = [("data.train", data), ("train.run_dir", run_dir), ("train.progress", "false"), ("train.eval_rows", "8"),
                     *overrides]
        return Trainer(resolve_config(recipe, overrides), process, resume=False)

    run_dir = tempfile.mkdtemp(prefix="ncaforge-bench-trainer-")
    try:
        trainer = make_trainer("tiny-cpu", bench_dataset(), os.path.join(run_dir, "nca"))
        roof = matmul_flops(threads)
        training = time_training(trainer, 2 if args.quick else 5)
        loader_inline = time_loader(trainer, 20 if args.quick else 100, workers=0)
        loader_worker = time_loader(trainer, 20 if args.quick else 100, workers=1)
        nca_flops, nca_parameters, nca_batch = (trainer.model.flops_per_token(),
                                                trainer.model.parameter_count(embeddings=False), trainer.global_batch)
        del trainer  # the language step's (batch x 1024 x 50,304) logits need the memory
        # 4 sequences a step: a step's logits, their softmax and gradient are ~1.6 GB per 8 sequences
        language = make_trainer("tiny-cpu-language", bench_corpus(), os.path.join(run_dir, "language"),
                                ("train.micro_batch", "4"))
        language_training = time_training(language, 1 if args.quick else 3)
        language_loader = time_loader(language, 20 if args.quick else 100, workers=0)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    achieved = training * nca_flops
    language_achieved = language_training * language.model.flops_per_token()
    model = language.config.model
    print(f"trainer: tiny-cpu model ({model.layers} layers, d_model {model.d_model}, "
          f"{nca_parameters / 1e6:.1f}M parameters without embeddings, {nca_flops / 1e6:.0f} MFLOP per token), fp32, "
          f"1 process x {threads} threads, batch {nca_batch} x {model.context}; CPU: {cpu_model_name() or 'unknown'}")
    print_table([
        ("training tokens/s", rate(training), "", ""),
        ("model FLOP utilisation", f"{achieved / 1e9:.1f} GFLOP/s", f"fp32 matmul {roof / 1e9:.0f} GFLOP/s",
         f"{achieved / roof:.0%}"),
        ("loader tokens/s, in the training process", rate(loader_inline), f"training {rate(training)}",
         f"{loader_inline / training:,.0f}x"),
        ("loader tokens/s, one worker process", rate(loader_worker), f"training {rate(training)}",
         f"{loader_worker / training:,.0f}x"),
        ("language stage training tokens/s", rate(language_training), f"NCA stage {rate(training)}",
         f"{language_training / training:.2f}x"),
        ("language stage model FLOP utilisation", f"{language_achieved / 1e9:.1f} GFLOP/s",
         f"fp32 matmul {roof / 1e9:.0f} GFLOP/s", f"{language_achieved / roof:.0%}"),
        ("language loader tokens/s, in the training process", rate(language_loader),
         f"language training {rate(language_training)}", f"{language_loader / language_training:,.0f}x"),
    ])
    print(f"  language stage: the same model with GPT-2's {language.vocab_size:,}-word embedding and head, "
          f"{language.model.flops_per_token() / 1e6:.0f} MFLOP per token, batch {language.global_batch} x "
          f"{model.context}, on the standard library's code")


if __name__ == "__main__":
    main()
