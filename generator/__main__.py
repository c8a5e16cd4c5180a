"""Command line of the generator: `python -m generator <command>`.

  bands   sample random rules, print the share per gzip-ratio bin and the band's
          acceptance rate, and optionally draw the histogram
  render  draw a trajectory of a rule in a band as a PNG strip and an animated GIF
  verify  check a dataset folder against its manifest and regenerate a sample of rows

Every bad input ends in one line on stderr that names the fix, and exit code 2.
"""

import argparse
import sys
import time

from generator.arguments import OneLineParser, add_generator_options, positive_int
from generator.bands import REFERENCE_BIN_EDGES, REFERENCE_SHARES
from generator.config import GeneratorConfig
from generator.errors import ConfigError

BIN_EDGES = REFERENCE_BIN_EDGES[:-1] + [1.0 + 1e-9]  # the last bin includes 1.0


def make_config(args) -> GeneratorConfig:
    import os

    return GeneratorConfig(
        seed=args.seed, band=args.band, device=args.device, compile=args.compile,
        rules_per_batch=args.batch, gzip_threads=os.cpu_count() or 1,
    ).validate()


def command_bands(args) -> None:
    import numpy as np
    from tqdm import tqdm

    from generator.bands import parse_band
    from generator.generate import RuleGenerator

    config = make_config(args)
    band = parse_band(config.band)
    ratios, warm_up = [], 0.0
    started = time.perf_counter()
    with RuleGenerator(config) as rule_generator, tqdm(total=args.rules, unit="rule", desc="scoring", file=sys.stderr) as bar:
        for start in range(0, args.rules, config.rules_per_batch):
            ids = np.arange(start, min(start + config.rules_per_batch, args.rules))
            ratios.append(rule_generator.score(ids))
            bar.update(len(ids))
            if start == 0:  # the first batch pays the one-time compile; keep it out of the rate
                warm_up = time.perf_counter() - started
    ratios = np.concatenate(ratios)
    timed_rules = len(ratios) - min(config.rules_per_batch, len(ratios))
    rate = f"{timed_rules / (time.perf_counter() - started - warm_up):,.0f} rules/s" if timed_rules else "rate needs > 1 batch"
    counts, _ = np.histogram(ratios, bins=BIN_EDGES)
    print(f"{len(ratios)} random rules, seed {config.seed}, on {rule_generator.device}: {rate} after a first batch of {warm_up:.1f} s")
    print(f"{'ratio bin':>12} {'share':>7} {'SPEC':>7} {'diff':>6}")
    for i, (count, ref) in enumerate(zip(counts, REFERENCE_SHARES)):
        label = f"[{BIN_EDGES[i]:.1f}, {BIN_EDGES[i + 1]:.1f})" if i < len(counts) - 1 else ">= 0.7"
        share = 100.0 * count / len(ratios)
        print(f"{label:>12} {share:6.1f}% {ref:6.1f}% {share - ref:+6.1f}")
    accepted = ((ratios > band.lo) & (ratios < band.hi)).mean()
    print(f"min {ratios.min():.3f}  median {np.median(ratios):.3f}  max {ratios.max():.3f}")
    print(f"band {band.name} ({band.lo:g} < ratio < {band.hi:g}) accepts {100 * accepted:.1f}% of candidates")
    if args.png:
        from generator.plots import save_histogram

        fine_counts, fine_edges = np.histogram(ratios, bins=np.linspace(0, 1, 21))
        save_histogram(fine_counts, fine_edges, args.png, band, f"{len(ratios)} random rules, seed {config.seed}")
        print(f"histogram: {args.png}")


def command_render(args) -> None:
    from generator.bands import parse_band
    from generator.format import decode_frames
    from generator.generate import RuleGenerator
    from generator.render import write_trajectory_pictures

    config = make_config(args)
    band = parse_band(config.band)
    with RuleGenerator(config) as rule_generator:
        for start in range(args.rule, args.rule + args.search, config.rules_per_batch):
            rows = rule_generator.generate(start, min(start + config.rules_per_batch, args.rule + args.search))
            if len(rows.rule_ids):
                break
        else:
            raise ConfigError(f"no rule in band {band.name} among rules {args.rule}..{args.rule + args.search - 1}: "
                              f"raise --search")
    frames = decode_frames(rows.tokens[0], config.nca.grid_size)
    title = f"band {band.name}  rule {rows.rule_ids[0]}  gzip ratio {rows.ratios[0]:.3f}  seed {config.seed}"
    png, gif = f"{args.out}.png", f"{args.out}.gif"
    write_trajectory_pictures(frames, png, gif, title)
    print(f"rule {rows.rule_ids[0]} (ratio {rows.ratios[0]:.3f}): {png} {gif}")


def command_verify(args) -> int:
    from generator.verify import verify

    problems, summary = verify(args.dataset, args.sample)
    for problem in problems:
        print(f"{args.dataset}: {problem}", file=sys.stderr)
    if problems:
        print(f"FAILED: {len(problems)} problem(s); {summary}")
        return 1
    print(f"OK: {summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m generator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    bands = commands.add_parser("bands", help="acceptance statistics of random rules")
    add_generator_options(bands)
    bands.add_argument("--rules", type=positive_int, default=2000, help="candidate rules to score")
    bands.add_argument("--png", help="also draw the ratio histogram to this PNG")
    bands.set_defaults(run=command_bands)
    render = commands.add_parser("render", help="draw one trajectory of a rule in the band")
    add_generator_options(render)
    render.add_argument("--rule", type=int, default=0, help="first candidate rule id to try")
    render.add_argument("--search", type=positive_int, default=4096, help="candidates to try before giving up")
    render.add_argument("--out", default="trajectory", help="output path without extension (.png and .gif)")
    render.set_defaults(run=command_render)
    verify = commands.add_parser("verify", help="check a dataset against its manifest")
    verify.add_argument("dataset", help="the dataset folder, OUT/<dataset-id>")
    verify.add_argument("--sample", type=positive_int, default=8, help="rows to regenerate and compare")
    verify.set_defaults(run=command_verify)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ConfigError as error:
        print(f"python -m generator {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
