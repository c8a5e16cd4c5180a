"""The training loop, wired from its parts: data plan, model, optimiser, checkpoints, metrics.

One optimiser step reads grad_accum micro-batches per rank, averages gradients across
ranks (DDP, synchronised on the last micro-batch only), clips if asked, steps the
optimiser and the schedule. Every eval_every steps it validates on held-out rules,
every checkpoint_every steps it writes a checkpoint, and each logged step and
evaluation becomes a line of RUN/metrics.jsonl.

Resume is exact: a checkpoint holds the step, and the data stream is a pure function of
(seed, epoch, dataset digest) and the step, so a run killed at step k and resumed
computes the same bits as one that never stopped (on CPU; CUDA kernels may not be
bitwise deterministic). A resumed run must have the same identity: the config minus
the fields that change how it runs but not what it computes (listed in RUNTIME_FIELDS),
and every rank must find the same checkpoint (on several nodes, a run folder they share).
"""

import contextlib
import json
import os
import sys
import time

import torch
from torch.nn.parallel import DistributedDataParallel

import generator
from generator.atomic import write_bytes_atomically
from trainer.checkpoint import (CheckpointError, checkpoint_steps, latest_checkpoint, load_states,
                                remove_partial_checkpoints, save_checkpoint)
from trainer.config import RunConfig, config_from_dict
from trainer.data_plan import plan_data
from trainer.distributed import Process, barrier, gathered, mean_across_ranks
from trainer.loader import StreamSpec, micro_batch_loader
from trainer.metrics import MetricsLog
from trainer.model import Transformer, padded_vocab
from trainer.objective import masked_mean_loss
from trainer.optim import build_optimizer, build_schedule
from trainer.transfer import freeze, transfer
from trainer.validation import evaluate, validation_set

CONFIG_NAME = "config.json"
RUNTIME_FIELDS = {"data": ("train", "validation", "cache_dir", "loader_workers"),
                  "train": ("run_dir", "progress", "threads", "collective_timeout", "log_every", "eval_every",
                            "checkpoint_every", "keep_checkpoints")}
"""Config fields a resumed run may change: where data and runs live, and how the loop reports.
The data itself is pinned by its digest instead of its location."""


def run_identity(config: RunConfig) -> dict:
    """What a resumed run must share with its checkpoint. With a constant learning rate the number
    of steps decides nothing before the last one, so a finished run can be extended with more."""
    identity = config.to_dict()
    for section, names in RUNTIME_FIELDS.items():
        for name in names:
            identity[section].pop(name)
    if config.optim.decay == "constant":
        identity["train"].pop("steps")
    return identity


def first_difference(saved: dict, current: dict, prefix: str = "") -> str:
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b and not (isinstance(a, list) and isinstance(b, tuple) and a == list(b)):
            return f"{prefix}{key} was {a!r}, now {b!r}"
    return ""


def code_version() -> dict:
    from generator.manifest import git_lineage

    lineage = git_lineage()
    return {"ncaforge": generator.__version__, "git_commit": lineage.git_commit, "git_dirty": lineage.git_dirty}


def evaluation_line(record: dict) -> str:
    """One line for the console: the validation loss and what to compare it with."""
    line = f"step {record['step']}: validation loss {record['loss']:.4f}, perplexity {record['perplexity']:.2f}"
    if "baselines" in record:
        baselines = record["baselines"]
        line += (f" (in-context unigram {baselines['in_context_unigram']['loss']:.4f}, "
                 f"unigram {baselines['unigram']['loss']:.4f})")
    if "bits_per_byte" in record:
        line += f", {record['bits_per_byte']:.3f} bits per byte"
    return line


class Trainer:
    """The state of one rank's run."""

    def __init__(self, config: RunConfig, process: Process, resume: bool):
        self.config, self.process = config, process
        self.run_dir = config.train.run_dir
        checkpoint, meta = latest_checkpoint(self.run_dir) if resume else (None, None)
        if not resume and checkpoint_steps(self.run_dir):
            raise CheckpointError(f"{self.run_dir} already holds checkpoints: pass --resume to continue that run, "
                                  f"or choose another --train.run_dir")
        if resume:
            self._agree_on(checkpoint)
        self.plan = plan_data(config, process.world)
        self.vocab_size = self.plan.train.vocab_size
        self.global_batch = config.train.micro_batch * config.train.grad_accum * process.world
        self.model = Transformer(config.model, self.vocab_size)
        self.model.init_weights(torch.Generator().manual_seed(config.train.seed))
        self.transfer = transfer(self.model, config.transfer) if config.transfer.init_from and not checkpoint else None
        self.frozen = freeze(self.model, config.transfer)
        self.model.to(process.device)
        self.ddp = DistributedDataParallel(self.model) if process.world > 1 else self.model
        self.optimizer = build_optimizer(self.model, config.optim)
        self.schedule = build_schedule(self.optimizer, config.optim, config.train.steps)
        self.code = code_version()
        self.step = 0
        if checkpoint:
            self._restore(checkpoint, meta)
        self.validation = validation_set(config, self.plan)
        if process.is_main:
            os.makedirs(self.run_dir, exist_ok=True)
            remove_partial_checkpoints(self.run_dir)
            write_bytes_atomically(os.path.join(self.run_dir, CONFIG_NAME),
                                   (json.dumps(config.to_dict(), indent=1, sort_keys=True) + "\n").encode())
        self.metrics = MetricsLog(self.run_dir, process.is_main, self.step if checkpoint else None)

    # --- state ------------------------------------------------------------------------------

    def meta(self) -> dict:
        return {"stage": self.config.stage, "config": self.config.to_dict(), "identity": run_identity(self.config),
                "vocab_size": self.vocab_size, "padded_vocab": padded_vocab(self.vocab_size, self.config.model.vocab_multiple),
                "data": self.plan.describe(), "world": self.process.world, "global_batch": self.global_batch,
                "code": self.code, "parameters": self.model.parameter_count(),
                "transfer": self.transfer, "frozen": self.frozen}

    def _agree_on(self, checkpoint: str | None) -> None:
        """Every rank must resume from the same checkpoint: only rank 0 writes them, so on several nodes
        the run folder must be one they share."""
        found = [os.path.basename(folder) if folder else "none" for folder in gathered(checkpoint, self.process)]
        other = next((rank for rank, name in enumerate(found) if name != found[0]), None)
        if other is not None:
            raise CheckpointError(f"the ranks found different checkpoints to resume from in {self.run_dir} (rank 0 "
                                  f"{found[0]}, rank {other} {found[other]}): to resume on several nodes, "
                                  f"--train.run_dir must be a folder they all share, or hold a copy of rank 0's")

    def _restore(self, folder: str, meta: dict) -> None:
        # the saved config read by this code: fields added since it was written take their defaults
        difference = first_difference(run_identity(config_from_dict(meta["config"])), run_identity(self.config))
        if difference:
            raise CheckpointError(f"{folder} belongs to a different run ({difference}): resume with the same "
                                  f"recipe and overrides, or choose another --train.run_dir")
        saved_digest, digest = meta["data"]["train"]["digest"], self.plan.train.digest
        if saved_digest != digest:
            raise CheckpointError(f"{folder} was trained on dataset {meta['data']['train']['id']} (digest "
                                  f"{saved_digest[:12]}), not on {self.plan.train.id} ({digest[:12]}): "
                                  f"resume on the same data, or choose another --train.run_dir")
        if meta["global_batch"] != self.global_batch:
            raise CheckpointError(f"{folder} used a global batch of {meta['global_batch']} rows, this job "
                                  f"{self.global_batch} ({self.process.world} ranks): resume with the same "
                                  f"micro_batch x grad_accum x ranks")
        self.transfer = meta.get("transfer")
        states = load_states(folder)
        self.model.load_state_dict(states["model.pt"])
        self.optimizer.load_state_dict(states["optimizer.pt"])
        self.schedule.load_state_dict(states["state.pt"]["schedule"])
        torch.set_rng_state(states["state.pt"]["rng"]["torch"])
        self.step = states["state.pt"]["data"]["step"]

    def _states(self) -> dict:
        samples = self.step * self.global_batch
        return {"model.pt": self.model.state_dict(), "optimizer.pt": self.optimizer.state_dict(),
                "state.pt": {"schedule": self.schedule.state_dict(), "rng": {"torch": torch.get_rng_state()},
                             "data": {"step": self.step, "samples": samples,
                                      "epoch": samples / self.plan.train_row_count}}}

    # --- the loop ---------------------------------------------------------------------------

    def _autocast(self):
        if self.process.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train_step(self, batches) -> tuple:
        """One optimiser step; returns (mean loss across ranks and micro-batches, gradient norm)."""
        accumulation = self.config.train.grad_accum
        losses = []
        for index in range(accumulation):
            _, tokens = next(batches)
            tokens = tokens.to(self.process.device, non_blocking=True)
            last = index == accumulation - 1
            synchronise = contextlib.nullcontext() if last or self.process.world == 1 else self.ddp.no_sync()
            with synchronise:
                with self._autocast():
                    logits = self.ddp(tokens[:, :-1])
                loss = masked_mean_loss(logits, tokens[:, 1:], self.plan.train.masked_targets)
                (loss / accumulation).backward()
            losses.append(float(loss.detach()))
        clip = self.config.optim.grad_clip or float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        return mean_across_ranks(sum(losses) / len(losses), self.process), grad_norm

    def _evaluate(self) -> dict:
        result = evaluate(self.model, self.validation, self.config.train.micro_batch, self.process.device,
                          self.process.rank, self.process.world)
        record = {"kind": "eval", "step": self.step, "tokens": self.step * self.global_batch * self.config.model.context,
                  "validation": self.validation.origin, **result}
        self.metrics.write(record)
        return record

    def stream_spec(self) -> StreamSpec:
        """What decides this rank's training rows and their order."""
        train = self.config.train
        return StreamSpec(self.plan.train, self.plan.train_blocks(), self.config.data.shuffle_window, train.seed,
                          train.micro_batch, train.grad_accum, self.process.rank, self.process.world,
                          self.config.model.context + 1)

    def _checkpoint(self) -> None:
        if self.process.is_main:
            save_checkpoint(self.run_dir, self.step, self._states(), self.meta(), self.config.train.keep_checkpoints)
        barrier(self.process)

    def run(self) -> dict:
        """Train to config.train.steps; return the last evaluation record."""
        from tqdm import tqdm

        train = self.config.train
        tokens_per_step = self.global_batch * self.config.model.context
        self.metrics.write({"kind": "start", "step": self.step, "world": self.process.world,
                            "device": str(self.process.device), "threads": torch.get_num_threads(),
                            "parameters": self.model.parameter_count(),
                            "non_embedding_parameters": self.model.parameter_count(embeddings=False),
                            "flops_per_token": self.model.flops_per_token(), "tokens_per_step": tokens_per_step,
                            **self.plan.describe()})
        last_eval = self._evaluate() if self.step == 0 else None
        loader = micro_batch_loader(self.stream_spec(), self.step * train.grad_accum, self.config.data.loader_workers)
        batches = iter(loader)
        bar = tqdm(total=train.steps, initial=self.step, unit="step", file=sys.stderr, dynamic_ncols=True,
                   disable=not (train.progress and self.process.is_main), smoothing=0.1)
        interval_start, interval_steps = time.perf_counter(), 0
        while self.step < train.steps:
            loss, grad_norm = self._train_step(batches)
            self.step += 1
            interval_steps += 1
            bar.update(1)
            if self.step % train.log_every == 0 or self.step == train.steps:
                elapsed = time.perf_counter() - interval_start
                rate = interval_steps * tokens_per_step / max(elapsed, 1e-9)
                self.metrics.write({"kind": "train", "step": self.step, "loss": loss,
                                    "lr": self.schedule.get_last_lr()[0], "grad_norm": grad_norm,
                                    "tokens": self.step * tokens_per_step, "tokens_per_s": rate,
                                    "epoch": self.step * self.global_batch / self.plan.train_row_count})
                bar.set_postfix_str(f"loss {loss:.3f}, {rate:,.0f} tok/s", refresh=False)
                interval_start, interval_steps = time.perf_counter(), 0
            if self.step % train.eval_every == 0 or self.step == train.steps:
                last_eval = self._evaluate()
                if self.process.is_main:
                    bar.write(evaluation_line(last_eval))
            if self.step % train.checkpoint_every == 0 or self.step == train.steps:
                self._checkpoint()
            if self.step % train.log_every == 0:
                interval_start = time.perf_counter()  # evaluation and checkpoint time is not training time
        bar.close()
        del batches, loader
        self.metrics.close()
        return last_eval or {}
