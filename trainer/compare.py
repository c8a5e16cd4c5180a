"""`python -m trainer.compare RUN_A RUN_B ... [--out comparison.png] [--metric perplexity]`: final
validation perplexity of each run and its convergence speed-up over the first run (SPEC section 6).

RUN_A is the reference ("scratch"). Its final perplexity is the target; the speed-up of run X is

    tokens A needed to first reach the target / tokens X needed to first reach it,

both read off the validation curves by linear interpolation between evaluation points
(`first_crossing`). Tokens are the eval records' "tokens": this stage's training tokens only,
so a language run started from an NCA checkpoint begins at 0 and its pre-pre-training is not
counted. A is measured on its own curve, which may cross its final value before its last
evaluation when the curve is not monotonic.

Two readings are deliberate. A curve that never comes down to the target has no speed-up
("never reached"), rather than one extrapolated past its last evaluation. A curve already at
or below the target at its first evaluation is read as reaching it there, the earliest point
its log shows, so its speed-up is a lower bound (infinite when that evaluation is at 0 tokens).

Prints one aligned row per run, and draws every run's validation curve against stage tokens
into one PNG (perplexity on a log scale: it starts near the vocabulary size), the target dashed
and each run's crossing of it marked.
"""

import argparse
import math
import os
import sys
from dataclasses import dataclass

from generator.atomic import atomic_path
from generator.text_table import aligned_lines
from trainer.metrics import METRICS_NAME, read_metrics

COMPARED_METRICS = ("perplexity", "loss", "bits_per_byte")


class CompareError(Exception):
    """A run cannot be compared; the message names the run and the fix, in one line."""


@dataclass(frozen=True)
class Curve:
    """A validation curve: one point per evaluation, in training order."""

    tokens: tuple
    """This stage's training tokens at each evaluation, increasing."""
    values: tuple
    """The compared metric at each evaluation (lower is better)."""


@dataclass(frozen=True)
class RunResult:
    """One row of the comparison."""

    name: str
    """The run folder's name (its path when two folders share a name)."""
    evaluations: list
    """The run's eval records, in order."""
    curve: Curve
    """Its validation curve of the compared metric."""
    tokens_to_target: float | None
    """Tokens at which its curve first reaches the reference's final value; None if never."""
    speed_up: float | None
    """Reference's tokens to target / this run's; None if this run never reaches the target."""

    @property
    def final(self) -> dict:
        return self.evaluations[-1]


def first_crossing(tokens, values, target: float) -> float | None:
    """Tokens at which the piecewise-linear curve through (tokens, values) first comes down to
    `target`; tokens[0] when the first point is already at or below it; None when it never does."""
    if values[0] <= target:
        return float(tokens[0])
    for start, stop, above, below in zip(tokens, tokens[1:], values, values[1:]):
        if below <= target:
            return start + (above - target) / (above - below) * (stop - start)
    return None


def speed_up(reference: Curve, other: Curve) -> float | None:
    """SPEC section 6: tokens `reference` needed to first reach its own final value over the
    tokens `other` needed to reach that value; None when `other` never reaches it."""
    target = reference.values[-1]
    reference_tokens = first_crossing(reference.tokens, reference.values, target)
    other_tokens = first_crossing(other.tokens, other.values, target)
    if other_tokens is None:
        return None
    if other_tokens == 0:
        return 1.0 if reference_tokens == 0 else math.inf
    return reference_tokens / other_tokens


def read_evaluations(run_dir: str, metric: str) -> list:
    """The eval records of a run folder; CompareError when there are none or they lack `metric`."""
    if not os.path.isfile(os.path.join(run_dir, METRICS_NAME)):
        raise CompareError(f"{run_dir} has no {METRICS_NAME}: give run folders written by trainer/main.py")
    evaluations = [record for record in read_metrics(run_dir) if record.get("kind") == "eval"]
    if not evaluations:
        raise CompareError(f"{run_dir} has no evaluation yet: compare runs that have evaluated at least once")
    if any(metric not in record for record in evaluations):
        raise CompareError(f"{run_dir}: its evaluations have no {metric} (bits per byte is for language runs): "
                           f"choose another --metric")
    return evaluations


def run_names(run_dirs: list) -> list:
    """Folder names, or the paths as given when two folders share a name."""
    names = [os.path.basename(os.path.normpath(run_dir)) for run_dir in run_dirs]
    return names if len(set(names)) == len(names) else list(run_dirs)


def compare_runs(run_dirs: list, metric: str = "perplexity") -> list:
    """A RunResult per run folder, the first being the reference; CompareError on bad input."""
    if len(run_dirs) < 2:
        raise CompareError("give at least two run folders: the reference (scratch) first, then the runs to compare")
    results = []
    for name, run_dir in zip(run_names(run_dirs), run_dirs):
        evaluations = read_evaluations(run_dir, metric)
        curve = Curve(tuple(r["tokens"] for r in evaluations), tuple(r[metric] for r in evaluations))
        reference = results[0].curve if results else curve
        crossing = first_crossing(curve.tokens, curve.values, reference.values[-1])
        results.append(RunResult(name, evaluations, curve, crossing, speed_up(reference, curve)))
    return results


def format_value(value: float, metric: str) -> str:
    return f"{value:,.2f}" if metric == "perplexity" else f"{value:.4f}"


def speed_up_text(value: float | None) -> str:
    if value is None:
        return "never reached"
    return "inf" if math.isinf(value) else f"{value:.2f}x"


def format_table(results: list, metric: str) -> str:
    """The comparison as aligned text: one row per run, then what the target was."""
    reference = results[0]
    with_bits = any("bits_per_byte" in result.final for result in results)
    header = ["run", "evals", "tokens", "perplexity", *(["bits/byte"] if with_bits else []), "vs first",
              "tokens to target", "speed-up"]
    rows = [header]
    for result in results:
        relative = result.final["perplexity"] / reference.final["perplexity"] - 1
        bits = result.final.get("bits_per_byte")
        bits_cells = ["-" if bits is None else f"{bits:.4f}"] if with_bits else []
        reached = result.tokens_to_target
        rows.append([result.name, str(len(result.evaluations)), f"{result.final['tokens']:,}",
                     f"{result.final['perplexity']:,.2f}", *bits_cells,
                     "-" if result is reference else f"{relative:+.1%}", "-" if reached is None else f"{reached:,.0f}",
                     speed_up_text(result.speed_up)])
    lines = aligned_lines(rows, numbers_from=1)
    target = format_value(reference.curve.values[-1], metric)
    lines.append(f"target: {metric} {target}, {reference.name}'s final; speed-up = {reference.name}'s tokens to "
                 f"target / each run's, read by linear interpolation between evaluations")
    return "\n".join(lines)


def draw_curves(results: list, metric: str, out: str) -> str:
    """Every run's validation curve against stage tokens, the target dashed and each crossing marked,
    into the PNG `out` (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    target = results[0].curve.values[-1]
    for result in results:
        line, = axis.plot(result.curve.tokens, result.curve.values, "o-", markersize=3,
                          label=f"{result.name} ({speed_up_text(result.speed_up)})")
        if result.tokens_to_target is not None:
            axis.plot([result.tokens_to_target], [target], "x", color=line.get_color(), markersize=9)
    axis.axhline(target, color="black", linestyle="--", linewidth=1,
                 label=f"target: {results[0].name}'s final {metric} {format_value(target, metric)}")
    if metric == "perplexity":
        axis.set_yscale("log")
    axis.set(xlabel="training tokens of this stage", ylabel=f"validation {metric.replace('_', ' ')}",
             title=f"validation {metric.replace('_', ' ')} against tokens")
    finish_figure(plt, figure, axis, out)
    return out


def finish_figure(plt, figure, axis, out: str) -> None:
    """The house style of a curve against tokens (engineering token axis, grid, legend), saved
    atomically as the PNG `out`."""
    from matplotlib.ticker import EngFormatter

    axis.xaxis.set_major_formatter(EngFormatter())
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(out) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)


def main(argv=None) -> int:
    from generator.arguments import OneLineParser

    parser = OneLineParser(prog="python -m trainer.compare", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (each with metrics.jsonl); the first is the reference")
    parser.add_argument("--out", default="comparison.png", help="PNG of the curves to write (default comparison.png)")
    parser.add_argument("--metric", default="perplexity", choices=COMPARED_METRICS,
                        help="the curve the speed-up is read on (default perplexity, as SPEC section 6)")
    args = parser.parse_args(argv)
    try:
        results = compare_runs(args.runs, args.metric)
    except CompareError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(format_table(results, args.metric))
    print(f"curves: {draw_curves(results, args.metric, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
