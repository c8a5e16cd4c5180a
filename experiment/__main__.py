"""`python -m experiment RECIPE [--corpus PATH] [--out runs/experiments]` (`make experiment`):
the paper's comparison end to end, resumable.

For each arm and seed of the recipe (experiment/recipes/*.toml) it makes or reuses the data,
pre-pre-trains, trains on the target corpus, and writes a report (Markdown, JSON, PNGs) into
OUT/reports/<recipe>-<corpus>/, with copies of every run's metrics and config beside it.
Re-run the same command after any interruption (kill -9 included): it continues where it
stopped and reaches the same numbers. With RAY_ADDRESS set, chains run side by side on the
cluster.

    python -m experiment laptop
    python -m experiment laptop --corpus ../shared/data/wikitext2-valid.txt --split-at '^ = [^=].* = $'
"""

import argparse
import os
import shlex
import sys

from generator.arguments import OneLineParser

PROG = "python -m experiment"


def parser() -> OneLineParser:
    top = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("recipe", help="a recipe name in experiment/recipes (laptop, workstation, paper) or a .toml path")
    top.add_argument("--corpus", default="", help="target corpus replacing the recipe's: a text file, a folder, a "
                                                  ".jsonl[.zst] or .parquet file, or stdlib")
    top.add_argument("--split-at", default="", metavar="REGEX",
                     help="with --corpus: cut documents before lines matching REGEX (one big text file)")
    top.add_argument("--validation-fraction", type=float, default=None,
                     help="with --corpus: share of documents held out (default: the recipe's)")
    top.add_argument("--out", default="runs/experiments", help="folder of data, runs and reports")
    top.add_argument("--catalog-host", default="127.0.0.1",
                     help="address the experiment's catalog listens on (default loopback; a multi-node Ray cluster "
                          "needs one its nodes reach, and NCAFORGE_CATALOG_TOKEN set)")
    top.add_argument("--check", action="store_true", help="check the recipe and print the plan; run nothing")
    top.add_argument("--no-progress", action="store_true", help="no progress bar")
    return top


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    arguments = parser().parse_args(argv)
    from experiment.recipe import ExperimentError, corpus_from_path, load_recipe
    from experiment.report import ReportError
    from experiment.steps import StepError

    try:
        corpus = None
        if arguments.corpus:
            corpus = corpus_from_path(arguments.corpus, arguments.split_at, arguments.validation_fraction)
        elif arguments.split_at or arguments.validation_fraction is not None:
            raise ExperimentError("--split-at and --validation-fraction apply to --corpus: give --corpus PATH too")
        recipe = load_recipe(arguments.recipe, corpus)
        if arguments.check:
            print(f"{recipe.name}: arms {', '.join(recipe.arms)}; seeds {', '.join(map(str, recipe.seeds))}; corpora "
                  f"{', '.join(spec.label for spec in recipe.corpora)}; pretrain {recipe.pretrain.tokens:,} tokens, "
                  f"language {recipe.language.tokens:,} tokens per arm and seed")
            return 0
        from experiment.run import run_experiment

        report_dir = run_experiment(recipe, arguments.out, len(os.sched_getaffinity(0)),
                                    f"{PROG} {shlex.join(argv)}", progress=not arguments.no_progress,
                                    catalog_host=arguments.catalog_host)
    except (ExperimentError, StepError, ReportError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted: run the same command again to continue", file=sys.stderr)
        return 130
    print(f"report    {os.path.join(report_dir, 'report.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
