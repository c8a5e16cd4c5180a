"""Validation on held-out rules: loss, perplexity and loss per frame, beside both baselines.

The same rows every time (the first eval_rows of the validation range), split across
ranks by stride; sums of losses per frame are all-reduced, so the numbers do not depend
on the world size. The baselines (trainer.baselines) are computed once, on the same rows,
when the run starts, and repeated in every evaluation record so each line stands alone.
"""

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from trainer.baselines import summarise_baselines
from trainer.objective import target_frames, target_mask, token_losses


@dataclass
class ValidationSet:
    """The evaluation rows and what does not change between evaluations."""

    samples: torch.Tensor
    """(rows, context + 1) int64 tokens of every evaluation row (all ranks)."""
    frames: torch.Tensor
    """0-based frame of each target."""
    frame_count: int
    """Frames a sequence spans (targets included)."""
    baselines: dict
    """trainer.baselines.summarise_baselines on these rows."""
    origin: str
    """Where the rows come from, for the log."""


def build_validation_set(samples: np.ndarray, unigram: np.ndarray, tokens_per_frame: int, origin: str) -> ValidationSet:
    length = samples.shape[1] - 1
    frames = target_frames(length, tokens_per_frame)
    frame_count = int(frames.max()) + 1
    baselines = summarise_baselines(samples, unigram, target_mask(length, tokens_per_frame).numpy(), frames.numpy(),
                                    frame_count)
    return ValidationSet(torch.from_numpy(samples.astype(np.int64)), frames, frame_count, baselines, origin)


@torch.no_grad()
def evaluate(model, validation: ValidationSet, micro_batch: int, device: torch.device, rank: int, world: int) -> dict:
    """Loss, perplexity and per-frame loss (frames 2.., 1-based) of `model` on the validation rows."""
    was_training = model.training
    model.eval()
    frame_sums = torch.zeros(validation.frame_count, dtype=torch.float64)
    frame_counts = torch.zeros(validation.frame_count, dtype=torch.float64)
    mine = validation.samples[rank::world]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    for first in range(0, len(mine), micro_batch):
        batch = mine[first:first + micro_batch].to(device)
        with autocast:
            logits = model(batch[:, :-1])
        losses = token_losses(logits, batch[:, 1:]).double().cpu()
        frame_sums.index_add_(0, validation.frames, losses.sum(0))
        frame_counts.index_add_(0, validation.frames, torch.full_like(validation.frames, len(batch), dtype=torch.float64))
    if world > 1:
        totals = torch.stack([frame_sums, frame_counts]).to(device)
        dist.all_reduce(totals)
        frame_sums, frame_counts = totals.cpu()[0], totals.cpu()[1]
    model.train(was_training)
    counted = slice(1, None)  # the first frame is context only
    loss = float(frame_sums[counted].sum() / frame_counts[counted].sum())
    per_frame = (frame_sums[counted] / frame_counts[counted].clamp(min=1)).tolist()
    return {"loss": loss, "perplexity": math.exp(loss), "per_frame": per_frame, "rows": len(validation.samples),
            "baselines": validation.baselines}
