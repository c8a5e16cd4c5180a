"""The NCA step: a pure function (states, rule tables, uniforms) -> next states.

Shapes: states (R, B, H, W) int64 colours for R rules with B trajectories each.
Every cell of every trajectory is updated at once; per-rule weights are picked by
the rule axis, so there is no Python loop over rules or cells.

The small per-cell layers are written out term by term (4 -> 16 -> 10). It reads
longer than a matmul, but it is what lets torch.compile fuse the whole step into
one loop (about 2x faster on CPU; a plain compile of the matmul form was far
slower), and it fixes the summation order, so results do not depend on the
batch size and the compiled step gives the same bits as the eager one.

Sampling is exact inverse-CDF sampling of softmax((logits + bias*onehot) / T),
the distribution the reference draws with Gumbel-max, using one uniform per cell.
At T = 1e-4 almost every cell has one logit so far ahead that every other class
has probability exactly 0 in float32; those cells take the argmax, which is
bit-for-bit what the full computation gives. Only cells with a close runner-up
(a few percent) go through the full CDF.
"""

import torch

from generator.seeds import uniforms

# exp(-110) underflows float32 (smallest subnormal is exp(-103.3)): a class more than
# 110 * T behind the best has weight exactly 0 in the full inverse-CDF computation.
UNDERFLOW_GAP = 110.0


def neighbour_colours(states: torch.Tensor):
    """The 9 wrapped neighbour grids of each cell, offsets in row-major (dy, dx) order."""
    padded = torch.cat([states[:, :, -1:], states, states[:, :, :1]], dim=2)
    padded = torch.cat([padded[..., -1:], padded, padded[..., :1]], dim=3)
    h, w = states.shape[2], states.shape[3]
    return [padded[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]


def cell_logits(states, neighbour_table, hidden, hidden_bias, readout, readout_bias, identity_bias: float):
    """Per-cell logits of every colour, as a list of (R, B, H, W) tensors."""
    num_rules, num_colours = readout.shape[0], readout.shape[2]
    conv_channels, hidden_channels = hidden.shape[1], hidden.shape[2]
    rule_rows = (torch.arange(num_rules, device=states.device) * (9 * num_colours)).view(-1, 1, 1, 1)
    conv = [None] * conv_channels
    for offset, colours in enumerate(neighbour_colours(states)):
        rows = rule_rows + offset * num_colours + colours
        for i in range(conv_channels):
            term = neighbour_table[:, i][rows]
            conv[i] = term if conv[i] is None else conv[i] + term
    per_rule = lambda t: t.view(num_rules, 1, 1, 1)
    hidden_act = []
    for j in range(hidden_channels):
        acc = per_rule(hidden_bias[:, j])
        for i in range(conv_channels):
            acc = acc + conv[i] * per_rule(hidden[:, i, j])
        hidden_act.append(torch.relu(acc))
    logits = []
    for k in range(num_colours):
        acc = per_rule(readout_bias[:, k])
        for j in range(hidden_channels):
            acc = acc + hidden_act[j] * per_rule(readout[:, j, k])
        if identity_bias:
            acc = acc + identity_bias * (states == k)
        logits.append(acc)
    return logits


def propose(states, neighbour_table, hidden, hidden_bias, readout, readout_bias, identity_bias: float, temperature: float):
    """Argmax colour, a mask of cells whose runner-up is within reach, and the logits."""
    logits = cell_logits(states, neighbour_table, hidden, hidden_bias, readout, readout_bias, identity_bias)
    best, best_colour = logits[0], torch.zeros_like(states)
    for k in range(1, len(logits)):
        ahead = logits[k] > best
        best = torch.where(ahead, logits[k], best)
        best_colour = torch.where(ahead, k, best_colour)
    cutoff = best - UNDERFLOW_GAP * temperature
    contenders = sum((logit > cutoff).to(torch.int32) for logit in logits)
    return best_colour, contenders > 1, torch.stack(logits, dim=-1)


def sample_inverse_cdf(logits: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
    """Exact draw from softmax(logits / T) along the last axis, one uniform in [0, 1) each."""
    weights = torch.exp((logits - logits.amax(-1, keepdim=True)) * (1.0 / temperature))
    cumulative = torch.cumsum(weights, -1)
    threshold = u.unsqueeze(-1) * cumulative[..., -1:]
    return (cumulative <= threshold).sum(-1).clamp_(max=logits.shape[-1] - 1)


def nca_step(states, tables, update_keys, step: int, nca, propose_fn=propose):
    """One synchronous update: states (R, B, H, W) -> next states.

    `update_keys` (R, B) seed the per-cell uniforms of each trajectory; the uniform of
    cell (y, x) at this step is a pure function of (key, step, y, x), so only the few
    contested cells need one. `propose_fn` is `propose`, optionally compiled.
    """
    best_colour, contested, logits = propose_fn(
        states, tables.neighbour_table, tables.hidden, tables.hidden_bias,
        tables.readout, tables.readout_bias, nca.identity_bias, nca.temperature,
    )
    rule, traj, y, x = where = contested.nonzero(as_tuple=True)
    u = uniforms(update_keys[rule, traj], (step * states.shape[2] + y) * states.shape[3] + x)
    next_states = best_colour.clone()
    next_states[where] = sample_inverse_cdf(logits[where], u, nca.temperature).to(states.dtype)
    return next_states
