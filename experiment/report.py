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
"""

import itertools
import json
import math
import os
import re
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, replace

from experiment.stats import mean_interval, paired_percent_differences, relative_range_percent, spread
from generator.atomic import write_bytes_atomically
from trainer.baselines import FIRST_SCORED_FRAME
from trainer.compare import CompareError, Curve, finish_figure, first_crossing, read_evaluations, speed_up, speed_up_text

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


# --- checking and reading ------------------------------------------------------------------------

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


# --- scoring ---------------------------------------------------------------------------------------

def score_experiment(runs: list, language: dict, pretraining: list) -> dict:
    """Every number of the report: per corpus its runs and arms, then the pre-pre-training runs."""
    arms = arm_order(runs)
    return {"reference": SCRATCH, "arms": arms,
            "corpora": [score_corpus(corpus, runs, language, arms) for corpus in corpus_order(runs)],
            "pretraining": [score_pretraining_run(run, logged) for run, logged in pretraining]}


def score_corpus(corpus: str, runs: list, language: dict, arms: list) -> dict:
    chains = [run for run in runs if run.corpus == corpus]
    scratch = {run.seed: language[run] for run in chains if run.arm == SCRATCH}
    rows = sorted((score_language_run(run, language[run], scratch[run.seed]) for run in chains),
                  key=lambda row: (arms.index(row["arm"]), row["seed"]))
    by_arm = {arm: [row for row in rows if row["arm"] == arm] for arm in arms}
    return {"corpus": corpus,
            "scratch_seed_noise_percent": relative_range_percent([row["perplexity"] for row in by_arm[SCRATCH]]),
            "runs": rows,
            "arms": [score_arm(arm, arm_rows) for arm, arm_rows in by_arm.items() if arm_rows]}


def score_language_run(run: ArmRun, logged: LoggedRun, scratch: LoggedRun) -> dict:
    """The run's final values, and how it fares against scratch's run of the same seed."""
    target = scratch.curve.values[-1]
    return {"arm": run.arm, "pretrain_arm": run.source_arm if run.pretrain_run else None, "seed": run.seed,
            "run": logged.name, "evaluations": len(logged.evaluations),
            "step": logged.final["step"], "tokens": logged.final["tokens"], "perplexity": logged.final["perplexity"],
            "bits_per_byte": logged.final.get("bits_per_byte"), "target_perplexity": target,
            "vs_scratch_percent": paired_percent_differences([logged.final["perplexity"]], [target])[0],
            "tokens_to_target": first_crossing(logged.curve.tokens, logged.curve.values, target),
            "speed_up": speed_up(scratch.curve, logged.curve)}


def score_arm(arm: str, rows: list) -> dict:
    """An arm's runs over its seeds: perplexity spread, paired difference, speed-up, verdict."""
    summary = {"arm": arm, "pretrain_arm": rows[0]["pretrain_arm"], "seeds": [row["seed"] for row in rows],
               "perplexity": asdict(spread([row["perplexity"] for row in rows]))}
    if arm == SCRATCH:
        return {**summary, "vs_scratch_percent": None, "speed_up": None, "verdict": "reference"}
    difference = mean_interval([row["vs_scratch_percent"] for row in rows])
    reached = [row["speed_up"] for row in rows if row["speed_up"] is not None]
    if difference.low is None:
        verdict = "one seed: cannot tell"
    elif difference.contains(0):
        verdict = "within seed noise"
    else:
        verdict = "better than scratch" if difference.high < 0 else "worse than scratch"
    return {**summary, "vs_scratch_percent": asdict(difference), "verdict": verdict,
            "speed_up": {"mean": statistics.fmean(reached) if reached else None, "reached": len(reached),
                         "never_reached": len(rows) - len(reached)}}


def score_pretraining_run(run: ArmRun, logged: LoggedRun) -> dict:
    """Final loss beside the last evaluation's baselines; learned the dynamics when below in-context.
    NCA runs also compare the model with the in-context unigram frame by frame."""
    baselines = logged.final.get("baselines")
    in_context = baselines["in_context_unigram"]["loss"] if baselines else None
    gaps = frame_gaps(logged)
    quarter = None if gaps is None else max(1, len(gaps) // 4)
    return {"arm": run.arm, "seed": run.seed, "kind": run.pretrain_kind, "run": logged.name,
            "step": logged.final["step"], "tokens": logged.final["tokens"], "loss": logged.final["loss"],
            "in_context_unigram_loss": in_context, "unigram_loss": baselines["unigram"]["loss"] if baselines else None,
            "learned_dynamics": None if in_context is None else logged.final["loss"] < in_context,
            "frame_gaps": gaps,
            "frames_ahead": None if gaps is None else [FIRST_SCORED_FRAME + index for index, gap in enumerate(gaps)
                                                       if gap < 0],
            "first_quarter_gap": None if gaps is None else statistics.fmean(gaps[:quarter]),
            "last_quarter_gap": None if gaps is None else statistics.fmean(gaps[-quarter:])}


def frame_gaps(logged: LoggedRun) -> list | None:
    """Per scored frame of the last evaluation, the model's validation loss minus the in-context
    unigram's on that frame (negative: the model is ahead); None without per-frame figures (Dyck
    and text rows, or logs without per-frame baselines)."""
    model = logged.final.get("per_frame")
    counting = ((logged.final.get("baselines") or {}).get("in_context_unigram") or {}).get("per_frame")
    if not model or not counting:
        return None
    if len(model) != len(counting):
        raise ReportError(f"{logged.name}: the last evaluation has {len(model)} per-frame losses but its in-context "
                          f"unigram has {len(counting)}: give the metrics.jsonl the trainer wrote, unedited")
    return [loss - baseline for loss, baseline in zip(model, counting)]


def behind_on_last_frames(row: dict) -> bool:
    """Below the in-context unigram overall, but behind it on the last quarter of the frames: where
    the context shows the most of the trajectory, counting its tokens predicts better than the model."""
    return bool(row["learned_dynamics"]) and row["last_quarter_gap"] is not None and row["last_quarter_gap"] > 0


def seeds_where(pretraining: list, arm: dict, holds) -> list:
    """The seeds (as text) of the arm's pre-pre-training rows for which `holds(row)` is true."""
    return [str(row["seed"]) for row in pretraining
            if row["arm"] == arm["pretrain_arm"] and row["seed"] in arm["seeds"] and holds(row)]


def canonical_json(results: dict) -> bytes:
    return (json.dumps(json_ready(results), sort_keys=True, indent=1, allow_nan=False) + "\n").encode()


def json_ready(value):
    """Non-finite floats as text ("inf": a speed-up read at 0 tokens): strict JSON has no infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_ready(item) for item in value]
    return value


# --- Markdown --------------------------------------------------------------------------------------

HOW_TO_READ = (
    "- Final perplexity: exp(mean cross-entropy) on the corpus's held-out split at each run's last evaluation; the "
    "mean over seeds, then (minimum-maximum, sample standard deviation).",
    "- vs scratch: per seed s, d_s = 100 (ppl_arm,s / ppl_scratch,s - 1) against scratch's run of the same seed; "
    "the mean of d_s and its 95% interval, Student's t with n - 1 degrees of freedom. Negative is better.",
    "- Verdict: \"within seed noise\" when the interval contains 0; \"better\" or \"worse than scratch\" only when "
    "it excludes 0.",
    "- Speed-up (SPEC section 6): language tokens scratch needed to first reach its own final perplexity over the "
    "tokens the arm's run of the same seed needed to reach it, read by linear interpolation between evaluations; "
    "pre-pre-training tokens are not counted. The arm's figure is the mean over the seeds that reached it.",
)
"""The definitions under the tables, one Markdown bullet each."""


def render_report(title: str, command: str, wall_seconds: float | None, results: dict, notes: list,
                  figures: list) -> str:
    lines = [f"# {title}", "", "```", command, "```", ""]
    if wall_seconds is not None:
        lines += [f"Wall time: {wall_seconds / 60:.1f} min", ""]
    for corpus in results["corpora"]:
        lines += corpus_section(corpus, results["pretraining"])
    if len(results["corpora"]) > 1:
        lines += domain_section(results["corpora"], results["arms"])
    if results["pretraining"]:
        lines += pretraining_section(results["pretraining"])
    lines += ["## How to read the tables", "", *HOW_TO_READ, ""]
    if notes:
        lines += ["## Notes", ""] + [line for note in notes for line in (note, "")]
    lines += ["## Figures", ""] + [line for name, caption in figures for line in (f"![{caption}]({name})", "")]
    return "\n".join(lines).rstrip() + "\n"


def table(header: list, rows: list) -> list:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def corpus_section(corpus: dict, pretraining: list) -> list:
    arms = corpus["arms"]
    lines = [f"## {corpus['corpus']}", "", seed_noise_sentence(corpus, arms[0]), ""]
    lines += table(["arm", "seeds", "final ppl mean (spread)", "vs scratch % [95% CI]", "speed-up", "verdict"],
                   [[arm["arm"], str(len(arm["seeds"])), perplexity_cell(arm["perplexity"]),
                     difference_cell(arm["vs_scratch_percent"]), speed_up_cell(arm["speed_up"]), arm["verdict"]]
                    for arm in arms])
    lines += [f"- {finding(arm, pretraining)}" for arm in arms if arm["arm"] != SCRATCH] + [""]
    final_tokens = sorted({row["tokens"] for row in corpus["runs"]})
    if len(final_tokens) > 1:
        lines += [f"The runs end at different token counts ({final_tokens[0]:,} to {final_tokens[-1]:,}): their final "
                  f"perplexities are not at equal budgets.", ""]
    lines += ["Per run, each against scratch's run of the same seed:", ""]
    return lines + table(["arm", "seed", "run", "tokens", "final ppl", "bits/byte", "vs scratch %", "speed-up"],
                         [run_row(row) for row in corpus["runs"]])


def seed_noise_sentence(corpus: dict, scratch: dict) -> str:
    if corpus["scratch_seed_noise_percent"] is None:
        return ("Scratch has one seed here: its seed noise is unknown, so no difference below can be told apart "
                "from it.")
    perplexity = scratch["perplexity"]
    return (f"Seed noise of scratch itself: its {len(scratch['seeds'])} seeds' final perplexities span "
            f"{corpus['scratch_seed_noise_percent']:.1f}% of their mean ({perplexity['minimum']:.2f} to "
            f"{perplexity['maximum']:.2f}).")


def perplexity_cell(perplexity: dict) -> str:
    if perplexity["std"] is None:
        return f"{perplexity['mean']:.2f} (one seed)"
    return (f"{perplexity['mean']:.2f} ({perplexity['minimum']:.2f}-{perplexity['maximum']:.2f}, "
            f"sd {perplexity['std']:.2f})")


def difference_cell(difference: dict | None) -> str:
    if difference is None:
        return "reference"
    if difference["low"] is None:
        return f"{difference['mean']:+.1f}% [n/a (one seed)]"
    return f"{difference['mean']:+.1f}% [{difference['low']:+.1f}%, {difference['high']:+.1f}%]"


def speed_up_cell(speed: dict | None) -> str:
    if speed is None:
        return "reference"
    seeds = speed["reached"] + speed["never_reached"]
    if not speed["reached"]:
        return f"never reached ({seeds} of {seeds})"
    never = f" ({speed['never_reached']} of {seeds} never reached)" if speed["never_reached"] else ""
    return speed_up_text(speed["mean"]) + never


def finding(arm: dict, pretraining: list) -> str:
    """The arm's comparison in one plain sentence, and a warning when its model learned no dynamics."""
    difference = arm["vs_scratch_percent"]
    said = f"**{arm['arm']}** is {difference['mean']:+.1f}% against scratch"
    if difference["low"] is None:
        text = f"{said} on one seed: one seed cannot tell an effect from seed noise."
    else:
        interval = f"[{difference['low']:+.1f}%, {difference['high']:+.1f}%]"
        text = (f"{said}, within seed noise: its 95% interval {interval} contains 0."
                if arm["verdict"] == "within seed noise" else
                f"{said}, {arm['verdict']}: its 95% interval {interval} excludes 0.")
    unlearned = seeds_where(pretraining, arm, lambda row: row["learned_dynamics"] is False)
    if unlearned:
        text += (f" Its pre-pre-training never learned the dynamics (seed {', '.join(unlearned)}): no transfer was to "
                 f"be expected there.")
    behind = seeds_where(pretraining, arm, behind_on_last_frames)
    if behind:
        text += (f" Its pre-pre-training model is behind the in-context unigram on the last frames (seed "
                 f"{', '.join(behind)}; see the pre-pre-training section).")
    return text


def run_row(row: dict) -> list:
    is_scratch = row["arm"] == SCRATCH
    return [row["arm"], str(row["seed"]), f"`{row['run']}`", f"{row['tokens']:,}", f"{row['perplexity']:.2f}",
            "-" if row["bits_per_byte"] is None else f"{row['bits_per_byte']:.4f}",
            "reference" if is_scratch else f"{row['vs_scratch_percent']:+.1f}%",
            "reference" if is_scratch else speed_up_text(row["speed_up"])]


def domain_section(corpora: list, arms: list) -> list:
    """Rows arms, columns corpora: does an arm's effect depend on the domain?"""
    def cell(corpus: dict, name: str) -> str:
        arm = next((arm for arm in corpus["arms"] if arm["arm"] == name), None)
        if arm is None:
            return "-"
        difference = arm["vs_scratch_percent"]
        return f"{arm['perplexity']['mean']:.2f}" + ("" if difference is None else f" ({difference['mean']:+.1f}%)")

    return ["## By domain", "", "Final perplexity, mean over seeds (mean paired difference from scratch):", "",
            *table(["arm", *(corpus["corpus"] for corpus in corpora)],
                   [[name, *(cell(corpus, name) for corpus in corpora)] for name in arms])]


def pretraining_section(rows: list) -> list:
    lines = ["## Pre-pre-training", "",
             "Final validation loss (nats per token) beside the last evaluation's two baselines: the unigram (token "
             "frequencies) and the in-context unigram (copying tokens already in the sequence). Below the in-context "
             "unigram, the model predicts the data better than copying does: it learned the dynamics. For NCA rows, "
             "the same comparison frame by frame at the last evaluation (frame 1 is context only): on how many "
             "frames the model is ahead, and its loss minus the in-context unigram's, averaged over the first and "
             "over the last quarter of the frames (negative: ahead). A model that infers the rule in context should "
             "do best on the last frames, where the most of the trajectory is in view.", ""]
    lines += table(["arm", "seed", "run", "tokens", "final loss", "in-context unigram", "unigram", "learned dynamics",
                    "frames ahead", "vs in-context: first -> last quarter"],
                   [[row["arm"], str(row["seed"]), f"`{row['run']}`", f"{row['tokens']:,}", f"{row['loss']:.3f}",
                     loss_text(row["in_context_unigram_loss"]), loss_text(row["unigram_loss"]),
                     {True: "yes", False: "no", None: "n/a (no baselines)"}[row["learned_dynamics"]],
                     *frame_cells(row)] for row in rows])
    unlearned = [row for row in rows if row["learned_dynamics"] is False]
    for arm in dict.fromkeys(row["arm"] for row in unlearned):
        seeds = ", ".join(str(row["seed"]) for row in unlearned if row["arm"] == arm)
        lines += [f"**{arm}** (seed {seeds}) never went below the in-context unigram: that model did not learn the "
                  f"dynamics, so it cannot be expected to transfer anything; its language runs test an "
                  f"initialisation, not what the data teaches.", ""]
    behind = [row for row in rows if behind_on_last_frames(row)]
    for arm in dict.fromkeys(row["arm"] for row in behind):
        seeds = ", ".join(str(row["seed"]) for row in behind if row["arm"] == arm)
        lines += [f"**{arm}** (seed {seeds}) went below the in-context unigram overall, but not on the last quarter "
                  f"of the frames: its lead is on the early frames, and where the context shows the most of the "
                  f"trajectory, counting the tokens already in the sequence predicts better than the model does. "
                  f"That is not what a model that infers the rule in context would do.", ""]
    return lines


def frame_cells(row: dict) -> list:
    """The per-frame columns of a pre-pre-training row: frames ahead, first -> last quarter gap."""
    if row["frame_gaps"] is None:
        return ["-", "-"]
    return [f"{len(row['frames_ahead'])} of {len(row['frame_gaps'])}",
            f"{row['first_quarter_gap']:+.3f} -> {row['last_quarter_gap']:+.3f}"]


def loss_text(loss: float | None) -> str:
    return "-" if loss is None else f"{loss:.3f}"


# --- pictures --------------------------------------------------------------------------------------

def draw_figures(out_dir: str, runs: list, language: dict, pretraining: list, results: dict) -> list:
    """Draw the PNGs from the runs and their scores; return (file name, caption) per picture.
    One colour per arm in every picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = results["arms"]
    named = [*arms, *dict.fromkeys(run.arm for run, _ in pretraining if run.arm not in arms)]  # a variant's `of`
    colours = dict(zip(named, itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])))
    corpora = corpus_order(runs)
    figures = []
    for corpus in corpora:
        name = "curves.png" if len(corpora) == 1 else f"curves-{re.sub(r'[^A-Za-z0-9._-]+', '-', corpus)}.png"
        chains = sorted((run for run in runs if run.corpus == corpus), key=lambda run: (arms.index(run.arm), run.seed))
        draw_language_curves(plt, corpus, [(run, language[run]) for run in chains], colours,
                             os.path.join(out_dir, name))
        figures.append((name, f"validation perplexity on {corpus} against language tokens"))
    if pretraining:
        draw_pretraining_curves(plt, pretraining, colours, os.path.join(out_dir, "pretrain.png"))
        figures.append(("pretrain.png", "pre-pre-training validation loss against tokens"))
    framed = [(run, scored["frame_gaps"]) for (run, _), scored in zip(pretraining, results["pretraining"])
              if scored["frame_gaps"] is not None]
    if framed:
        draw_frame_gaps(plt, framed, colours, os.path.join(out_dir, "pretrain-frames.png"))
        figures.append(("pretrain-frames.png", "pre-pre-training: loss per frame minus the in-context unigram's, "
                                               "at the last evaluation"))
    return figures


def draw_language_curves(plt, corpus: str, chains: list, colours: dict, out: str) -> None:
    """Each seed a line in its arm's colour, scratch's final perplexity of each seed dashed."""
    figure, axis = plt.subplots(figsize=(8, 5))
    for (run, logged), label in zip(chains, arm_labels(chains)):
        axis.plot(logged.curve.tokens, logged.curve.values, "o-", markersize=2, linewidth=1, color=colours[run.arm],
                  label=label)
    for index, (_, logged) in enumerate(chain for chain in chains if chain[0].arm == SCRATCH):
        axis.axhline(logged.curve.values[-1], color=colours[SCRATCH], linestyle="--", linewidth=1,
                     label=None if index else "scratch's final perplexity (per seed)")
    axis.set_yscale("log")
    axis.set(xlabel="language-stage training tokens", ylabel="validation perplexity",
             title=f"{corpus}: validation perplexity against language tokens")
    finish_figure(plt, figure, axis, out)


def draw_pretraining_curves(plt, pretraining: list, colours: dict, out: str) -> None:
    """Validation loss of each pre-pre-training run, its in-context unigram level dashed."""
    figure, axis = plt.subplots(figsize=(8, 5))
    for (run, logged), label in zip(pretraining, arm_labels(pretraining)):
        colour = colours[run.arm]
        axis.plot(logged.curve.tokens, logged.curve.values, "o-", markersize=2, linewidth=1, color=colour, label=label)
        baselines = logged.final.get("baselines")
        if baselines:
            axis.axhline(baselines["in_context_unigram"]["loss"], color=colour, linestyle="--", linewidth=1,
                         label=label and f"{run.arm}: in-context unigram")
    axis.set(xlabel="pre-pre-training tokens", ylabel="validation loss (nats / token)",
             title="pre-pre-training: validation loss against its in-context unigram level")
    finish_figure(plt, figure, axis, out)


def draw_frame_gaps(plt, framed: list, colours: dict, out: str) -> None:
    """Per NCA run (run, its frame gaps), the last evaluation's loss per frame minus the in-context
    unigram's: below 0 the model is ahead of counting tokens on that frame."""
    figure, axis = plt.subplots(figsize=(8, 5))
    for (run, gaps), label in zip(framed, arm_labels(framed)):
        axis.plot(range(FIRST_SCORED_FRAME, FIRST_SCORED_FRAME + len(gaps)), gaps, "o-", markersize=2, linewidth=1,
                  color=colours[run.arm], label=label)
    axis.axhline(0, color="black", linestyle="--", linewidth=1, label="in-context unigram")
    axis.set(xlabel="frame (1 = context only)", ylabel="loss minus in-context unigram (nats / token)",
             title="pre-pre-training: where in the sequence the model beats counting tokens")
    finish_figure(plt, figure, axis, out)


def arm_labels(chains: list) -> list:
    """A legend label per (run, logged run): its arm and seed count on the arm's first run, None after."""
    seeds = Counter(run.arm for run, _ in chains)
    labels, labelled = [], set()
    for run, _ in chains:
        labels.append(None if run.arm in labelled else f"{run.arm} ({seeds[run.arm]} seed{'s' * (seeds[run.arm] > 1)})")
        labelled.add(run.arm)
    return labels
