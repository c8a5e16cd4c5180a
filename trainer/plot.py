"""`python -m trainer.plot RUN [RUN ...] --out curves.png`: loss curves and what the model learned.

Left: training loss (smoothed) and validation loss against tokens seen, one colour per
run, with the validation rows' two baselines as dashed lines: the unigram (token
frequencies only) and the in-context unigram (copying tokens already seen in the
sequence). A curve below the in-context line means the model predicts the automaton
better than copying does. Right (NCA runs; Dyck rows have no frames): validation loss
per frame at each run's last evaluation, beside both baselines per frame; a model that
infers the rule in context gets better on later frames, where copying does not.

`--evaluation FILE` takes the baselines from a `python -m trainer.evaluate CHECKPOINT --json`
record instead of the logs: for runs logged before a baseline was corrected.
"""

import argparse
import json
import os
import sys

from trainer.baselines import FIRST_SCORED_FRAME
from trainer.metrics import read_metrics


def smoothed(values: list, weight: float = 0.9) -> list:
    out, running = [], None
    for value in values:
        running = value if running is None else weight * running + (1 - weight) * value
        out.append(running)
    return out


def draw(run_dirs: list, out: str, title: str = "", baselines: dict | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curves, frames) = plt.subplots(1, 2, figsize=(13, 4.8))
    for colour, run_dir in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4, run_dirs):
        records = read_metrics(run_dir)
        train = [r for r in records if r["kind"] == "train"]
        evaluations = [r for r in records if r["kind"] == "eval"]
        if not train and not evaluations:
            raise SystemExit(f"trainer.plot: error: {run_dir} has no metrics yet: give a run folder with metrics.jsonl")
        name = os.path.basename(os.path.normpath(run_dir))
        if train:
            curves.plot([r["tokens"] / 1e6 for r in train], smoothed([r["loss"] for r in train]), color=colour,
                        alpha=0.6, linewidth=1, label=f"{name} train (smoothed)")
        if evaluations:
            curves.plot([r["tokens"] / 1e6 for r in evaluations], [r["loss"] for r in evaluations], "o-", color=colour,
                        markersize=3, label=f"{name} validation")
            last = evaluations[-1]
            if "per_frame" in last:  # NCA rows; Dyck rows and text have no frames
                frames.plot(range(FIRST_SCORED_FRAME, FIRST_SCORED_FRAME + len(last["per_frame"])), last["per_frame"],
                            "o-", color=colour, markersize=3,
                            label=f"{name} at {last['tokens'] / 1e6:.2f}M tokens")
            baselines = baselines or last.get("baselines")
    if baselines:
        for key, style, label in (("unigram", ":", "unigram"), ("in_context_unigram", "--", "in-context unigram")):
            curves.axhline(baselines[key]["loss"], color="black", linestyle=style, linewidth=1, label=label)
            if "per_frame" in baselines[key]:
                frames.plot(range(FIRST_SCORED_FRAME, FIRST_SCORED_FRAME + len(baselines[key]["per_frame"])),
                            baselines[key]["per_frame"], style,
                            color="black", linewidth=1, label=label)
    curves.set(xlabel="training tokens (millions)", ylabel="cross-entropy (nats / token)", title=title or "loss")
    frames.set(xlabel="frame (1 = context only)", ylabel="validation cross-entropy", title="validation loss per frame")
    for axis in (curves, frames):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    temporary = os.path.join(os.path.dirname(os.path.abspath(out)), f".tmp-{os.getpid()}-{os.path.basename(out)}")
    figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    os.replace(temporary, out)
    return out


def main(argv=None) -> int:
    from generator.arguments import OneLineParser

    parser = OneLineParser(prog="python -m trainer.plot", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (each with metrics.jsonl)")
    parser.add_argument("--out", default="curves.png", help="PNG to write (default curves.png)")
    parser.add_argument("--title", default="", help="title of the loss panel")
    parser.add_argument("--evaluation", help="a trainer.evaluate --json record whose baselines replace the logged ones")
    args = parser.parse_args(argv)
    for run_dir in args.runs:
        if not os.path.isfile(os.path.join(run_dir, "metrics.jsonl")):
            parser.error(f"{run_dir} has no metrics.jsonl: give a run folder written by trainer/main.py")
    baselines = None
    if args.evaluation:
        try:
            with open(args.evaluation, encoding="utf-8") as f:
                baselines = json.load(f)["baselines"]
        except (OSError, ValueError, KeyError) as error:
            parser.error(f"--evaluation {args.evaluation}: not a trainer.evaluate --json record of an NCA run ({error})")
    print(draw(args.runs, args.out, args.title, baselines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
