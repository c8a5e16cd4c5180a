"""Recipes and overrides: every shipped recipe loads, and every bad key or value is one clear line."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from trainer.config import RECIPES_DIR, TrainConfigError, resolve_config
from trainer.main import parse_arguments

RECIPES = sorted(name.removesuffix(".toml") for name in os.listdir(RECIPES_DIR) if name.endswith(".toml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_shipped_recipe_loads_and_validates(recipe):
    config = resolve_config(recipe, [("data.train", "somewhere")])
    assert config.model.d_model % config.model.heads == 0
    assert config.stage == ("language" if recipe.endswith("-language") else "nca")


def test_paper_recipe_is_the_papers_model_and_nca_stage():
    config = resolve_config("paper-1.6b", [("data.train", "x")])
    m, o = config.model, config.optim
    assert (m.layers, m.heads, m.d_model, m.mlp_hidden, m.context, m.rope_theta) == (24, 32, 2048, 8192, 1024, 1e4)
    assert (o.lr, o.weight_decay, o.grad_clip, o.warmup_steps, config.train.steps) == (1e-4, 0.0, 0.0, 5000, 5000)
    from trainer.model import Transformer

    import torch
    with torch.device("meta"):
        model = Transformer(m, 10002)
    assert 1.55e9 < model.parameter_count(embeddings=False) < 1.65e9  # SPEC: 1.61B without embeddings


def test_overrides_are_typed_from_text():
    config = resolve_config("tiny-cpu", [("data.train", "d"), ("model.layers", "2"), ("optim.lr", "3e-4"),
                                         ("train.progress", "false"), ("optim.betas", "0.8,0.9")])
    assert (config.model.layers, config.optim.lr, config.train.progress, config.optim.betas) == (2, 3e-4, False, (0.8, 0.9))


@pytest.mark.parametrize("overrides, message", [
    ([("model.layerz", "2")], "unknown key model.layerz"),
    ([("model.layers", "two")], "model.layers='two' is not a int"),
    ([("modle.layers", "2")], "unknown section 'modle'"),
    ([("model.heads", "3")], "must split into 3 heads"),
    ([("train.steps", "0")], "train.steps=0: use a positive value"),
    ([("optim.decay", "linear")], "optim.decay='linear'"),
])
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(TrainConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_config("tiny-cpu", [("data.train", "d"), *overrides])


def test_recipe_file_with_unknown_key_or_wrong_type(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nlayers = "four"\n')
    with pytest.raises(TrainConfigError, match="model.layers='four' is not a int"):
        resolve_config(str(bad), [("data.train", "d")])
    bad.write_text('[optim]\nlearning_rate = 1.0\n')
    with pytest.raises(TrainConfigError, match="unknown key optim.learning_rate"):
        resolve_config(str(bad), [("data.train", "d")])
    with pytest.raises(TrainConfigError, match="recipe 'nope' not found: use one of paper-1.6b, paper-1.6b-language, tiny-cpu, tiny-cpu-language"):
        resolve_config("nope", [])


def test_command_line_aliases_and_forms():
    recipe, resume, overrides = parse_arguments(["--recipe", "tiny-cpu", "--data", "D", "--resume",
                                                 "--model.layers=3", "--optim.lr", "1e-3"])
    assert (recipe, resume) == ("tiny-cpu", True)
    assert dict(overrides) == {"data.train": "D", "model.layers": "3", "optim.lr": "1e-3"}


@pytest.mark.parametrize("args, message", [
    (["--data", "D", "--model.layerz", "2"], "unknown key model.layerz"),
    (["--model.layers", "2"], "no training data: pass --data"),
    (["--data", "D", "stray"], "unrecognised argument 'stray'"),
    (["--data", "/nonexistent/dataset"], "/nonexistent/dataset is not a folder"),
    (["--data", "http://127.0.0.1:9/v1/datasets/high-1-abc"], "is unreachable"),
    (["--data", "http://127.0.0.1:9/nothing"], "is not a catalog dataset URL"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "trainer", "main.py"), "--train.run_dir",
                             str(tmp_path / "run"), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_plot_refuses_a_folder_without_metrics(tmp_path):
    result = subprocess.run([sys.executable, "-m", "trainer.plot", str(tmp_path)], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"python -m trainer.plot: error: {tmp_path} has no metrics.jsonl: "
                                                  f"give a run folder written by trainer/main.py (see --help)"]
