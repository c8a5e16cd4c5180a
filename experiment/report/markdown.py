"""report.md from the scored results: a section per corpus with its tables and a finding in words
per arm, the arm-by-domain table, the pre-pre-training runs beside their baselines, how to read the
tables, the recipe's notes and the pictures."""

from experiment.report.runs import SCRATCH
from experiment.report.scoring import behind_on_last_frames, seeds_where
from trainer.compare import speed_up_text

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
