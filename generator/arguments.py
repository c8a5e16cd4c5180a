"""Command-line pieces shared by every ncaforge entry point: a parser whose errors are one
line naming the fix (exit 2), typed counts, and the generator options that `bands`, `render`
and the pipeline all take."""

import argparse


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer: give a positive count") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive: give a count of at least 1")
    return value


def add_generator_options(parser):
    parser.add_argument("--band", default="high", help="high, upper, mid, low, web, math, code or LO-HI")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="torch.compile the step: ~25x faster, ~40 s to compile once per machine (default: on)")
    parser.add_argument("--batch", type=positive_int, default=512, help="rules per tensor batch")
