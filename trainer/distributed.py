"""One process of a torchrun job (or a plain single process): rank, world, device, threads.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE; without them the
trainer is one process. The process group uses gloo on CPU and nccl on CUDA, with a
timeout on every collective, so a rank that dies cannot leave the others waiting
forever: a surviving rank's next collective fails (gloo notices the closed connection
at once; otherwise the timeout fires), it exits with an error, and torchrun stops the job.
`failed_collective` tells such a failure from any other error, so the rank can say in one
line what happened and what to do instead of printing the backend's traceback.
"""

import datetime
import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

from trainer.config import TrainConfig


@dataclass(frozen=True)
class Process:
    """This process's place in the job."""

    rank: int
    """Global rank, 0 .. world - 1."""
    world: int
    """Processes in the job."""
    local_rank: int
    """Rank among the processes of this machine."""
    local_world: int
    """Processes on this machine."""
    device: torch.device
    """Where this rank computes."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start_process(config: TrainConfig) -> Process:
    """Read torchrun's environment, join the process group, pick the device and the thread count."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank, local_world = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but CUDA is not available here: use --train.device cpu or auto")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // local_world))
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=config.collective_timeout))
    return Process(rank, world, local_rank, local_world, device)


def stop_process() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(process: Process) -> None:
    if process.world > 1:
        dist.barrier()


def mean_across_ranks(value: float, process: Process) -> float:
    if process.world == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=process.device)
    dist.all_reduce(total)
    return float(total.cpu()) / process.world


def gathered(value, process: Process) -> list:
    """`value` (any picklable object) from every rank, in rank order."""
    if process.world == 1:
        return [value]
    values = [None] * process.world
    dist.all_gather_object(values, value)
    return values


def failed_collective(error: BaseException) -> str:
    """The backend's reason in one line when `error` is a collective that failed (a rank gone, a closed
    connection, a timeout), else ''. gloo raises plain RuntimeErrors naming its own source file."""
    text = str(error).strip()
    if not isinstance(error, dist.DistError) and "/gloo/" not in text:
        return ""
    first = re.sub(r"^\[[^\]]*\] ", "", (text.splitlines() or [type(error).__name__])[0])
    return first.split(". ")[0].rstrip(".")
