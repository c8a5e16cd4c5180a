"""One run at a time per dataset: an exclusive lock on OUT/.<dataset-id>.lock, held for the whole run.
(experiment.steps locks each training run's folder the same way, so two experiments sharing run
folders, a follow-up recipe started while its parent recipe still runs, never train one run twice.)

A run removes what it takes for an interrupted run's leftovers (temporary files) and rewrites
what it finds damaged, so two runs on one dataset folder (two users on one shared disk, a
command started twice) would delete each other's files. Before it checks or writes anything in
the folder, a run therefore takes a non-blocking flock on a file beside it; a second run finds it
taken and stops at once, in one line naming the holder (pid, host and start time, which the
holder writes into the file right after taking it) and the fix.

The kernel drops an flock when its process dies, so a run killed with kill -9 leaves no stale
lock: its file stays, and the next run takes it over. The file lies beside the folder, not in it,
so it is no file of the dataset: the folder still appears with its first shard, and a check that
finds a finished dataset intact leaves it untouched. Its name starts with a dot, which no dataset
id does, so the catalog skips it. The holder deletes the file when done, while still holding it;
a run that opened it just before then finds that the name leads to another file, or none, and
starts again, so two runs never hold locks on two different files. An OUT made for the lock
goes with it if the run put nothing in it, so a run stopped after taking the lock (more workers
than CPUs, a worker with other versions) still leaves nothing behind. On NFS, Linux clients map
flock to NFS byte-range locks, so the lock holds between hosts too.
"""

import contextlib
import datetime
import fcntl
import os
import socket

from generator.errors import PipelineError

RECORD_BYTES = 512
"""The most of a lock file read back for the message."""


def lock_path(dataset_dir: str) -> str:
    """OUT/.<dataset-id>.lock for the dataset folder OUT/<dataset-id>."""
    parent, name = os.path.split(os.path.normpath(dataset_dir))
    return os.path.join(parent, f".{name}.lock")


def holder_record() -> str:
    """Who holds the lock, as the message of a refused run shows it."""
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"pid {os.getpid()} on host {socket.gethostname()}, started {started}"


def names_this_file(path: str, descriptor: int) -> bool:
    """Whether `path` still leads to the file open as `descriptor`."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def refusal(folder: str, descriptor: int, activity: str) -> PipelineError:
    """The one line for a run that finds the lock taken; the holder is named when it has recorded itself."""
    lines = os.pread(descriptor, RECORD_BYTES, 0).decode(errors="replace").strip().splitlines()
    holder = f" ({lines[0].strip()})" if lines else ""
    return PipelineError(f"{folder}: another run{holder} is {activity}: wait for it to finish, or use another --out")


def missing_folders(folder: str) -> list:
    """`folder` and those of its ancestors that do not exist, deepest first: what makedirs(folder) creates."""
    missing = []
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing


def acquire(path: str, folder: str, activity: str) -> int:
    """Open and flock the lock file; its descriptor, or PipelineError when another run holds it."""
    while True:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # a run that made OUT for its lock removed it on finishing, as this run was about to open
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            error = refusal(folder, descriptor, activity)
            os.close(descriptor)
            raise error from None
        if names_this_file(path, descriptor):
            return descriptor
        os.close(descriptor)  # its holder deleted it as this run opened it: lock the file under the name now


def dataset_lock(dataset_dir: str):
    """Hold the lock of the dataset folder `dataset_dir` for the block (the folder need not exist);
    PipelineError in one line, before anything is touched, when another run holds it."""
    return folder_lock(dataset_dir, "making or checking this dataset")


@contextlib.contextmanager
def folder_lock(folder: str, activity: str):
    """Hold the lock of `folder` (OUT/.<name>.lock beside it) for the block; PipelineError in one
    line saying another run is `activity` when it is taken."""
    path = lock_path(os.path.abspath(folder))
    created = missing_folders(os.path.dirname(path))
    descriptor = acquire(path, folder, activity)
    try:
        record = f"{holder_record()}\n".encode()
        os.pwrite(descriptor, record, 0)
        os.ftruncate(descriptor, len(record))  # a killed holder's longer record leaves no tail
        yield
    finally:
        if names_this_file(path, descriptor):  # not when deleted by hand and taken by another run meanwhile
            os.remove(path)
        os.close(descriptor)
        for folder in created:  # OUT, made for the lock, goes again if the run put nothing in it
            with contextlib.suppress(OSError):
                os.rmdir(folder)
