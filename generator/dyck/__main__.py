"""`python -m generator.dyck`: make a Dyck dataset, the k-Dyck baseline of SPEC section 5.

    python -m generator.dyck --sequences 160000 --seed 0 --out shards     # the paper's 164M tokens
    python -m generator.dyck --tokens 50000000 --seed 1 --out shards --pairs 64 --max-depth 16 --p-open 0.5

The dataset goes to OUT/dyck-<sequences>-<hash>/: Arrow shards of 1025-token sequences
(uint16, pair i opens with token i and closes with token 64 + i), preview.png, and
manifest.json last. The same command gives the same folder and byte-identical files; run
again, it finishes an interrupted dataset or checks a finished one and writes nothing. A run
locks its dataset (OUT/.<dataset-id>.lock): a second one on it stops in one line, touching nothing.
The first line of the output is `dataset   <folder>`, for programs that read it.
"""

import argparse
import sys

from generator.dyck.config import DyckConfig, sequences_for_tokens
from generator.errors import ConfigError, PipelineError
from generator.format import ManifestError

PROG = "python -m generator.dyck"


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give a probability such as 0.5") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} is not strictly between 0 and 1: give a probability such as 0.5")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer: give a seed in [0, 2^64)") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 2^64): give a seed in that range")
    return value


def build_parser():
    from generator.arguments import OneLineParser, positive_int

    defaults = DyckConfig()
    parser = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--sequences", type=positive_int, help=f"rows to write (default {defaults.sequences:,}: "
                                                             f"the paper's 164M training tokens)")
    size.add_argument("--tokens", type=positive_int, help="training tokens to write: sequences = "
                                                          "ceil(tokens / (tokens per sequence - 1))")
    parser.add_argument("--seed", type=seed, default=defaults.seed, help="dataset seed (default 0)")
    parser.add_argument("--out", default="shards", help="output folder; the dataset goes to OUT/<dataset-id>/")
    parser.add_argument("--pairs", type=positive_int, default=defaults.pairs, help="bracket pairs k (default 64)")
    parser.add_argument("--max-depth", type=positive_int, default=defaults.max_depth,
                        help="each word's depth limit is drawn from 1..max-depth (default 16)")
    parser.add_argument("--p-open", type=probability, default=defaults.p_open,
                        help="probability of opening below the limit (default 0.5)")
    parser.add_argument("--tokens-per-sequence", type=positive_int, default=defaults.tokens_per_sequence,
                        help="tokens per row (default 1025: a 1024-token context and its last target)")
    parser.add_argument("--sequences-per-shard", type=positive_int, default=defaults.sequences_per_shard,
                        help="rows per shard file (default 8192)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def summary_lines(summary) -> list:
    manifest = summary.manifest
    totals, config = manifest.totals, manifest.dyck_config()
    if summary.already_complete:
        status = ("already complete: checked, nothing written" if not summary.written_shards else
                  f"already complete: checked, {summary.written_shards} damaged shard(s) restored")
    else:
        status = f"made: {summary.written_shards} shard(s) written, {summary.kept_shards} kept from an earlier run"
    lines = [
        f"dataset   {summary.dataset_dir}",
        f"id        {manifest.dataset_id}",
        f"status    {status}",
        f"rows      {totals.rows:,} sequences, {totals.tokens:,} tokens, {totals.shards} shards",
        f"bytes     {totals.bytes / 1e6:,.1f} MB on disk ({totals.bytes / max(1, 2 * totals.tokens):.2f} of the raw uint16 tokens)",
        f"dyck      {config.pairs} bracket pairs (vocabulary {config.vocab_size}), depth 1-{config.max_depth}, "
        f"p(open) {config.p_open:g}, seed {config.seed}",
    ]
    if summary.generated_tokens:
        lines.append(f"time      {summary.seconds:.1f} s, {summary.generated_tokens / max(summary.seconds, 1e-9):,.0f} "
                     f"tokens/s generated, compressed and written")
    return lines


def main(argv=None) -> int:
    from generator.dyck.writer import make_dataset

    args = build_parser().parse_args(argv)
    length = args.tokens_per_sequence
    sequences = sequences_for_tokens(args.tokens, length) if args.tokens else (args.sequences or DyckConfig.sequences)
    config = DyckConfig(sequences=sequences, tokens_per_sequence=length, pairs=args.pairs, max_depth=args.max_depth,
                        p_open=args.p_open, seed=args.seed, sequences_per_shard=args.sequences_per_shard)
    try:
        print("\n".join(summary_lines(make_dataset(config, args.out, progress=not args.no_progress))))
    except ConfigError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except (PipelineError, ManifestError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{PROG}: error: {error.filename or args.out}: {error.strerror or error}: check the output folder "
              f"and free disk space, then re-run the same command to finish", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted: re-run the same command to finish the dataset", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
