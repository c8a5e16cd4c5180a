"""A straightforward per-rule NCA, written the way the authors' reference is.

One rule at a time: one-hot grid, wrap padding of space *and* of the colour axis
(the 12-channel quirk), a dense 3x3 conv, two 1x1 convs, Gumbel-max sampling
with a full noise tensor. It serves two purposes: tests check the batched
table-lookup step against its logits, and `make bench` times its loop over rules
as the naive baseline.
"""

import torch
import torch.nn.functional as F

from generator.config import NCAConfig
from generator.rules import RuleWeights


def reference_logits(states: torch.Tensor, weights: RuleWeights, rule: int, nca: NCAConfig) -> torch.Tensor:
    """(B, H, W) colours of one rule's trajectories -> (B, H, W, num_colours) logits."""
    onehot = F.one_hot(states.long(), nca.num_colours).permute(0, 3, 1, 2).float()  # NCHW
    if nca.wrap_colour_channels:
        onehot = torch.cat([onehot[:, -1:], onehot, onehot[:, :1]], dim=1)
    padded = F.pad(onehot, (1, 1, 1, 1), mode="circular")
    kernel = weights.conv[rule].permute(3, 2, 0, 1)  # HWIO -> OIHW
    x = F.conv2d(padded, kernel, weights.conv_bias[rule])
    x = F.conv2d(x, weights.hidden[rule].T[:, :, None, None], weights.hidden_bias[rule]).relu()
    x = F.conv2d(x, weights.readout[rule].T[:, :, None, None], weights.readout_bias[rule])
    return x.permute(0, 2, 3, 1)


def reference_rollout(states: torch.Tensor, weights: RuleWeights, rule: int, steps: int, nca: NCAConfig, noise: torch.Generator):
    """Roll one rule forward with Gumbel-max sampling; returns the (steps + 1, B, H, W) states."""
    history = [states]
    for _ in range(steps):
        logits = reference_logits(states, weights, rule, nca)
        logits = logits + nca.identity_bias * F.one_hot(states.long(), nca.num_colours)
        u = torch.rand(logits.shape, generator=noise).clamp_(min=1e-20)
        gumbel = -torch.log(-torch.log(u))
        states = torch.argmax(logits / nca.temperature + gumbel, dim=-1)
        history.append(states)
    return torch.stack(history)
