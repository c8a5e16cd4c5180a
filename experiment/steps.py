"""The steps of an experiment as child processes: made once, kept, and resumed after any kill.

Every step is a command line of the project's own tools (`python -m generator.pipeline`,
`generator.dyck`, `trainer.data prepare`, `trainer.main`), run as a child whose output goes to
a log file beside its result. Each tool is already resumable and deterministic, so the
experiment only has to know whether a step is finished:

- a data step is finished when its memo OUT/steps/<sha256 of the command>.json names a
  folder (relative to OUT) that still holds its manifest (the tools print the folder on
  their first line);
- a training step is finished when its run folder holds the final checkpoint and its metrics
  log ends with the final evaluation.

An unfinished step is simply run again (the trainer with --resume). Children get
PR_SET_PDEATHSIG, so a driver killed with kill -9 takes its running step with it instead of
leaving it to write beside a re-run.
"""

import ctypes
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from generator.atomic import write_bytes_atomically
from generator.errors import PipelineError
from generator.lock import folder_lock
from trainer.metrics import read_metrics

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 2.0


class StepError(Exception):
    """A step's command failed; the message names the step and its log."""


def die_with_parent() -> None:
    """In the child, before exec: be killed when the driver dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class DataStep:
    """A dataset or corpus made by a command that prints `<label> <folder>` as its first line."""

    name: str
    """What it makes, for progress lines and errors."""
    command: tuple
    """Arguments after `python -m`."""

    def key(self, out: str) -> str:
        """sha256 of the command with paths under `out` relative to it: the same wherever OUT lives."""
        portable = [os.path.relpath(part, out) if part.startswith(out + os.sep) else part for part in self.command]
        return hashlib.sha256(json.dumps(portable).encode()).hexdigest()


@dataclass(frozen=True)
class TrainStep:
    """One trainer run, from its first step to its last."""

    name: str
    """arm / seed / stage, for progress lines and errors."""
    run_dir: str
    """The run folder (its metrics.jsonl feeds the progress bar)."""
    steps: int
    """The final step."""
    tokens: int
    """Training tokens at the final step."""
    cost_per_token: float
    """Relative compute per training token (weights the progress bar's ETA)."""
    arguments: tuple = field(default=())
    """Arguments of `python -m trainer.main` (without --resume)."""
    processes: int = 1
    """Trainer processes (torchrun ranks on this machine; 1 runs trainer.main directly)."""

    def command(self) -> list:
        """`python -m` arguments that continue this run."""
        launcher = (["torch.distributed.run", "--standalone", f"--nproc-per-node={self.processes}", "-m"]
                    if self.processes > 1 else [])
        return [*launcher, "trainer.main", *self.arguments, "--resume"]


def run_child(arguments: list, log_path: str, on_poll=None) -> None:
    """Run `python -m <arguments>`, output appended to `log_path`; call on_poll() every few seconds."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n$ python -m {' '.join(arguments)}\n".encode())
        log.flush()
        child = subprocess.Popen([sys.executable, "-m", *arguments], stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        try:
            while child.poll() is None:
                time.sleep(POLL_SECONDS)
                if on_poll:
                    on_poll()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    if child.returncode != 0:
        program = next(argument for argument in arguments if not argument.startswith("-") and argument != "torch.distributed.run")
        raise StepError(f"{program} exited with {child.returncode}: see the last lines of {log_path}")


class DataSteps:
    """Data steps memoised under OUT/steps/."""

    def __init__(self, out: str):
        self.out = os.path.abspath(out)
        self.memo_dir = os.path.join(out, "steps")
        self.log_dir = os.path.join(out, "logs")

    def memo_path(self, step: DataStep) -> str:
        return os.path.join(self.memo_dir, f"{step.key(self.out)}.json")

    def finished(self, step: DataStep) -> str | None:
        """The step's folder when it is finished, else None."""
        try:
            with open(self.memo_path(step), encoding="utf-8") as f:
                folder = os.path.join(self.out, json.load(f)["folder"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return folder if os.path.isfile(os.path.join(folder, "manifest.json")) else None

    def run(self, step: DataStep) -> str:
        """The step's folder, made now unless already finished."""
        folder = self.finished(step)
        if folder:
            return folder
        log_path = os.path.join(self.log_dir, f"{step.name}.log")
        start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        run_child(list(step.command), log_path)
        with open(log_path, "rb") as f:
            f.seek(start)
            lines = f.read().decode(errors="replace").splitlines()
        folder = next((line.split(maxsplit=1)[1].split(" (")[0].strip() for line in lines
                       if line.startswith(("dataset ", "corpus "))), None)
        if not folder or not os.path.isfile(os.path.join(folder, "manifest.json")):
            raise StepError(f"{step.name}: the command did not name a finished folder: see {log_path}")
        os.makedirs(self.memo_dir, exist_ok=True)
        memo = {"command": list(step.command), "folder": os.path.relpath(folder, self.out)}
        write_bytes_atomically(self.memo_path(step), json.dumps(memo, indent=1).encode())
        return folder


def trained_tokens(run_dir: str) -> int:
    """Training tokens a run has logged so far (0 before its first step)."""
    records = read_metrics(run_dir) if os.path.isfile(os.path.join(run_dir, "metrics.jsonl")) else []
    return max((record.get("tokens", 0) for record in records if record.get("kind") == "train"), default=0)


def train_finished(step: TrainStep) -> bool:
    """Whether the run holds its final checkpoint and ends with the final evaluation."""
    if not os.path.isfile(os.path.join(step.run_dir, f"step-{step.steps:08d}", "meta.json")):
        return False
    evaluations = [r for r in read_metrics(step.run_dir) if r.get("kind") == "eval"]
    return bool(evaluations) and evaluations[-1]["step"] == step.steps


def run_train(step: TrainStep, on_poll=None) -> None:
    """Train until the final step, resuming whatever the run folder holds, holding the folder's lock:
    another experiment that shares the run (a follow-up recipe) stops at once instead of training it too."""
    try:
        with folder_lock(step.run_dir, "training this run"):
            if not train_finished(step):
                run_child(step.command(), f"{step.run_dir}.log", on_poll)
    except PipelineError as error:
        raise StepError(str(error)) from None
    if not train_finished(step):
        raise StepError(f"{step.name}: the trainer stopped before step {step.steps}: see {step.run_dir}.log")
