"""The dataset lock (generator.lock) with real processes and real files: a second run on a dataset another run
holds stops at once in one line and touches nothing, the first run finishes undisturbed, a check of a finished
dataset waits its turn too, and a holder killed with kill -9 leaves nothing that stops the next run."""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from generator.config import DatasetConfig, GeneratorConfig, RunOptions
from generator.dyck.__main__ import main as dyck_main
from generator.dyck.config import DyckConfig
from generator.dyck.writer import make_dataset
from generator.format import MANIFEST_NAME
from generator.lock import lock_path
from generator.planning import dataset_id, local_device_kind
from tests.conftest import ROOT
from tests.pipeline_runs import dataset_files, freeze_workers, pipeline_process, wait_for_journal

TINY = DatasetConfig(sequences=200, candidates_per_shard=256,
                     generator=GeneratorConfig(seed=5, band="high", compile=False, rules_per_batch=256))
"""Two shards of 256 candidate rules: a dataset in seconds once Ray is up."""
TINY_ARGS = ["--band", "high", "--seed", "5", "--sequences", "200", "--candidates-per-shard", "256", "--batch", "256",
             "--no-compile", "--no-progress", "--workers", "1"]
DYCK = DyckConfig(sequences=300, sequences_per_shard=128)
DYCK_ARGS = ["--sequences", "300", "--sequences-per-shard", "128", "--no-progress"]
HOLDER = """import sys
from generator.lock import dataset_lock
with dataset_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""
"""Holds a dataset's lock from `held` on stdout until its stdin closes."""
CONTENDER = """import os, sys
from generator.errors import PipelineError
from generator.lock import dataset_lock
folder, rounds = sys.argv[1], int(sys.argv[2])
while rounds:
    try:
        with dataset_lock(folder):
            os.close(os.open(folder + ".inside", os.O_WRONLY | os.O_CREAT | os.O_EXCL))  # fails if another holds it
            os.remove(folder + ".inside")
            rounds -= 1
    except PipelineError:
        pass
"""
"""Takes and releases a dataset's lock `rounds` times, marking the time it holds it with a file."""


def snapshot(root: Path) -> dict:
    """relative path -> (mtime_ns, bytes, or None for a folder) of everything under root, hidden files included."""
    return {str(path.relative_to(root)): (path.stat().st_mtime_ns, None if path.is_dir() else path.read_bytes())
            for path in sorted(root.rglob("*"))}


def refusal(prog: str, dataset_dir, pid: int) -> str:
    """The one line, as a pattern, of a run refused because process `pid` of this host holds `dataset_dir`."""
    return (f"{re.escape(prog)}: error: {re.escape(str(dataset_dir))}: another run \\(pid {pid} on host "
            f"{re.escape(socket.gethostname())}, started \\d{{4}}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\S+\\) is making "
            f"or checking this dataset: wait for it to finish, or use another --out\n")


def hold_lock(dataset_dir) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(dataset_dir)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_second_pipeline_run_stops_in_one_line_touches_nothing_and_the_first_finishes_undisturbed(tmp_path):
    identity = dataset_id(TINY, local_device_kind(RunOptions()))
    out, dataset_dir = tmp_path / "shared", tmp_path / "shared" / identity
    first = pipeline_process(str(out), cli_args=TINY_ARGS)
    frozen, reference = [], None
    try:
        wait_for_journal(str(dataset_dir), 1, first)
        frozen = [*freeze_workers(first), psutil.Process(first.pid)]
        frozen[-1].suspend()  # the driver too: nothing changes in the folder but what the second run would do
        reference = pipeline_process(str(tmp_path / "reference"), cli_args=TINY_ARGS)  # undisturbed, on idle cores
        writing = dataset_dir / f".tmp-{first.pid}-part-00001.arrow"
        writing.write_bytes(b"a shard being written")  # a run that checks the folder deletes such leftovers
        before = snapshot(out)
        second = subprocess.run([sys.executable, "-m", "generator.pipeline", *TINY_ARGS, "--out", str(out)], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and second.stdout == ""
        expected = refusal("python -m generator.pipeline", dataset_dir, first.pid)
        assert re.fullmatch(expected, second.stderr), second.stderr
        assert snapshot(out) == before
        writing.unlink()
        for process in reversed(frozen):
            process.resume()
        for process in (first, reference):
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
    finally:  # after a failure, nothing stays running, or stopped
        for process in frozen:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        for process in (first, reference):
            if process is not None and process.poll() is None:
                process.kill()
    assert dataset_files(str(dataset_dir)) == dataset_files(str(tmp_path / "reference" / identity))
    assert os.listdir(out) == [identity] and sorted(os.listdir(dataset_dir)) == sorted(dataset_files(str(dataset_dir)))


def test_a_dyck_run_stops_while_another_process_holds_the_dataset_and_takes_it_over_after_kill_9(tmp_path):
    reference = Path(make_dataset(DYCK, str(tmp_path / "reference"), progress=False).dataset_dir)
    out, folder = tmp_path / "shared", tmp_path / "shared" / reference.name
    shutil.copytree(reference, folder)
    (folder / MANIFEST_NAME).unlink()  # an unfinished dataset, its holder writing the last shard
    (folder / "part-00002.arrow").rename(folder / ".tmp-4242-part-00002.arrow")
    holder = hold_lock(folder)
    command = [sys.executable, "-m", "generator.dyck", *DYCK_ARGS, "--out", str(out)]
    try:
        before = snapshot(out)
        refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1 and refused.stdout == ""
        assert re.fullmatch(refusal("python -m generator.dyck", folder, holder.pid), refused.stderr), refused.stderr
        assert snapshot(out) == before
    finally:
        holder.kill()
        holder.wait()
    assert os.path.isfile(lock_path(str(folder)))  # kill -9 leaves the file; the kernel dropped the flock
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert snapshot(folder).keys() == snapshot(reference).keys()  # the holder's temporary gone, no lock inside
    assert dataset_files(str(folder)) == dataset_files(str(reference))
    assert os.listdir(out) == [reference.name]  # the lock file went with the run that took it over


def test_a_check_of_a_finished_dataset_waits_for_the_holder_because_it_may_restore_a_shard(tmp_path, capsys):
    folder = Path(make_dataset(DYCK, str(tmp_path), progress=False).dataset_dir)
    damaged = (folder / "part-00001.arrow").read_bytes()[:1000]
    (folder / "part-00001.arrow").write_bytes(damaged)
    holder = hold_lock(folder)
    try:
        assert dyck_main([*DYCK_ARGS, "--out", str(tmp_path)]) == 1
        assert re.fullmatch(refusal("python -m generator.dyck", folder, holder.pid), capsys.readouterr().err)
        assert (folder / "part-00001.arrow").read_bytes() == damaged
    finally:
        holder.stdin.close()  # the holder leaves its block: the lock is released and its file deleted
        assert holder.wait(timeout=60) == 0
    assert os.listdir(tmp_path) == [folder.name]
    assert dyck_main([*DYCK_ARGS, "--out", str(tmp_path)]) == 0
    assert "1 damaged shard(s) restored" in capsys.readouterr().out


def test_runs_taking_and_releasing_the_lock_in_a_tight_loop_never_hold_it_together(tmp_path):
    """The holder deletes the lock file, and OUT if it made it, on release: a run that opened the file just before
    must not lock the deleted one, nor fail because OUT went away."""
    folder = tmp_path / "a" / "out" / "dataset"
    contenders = [subprocess.Popen([sys.executable, "-c", CONTENDER, str(folder), "300"], cwd=ROOT,
                                   stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for contender in contenders:
        _, err = contender.communicate(timeout=120)
        assert contender.returncode == 0, err
    assert [path for path in tmp_path.rglob("*") if not path.is_dir()] == []
