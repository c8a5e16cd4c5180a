"""The trainer as users run it: `torchrun --nproc-per-node 2 trainer/main.py` on gloo, real data.

A real catalog process serves a real pipeline dataset; the job downloads it through the
client and trains. Resume is checked by equality with an uninterrupted run, after a
kill -9 of the whole job, across an epoch boundary, with DataLoader workers.
"""

import os
import shutil
import signal
import time

import psutil
import pytest
from PIL import Image

from tests.service_datasets import made_datasets
from tests.trainer_runs import (MICRO_MODEL, assert_same_run, catalog_server, metrics, run_killed_then_resumed,
                                run_trainer, start_trainer)
from trainer.plot import main as plot_main


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return made_datasets(tmp_path_factory)


def test_two_ranks_train_from_a_real_catalog_and_the_loss_goes_down(made, tmp_path):
    run = tmp_path / "run"
    with catalog_server(made.root, tmp_path / "catalog.log") as base_url:
        result = run_trainer(2, ["--data", f"{base_url}/v1/datasets/{made.high.id}", "--data.cache_dir",
                                 str(tmp_path / "cache"), "--train.run_dir", str(run), *MICRO_MODEL,
                                 "--train.steps", "30", "--train.micro_batch", "2", "--train.eval_every", "15",
                                 "--train.eval_rows", "32", "--train.checkpoint_every", "15"], tmp_path / "job.log")
    assert result.returncode == 0, result.stdout[-3000:]
    cached = sorted(os.listdir(tmp_path / "cache" / made.high.id))
    assert [name for name in cached if name.startswith("part-")] == ["part-00000.arrow", "part-00001.arrow"]
    losses = [record["loss"] for record in metrics(run, "train")]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < losses[0] - 0.25, losses
    evaluations = metrics(run, "eval")
    assert [e["step"] for e in evaluations] == [0, 15, 30]
    assert evaluations[-1]["loss"] < evaluations[0]["loss"] - 0.25, evaluations
    assert len(evaluations[-1]["per_frame"]) == 3  # 128 targets span frames 1..4; the first is context only
    baselines = evaluations[-1]["baselines"]
    assert baselines["in_context_unigram"]["loss"] < baselines["unigram"]["loss"]
    assert sorted(os.listdir(run)) == ["config.json", "metrics.jsonl", "step-00000015", "step-00000030"]
    picture = tmp_path / "curves.png"
    assert plot_main([str(run), "--out", str(picture)]) == 0
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width > 1000


RESUME_ARGS = [*MICRO_MODEL, "--train.steps", "28", "--train.micro_batch", "2", "--train.grad_accum", "2",
               "--data.holdout_rows", "40", "--data.loader_workers", "2", "--train.eval_every", "14",
               "--train.eval_rows", "8", "--train.checkpoint_every", "4", "--train.keep_checkpoints", "2"]


def test_kill_9_and_resume_is_bit_identical_across_an_epoch_boundary(made, tmp_path):
    """160 training rows, 8 rows a step: epoch 2 starts at step 20, after the kill at step >= 12."""
    data = ["--data", str(made.mid.folder), *RESUME_ARGS]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_trainer(2, [*data, "--train.run_dir", str(whole)], tmp_path / "whole.log").returncode == 0
    run_killed_then_resumed(2, data, killed, 12, tmp_path)
    assert metrics(whole, "train")[-1]["epoch"] > 1.0
    assert_same_run(whole, killed, 28)


def test_resume_refuses_another_config_and_skips_a_truncated_checkpoint(made, tmp_path):
    run = tmp_path / "run"
    args = ["--data", str(made.mid.folder), "--train.run_dir", str(run), *RESUME_ARGS, "--train.steps", "8",
            "--data.loader_workers", "0"]
    assert run_trainer(0, args, tmp_path / "first.log").returncode == 0
    other = run_trainer(0, [*args, "--resume", "--model.layers", "2"], tmp_path / "other.log")
    assert other.returncode == 2
    assert "belongs to a different run (model.layers was 1, now 2)" in other.stdout
    fresh = run_trainer(0, args, tmp_path / "fresh.log")
    assert fresh.returncode == 2 and "already holds checkpoints: pass --resume" in fresh.stdout
    with open(run / "step-00000008" / "model.pt", "r+b") as f:
        f.truncate(100)
    longer = run_trainer(0, [*args, "--resume", "--train.steps", "10"], tmp_path / "longer.log")
    assert longer.returncode == 0, longer.stdout
    assert "skipping checkpoint" in longer.stdout and "step-00000008: model.pt is missing, truncated or corrupt" in longer.stdout
    assert [r["step"] for r in metrics(run, "train")] == list(range(1, 11))  # constant lr: a run can be extended


def test_a_killed_rank_ends_the_job_with_an_error_within_60_s(made, tmp_path):
    run = tmp_path / "run"
    job = start_trainer(2, ["--data", str(made.mid.folder), "--train.run_dir", str(run), *MICRO_MODEL,
                            "--train.steps", "100000", "--train.eval_every", "100000", "--data.loader_workers", "0",
                            "--data.holdout_rows", "40"],
                        tmp_path / "job.log")
    deadline = time.monotonic() + 240
    while not (run / "metrics.jsonl").exists() or not metrics(run, "train"):
        assert job.poll() is None and time.monotonic() < deadline, (tmp_path / "job.log").read_text()[-3000:]
        time.sleep(0.1)
    ranks = [p for p in psutil.Process(job.pid).children(recursive=True) if "trainer/main.py" in " ".join(p.cmdline())]
    assert len(ranks) == 2
    struck = time.monotonic()
    ranks[1].kill()
    try:
        job.wait(60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert time.monotonic() - struck < 60
    assert job.returncode != 0
    log = (tmp_path / "job.log").read_text()
    assert "ChildFailedError" in log and "Signal 9 (SIGKILL)" in log, log[-3000:]


def test_bad_data_through_the_catalog_is_one_line(made, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(made.high.folder, shards / made.high.id)
    shard = shards / made.high.id / "part-00001.arrow"
    data = bytearray(shard.read_bytes())
    data[-100] ^= 1
    shard.write_bytes(bytes(data))
    with catalog_server(shards, tmp_path / "catalog.log") as base_url:
        common = ["--data.cache_dir", str(tmp_path / "cache"), "--train.run_dir", str(tmp_path / "run"), *MICRO_MODEL]
        unknown = run_trainer(0, ["--data", f"{base_url}/v1/datasets/high-1-000000000000", *common], tmp_path / "a.log")
        corrupt = run_trainer(0, ["--data", f"{base_url}/v1/datasets/{made.high.id}", *common], tmp_path / "b.log")
    assert unknown.returncode == 2 and "answered 404" in unknown.stdout
    assert corrupt.returncode == 2 and "checksum mismatch" in corrupt.stdout
    too_many = run_trainer(2, ["--data", str(made.mid.folder), "--data.holdout_rows", "199", *common[2:]],
                           tmp_path / "c.log")
    assert too_many.returncode != 0 and "2 ranks but only 1 training rows: use fewer ranks" in too_many.stdout
