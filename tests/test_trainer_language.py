"""The language stage: transfer from a real NCA checkpoint, the ablations, and exact resume.

An NCA run of the micro model (real pipeline shards) gives the checkpoint; a small code
corpus prepared from real standard-library files gives the text. Runs go through the
real entry point, under torchrun where it matters.
"""

import sysconfig
from pathlib import Path

import pytest
import torch

from tests.service_datasets import made_datasets
from tests.trainer_runs import (MICRO_MODEL, assert_same_run, catalog_server, metrics, run_killed_then_resumed,
                                run_trainer)
from trainer.checkpoint import CheckpointError
from trainer.config import ModelConfig, TrainConfigError, TransferConfig, resolve_config
from trainer.corpus import PrepareConfig, prepare_corpus
from trainer.model import Transformer, initial_std
from trainer.transfer import carried_over, freeze, transfer

STDLIB_FILES = ("textwrap.py", "bisect.py", "heapq.py", "shlex.py", "fnmatch.py", "colorsys.py", "keyword.py",
                "string.py", "glob.py", "this.py", "abc.py", "copy.py")
LANGUAGE = ["--stage", "language", "--data.loader_workers", "0", "--optim.warmup_steps", "2"]


@pytest.fixture(scope="module")
def nca_checkpoint(tmp_path_factory) -> Path:
    made = made_datasets(tmp_path_factory)
    run = tmp_path_factory.mktemp("nca") / "run"
    result = run_trainer(0, ["--data", str(made.mid.folder), "--data.holdout_rows", "40", "--train.run_dir", str(run),
                             *MICRO_MODEL, "--train.steps", "3", "--train.checkpoint_every", "3",
                             "--train.eval_every", "3", "--train.eval_rows", "4", "--train.micro_batch", "2"],
                         run.parent / "nca.log")
    assert result.returncode == 0, result.stdout[-3000:]
    return run / "step-00000003"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    """~150 KB of real Python source: a dozen standard-library modules, one document each."""
    source = tmp_path_factory.mktemp("code")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in STDLIB_FILES:
        (source / name).write_text((stdlib / name).read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path_factory.mktemp("corpora")
    return prepare_corpus(PrepareConfig(source=str(source), out=str(out), validation_fraction=0.2), progress=False).folder


def micro_model() -> Transformer:
    model = Transformer(ModelConfig(layers=1, d_model=32, heads=2, mlp_hidden=64, context=128), 50257)
    model.init_weights(torch.Generator().manual_seed(0))
    return model


def test_transfer_carries_blocks_and_norm_and_leaves_embeddings_fresh(nca_checkpoint):
    source = torch.load(nca_checkpoint / "model.pt", weights_only=True)
    fresh = dict(micro_model().named_parameters())
    model = micro_model()
    record = transfer(model, TransferConfig(init_from=str(nca_checkpoint)))
    parameters = dict(model.named_parameters())
    blocks_and_norm = carried_over(parameters)
    assert sorted(record["carried"]) == sorted(blocks_and_norm) and "norm.weight" in blocks_and_norm
    for name in blocks_and_norm:
        assert torch.equal(parameters[name], source[name]), name
    for name in ("embed.weight", "head.weight"):
        assert parameters[name].shape[0] == 50304  # GPT-2's 50,257 ids padded to a multiple of 64
        assert torch.equal(parameters[name], fresh[name])
    assert record["fresh"] == ["embed.weight", "head.weight"]


@pytest.mark.parametrize("group, parts", [("attn", ("wq", "wk", "wv", "wo")), ("mlp", ("gate", "up", "down")),
                                          ("norm", ("attention_norm", "mlp_norm"))])
def test_each_reinit_group_changes_exactly_its_tensors(nca_checkpoint, group, parts):
    source = torch.load(nca_checkpoint / "model.pt", weights_only=True)
    fresh = dict(micro_model().named_parameters())
    model = micro_model()
    record = transfer(model, TransferConfig(init_from=str(nca_checkpoint), reinit=group, reinit_layers="0:1"))
    for name, parameter in model.named_parameters():
        if not name.startswith("blocks."):
            continue
        if any(f".{part}." in name for part in parts):
            assert name in record["reinitialised"] and torch.equal(parameter, fresh[name]), name
        else:
            assert torch.equal(parameter, source[name]), name


def test_rescale_brings_each_carried_matrix_to_its_initial_scale_in_the_same_direction(nca_checkpoint):
    source = torch.load(nca_checkpoint / "model.pt", weights_only=True)
    model = micro_model()
    record = transfer(model, TransferConfig(init_from=str(nca_checkpoint), rescale=True))
    parameters = dict(model.named_parameters())
    matrices = [name for name in record["carried"] if name.startswith("blocks.") and not name.endswith("norm.weight")]
    assert record["rescaled"] == matrices and len(matrices) == 7  # one layer: wq, wk, wv, wo, gate, up, down
    for name in matrices:
        parameter, carried = parameters[name].detach().double(), source[name].double()
        assert float(parameter.pow(2).mean().sqrt()) == pytest.approx(initial_std(name, model.config), rel=1e-5)
        cosine = float((parameter * carried).sum() / (parameter.norm() * carried.norm()))
        assert cosine == pytest.approx(1.0, abs=1e-6), name
        assert abs(float(carried.pow(2).mean().sqrt()) - initial_std(name, model.config)) > 1e-4, name  # it moved
    for name in ("blocks.0.attention_norm.weight", "blocks.0.mlp_norm.weight", "norm.weight"):
        assert torch.equal(parameters[name], source[name]), name
    fresh = dict(micro_model().named_parameters())
    model = micro_model()
    record = transfer(model, TransferConfig(init_from=str(nca_checkpoint), reinit="mlp", rescale=True))
    assert record["rescaled"] == [name for name in matrices if ".attention." in name]  # re-initialised: not rescaled
    for name in record["reinitialised"]:
        assert torch.equal(dict(model.named_parameters())[name], fresh[name]), name


def test_frozen_tensors_stay_unchanged_after_a_real_run(nca_checkpoint, corpus, tmp_path):
    run = tmp_path / "run"
    result = run_trainer(0, ["--data", corpus, *LANGUAGE, *MICRO_MODEL, "--init-from", str(nca_checkpoint),
                             "--freeze", "attn,norm", "--train.steps", "3", "--train.checkpoint_every", "3",
                             "--train.eval_every", "3", "--train.eval_rows", "4", "--train.run_dir", str(run)],
                         tmp_path / "run.log")
    assert result.returncode == 0, result.stdout[-3000:]
    source = torch.load(nca_checkpoint / "model.pt", weights_only=True)
    trained = torch.load(run / "step-00000003" / "model.pt", weights_only=True)
    for name in carried_over(trained):
        frozen = ".attention." in name or "_norm." in name
        assert torch.equal(trained[name], source[name]) == frozen, name
    evaluation = metrics(run, "eval")[-1]
    assert 0 < evaluation["bits_per_byte"] < evaluation["loss"] / 0.6931  # more than one byte per token


def test_a_two_rank_language_run_from_an_nca_checkpoint_resumes_bit_identically(nca_checkpoint, corpus, tmp_path):
    args = ["--data", corpus, *LANGUAGE, *MICRO_MODEL, "--init-from", str(nca_checkpoint), "--train.steps", "12",
            "--train.micro_batch", "2", "--train.checkpoint_every", "3", "--train.eval_every", "6",
            "--train.eval_rows", "4", "--data.loader_workers", "1"]
    whole = tmp_path / "whole"
    assert run_trainer(2, [*args, "--train.run_dir", str(whole)], tmp_path / "whole.log").returncode == 0
    run_killed_then_resumed(2, args, tmp_path / "killed", 6, tmp_path)
    assert_same_run(whole, tmp_path / "killed", 12)


def test_a_language_checkpoint_transfers_like_an_nca_one(corpus, tmp_path):
    """Natural-text pre-pre-training (the paper's C4 baseline): blocks and final norm carried over."""
    source_run = tmp_path / "text"
    assert run_trainer(0, ["--data", corpus, *LANGUAGE, *MICRO_MODEL, "--train.steps", "1", "--train.eval_rows", "2",
                           "--train.run_dir", str(source_run)], tmp_path / "text.log").returncode == 0
    source = torch.load(source_run / "step-00000001" / "model.pt", weights_only=True)
    model = micro_model()
    record = transfer(model, TransferConfig(init_from=str(source_run / "step-00000001")))
    assert record["source_stage"] == "language" and record["carried"] == carried_over(record["carried"])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, source[name]) == (name in record["carried"]), name


def test_bad_transfers_are_clear_errors(nca_checkpoint, corpus, tmp_path, tmp_path_factory):
    with pytest.raises(CheckpointError, match="has model.d_model=32 but the recipe asks for 64"):
        transfer(Transformer(ModelConfig(layers=1, d_model=64, heads=2, mlp_hidden=64), 50257),
                 TransferConfig(init_from=str(nca_checkpoint)))
    with pytest.raises(TrainConfigError, match="outside the model's 1 layers"):
        freeze(micro_model(), TransferConfig(freeze="attn", freeze_layers="1:3"))
    with pytest.raises(TrainConfigError, match="unknown group 'heads'"):
        TransferConfig(reinit="heads").groups("reinit")
    with pytest.raises(TrainConfigError, match="transfer.rescale needs transfer.init_from"):
        resolve_config("tiny-cpu-language", [("data.train", corpus), ("transfer.rescale", "true")])
    language_run = tmp_path / "language"
    common = [*LANGUAGE, *MICRO_MODEL, "--train.steps", "1", "--train.eval_rows", "2"]
    assert run_trainer(0, ["--data", corpus, *common, "--train.run_dir", str(language_run)],
                       tmp_path / "a.log").returncode == 0
    not_a_checkpoint = run_trainer(0, ["--data", corpus, *common, "--init-from", str(language_run),
                                       "--train.run_dir", str(tmp_path / "b")], tmp_path / "b.log")
    assert not_a_checkpoint.returncode == 2 and "meta.json is missing or unreadable" in not_a_checkpoint.stdout
    shards = run_trainer(0, ["--data", str(made_datasets(tmp_path_factory).mid.folder), *common, "--train.run_dir",
                             str(tmp_path / "c")], tmp_path / "c.log")
    assert shards.returncode == 2 and "holds NCA shards, not a token corpus" in shards.stdout
    missing = run_trainer(0, ["--data", str(tmp_path / "nothing"), *common, "--train.run_dir", str(tmp_path / "d")],
                          tmp_path / "d.log")
    assert missing.returncode == 2 and "is not a folder" in missing.stdout


def test_a_corpus_served_by_the_catalog_trains_like_its_folder(corpus, tmp_path):
    """Only the catalog URL: the corpus downloads verified into the cache and gives the same run."""
    common = [*LANGUAGE, *MICRO_MODEL, "--train.steps", "2", "--train.eval_every", "2", "--train.eval_rows", "2"]
    local = tmp_path / "local"
    assert run_trainer(0, ["--data", corpus, *common, "--train.run_dir", str(local)], tmp_path / "a.log").returncode == 0
    corpus_id = Path(corpus).name
    with catalog_server(Path(corpus).parent, tmp_path / "catalog.log") as base_url:
        served = run_trainer(0, ["--data", f"{base_url}/v1/datasets/{corpus_id}", "--data.cache_dir",
                                 str(tmp_path / "cache"), *common, "--train.run_dir", str(tmp_path / "served")],
                             tmp_path / "b.log")
        nca_stage = run_trainer(0, ["--data", f"{base_url}/v1/datasets/{corpus_id}", "--data.cache_dir",
                                    str(tmp_path / "cache"), *MICRO_MODEL, "--train.run_dir", str(tmp_path / "c")],
                                tmp_path / "c.log")
    assert served.returncode == 0, served.stdout[-3000:]
    assert (tmp_path / "cache" / corpus_id / "manifest.json").exists()
    assert [r["loss"] for r in metrics(local, "train")] == [r["loss"] for r in metrics(tmp_path / "served", "train")]
    assert nca_stage.returncode == 2 and "is a token corpus, not NCA shards" in nca_stage.stdout
