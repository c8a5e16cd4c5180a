"""Per-rule network weights and the lookup tables the batched step reads.

A rule is one randomly initialised network (SPEC section 1): conv 3x3 (Cin -> 4),
conv 1x1 (4 -> 16), ReLU, conv 1x1 (16 -> 10), "lecun normal" weights
(truncated at 2 standard deviations, variance 1/fan_in) and zero biases.
Weights are a pure function of (dataset seed, rule id) and are always drawn on
the CPU in float64, then rounded to float32, so every device starts from the
same bits.

Because the conv input is one-hot, the 3x3 conv is a sum over the 9 neighbours
of a vector picked from a per-rule table indexed by (offset, neighbour colour). The
reference's wrap padding of the colour axis (12 input channels, colours 0 and 9
seen twice) folds into that table, as does the conv bias.

The step reads rules in lanes: rule g * LANES + l sits in lane l of group g, the
innermost axis (see generator.step for why). `to_lanes` and `from_lanes` convert.
"""

import math
from dataclasses import dataclass

import torch

from generator.config import NCAConfig
from generator.errors import LANES
from generator.seeds import PURPOSE_RULE_WEIGHTS, stream_keys, uniforms

TRUNCATION = 2.0
# Standard deviation of a standard normal truncated to [-2, 2]: dividing by it
# makes the truncated draw's variance exactly 1/fan_in (as jax's lecun_normal).
TRUNCATED_STD = 0.87962566103423978


@dataclass
class RuleWeights:
    """Weights of R rules in the reference's layout (kernels HWIO)."""

    conv: torch.Tensor
    """(R, 3, 3, Cin, conv_channels) 3x3 kernel; Cin = 12 with the colour wrap quirk."""
    conv_bias: torch.Tensor
    """(R, conv_channels)"""
    hidden: torch.Tensor
    """(R, conv_channels, hidden_channels) 1x1 kernel."""
    hidden_bias: torch.Tensor
    """(R, hidden_channels)"""
    readout: torch.Tensor
    """(R, hidden_channels, num_colours) 1x1 kernel giving the logits."""
    readout_bias: torch.Tensor
    """(R, num_colours)"""


@dataclass
class RuleTables:
    """What the batched step reads, on the rollout device, in lanes (G = R / LANES groups)."""

    colour_table: torch.Tensor
    """(G, 9, num_colours, conv_channels, LANES): conv contribution of colour k at offset o;
    the conv bias is folded into offset 0."""
    hidden: torch.Tensor
    """(G, conv_channels, hidden_channels, LANES)"""
    hidden_bias: torch.Tensor
    """(G, hidden_channels, LANES)"""
    readout: torch.Tensor
    """(G, hidden_channels, num_colours, LANES)"""
    readout_bias: torch.Tensor
    """(G, num_colours, LANES)"""


def to_lanes(x: torch.Tensor) -> torch.Tensor:
    """(R, *rest) -> (R / LANES, *rest, LANES), contiguous; R must be a multiple of LANES."""
    groups = x.shape[0] // LANES
    return x.reshape(groups, LANES, *x.shape[1:]).movedim(1, -1).contiguous()


def from_lanes(x: torch.Tensor) -> torch.Tensor:
    """Inverse of to_lanes: (G, *rest, LANES) -> (G * LANES, *rest)."""
    return x.movedim(-1, 1).reshape(-1, *x.shape[1:-1])


def truncated_lecun_normal(u: torch.Tensor, fan_in: int) -> torch.Tensor:
    """Map float uniforms in [0, 1) to lecun-normal draws truncated at 2 std (inverse CDF)."""
    u = u.to(torch.float64)
    lower = 0.5 * (1.0 + math.erf(-TRUNCATION / math.sqrt(2.0)))
    p = lower + u * (1.0 - 2.0 * lower)
    x = math.sqrt(2.0) * torch.erfinv(2.0 * p - 1.0)
    return (x * (math.sqrt(1.0 / fan_in) / TRUNCATED_STD)).to(torch.float32)


def sample_rule_weights(seed: int, rule_ids: torch.Tensor, nca: NCAConfig) -> RuleWeights:
    """Draw the weights of each rule in `rule_ids` from (seed, rule id) alone."""
    rule_ids = torch.as_tensor(rule_ids, dtype=torch.int64).cpu()
    cin, c, h, k = nca.input_channels, nca.conv_channels, nca.hidden_channels, nca.num_colours
    sizes = [9 * cin * c, c * h, h * k]
    keys = stream_keys(seed, rule_ids, torch.zeros_like(rule_ids), PURPOSE_RULE_WEIGHTS).view(-1, 1)
    u = uniforms(keys, torch.arange(sum(sizes)).view(1, -1))
    u_conv, u_hidden, u_readout = torch.split(u, sizes, dim=1)
    n = len(rule_ids)
    return RuleWeights(
        conv=truncated_lecun_normal(u_conv, 9 * cin).view(n, 3, 3, cin, c),
        conv_bias=torch.zeros(n, c),
        hidden=truncated_lecun_normal(u_hidden, c).view(n, c, h),
        hidden_bias=torch.zeros(n, h),
        readout=truncated_lecun_normal(u_readout, h).view(n, h, k),
        readout_bias=torch.zeros(n, k),
    )


def colour_weights(conv: torch.Tensor, nca: NCAConfig) -> torch.Tensor:
    """(R, 9, num_colours, conv_channels): the kernel rows each colour switches on.

    With the wrap quirk the input is [c9, c0 .. c9, c0]: colour k reads channel k+1,
    colour 9 also channel 0, colour 0 also channel 11.
    """
    n, k = conv.shape[0], nca.num_colours
    per_offset = conv.reshape(n, 9, nca.input_channels, nca.conv_channels)
    if not nca.wrap_colour_channels:
        return per_offset.clone()
    table = per_offset[:, :, 1 : k + 1].clone()
    table[:, :, k - 1] += per_offset[:, :, 0]
    table[:, :, 0] += per_offset[:, :, k + 1]
    return table


def build_rule_tables(weights: RuleWeights, nca: NCAConfig, device: str) -> RuleTables:
    """Fold the weights of R rules (a multiple of LANES) into the step's tables, in lanes."""
    table = colour_weights(weights.conv, nca)
    table[:, 0] += weights.conv_bias[:, None, :]
    on_device = lambda x: to_lanes(x).to(device)
    return RuleTables(
        colour_table=on_device(table),
        hidden=on_device(weights.hidden),
        hidden_bias=on_device(weights.hidden_bias),
        readout=on_device(weights.readout),
        readout_bias=on_device(weights.readout_bias),
    )
