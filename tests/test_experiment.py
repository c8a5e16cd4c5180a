"""`python -m experiment` end to end: a micro recipe (scratch, NCA band high, Dyck; 2 seeds; a
few hundred trainer steps in all) through the real pipeline, the real catalog and the real
trainer; the report's numbers read back against the run logs; a kill -9 in the middle and a
re-run that writes the same report; and bad recipes refused in one line before anything runs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil
import pytest

from experiment.plan import Planner
from experiment.steps import StepError, TrainStep, run_train
from generator.lock import folder_lock
from experiment.recipe import RECIPES_DIR, Recipe, load_recipe, resolved_stage
from tests.conftest import ROOT
from tests.ray_head import ray_head
from tests.trainer_runs import environment
from trainer.compare import Curve, speed_up
from trainer.metrics import read_metrics

CODE_FILES = ("textwrap.py", "bisect.py", "heapq.py", "shlex.py", "fnmatch.py", "colorsys.py", "keyword.py", "abc.py",
              "copy.py", "numbers.py")
MICRO = ["model.layers = 1", "model.d_model = 32", "model.heads = 2", "model.mlp_hidden = 64", "model.context = 128",
         "train.micro_batch = 4", "optim.warmup_steps = 2", "data.loader_workers = 0"]
OVERRIDES = "{ " + ", ".join(f'"{item.split(" = ")[0]}" = {item.split(" = ")[1]}' for item in MICRO) + " }"


RESCALED = """
[variants.nca-high-rescaled]
of = "nca-high"
transfer = { rescale = true }
"""
"""The micro recipe's variant: nca-high's pre-pre-training runs, carried-over matrices rescaled."""


def micro_recipe(folder: Path, code: Path, **changes) -> Path:
    """A recipe file: 4 arms (one a variant of nca-high) x 2 seeds, 32 pre-pre-training and 8 language
    steps of 4 x 128 tokens."""
    arms = changes.get("arms", ["scratch", "nca-high", "dyck", "nca-high-rescaled"])
    text = f"""
name = "micro"
description = "A few hundred steps in all: the machinery, not a result."
arms = {json.dumps(arms)}
seeds = {json.dumps(changes.get("seeds", [0, 1]))}
threads = 1
notes = ["A micro recipe for tests."]

[[corpora]]
source = "{changes.get("corpus", code)}"
name = "code"
validation_fraction = 0.2

[pretrain]
recipe = "tiny-cpu"
tokens = 16384
eval_every = 4
eval_rows = {changes.get("eval_rows", 4)}
validation_sequences = 8
compile_step = false
overrides = {OVERRIDES}

[language]
recipe = "tiny-cpu-language"
tokens = 4096
eval_every = 4
eval_rows = 4
overrides = {OVERRIDES}
{changes.get("extra", "")}
{changes.get("variants", RESCALED if "nca-high-rescaled" in arms else "")}"""
    path = folder / "micro.toml"
    path.write_text(text)
    return path


def start_experiment(cwd: Path, recipe: Path, *extra) -> subprocess.Popen:
    """The experiment as a child in its own process group, recipe and `--out out` relative to `cwd`
    (so two working folders run the very same command)."""
    with open(cwd / "experiment.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "experiment", os.path.relpath(recipe, cwd), "--out", "out",
                                 "--no-progress", *extra],
                                cwd=cwd, env={**environment(), "PYTHONPATH": ROOT}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def finish(process: subprocess.Popen, cwd: Path, timeout: float = 600) -> None:
    try:
        assert process.wait(timeout) == 0, (cwd / "experiment.log").read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def code_corpus(tmp_path_factory) -> Path:
    import sysconfig

    folder = tmp_path_factory.mktemp("code")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in CODE_FILES:
        shutil.copy(stdlib / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory, code_corpus) -> Path:
    """One uninterrupted micro experiment; returns its working folder (OUT is ./out)."""
    cwd = tmp_path_factory.mktemp("uninterrupted")
    finish(start_experiment(cwd, micro_recipe(cwd, code_corpus)), cwd)
    return cwd


def report_dir(cwd: Path) -> Path:
    return cwd / "out" / "reports" / "micro-code"


def final_eval(run_dir: Path) -> dict:
    return [record for record in read_metrics(str(run_dir)) if record["kind"] == "eval"][-1]


def curve(run_dir: Path) -> Curve:
    evaluations = [record for record in read_metrics(str(run_dir)) if record["kind"] == "eval"]
    return Curve(tuple(e["tokens"] for e in evaluations), tuple(e["perplexity"] for e in evaluations))


def language_runs(cwd: Path) -> dict:
    """{(arm, seed): run folder} of the language runs the experiment trained (not the report's copies)."""
    runs = {}
    for folder in (cwd / "out" / "language" / "code").iterdir():
        if folder.is_dir():
            arm, seed = folder.name.rsplit("-", 1)[0].rsplit("-seed", 1)
            runs[(arm, int(seed))] = folder
    return runs


def test_the_report_holds_the_numbers_of_the_run_logs(finished):
    results = json.loads((report_dir(finished) / "results.json").read_text())
    runs = language_runs(finished)
    assert sorted(runs) == [(arm, seed) for arm in ("dyck", "nca-high", "nca-high-rescaled", "scratch")
                            for seed in (0, 1)]
    rows = {(row["arm"], row["seed"]): row for row in results["corpora"][0]["runs"]}
    for key, run_dir in runs.items():
        final = final_eval(run_dir)
        assert rows[key]["perplexity"] == final["perplexity"] and rows[key]["tokens"] == final["tokens"] == 4096
        scratch = curve(runs[("scratch", key[1])])
        expected = speed_up(scratch, curve(run_dir))
        assert rows[key]["speed_up"] == expected or (rows[key]["speed_up"] is None and expected is None)
        expected_percent = 100 * (final["perplexity"] / final_eval(runs[("scratch", key[1])])["perplexity"] - 1)
        assert rows[key]["vs_scratch_percent"] == pytest.approx(expected_percent)
    pretraining = {(row["arm"], row["seed"]): row for row in results["pretraining"]}
    assert len(results["pretraining"]) == 4  # the variant trained no pre-pre-training run of its own
    assert sorted(pretraining) == [(arm, seed) for arm in ("dyck", "nca-high") for seed in (0, 1)]
    for (arm, seed), row in pretraining.items():
        [run_dir] = [path for path in (finished / "out" / "pretrain").glob(f"{arm}-seed{seed}-*") if path.is_dir()]
        final = final_eval(run_dir)
        assert row["loss"] == final["loss"]
        assert row["in_context_unigram_loss"] == final["baselines"]["in_context_unigram"]["loss"]
        assert row["learned_dynamics"] == (final["loss"] < final["baselines"]["in_context_unigram"]["loss"])
        if arm == "dyck":  # Dyck rows have no frames
            assert row["frame_gaps"] is None and row["frames_ahead"] is None and row["last_quarter_gap"] is None
        else:
            counting = final["baselines"]["in_context_unigram"]["per_frame"]
            assert row["frame_gaps"] == [model - count for model, count in zip(final["per_frame"], counting)]
            assert row["frames_ahead"] == [frame for frame, (model, count) in enumerate(
                zip(final["per_frame"], counting), start=2) if model < count]
            quarter = max(1, len(row["frame_gaps"]) // 4)  # hand-computed values: test_experiment_report.py
            assert row["first_quarter_gap"] == pytest.approx(sum(row["frame_gaps"][:quarter]) / quarter)
            assert row["last_quarter_gap"] == pytest.approx(sum(row["frame_gaps"][-quarter:]) / quarter)
    # every language run from a pre-pre-training run starts from that run's final checkpoint, read by URL
    config = json.loads((runs[("nca-high", 1)] / "config.json").read_text())
    assert config["transfer"]["init_from"].endswith("step-00000032") and "/pretrain/nca-high-seed1-" in \
        config["transfer"]["init_from"]
    assert config["data"]["train"].startswith("http://127.0.0.1:") and "/v1/datasets/code" in config["data"]["train"]
    assert config["transfer"]["rescale"] is False
    # the variant starts from the very same checkpoint, rescaled, and its runs are scored like an arm's
    variant = json.loads((runs[("nca-high-rescaled", 1)] / "config.json").read_text())
    assert variant["transfer"] == {**config["transfer"], "rescale": True}
    meta = json.loads(next((runs[("nca-high-rescaled", 1)]).glob("step-*/meta.json")).read_text())
    assert len(meta["transfer"]["rescaled"]) == 7  # one layer: wq, wk, wv, wo, gate, up, down
    assert rows[("nca-high-rescaled", 1)]["pretrain_arm"] == "nca-high"
    report = (report_dir(finished) / "report.md").read_text()
    assert ("**nca-high-rescaled** starts its language runs from the pre-pre-training runs of nca-high, with "
            "transfer.rescale=true.") in report
    assert "| scratch | 2 |" in report and "nca-high" in report and "dyck" in report and "Wall time:" in report
    for picture in ("curves.png", "pretrain.png", "pretrain-frames.png"):
        assert (report_dir(finished) / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_killed_experiment_resumes_to_the_same_report(finished, code_corpus, tmp_path):
    """kill -9 of the experiment's driver in the middle of a run (its steps must die with it), then
    the same command again: the report equals an uninterrupted experiment's. The copy keeps seed 0
    and the data; seed 1's runs are trained again, and the kill lands inside one of them."""
    out = tmp_path / "out"
    shutil.copytree(finished / "out", out, ignore=shutil.ignore_patterns("reports", "cache"))
    for run_dir in [*out.glob("pretrain/*-seed1-*"), *out.glob("language/code/*-seed1-*")]:
        shutil.rmtree(run_dir) if run_dir.is_dir() else run_dir.unlink()
    recipe = micro_recipe(tmp_path, code_corpus)
    process = start_experiment(tmp_path, recipe)
    deadline = time.monotonic() + 300
    while not list(out.glob("pretrain/nca-high-seed1-*/step-00000008")) and time.monotonic() < deadline:
        time.sleep(0.05)
        assert process.poll() is None, (tmp_path / "experiment.log").read_text()[-3000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while (survivors := [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]):
        assert time.monotonic() < deadline, f"steps outlived their killed experiment: {survivors}"
        time.sleep(0.1)
    assert not list(out.glob("pretrain/nca-high-seed1-*/step-00000032"))
    finish(start_experiment(tmp_path, recipe), tmp_path)
    again = out / "reports" / "micro-code"
    assert (again / "results.json").read_bytes() == (report_dir(finished) / "results.json").read_bytes()

    def without_wall_time(path):
        return [line for line in path.read_text().splitlines() if not line.startswith("Wall time:")]

    assert without_wall_time(again / "report.md") == without_wall_time(report_dir(finished) / "report.md")
    assert "already finished" in (tmp_path / "experiment.log").read_text()


def test_a_finished_experiment_runs_nothing_again(finished, code_corpus):
    before = {path: path.stat().st_mtime_ns for path in (finished / "out").glob("*/**/metrics.jsonl")
              if "reports" not in path.parts}
    finish(start_experiment(finished, micro_recipe(finished, code_corpus)), finished, timeout=120)
    after = {path: path.stat().st_mtime_ns for path in before}
    assert before == after
    assert "6 of 6 chain(s) already finished" in (finished / "experiment.log").read_text()  # variants join a chain


def evaluations(run_dir: Path) -> list:
    return [record for record in read_metrics(str(run_dir)) if record["kind"] == "eval"]


def test_chains_run_as_ray_tasks_when_ray_address_is_set(finished, code_corpus, tmp_path):
    """A real Ray head on loopback: the scratch and Dyck chains of seed 0 run side by side as tasks and
    log exactly what the same chains logged when run one after another (same folders, same evaluations)."""
    recipe = micro_recipe(tmp_path, code_corpus, arms=["scratch", "dyck"], seeds=[0])
    shutil.copytree(finished / "out" / "data", tmp_path / "out" / "data")
    with ray_head() as (address, env, _):
        with open(tmp_path / "experiment.log", "ab") as log:
            run = subprocess.run([sys.executable, "-m", "experiment", recipe.name, "--out", "out", "--no-progress"],
                                 cwd=tmp_path, env={**env, "RAY_ADDRESS": address, "PYTHONPATH": ROOT,
                                                    "OMP_NUM_THREADS": "1"},
                                 stdout=log, stderr=subprocess.STDOUT, timeout=600)
    output = (tmp_path / "experiment.log").read_text()
    assert run.returncode == 0, output[-3000:]
    assert f"2 chain(s) as Ray tasks of 1 CPU(s) each on {address}" in output
    trained = [run_dir for stage in ("pretrain", "language/code") for run_dir in (tmp_path / "out" / stage).iterdir()
               if run_dir.is_dir()]
    assert sorted(run_dir.name.rsplit("-", 1)[0] for run_dir in trained) == ["dyck-seed0", "dyck-seed0", "scratch-seed0"]
    for run_dir in trained:
        assert evaluations(run_dir) == evaluations(finished / "out" / run_dir.parent.relative_to(tmp_path / "out") /
                                                   run_dir.name), run_dir.name


BAD_RECIPES = {
    "unknown transfer option": ({"arms": ["scratch", "nca-high", "shrunk"],
                                 "variants": '[variants.shrunk]\nof = "nca-high"\ntransfer = { shrink = true }'},
                                "transfer option 'shrink' is unknown: use reinit, reinit_layers, freeze"),
    "variant of scratch": ({"arms": ["scratch", "fresh"], "variants": '[variants.fresh]\nof = "scratch"\n'
                                                                     'transfer = { rescale = true }'},
                           "variants.fresh.of='scratch': name a pre-pre-training arm"),
    "variant not among the arms": ({"arms": ["scratch", "nca-high"], "variants": RESCALED},
                                   "variants.nca-high-rescaled is not among the arms: add it to arms or remove it"),
    "a variant that changes nothing": ({"arms": ["scratch", "nca-high", "same"],
                                        "variants": '[variants.same]\nof = "nca-high"\ntransfer = { rescale = false }'},
                                       "the transfer options change nothing: set reinit, freeze or rescale = true"),
    "layers without a group": ({"arms": ["scratch", "nca-high", "some"],
                                "variants": '[variants.some]\nof = "nca-high"\ntransfer = { freeze_layers = "0:1" }'},
                               "transfer.freeze_layers without transfer.freeze: name the groups it applies to"),
    "rescale as a number": ({"arms": ["scratch", "nca-high", "scaled"],
                             "variants": '[variants.scaled]\nof = "nca-high"\ntransfer = { rescale = 1 }'},
                            "transfer.rescale = 1: give true or false"),
    "a variant without its arm": ({"arms": ["scratch", "nca-high-rescaled"], "variants": RESCALED},
                                  "variants.nca-high-rescaled.of='nca-high' is not among the arms: add it"),
    "a group the trainer does not know": ({"arms": ["scratch", "nca-high", "headless"],
                                           "variants": '[variants.headless]\nof = "nca-high"\n'
                                                       'transfer = { reinit = "heads" }'},
                                          "variants.headless: transfer.reinit: unknown group 'heads'"),
    "unknown arm": ({"arms": ["scratch", "nca-purple"]}, "arm 'nca-purple' is unknown: use scratch, dyck, text, nca-<band>"),
    "no scratch": ({"arms": ["nca-high"]}, "the arms must include scratch"),
    "unknown key": ({"extra": "colour = 'blue'"}, "field language.colour: Extra inputs are not permitted"),
    "missing corpus": ({"corpus": "/nowhere/corpus.txt"}, "corpus /nowhere/corpus.txt does not exist"),
    "evaluation larger than the validation data": ({"eval_rows": 16}, "eval_rows=16 is more than the 8 "
                                                                      "validation_sequences made"),
    "a seed the validation data uses": ({"seeds": [0, 1_000_000]}, "seeds must be distinct, non-negative and below"),
    "text arm without its corpus": ({"arms": ["scratch", "text"]}, "the text arm needs [pretrain.text_source]"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_a_bad_recipe_is_one_line_before_anything_runs(case, code_corpus, tmp_path):
    changes, expected = BAD_RECIPES[case]
    run = subprocess.run([sys.executable, "-m", "experiment", str(micro_recipe(tmp_path, code_corpus, **changes)),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_corpus_path_and_options_without_a_corpus_are_refused(tmp_path):
    for arguments, expected in ((["--corpus", str(tmp_path / "nothing.txt")], "nothing.txt does not exist"),
                                (["--split-at", "^$"], "apply to --corpus")):
        run = subprocess.run([sys.executable, "-m", "experiment", "laptop", "--out", str(tmp_path / "out"), *arguments],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["laptop", "workstation", "code-bands", "transfer-ablations", "paper"])
def test_shipped_recipes_meet_their_budgets(name):
    """Every shipped recipe parses strictly; its steps hold its token budgets on its process count."""
    with open(os.path.join(RECIPES_DIR, f"{name}.toml"), "rb") as f:
        recipe = Recipe.model_validate(tomllib.load(f))
    assert "scratch" in recipe.arms and recipe.description and recipe.notes
    for stage, stage_name in ((recipe.pretrain, "nca"), (recipe.language, "language")):
        config, steps = resolved_stage(stage, stage_name, 0, 1, recipe.processes)
        per_step = config.train.micro_batch * config.train.grad_accum * config.model.context * recipe.processes
        assert 0 <= steps * per_step - stage.tokens < per_step
    if name == "paper":
        config, steps = resolved_stage(recipe.pretrain, "nca", 0, 1, recipe.processes)
        assert steps == 5000 and config.model.d_model == 2048  # SPEC section 4: 5,000 steps of 32 x 1,024
    else:
        assert load_recipe(name).corpora[0].source == "stdlib"


def planned_chains(recipe: Recipe, out: Path) -> list:
    """The recipe's chains under `out`, planned without making anything. Each data folder is named by
    its step's key (a hash of the command that makes it), so that run folders, which hash their data
    folder's path, differ whenever the data would; each corpus is out/data/LABEL; trainers read
    folders directly."""
    planner = Planner(recipe, str(out), 2)
    data = {key: str(out / "data" / step.key(str(out))) for key, step in planner.pretrain_data_steps().items()}
    corpora = {corpus.label: str(out / "data" / corpus.label) for corpus in recipe.corpora}
    return planner.chains(data, corpora, lambda folder: folder)


@pytest.mark.parametrize("name, new_arms", [("code-bands", ["nca-mid"]),
                                            ("transfer-ablations", ["nca-high-attention", "nca-high-rescaled"])])
def test_follow_up_recipes_reuse_the_workstation_runs_of_seed_0(tmp_path, name, new_arms):
    """code-bands (the workstation's seed 0 plus nca-mid) and transfer-ablations (plus two variants
    of nca-high): their scratch and nca-high runs are the workstation's own folders, so after the
    workstation recipe only their new arms train."""
    def run_folders(recipe: str) -> dict:
        chains = planned_chains(load_recipe(recipe), tmp_path)
        return {(arm, chain.seed): [step.run_dir for step in ([chain.pretrain] if chain.pretrain else []) + [run]]
                for chain in chains for arm, _, run in chain.language}

    workstation, follow_up = run_folders("workstation"), run_folders(name)
    assert sorted(follow_up) == sorted([("nca-high", 0), ("scratch", 0), *((arm, 0) for arm in new_arms)])
    for arm in ("scratch", "nca-high"):
        assert follow_up[arm, 0] == workstation[arm, 0]
    trained_by_workstation = {folder for folders in workstation.values() for folder in folders}
    for arm in new_arms:
        assert follow_up[arm, 0][-1] not in trained_by_workstation


def test_run_folders_do_not_depend_on_where_out_lives(code_corpus, tmp_path):
    recipe = load_recipe(str(micro_recipe(tmp_path, code_corpus)))

    def names(out):
        return [os.path.relpath(step.run_dir, out) for chain in planned_chains(recipe, out) for step in chain.steps]

    assert names(tmp_path / "a") == names(tmp_path / "elsewhere" / "b")
    assert len(set(names(tmp_path / "a"))) == 4 + 8


def test_a_variant_shares_its_arms_pretraining_run_and_changes_only_its_own_language_runs(code_corpus, tmp_path):
    def planned(arms: list) -> tuple:
        recipe = load_recipe(str(micro_recipe(tmp_path, code_corpus, arms=arms)))
        assert list(Planner(recipe, str(tmp_path), 2).pretrain_data_steps()) == [
            ("nca-high", 0), ("nca-high", 1), ("nca-high", "validation")]  # data made once
        chains = planned_chains(recipe, tmp_path)
        return chains, {(arm, chain.seed): step for chain in chains for arm, _, step in chain.language}

    (plain_chains, plain), (chains, runs) = (planned(["scratch", "nca-high"]),
                                             planned(["scratch", "nca-high", "nca-high-rescaled"]))
    assert [(chain.arm, chain.seed, [arm for arm, _, _ in chain.language]) for chain in chains] == [
        ("scratch", 0, ["scratch"]), ("nca-high", 0, ["nca-high", "nca-high-rescaled"]),
        ("scratch", 1, ["scratch"]), ("nca-high", 1, ["nca-high", "nca-high-rescaled"])]  # one NCA run per seed
    assert [chain.pretrain for chain in chains] == [chain.pretrain for chain in plain_chains]
    for seed in (0, 1):
        language, variant = runs["nca-high", seed], runs["nca-high-rescaled", seed]
        assert language == plain["nca-high", seed]  # the arm's own run: same folder, same arguments
        assert variant.run_dir != language.run_dir and "nca-high-rescaled-seed" in variant.run_dir
        assert [part.replace(variant.run_dir, "RUN") for part in variant.arguments] == \
            [*(part.replace(language.run_dir, "RUN") for part in language.arguments), "--transfer.rescale", "true"]
    # listed before its arm, a variant still joins that arm's chain; the arms keep the recipe's order
    chains, _ = planned(["scratch", "nca-high-rescaled", "nca-high"])
    assert [arm for arm, _, _ in chains[1].language] == ["nca-high-rescaled", "nca-high"]


WORKSTATION_FOLDERS = [
    ["language/stdlib/scratch-seed0-123c0d879833"],
    ["pretrain/nca-high-seed0-7401d236b276", "language/stdlib/nca-high-seed0-965ad55910fa"],
    ["language/stdlib/scratch-seed1-107c04a9f946"],
    ["pretrain/nca-high-seed1-e7b661d94abe", "language/stdlib/nca-high-seed1-3f756b1705b6"],
    ["language/stdlib/scratch-seed2-04a51b2e2375"],
    ["pretrain/nca-high-seed2-fa7d4ea6eedf", "language/stdlib/nca-high-seed2-a8bdaffdf5c0"],
]
"""The workstation recipe's run folders as planned_chains names them: runs of many hours, kept across
sessions. A change that renames them (anything in the hashed config, or in a command that makes their
data) strands them, so it must be deliberate: this list then changes with it."""


def test_the_workstation_run_folders_keep_their_names(tmp_path):
    chains = planned_chains(load_recipe("workstation"), tmp_path)
    assert [[os.path.relpath(step.run_dir, tmp_path) for step in chain.steps] for chain in chains] == \
        WORKSTATION_FOLDERS


def test_a_run_folder_another_experiment_is_training_is_refused_at_once(tmp_path):
    run_dir = tmp_path / "language" / "code" / "scratch-seed0-0123456789ab"
    step = TrainStep("scratch seed 0 language on code", str(run_dir), 8, 4096, 1.0, ("trainer.main", "--never-run"))
    with folder_lock(str(run_dir), "training this run"):
        with pytest.raises(StepError, match=rf"{run_dir}: another run \(pid {os.getpid()} on host .*\) is training "
                                            rf"this run: wait for it to finish, or use another --out"):
            run_train(step)
    assert not run_dir.exists() and not (tmp_path / "language" / "code" / f"{run_dir.name}.log").exists()

