"""The report's PNGs: language validation curves per corpus, pre-pre-training curves beside their
in-context unigram level, and the per-frame gaps of the NCA runs. One colour per arm in every picture."""

import itertools
import os
import re
from collections import Counter

from experiment.report.runs import SCRATCH, corpus_order
from trainer.baselines import FIRST_SCORED_FRAME
from trainer.compare import finish_figure


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
    """A legend label per (run, anything) pair: its arm and seed count on the arm's first run, None after."""
    seeds = Counter(run.arm for run, _ in chains)
    labels, labelled = [], set()
    for run, _ in chains:
        labels.append(None if run.arm in labelled else f"{run.arm} ({seeds[run.arm]} seed{'s' * (seeds[run.arm] > 1)})")
        labelled.add(run.arm)
    return labels
