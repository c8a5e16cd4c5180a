"""The report of `make experiment`: every arm against scratch on each target corpus, as Markdown,
JSON and pictures, read off the trainer's run folders.

Input: one language run per (arm, seed, corpus) and, for arms other than scratch, the
pre-pre-training run it started from. Output, in the report's folder:

- report.md: per corpus, each arm's final validation perplexity over its seeds, its difference
  from scratch with a 95% interval, its convergence speed-up (SPEC section 6, read by
  trainer.compare) and a verdict in words; the pre-pre-training runs beside their baselines; an
  arm-by-domain table when there are several corpora; the recipe's notes; the pictures.
- results.json: every number of those tables, canonical JSON.
- curves.png (curves-<corpus>.png with several corpora), pretrain.png and, for NCA runs,
  pretrain-frames.png (loss per frame against the in-context unigram's).

Seeds are paired: an arm's seed s is measured against scratch's seed s (same data order), and a
difference is called better or worse only when its interval excludes 0. One seed gives no
interval, so the report then says it cannot tell, rather than reading a difference that reseeding
scratch alone could make as an effect.

results.json and report.md depend on the metrics files alone (runs are named by their path
relative to the report's folder, nothing records a time), except report.md's "Wall time:" line:
two experiments that reached the same logs write the same bytes, so a rerun is checked by
comparing files.

The package, one concern per module: runs (what a chain is, its checks, reading its run folders),
scoring (every number, as results.json holds it), markdown (report.md) and figures (the PNGs).
"""

import os

from experiment.report.figures import draw_figures
from experiment.report.markdown import render_report
from experiment.report.runs import ArmRun, ReportError, check_runs, read_pretraining_runs, read_run
from experiment.report.scoring import canonical_json, score_experiment
from generator.atomic import write_bytes_atomically

__all__ = ["ArmRun", "ReportError", "write_report"]


def write_report(out_dir: str, title: str, runs: list[ArmRun], notes: list[str], command: str,
                 wall_seconds: float | None) -> str:
    """Write out_dir/report.md, out_dir/results.json and the PNGs; return the Markdown."""
    check_runs(runs)
    os.makedirs(out_dir, exist_ok=True)
    language = {run: read_run(run.language_run, "perplexity", out_dir) for run in runs}
    pretraining = read_pretraining_runs(runs, out_dir)
    results = score_experiment(runs, language, pretraining)
    figures = draw_figures(out_dir, runs, language, pretraining, results)
    markdown = render_report(title, command, wall_seconds, results, notes, figures)
    write_bytes_atomically(os.path.join(out_dir, "results.json"), canonical_json(results))
    write_bytes_atomically(os.path.join(out_dir, "report.md"), markdown.encode())
    return markdown
