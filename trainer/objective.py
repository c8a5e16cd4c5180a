"""The NCA training objective: next-token cross-entropy, first frame as context only.

SPEC section 2: the reference masks the targets inside the first frame (the model
cannot know a random initial grid) and predicts the frame markers like any other
token. A row of 1,026 tokens gives inputs tokens[:1024] and targets tokens[1:1025];
target j is token j + 1, which lies in frame (j + 1) // tokens_per_frame (0-based).
"""

import torch
import torch.nn.functional as F


def target_frames(length: int, tokens_per_frame: int) -> torch.Tensor:
    """0-based frame of each of `length` targets (target j is token j + 1)."""
    return torch.div(torch.arange(1, length + 1), tokens_per_frame, rounding_mode="floor")


def target_mask(length: int, tokens_per_frame: int) -> torch.Tensor:
    """True for targets the loss counts: every target outside the first frame."""
    return target_frames(length, tokens_per_frame) > 0


def token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, T) cross-entropy of each target, in nats, computed in fp32."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)


def masked_mean_loss(logits: torch.Tensor, targets: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """Mean cross-entropy over the counted targets of a micro-batch."""
    mask = target_mask(targets.shape[1], tokens_per_frame).to(targets.device)
    return token_losses(logits, targets)[:, mask].mean()
