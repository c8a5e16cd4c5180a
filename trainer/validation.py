"""Validation: loss and perplexity on held-out rows, and what they mean for each kind of data.

The same rows every time (the first eval_rows of the validation range), split across
ranks by stride; sums of losses are all-reduced, so the numbers do not depend on the
world size.

- NCA rows (held-out rules) also give the loss per frame and, beside it, both baselines
  of trainer.baselines, computed once on the same rows when the run starts and repeated
  in every evaluation record so each line stands alone.
- Dyck rows (held-out sequences) give both baselines the same way, over whole sequences:
  a Dyck row has no frames, so no per-frame figures and no masked targets.
- Text windows (held-out documents) also give bits per byte: the loss in bits spread over
  the UTF-8 bytes the tokens stand for, comparable across tokenizers.
"""

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from trainer.baselines import FIRST_SCORED_FRAME, summarise_baselines, unigram_distribution
from trainer.config import RunConfig
from trainer.data_plan import DataPlan, read_rows, unigram_rows
from trainer.objective import target_frames, target_mask, token_losses


@dataclass
class ValidationSet:
    """The evaluation rows and what does not change between evaluations."""

    samples: torch.Tensor
    """(rows, context + 1) int64 tokens of every evaluation row (all ranks)."""
    masked_targets: int
    """Leading targets the loss ignores (the NCA first frame; 0 for text)."""
    origin: str
    """Where the rows come from, for the log."""
    frames: torch.Tensor | None = None
    """NCA: 0-based frame of each target."""
    baselines: dict | None = None
    """NCA and Dyck: trainer.baselines.summarise_baselines on these rows."""
    bytes_per_token: float | None = None
    """Text: UTF-8 bytes per token of the validation split, for bits per byte."""


def nca_validation_set(samples: np.ndarray, unigram: np.ndarray, tokens_per_frame: int, origin: str) -> ValidationSet:
    length = samples.shape[1] - 1
    frames = target_frames(length, tokens_per_frame)
    mask = target_mask(length, tokens_per_frame - 1).numpy()
    baselines = summarise_baselines(samples, unigram, mask, frames.numpy(), int(frames.max()) + 1)
    return ValidationSet(torch.from_numpy(samples.astype(np.int64)), tokens_per_frame - 1, origin, frames, baselines)


def dyck_validation_set(samples: np.ndarray, unigram: np.ndarray, origin: str) -> ValidationSet:
    """Dyck rows: every target counts, and the baselines cover whole sequences."""
    mask = np.ones(samples.shape[1] - 1, dtype=bool)
    return ValidationSet(torch.from_numpy(samples.astype(np.int64)), 0, origin,
                         baselines=summarise_baselines(samples, unigram, mask))


def text_validation_set(samples: np.ndarray, bytes_per_token: float, origin: str) -> ValidationSet:
    return ValidationSet(torch.from_numpy(samples.astype(np.int64)), 0, origin, bytes_per_token=bytes_per_token)


def validation_set(config: RunConfig, plan: DataPlan) -> ValidationSet:
    """The evaluation rows of a plan, with what its stage reports beside the loss."""
    tokens = config.model.context + 1
    samples = read_rows(plan.validation, plan.validation_rows, tokens)
    origin = f"{plan.validation.id} rows {plan.validation_rows[0]}..{plan.validation_rows[1] - 1}"
    if config.stage == "language":
        return text_validation_set(samples, plan.validation.bytes_per_token, origin)
    unigram = unigram_distribution(unigram_rows(plan, tokens), plan.train.vocab_size)
    if plan.train.is_dyck:
        return dyck_validation_set(samples, unigram, origin)
    return nca_validation_set(samples, unigram, plan.train.tokens_per_frame, origin)


@torch.no_grad()
def evaluate(model, validation: ValidationSet, micro_batch: int, device: torch.device, rank: int, world: int) -> dict:
    """Loss and perplexity of `model` on the validation rows, with per-frame loss and baselines (NCA),
    baselines (Dyck) or bits per byte (text)."""
    was_training = model.training
    model.eval()
    length = validation.samples.shape[1] - 1
    frames = validation.frames if validation.frames is not None else torch.zeros(length, dtype=torch.long)
    frame_count = int(frames.max()) + 1
    counted = target_mask(length, validation.masked_targets)
    sums = torch.zeros(frame_count, dtype=torch.float64)  # per frame (one bin for text), counted targets only
    counts = torch.zeros(frame_count, dtype=torch.float64)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    mine = validation.samples[rank::world]
    for first in range(0, len(mine), micro_batch):
        batch = mine[first:first + micro_batch].to(device)
        with autocast:
            logits = model(batch[:, :-1])
        losses = token_losses(logits, batch[:, 1:]).double().cpu()
        sums.index_add_(0, frames[counted], losses[:, counted].sum(0))
        counts.index_add_(0, frames[counted], torch.full((int(counted.sum()),), float(len(batch)), dtype=torch.float64))
    if world > 1:
        totals = torch.stack([sums, counts]).to(device)
        dist.all_reduce(totals)
        sums, counts = totals.cpu()[0], totals.cpu()[1]
    model.train(was_training)
    loss = float(sums.sum() / counts.sum())
    result = {"loss": loss, "perplexity": math.exp(loss), "rows": len(validation.samples)}
    if validation.frames is not None:
        result["per_frame"] = (sums / counts.clamp(min=1))[FIRST_SCORED_FRAME - 1:].tolist()
    if validation.baselines is not None:
        result["baselines"] = validation.baselines
    if validation.bytes_per_token:
        result["bits_per_byte"] = loss / math.log(2) / validation.bytes_per_token
    return result
