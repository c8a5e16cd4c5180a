"""The optimiser and its schedule: Adam(W), linear warmup, then constant or cosine (SPEC section 5).

Weight decay, when asked for, applies to matrices only (not norms), as in nanoGPT and
litgpt. The schedule is a LambdaLR whose state is just its step count, so a checkpoint
restores it exactly.
"""

import math

import torch

from trainer.config import OptimConfig


def build_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    matrices = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": matrices, "weight_decay": config.weight_decay}, {"params": vectors, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)


def learning_rate_factor(step: int, config: OptimConfig, total_steps: int) -> float:
    """Multiplier of config.lr at optimiser step `step` (0-based): (step + 1) / warmup during warmup,
    then 1, or a cosine from 1 to min_lr_ratio at the last step."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.decay == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, total_steps - 1 - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine


def build_schedule(optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, config, total_steps))
