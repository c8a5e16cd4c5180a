"""The report of `make experiment` (experiment.report, experiment.stats) on run folders whose
metrics.jsonl the test writes by hand.

The numbers are chosen so every expected value can be worked out on paper: scratch ends at 10, 11
and 12 on seeds 0, 1, 2; nca-high at -10%, -12% and -8% of that (mean -10, sample sd 2), dyck at
+2%, -4%, +5% (mean +1, sd sqrt(21)), text at +5%, +6%, +7% (mean +6, sd 1). With 3 seeds the 95%
interval is mean +- 4.303 sd / sqrt(3). Every language curve is evaluated at 0, 100, 200, 300 and
400 tokens, and scratch reaches its own final value only at 400.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from experiment.report import ArmRun, ReportError, write_report
from experiment.stats import mean_interval, t_quantile_975

TOKENS = (0, 100, 200, 300, 400)
LANGUAGE_CURVES = {
    ("scratch", 0): (100, 40, 20, 15, 10), ("scratch", 1): (100, 40, 20, 15, 11), ("scratch", 2): (100, 40, 20, 15, 12),
    # reaches 10 at 250 (between 12 and 8), 11 at 200, 12 at 300: speed-ups 1.6, 2 and 4/3
    ("nca-high", 0): (100, 30, 12, 8, 9.0), ("nca-high", 1): (100, 40, 11, 10, 9.68),
    ("nca-high", 2): (100, 40, 20, 12, 11.04),
    # only seed 1 reaches its scratch's final (11, at 300): 4/3; seeds 0 and 2 end above it
    ("dyck", 0): (100, 40, 20, 15, 10.2), ("dyck", 1): (100, 40, 20, 11, 10.56), ("dyck", 2): (100, 40, 20, 15, 12.6),
    ("text", 0): (100, 50, 30, 20, 10.5), ("text", 1): (100, 50, 30, 20, 11.66), ("text", 2): (100, 50, 30, 20, 12.84),
}
WIKI_CURVES = {"scratch": (100, 50, 30, 25, 20), "nca-high": (100, 45, 25, 19, 18)}  # 20 reached at 283.33: 1.41x
IN_CONTEXT, UNIGRAM = 5.0, 6.0
PRETRAIN_FINAL_LOSS = {("nca-high", 0): 4.5, ("nca-high", 1): 4.8, ("nca-high", 2): 4.9,
                       ("dyck", 0): 5.5, ("dyck", 1): 4.0, ("dyck", 2): 4.0}  # dyck seed 0 stays above in-context
IN_CONTEXT_PER_FRAME = (5.4, 5.3, 5.2, 5.1, 5.0, 4.9, 4.8, 4.7)  # frames 2 to 9; a quarter is 2 frames
PRETRAIN_PER_FRAME = {
    # gaps -1.0 -0.8 -0.4 -0.2 -0.1 0 +0.1 +0.2: ahead on frames 2-6; quarters -0.9 and +0.15, behind at the end
    ("nca-high", 0): (4.4, 4.5, 4.8, 4.9, 4.9, 4.9, 4.9, 4.9),
    # gaps -0.1 -0.2 -0.3 -0.3 -0.4 -0.5 -0.6 -0.7: ahead on every frame; quarters -0.15 and -0.65
    ("nca-high", 1): (5.3, 5.1, 4.9, 4.8, 4.6, 4.4, 4.2, 4.0),
    # gaps -0.4 +0.1 +0.1 -0.1 +0.1 +0.1 +0.1 -0.3: ahead on frames 2, 5 and 9; quarters -0.15 and -0.1
    ("nca-high", 2): (5.0, 5.4, 5.3, 5.0, 5.1, 5.0, 4.9, 4.4)}
KINDS = {"scratch": "none", "nca-high": "nca", "dyck": "dyck", "text": "text"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_metrics(folder: Path, records: list) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"kind": "start", "step": 0}, {"kind": "train", "step": 1, "loss": 9.0, "tokens": 50}, *records]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(folder)


def language_run(folder: Path, perplexities: tuple) -> str:
    return write_metrics(folder, [{"kind": "eval", "step": step, "tokens": tokens, "loss": math.log(perplexity),
                                   "perplexity": perplexity, "bits_per_byte": math.log2(perplexity) / 4}
                                  for step, (tokens, perplexity) in enumerate(zip(TOKENS, perplexities))])


def pretraining_run(folder: Path, final_loss: float | None, per_frame: tuple | None = None) -> str:
    """An NCA run (per_frame given: with frames), a Dyck run (final_loss given: with baselines) or a
    text run (None: no baselines)."""
    baselines = {"in_context_unigram": {"loss": IN_CONTEXT, "alpha": 2.0}, "unigram": {"loss": UNIGRAM}}
    frames = {}
    if per_frame:
        baselines["in_context_unigram"]["per_frame"] = list(IN_CONTEXT_PER_FRAME)
        frames = {"per_frame": list(per_frame)}
    losses = (9.0, 7.0, final_loss if final_loss is not None else 3.0)
    return write_metrics(folder, [{"kind": "eval", "step": step, "tokens": 1000 * step, "loss": loss,
                                   "perplexity": math.exp(loss), **frames,
                                   **({"baselines": baselines} if final_loss else {})}
                                  for step, loss in enumerate(losses)])


def make_runs(root: Path, with_wiki: bool = True) -> list:
    """stdlib: four arms x three seeds; wikitext (optional): scratch and nca-high on seed 0, whose
    pre-pre-training run is the one nca-high seed 0 shares with stdlib."""
    pretraining = {}
    for arm, seed in LANGUAGE_CURVES:
        if arm != "scratch":
            pretraining[arm, seed] = pretraining_run(root / f"{arm}-{seed}-pre", PRETRAIN_FINAL_LOSS.get((arm, seed)),
                                                     PRETRAIN_PER_FRAME.get((arm, seed)))
    runs = [ArmRun(arm, seed, "stdlib", language_run(root / f"{arm}-{seed}-stdlib", curve),
                   pretraining.get((arm, seed)), KINDS[arm]) for (arm, seed), curve in LANGUAGE_CURVES.items()]
    if with_wiki:
        runs += [ArmRun(arm, 0, "wikitext", language_run(root / f"{arm}-0-wikitext", curve),
                        pretraining.get((arm, 0)), KINDS[arm]) for arm, curve in WIKI_CURVES.items()]
    return runs


def report(runs: list, out: Path, wall_seconds: float | None = 2478.0) -> str:
    return write_report(str(out), "Synthetic experiment", runs, ["Three seeds cannot show a 1% effect."],
                        "make experiment RECIPE=synthetic", wall_seconds)


@dataclass(frozen=True)
class Experiment:
    """A report written by the test, with what it was made from."""

    runs: list
    out: Path
    markdown: str
    results: dict
    """results.json, read back."""


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Experiment:
    """The report of both corpora, written once for the tests that only read it."""
    root = tmp_path_factory.mktemp("experiment")
    runs = make_runs(root / "runs")
    markdown = report(runs, root / "report")
    return Experiment(runs, root / "report", markdown, json.loads((root / "report" / "results.json").read_text()))


def arm_of(results: dict, corpus: str, arm: str) -> dict:
    return next(row for row in corpus_of(results, corpus)["arms"] if row["arm"] == arm)


def corpus_of(results: dict, corpus: str) -> dict:
    return next(row for row in results["corpora"] if row["corpus"] == corpus)


def speed_ups(results: dict, corpus: str, arm: str) -> list:
    return [row["speed_up"] for row in corpus_of(results, corpus)["runs"] if row["arm"] == arm]


# --- statistics ------------------------------------------------------------------------------------

def test_t_quantile_comes_from_the_table_and_is_the_normal_past_30_degrees_of_freedom():
    assert t_quantile_975(1) == 12.706
    assert t_quantile_975(2) == 4.303
    assert t_quantile_975(30) == 2.042
    assert t_quantile_975(31) == 1.96
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_a_single_value_has_a_mean_but_no_interval():
    interval = mean_interval([-3.0])
    assert (interval.mean, interval.low, interval.high, interval.t) == (-3.0, None, None, None)
    assert not interval.contains(-3.0)


# --- the numbers -------------------------------------------------------------------------------------

def test_paired_difference_and_its_interval_use_students_t_with_n_minus_1_degrees_of_freedom(experiment):
    results = experiment.results
    nca = arm_of(results, "stdlib", "nca-high")["vs_scratch_percent"]
    assert [row["vs_scratch_percent"] for row in corpus_of(results, "stdlib")["runs"] if row["arm"] == "nca-high"] \
        == pytest.approx([-10, -12, -8])
    assert (nca["degrees_of_freedom"], nca["t"]) == (2, 4.303)
    assert nca["mean"] == pytest.approx(-10)
    assert (nca["low"], nca["high"]) == pytest.approx((-10 - 4.303 * 2 / math.sqrt(3), -10 + 4.303 * 2 / math.sqrt(3)))
    dyck = arm_of(results, "stdlib", "dyck")["vs_scratch_percent"]
    half_width = 4.303 * math.sqrt(21) / math.sqrt(3)
    assert (dyck["mean"], dyck["low"], dyck["high"]) == pytest.approx((1, 1 - half_width, 1 + half_width))


def test_final_perplexity_spread_and_the_seed_noise_of_scratch(experiment):
    markdown, results = experiment.markdown, experiment.results
    assert arm_of(results, "stdlib", "scratch")["perplexity"] == pytest.approx(
        {"mean": 11, "minimum": 10, "maximum": 12, "std": 1})
    assert corpus_of(results, "stdlib")["scratch_seed_noise_percent"] == pytest.approx(100 * 2 / 11)
    assert corpus_of(results, "wikitext")["scratch_seed_noise_percent"] is None
    assert "| scratch | 3 | 11.00 (10.00-12.00, sd 1.00) | reference | reference | reference |" in markdown
    assert "span 18.2% of their mean (10.00 to 12.00)" in markdown


def test_speed_up_per_seed_and_the_mean_of_the_seeds_that_reached(experiment):
    markdown, results = experiment.markdown, experiment.results
    assert speed_ups(results, "stdlib", "nca-high") == pytest.approx([1.6, 2.0, 4 / 3])
    assert speed_ups(results, "stdlib", "dyck") == [None, pytest.approx(4 / 3), None]
    assert speed_ups(results, "wikitext", "nca-high") == pytest.approx([400 / (200 + 500 / 6)])
    assert arm_of(results, "stdlib", "nca-high")["speed_up"] == pytest.approx(
        {"mean": (1.6 + 2 + 4 / 3) / 3, "reached": 3, "never_reached": 0})
    assert arm_of(results, "stdlib", "dyck")["speed_up"] == pytest.approx(
        {"mean": 4 / 3, "reached": 1, "never_reached": 2})
    assert arm_of(results, "stdlib", "text")["speed_up"] == {"mean": None, "reached": 0, "never_reached": 3}
    assert "| 1.64x | better than scratch |" in markdown
    assert "| 1.33x (2 of 3 never reached) | within seed noise |" in markdown
    assert "| never reached (3 of 3) | worse than scratch |" in markdown
    assert "| dyck | 0 | `../runs/dyck-0-stdlib` | 400 | 10.20 | 0.8376 | +2.0% | never reached |" in markdown


def test_verdicts_follow_the_interval_and_say_plainly_what_is_within_seed_noise(experiment):
    markdown, results = experiment.markdown, experiment.results
    verdicts = {arm["arm"]: arm["verdict"] for arm in corpus_of(results, "stdlib")["arms"]}
    assert verdicts == {"scratch": "reference", "nca-high": "better than scratch", "dyck": "within seed noise",
                        "text": "worse than scratch"}
    assert arm_of(results, "wikitext", "nca-high")["verdict"] == "one seed: cannot tell"
    assert "**dyck** is +1.0% against scratch, within seed noise: its 95% interval [-10.4%, +12.4%] contains 0." \
        in markdown
    assert "| nca-high | 3 | 9.91 (9.00-11.04, sd 1.04) | -10.0% [-15.0%, -5.0%] |" in markdown
    assert "| -10.0% [n/a (one seed)] |" in markdown
    assert "Scratch has one seed here" in markdown


def test_learned_dynamics_compares_the_final_loss_with_the_in_context_unigram(experiment):
    markdown, results = experiment.markdown, experiment.results
    learned = {(row["arm"], row["seed"]): row["learned_dynamics"] for row in results["pretraining"]}
    assert learned == {("nca-high", 0): True, ("nca-high", 1): True, ("nca-high", 2): True,
                       ("dyck", 0): False, ("dyck", 1): True, ("dyck", 2): True,
                       ("text", 0): None, ("text", 1): None, ("text", 2): None}  # nca-high 0 once, for two corpora
    dyck = next(row for row in results["pretraining"] if (row["arm"], row["seed"]) == ("dyck", 0))
    assert (dyck["loss"], dyck["in_context_unigram_loss"], dyck["unigram_loss"]) == (5.5, IN_CONTEXT, UNIGRAM)
    assert "| dyck | 0 | `../runs/dyck-0-pre` | 2,000 | 5.500 | 5.000 | 6.000 | no |" in markdown
    assert "**dyck** (seed 0) never went below the in-context unigram" in markdown
    assert "Its pre-pre-training never learned the dynamics (seed 0)" in markdown
    assert not re.search(r"\*\*nca-high\*\* \(seed [0-9, ]+\) never went below", markdown)


def test_nca_runs_are_compared_with_the_in_context_unigram_frame_by_frame(experiment):
    markdown, results = experiment.markdown, experiment.results
    rows = {(row["arm"], row["seed"]): row for row in results["pretraining"]}
    assert [rows["nca-high", seed]["frames_ahead"] for seed in (0, 1, 2)] == [[2, 3, 4, 5, 6], list(range(2, 10)),
                                                                              [2, 5, 9]]
    assert rows["nca-high", 0]["frame_gaps"] == pytest.approx([-1.0, -0.8, -0.4, -0.2, -0.1, 0, 0.1, 0.2], abs=1e-12)
    assert [rows["nca-high", seed]["first_quarter_gap"] for seed in (0, 1, 2)] == pytest.approx([-0.9, -0.15, -0.15])
    assert [rows["nca-high", seed]["last_quarter_gap"] for seed in (0, 1, 2)] == pytest.approx([0.15, -0.65, -0.1])
    for row in (rows["dyck", 0], rows["text", 0]):  # no frames
        assert row["frame_gaps"] is row["frames_ahead"] is row["first_quarter_gap"] is row["last_quarter_gap"] is None
    assert "| nca-high | 0 | `../runs/nca-high-0-pre` | 2,000 | 4.500 | 5.000 | 6.000 | yes | 5 of 8 | -0.900 -> " \
           "+0.150 |" in markdown
    assert "| yes | 8 of 8 | -0.150 -> -0.650 |" in markdown and "| yes | 3 of 8 | -0.150 -> -0.100 |" in markdown
    assert "| dyck | 0 | `../runs/dyck-0-pre` | 2,000 | 5.500 | 5.000 | 6.000 | no | - | - |" in markdown
    # only seed 0 is behind on its last quarter
    assert "**nca-high** (seed 0) went below the in-context unigram overall, but not on the last quarter of the " \
           "frames" in markdown
    assert "Its pre-pre-training model is behind the in-context unigram on the last frames (seed 0;" in markdown


def test_frames_are_left_out_without_per_frame_baselines_and_refused_when_they_do_not_match(tmp_path):
    scratch = language_run(tmp_path / "scratch", LANGUAGE_CURVES["scratch", 0])
    pretrain = pretraining_run(tmp_path / "pre", 4.5, PRETRAIN_PER_FRAME["nca-high", 0])
    runs = [ArmRun("scratch", 0, "stdlib", scratch, None, "none"),
            ArmRun("nca-high", 0, "stdlib", language_run(tmp_path / "nca", LANGUAGE_CURVES["nca-high", 0]), pretrain,
                   "nca")]
    records = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    for baselines_per_frame, expected in ((None, None), (list(IN_CONTEXT_PER_FRAME[:-1]), ReportError)):
        for record in records:
            if record["kind"] == "eval":
                record["baselines"]["in_context_unigram"].pop("per_frame", None)
                if baselines_per_frame:
                    record["baselines"]["in_context_unigram"]["per_frame"] = baselines_per_frame
        (tmp_path / "pre" / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
        if expected is ReportError:
            with pytest.raises(ReportError, match="has 8 per-frame losses but its in-context unigram has 7"):
                report(runs, tmp_path / "report")
        else:
            markdown = report(runs, tmp_path / "report")
            [row] = json.loads((tmp_path / "report" / "results.json").read_text())["pretraining"]
            assert row["learned_dynamics"] is True and row["frame_gaps"] is None and row["last_quarter_gap"] is None
            assert "| yes | - | - |" in markdown and not (tmp_path / "report" / "pretrain-frames.png").exists()


def test_a_run_already_below_the_target_at_0_tokens_has_an_infinite_speed_up_written_as_text(tmp_path):
    runs = [ArmRun("scratch", 0, "stdlib", language_run(tmp_path / "scratch", LANGUAGE_CURVES["scratch", 0]), None,
                   "none"),
            ArmRun("warm", 0, "stdlib", language_run(tmp_path / "warm", (9, 9, 9, 9, 9)), None, "none")]
    markdown = report(runs, tmp_path / "report")
    assert json.loads((tmp_path / "report" / "results.json").read_text())["corpora"][0]["runs"][1]["speed_up"] == "inf"
    assert "| warm | 1 | 9.00 (one seed) | -10.0% [n/a (one seed)] | inf | one seed: cannot tell |" in markdown


# --- the files -----------------------------------------------------------------------------------------

def test_the_domain_table_appears_only_with_several_corpora(experiment, tmp_path):
    markdown, out = experiment.markdown, experiment.out
    assert "## By domain" in markdown
    assert "| nca-high | 9.91 (-10.0%) | 18.00 (-10.0%) |" in markdown
    assert "| dyck | 11.12 (+1.0%) | - |" in markdown
    assert sorted(path.name for path in out.glob("*.png")) == ["curves-stdlib.png", "curves-wikitext.png",
                                                               "pretrain-frames.png", "pretrain.png"]
    single = report(make_runs(tmp_path / "runs", with_wiki=False), tmp_path / "report")
    assert "## By domain" not in single
    assert sorted(path.name for path in (tmp_path / "report").glob("*.png")) == ["curves.png", "pretrain-frames.png",
                                                                                 "pretrain.png"]


def test_pictures_are_png_files(experiment):
    out = experiment.out
    for name in ("curves-stdlib.png", "curves-wikitext.png", "pretrain.png", "pretrain-frames.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert [path.name for path in out.iterdir() if path.name.startswith(".")] == []  # no temporaries left


def test_no_pretraining_picture_without_pretraining_runs(tmp_path):
    runs = [run for run in make_runs(tmp_path / "runs", with_wiki=False) if run.arm == "scratch"]
    markdown = report(runs, tmp_path / "report")
    assert sorted(path.name for path in (tmp_path / "report").glob("*.png")) == ["curves.png"]
    assert "## Pre-pre-training" not in markdown


def test_the_same_logs_give_the_same_bytes_in_another_folder(experiment):
    out = experiment.out
    second = report(experiment.runs, out.parent / "second", wall_seconds=None)
    assert (out / "results.json").read_bytes() == (out.parent / "second" / "results.json").read_bytes()
    assert str(out.parent) not in (out / "results.json").read_text()
    assert experiment.markdown.startswith(
        "# Synthetic experiment\n\n```\nmake experiment RECIPE=synthetic\n```\n\nWall time:")
    assert "Wall time:" not in second
    assert experiment.markdown.replace("Wall time: 41.3 min\n\n", "") == second
    assert (out.parent / "second" / "report.md").read_text() == second


# --- refusals --------------------------------------------------------------------------------------------

def test_a_corpus_without_scratch_is_refused_in_one_line(tmp_path):
    runs = [run for run in make_runs(tmp_path / "runs") if (run.corpus, run.arm) != ("wikitext", "scratch")]
    with pytest.raises(ReportError, match="^corpus wikitext has no scratch run: .*train scratch on wikitext too$"):
        report(runs, tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_a_seed_scratch_lacks_is_refused(tmp_path):
    runs = [run for run in make_runs(tmp_path / "runs") if (run.arm, run.seed) != ("scratch", 2)]
    with pytest.raises(ReportError, match="^nca-high seed 2 on stdlib has no scratch run of seed 2 to pair with"):
        report(runs, tmp_path / "report")


def test_a_run_without_evaluations_is_refused(tmp_path):
    runs = make_runs(tmp_path / "runs", with_wiki=False)
    write_metrics(Path(runs[0].language_run), [])
    with pytest.raises(ReportError, match="has no evaluation yet"):
        report(runs, tmp_path / "report")
