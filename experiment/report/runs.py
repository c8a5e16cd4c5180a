"""The runs a report reads: each chain's description (ArmRun), the checks that refuse a set of
chains that cannot be reported, and the validation evaluations read off each run folder (LoggedRun)."""

import os
from collections import Counter
from dataclasses import dataclass, replace

from trainer.compare import CompareError, Curve, read_evaluations

SCRATCH = "scratch"
"""The reference arm: trained on the target corpus only, present in every corpus."""
PRETRAIN_KINDS = ("none", "nca", "dyck", "text")


class ReportError(Exception):
    """The runs cannot be reported; the message names the run and the fix, in one line."""


@dataclass(frozen=True)
class ArmRun:
    """One (arm, seed, corpus) chain of the experiment."""

    arm: str
    """The arm: "scratch" (the reference), "nca-high", "nca-mid", "dyck", "text", ..."""
    seed: int
    """The seed; the arm's run is compared with scratch's run of the same seed and corpus."""
    corpus: str
    """The target corpus (the domain), e.g. "stdlib" or "wikitext2-valid"."""
    language_run: str
    """The language-stage run folder (metrics.jsonl inside)."""
    pretrain_run: str | None
    """The pre-pre-training run folder the language run started from; None for scratch."""
    pretrain_kind: str
    """What the pre-pre-training trained on: "none", "nca", "dyck" or "text"."""
    pretrain_arm: str = ""
    """The arm that names its pre-pre-training run (a variant's `of`); empty: the arm itself."""

    @property
    def source_arm(self) -> str:
        """The arm that names the pre-pre-training run: pretrain_arm, else the arm itself."""
        return self.pretrain_arm or self.arm


@dataclass(frozen=True)
class LoggedRun:
    """A run folder's validation evaluations."""

    name: str
    """The folder's path relative to the report's folder."""
    evaluations: list
    """Its eval records, in order; the last is the run's final value."""
    curve: Curve
    """The read metric (perplexity or loss) against this stage's tokens."""

    @property
    def final(self) -> dict:
        return self.evaluations[-1]


def check_runs(runs: list) -> None:
    """ReportError unless every chain is unique, well described and has a scratch run to pair with."""
    if not runs:
        raise ReportError("no runs to report: give at least a scratch run per corpus")
    chains = Counter((run.corpus, run.arm, run.seed) for run in runs)
    for run in runs:
        where = f"{run.arm} seed {run.seed} on {run.corpus}"
        if run.pretrain_kind not in PRETRAIN_KINDS:
            raise ReportError(f"{where}: unknown pretrain_kind {run.pretrain_kind!r}: use one of "
                              f"{', '.join(PRETRAIN_KINDS)}")
        if (run.pretrain_run is None) != (run.pretrain_kind == "none"):
            raise ReportError(f"{where}: pretrain_kind {run.pretrain_kind!r} with pretrain_run {run.pretrain_run!r}: "
                              f"give a pre-pre-training run exactly when the kind is not 'none'")
        if chains[run.corpus, run.arm, run.seed] > 1:
            raise ReportError(f"{where} is given twice: give each (arm, seed, corpus) once")
        if not any(corpus == run.corpus and arm == SCRATCH for corpus, arm, _ in chains):
            raise ReportError(f"corpus {run.corpus} has no {SCRATCH} run: every arm is measured against "
                              f"{SCRATCH}, so train {SCRATCH} on {run.corpus} too")
        if (run.corpus, SCRATCH, run.seed) not in chains:
            raise ReportError(f"{where} has no {SCRATCH} run of seed {run.seed} to pair with: train it, "
                              f"or leave seed {run.seed} out")


def relative_name(run_dir: str, out_dir: str) -> str:
    return os.path.relpath(os.path.abspath(run_dir), os.path.abspath(out_dir)).replace(os.sep, "/")


def read_run(run_dir: str, metric: str, out_dir: str) -> LoggedRun:
    try:
        evaluations = read_evaluations(run_dir, metric)
    except CompareError as error:
        raise ReportError(str(error)) from None
    curve = Curve(tuple(record["tokens"] for record in evaluations), tuple(record[metric] for record in evaluations))
    return LoggedRun(relative_name(run_dir, out_dir), evaluations, curve)


def read_pretraining_runs(runs: list, out_dir: str) -> list:
    """(chain, logged run) per distinct pre-pre-training run (one may start several corpora, and
    variants of its arm), the chain named by the run's own arm, in arm then seed order."""
    read = {}
    for run in runs:
        if run.pretrain_run is not None:
            key = relative_name(run.pretrain_run, out_dir)
            if key not in read:
                read[key] = (replace(run, arm=run.source_arm, pretrain_arm=""),
                             read_run(run.pretrain_run, "loss", out_dir))
    arms = arm_order(runs)

    def order(key: str) -> tuple:
        run = read[key][0]
        return arms.index(run.arm) if run.arm in arms else len(arms), run.seed, key

    return [read[key] for key in sorted(read, key=order)]


def arm_order(runs: list) -> list:
    """Scratch first, then the other arms as the runs first name them."""
    return [SCRATCH, *dict.fromkeys(run.arm for run in runs if run.arm != SCRATCH)]


def corpus_order(runs: list) -> list:
    return list(dict.fromkeys(run.corpus for run in runs))
