"""The training objective: next-token cross-entropy, leading targets optionally ignored.

SPEC section 2: in the NCA stage the reference masks the targets inside the first frame
(the model cannot know a random initial grid) and predicts the frame markers like any
other token. A row of 1,026 tokens gives inputs tokens[:1024] and targets tokens[1:1025];
target j is token j + 1, which lies in frame (j + 1) // tokens_per_frame (0-based), so
the first tokens_per_frame - 1 targets are ignored. Text windows ignore none.
"""

import torch
import torch.nn.functional as F


def target_frames(length: int, tokens_per_frame: int) -> torch.Tensor:
    """0-based frame of each of `length` targets (target j is token j + 1)."""
    return torch.div(torch.arange(1, length + 1), tokens_per_frame, rounding_mode="floor")


def target_mask(length: int, masked_targets: int) -> torch.Tensor:
    """True for targets the loss counts: all but the first `masked_targets`."""
    return torch.arange(length) >= masked_targets


def token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, T) cross-entropy of each target, in nats, computed in fp32."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)


def masked_mean_loss(logits: torch.Tensor, targets: torch.Tensor, masked_targets: int) -> torch.Tensor:
    """Mean cross-entropy over the counted targets of a micro-batch."""
    return token_losses(logits, targets)[:, masked_targets:].mean()
