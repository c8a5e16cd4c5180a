"""Every number of the report, as the dict that becomes results.json: per corpus each run and arm
against scratch (paired over seeds, experiment.stats), and each pre-pre-training run beside its
baselines, overall and frame by frame."""

import json
import math
import statistics
from dataclasses import asdict

from experiment.report.runs import SCRATCH, ArmRun, LoggedRun, ReportError, arm_order, corpus_order
from experiment.stats import mean_interval, paired_percent_differences, relative_range_percent, spread
from trainer.baselines import FIRST_SCORED_FRAME
from trainer.compare import first_crossing, speed_up


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
