"""The pipeline through real Ray runtimes: datasets match their manifest, pass verify, and come out
byte-identical across worker counts, killed drivers, killed workers, damaged shards and a joined cluster."""

import os
import re
import shutil
import signal
import time
import zlib

import psutil
import pytest
from PIL import Image

from generator import __version__
from generator.config import RunOptions
from generator.format import load_manifest
from generator.pipeline import main, run
from generator.shards import file_sha256, read_shard
from generator.verify import verify
from tests.conftest import free_port
from tests.pipeline_runs import (CANDIDATES_PER_SHARD, CLI_ARGS, SEED, SEQUENCES, dataset_files, freeze_workers,
                                 pipeline_process, small_config, wait_for_journal)
from tests.ray_head import ray_head

CPUS = os.cpu_count() or 1
needs_two_cpus = pytest.mark.skipif(CPUS < 2, reason="two workers need two CPUs, and this machine has one")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run with one worker: the dataset every other run must reproduce."""
    out = str(tmp_path_factory.mktemp("reference"))
    return run(small_config(), RunOptions(out=out, workers=1, progress=False)).dataset_dir


def test_a_small_dataset_matches_its_manifest_and_passes_verify(reference):
    manifest = load_manifest(reference)
    assert manifest.totals.rows == SEQUENCES and manifest.totals.shards == 4
    assert manifest.totals.tokens == SEQUENCES * 1026
    previous_stop = 0
    for shard in manifest.shards:
        path = os.path.join(reference, shard.name)
        assert file_sha256(path) == shard.sha256 and os.path.getsize(path) == shard.bytes
        table = read_shard(path, 1026)
        assert len(table) == shard.rows and table.column("tokens").type.list_size == 1026
        rules = table.column("rule_id").to_numpy()
        assert shard.first_rule_id == previous_stop == shard.index * CANDIDATES_PER_SHARD
        assert shard.first_rule_id <= rules.min() and rules.max() < shard.stop_rule_id
        ratios = table.column("ratio").to_numpy()
        assert ((ratios > 0.5) & (ratios < 1.0)).all() and shard.ratio_min == ratios.min()
        previous_stop = shard.stop_rule_id
    assert manifest.shards[-1].stop_rule_id == int(rules[-1]) + 1  # the last shard stops right after its last kept rule
    acceptance = manifest.acceptance
    assert sum(acceptance.histogram.counts) == acceptance.candidates == previous_stop
    assert acceptance.accepted_rules == SEQUENCES and 0.40 < acceptance.acceptance_rate < 0.52
    assert manifest.complexity["serialisation"] == "int32 little-endian"
    assert manifest.dataset_config().generator.seed == SEED and manifest.environment.device.kind == "cpu"
    [worker] = manifest.environment.workers  # one local node, one environment, whatever the worker count
    assert worker.node == "127.0.0.1" and worker.zlib == zlib.ZLIB_RUNTIME_VERSION and worker.ncaforge == __version__
    assert Image.open(os.path.join(reference, "histogram.png")).format == "PNG"
    assert Image.open(os.path.join(reference, "preview.png")).height > 4 * 48
    assert sorted(os.listdir(reference)) == sorted(dataset_files(reference))  # no journal, no temporaries
    problems, summary = verify(reference, sample=6)
    assert problems == [] and "6 rows regenerated" in summary


@needs_two_cpus
def test_the_worker_count_does_not_change_a_byte(reference, tmp_path):
    summary = run(small_config(), RunOptions(out=str(tmp_path), workers=2, progress=False))
    assert summary.workers.count == 2 and summary.workers.threads == 1
    assert summary.dataset_id == os.path.basename(reference)
    assert dataset_files(summary.dataset_dir) == dataset_files(reference)  # the manifest included


def test_rerunning_a_finished_dataset_checks_it_and_writes_nothing(reference, capsys):
    before = {name: os.stat(os.path.join(reference, name)).st_mtime_ns for name in os.listdir(reference)}
    assert main([*CLI_ARGS, "--out", os.path.dirname(reference)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert {name: os.stat(os.path.join(reference, name)).st_mtime_ns for name in os.listdir(reference)} == before


def test_kill_9_of_the_driver_then_a_rerun_gives_the_identical_dataset(reference, tmp_path):
    dataset_dir = os.path.join(tmp_path, os.path.basename(reference))
    driver = pipeline_process(str(tmp_path), "--workers", "1")
    wait_for_journal(dataset_dir, 1, driver)
    frozen = freeze_workers(driver)
    assert len(frozen) == 1
    time.sleep(0.5)  # let the driver write whatever shard it already holds
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    for worker in frozen:
        worker.send_signal(signal.SIGKILL)
    assert not os.path.exists(os.path.join(dataset_dir, "manifest.json"))
    journalled = len(os.listdir(os.path.join(dataset_dir, ".progress")))
    assert 1 <= journalled < 4
    with open(os.path.join(dataset_dir, "part-00000.arrow"), "r+b") as shard:
        shard.truncate(1000)  # damage a finished shard too: the resume must notice and remake it
    rerun = pipeline_process(str(tmp_path))
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert "part-00000.arrow is truncated or padded (1000 of" in err and "regenerating it" in err
    assert f"{journalled - 1} shard(s) kept from an earlier run" in out
    assert dataset_files(dataset_dir) == dataset_files(reference)


@needs_two_cpus
def test_kill_9_of_a_worker_is_retried_and_the_dataset_is_identical(reference, tmp_path):
    dataset_dir = os.path.join(tmp_path, os.path.basename(reference))
    driver = pipeline_process(str(tmp_path), "--workers", "2")
    wait_for_journal(dataset_dir, 1, driver)
    frozen = freeze_workers(driver)
    assert len(frozen) == 2
    frozen[0].send_signal(signal.SIGKILL)  # dies holding unfinished shards: the driver must retry them
    frozen[1].send_signal(signal.SIGCONT)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    assert not os.path.exists(os.path.join(dataset_dir, ".progress"))
    assert dataset_files(dataset_dir) == dataset_files(reference)


def test_a_damaged_shard_of_a_finished_dataset_is_named_by_verify_and_restored_by_a_rerun(reference, tmp_path, capsys):
    dataset_dir = os.path.join(tmp_path, os.path.basename(reference))
    shutil.copytree(reference, dataset_dir)
    with open(os.path.join(dataset_dir, "part-00002.arrow"), "r+b") as shard:
        shard.seek(5000)
        shard.write(b"\x00" * 64)  # same size, different bytes
    problems, _ = verify(dataset_dir)
    assert len(problems) == 1 and problems[0].startswith("part-00002.arrow: truncated or corrupt")
    assert main([*CLI_ARGS, "--out", str(tmp_path)]) == 0
    assert "part-00002.arrow is corrupt (sha256 differs from the record): regenerating it" in capsys.readouterr().err
    assert dataset_files(dataset_dir) == dataset_files(reference)
    assert verify(dataset_dir)[0] == []


def test_the_pipeline_joins_a_cluster_started_with_ray_start_on_loopback(reference, tmp_path):
    with ray_head() as (address, env, head):
        driver = pipeline_process(str(tmp_path), "--workers", "2", env={**env, "RAY_ADDRESS": address})
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err
        dataset_dir = os.path.join(tmp_path, os.path.basename(reference))
        assert dataset_files(dataset_dir) == dataset_files(reference)
        listening = listening_addresses([psutil.Process(head.pid), *psutil.Process(head.pid).children(recursive=True)])
        assert listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening


def listening_addresses(processes) -> set:
    """Addresses the processes listen on; a process that exits meanwhile (Ray's short-lived helpers) listens on none."""
    addresses = set()
    for process in processes:
        try:
            addresses |= {c.laddr.ip for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            continue
    return addresses


def test_the_local_ray_runtime_listens_on_loopback_only():
    from generator.cluster import ray_runtime

    with ray_runtime(RunOptions()) as ray:
        ray.get(ray.remote(lambda: 1).remote())  # a worker process exists too
        processes = psutil.Process().children(recursive=True)
        listening = listening_addresses(processes)
    assert len(processes) >= 3 and listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening


@pytest.mark.parametrize(
    "args, words",
    [
        (["--band", "huge"], "unknown band 'huge'"),
        (["--tokens", "0"], "0 is not positive"),
        (["--tokens", "-5"], "-5 is not positive"),
        (["--sequences", "0"], "0 is not positive"),
        (["--band", "0.7-1.0"], "band 0.7-1 accepts almost no random rules"),
        (["--out", "{tmp}/a-file/sub"], "cannot be written"),
        (["--out", "/proc/ncaforge"], "cannot be written"),
        (["--ray-address", "127.0.0.1:{closed_port}"], "is unreachable"),
        (["--ray-address", "no-port-here"], "is not host:port"),
        (["--sequences", str(10**12)], "GB free but the dataset needs up to"),
        (["--workers", str(CPUS + 1)], f"workers={CPUS + 1} but the cluster has {CPUS} CPU(s)"),
    ],
)
def test_bad_input_fails_in_one_line_before_any_work_and_leaves_nothing(args, words, tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    args = [a.format(tmp=tmp_path, closed_port=free_port()) for a in args]
    out = str(tmp_path / "out")
    argv = [*CLI_ARGS[:2], "--no-compile", "--no-progress", "--out", out, *args]
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not os.path.exists(out)


def test_a_worker_with_other_versions_is_refused_in_one_line_before_any_shard_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NCAFORGE_TEST_FAKE_VERSIONS", "torch=0.0")  # read by the workers only, not the driver
    assert main([*CLI_ARGS, "--out", str(tmp_path), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(r"error: worker on node 127\.0\.0\.1 runs torch 0\.0 but the driver runs "
                                              r"\S+: install the same versions everywhere$", err), err
    assert os.listdir(tmp_path) == []
