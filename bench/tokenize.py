"""Tokenisation benchmark: `prepare` on every core beside tiktoken's single-thread rate, same text, same run.

The text is this Python's standard library source (the `stdlib` corpus, ~12 MB; --quick
takes its first 150 files). `prepare` is timed end to end as a user runs it (worker
start-up, reading, hashing, the split, writing the .bin files and the manifest);
the baseline is tiktoken's encode_ordinary on one thread over the same documents, and
tiktoken's own threaded encode_ordinary_batch is shown beside it for scale. All rates are
MB/s of UTF-8 text, each the best of 3 interleaved rounds (1 with --quick): the machine may
be shared, and interleaving lets every contender see the same drift in load.

    python -m bench.tokenize [--quick]
"""

import argparse
import os
import shutil
import tempfile
import time

from bench.report import print_table


def timed(work) -> tuple:
    """(seconds, result) of one call of work()."""
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def prepare_into_temporary(config):
    """prepare_corpus of `config` into a fresh temporary folder, removed afterwards."""
    from trainer.corpus import prepare_corpus

    out = tempfile.mkdtemp(prefix="ncaforge-bench-tokenize-")
    try:
        return prepare_corpus(config.model_copy(update={"out": out}), progress=False)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tokenize", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first 150 stdlib files, one run each, for a smoke run")
    args = parser.parse_args(argv)
    from generator.provenance import cpu_model_name
    from trainer.corpus import PrepareConfig
    from trainer.corpus.documents import stdlib_source
    from trainer.tokenizer import load_tokenizer

    cores = len(os.sched_getaffinity(0))
    max_documents = 150 if args.quick else None
    documents = [text for text in stdlib_source().documents() if text][:max_documents]
    megabytes = sum(len(text.encode()) for text in documents) / 1e6
    tokenizer = load_tokenizer()

    def encode_one_by_one():
        for text in documents:
            tokenizer.encode(text)

    contenders = {"single": encode_one_by_one, "threaded": lambda: tokenizer.encode_batch(documents, num_threads=cores)}
    for workers in sorted({1, cores}):
        config = PrepareConfig(source="stdlib", workers=workers, max_documents=max_documents)
        contenders[workers] = lambda config=config: prepare_into_temporary(config)
    best = {}
    for _ in range(1 if args.quick else 3):  # rounds, each contender once per round: all see the same load drift
        for name, work in contenders.items():
            seconds, result = timed(work)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, result)
    single, threaded = (megabytes / best[name][0] for name in ("single", "threaded"))
    prepared = {workers: best[workers][1] for workers in sorted({1, cores})}
    splits = prepared[cores].manifest.splits
    prepared_megabytes = (splits.train.text_bytes + splits.validation.text_bytes) / 1e6
    whole, inline = (prepared_megabytes / prepared[workers].seconds for workers in (cores, 1))
    print(f"tokenize: stdlib corpus, {len(documents):,} documents, {megabytes:.1f} MB of text, "
          f"{splits.train.tokens + splits.validation.tokens:,} GPT-2 tokens; {cores} core(s), "
          f"load average {os.getloadavg()[0]:.1f}; CPU: {cpu_model_name() or 'unknown'}")
    print_table([
        (f"prepare MB/s of text, {cores} worker process(es), end to end", f"{whole:.2f}",
         f"tiktoken 1 thread {single:.2f}", f"{whole / single:.2f}x"),
        ("prepare MB/s of text, 1 worker (in-process), end to end", f"{inline:.2f}", f"tiktoken 1 thread {single:.2f}",
         f"{inline / single:.2f}x"),
        (f"tiktoken encode_batch MB/s, {cores} thread(s)", f"{threaded:.2f}", f"tiktoken 1 thread {single:.2f}",
         f"{threaded / single:.2f}x"),
    ])
    print(f"  prepare wall time {prepared[cores].seconds:.1f} s for {prepared_megabytes:.1f} MB on {cores} worker(s), "
          f"{prepared[1].seconds:.1f} s on 1 (best of {1 if args.quick else 3} interleaved rounds)")


if __name__ == "__main__":
    main()
