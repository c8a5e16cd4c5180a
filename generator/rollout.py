"""Roll many trajectories of many rules forward and keep the frames after burn-in.

Initial states are drawn on the CPU (a few hundred numbers per trajectory), so
every device starts from the same grids; the steps then run on the rollout
device in the step's lane layout. Frames come back as uint8 on the CPU, one
row per rule again.
"""

import math

import torch

from generator.config import NCAConfig
from generator.rules import RuleTables, from_lanes, to_lanes
from generator.seeds import PURPOSE_CELL_UPDATES, PURPOSE_COLOUR_LOGITS, PURPOSE_INITIAL_CELLS, stream_keys, uniforms
from generator.step import nca_step


def initial_states(seed: int, rule_ids: torch.Tensor, stream_ids: torch.Tensor, nca: NCAConfig) -> torch.Tensor:
    """(R, B, H, W) int64 colours: per trajectory z ~ N(0, I), p = softmax(z), cells i.i.d. ~ p."""
    rule_ids = rule_ids.view(-1, 1).cpu()
    k, cells = nca.num_colours, nca.grid_size**2
    logit_keys = stream_keys(seed, rule_ids, stream_ids, PURPOSE_COLOUR_LOGITS).unsqueeze(-1)
    u = uniforms(logit_keys, torch.arange(2 * k)).to(torch.float64)
    z = torch.sqrt(-2.0 * torch.log1p(-u[..., :k])) * torch.cos(2.0 * math.pi * u[..., k:])  # Box-Muller
    cumulative = torch.softmax(z, dim=-1).cumsum(-1).contiguous()
    cell_keys = stream_keys(seed, rule_ids, stream_ids, PURPOSE_INITIAL_CELLS).unsqueeze(-1)
    u_cells = uniforms(cell_keys, torch.arange(cells)).to(torch.float64).contiguous()
    colours = torch.searchsorted(cumulative, u_cells, right=True).clamp_(max=k - 1)
    return colours.view(*stream_ids.shape, nca.grid_size, nca.grid_size)


def rollout(
    tables: RuleTables,
    seed: int,
    rule_ids: torch.Tensor,
    stream_ids: torch.Tensor,
    num_frames: int,
    nca: NCAConfig,
    step_fn=nca_step,
) -> torch.Tensor:
    """Frames s_burn_in .. s_(burn_in + num_frames - 1) of each (rule, stream): (R, B, F, H, W) uint8.

    R must be a multiple of LANES, as for the tables."""
    device = tables.hidden.device
    stream_ids = stream_ids.expand(len(rule_ids), -1)
    states = to_lanes(initial_states(seed, rule_ids, stream_ids, nca).to(torch.int32)).to(device)
    update_keys = to_lanes(stream_keys(seed, rule_ids.view(-1, 1).cpu(), stream_ids, PURPOSE_CELL_UPDATES)).to(device)
    frames = []
    last_step = nca.burn_in + num_frames - 1
    for step in range(last_step + 1):
        if step >= nca.burn_in:
            frames.append(states.to(torch.uint8))
        if step < last_step:
            states = step_fn(
                states, tables.colour_table, tables.hidden, tables.hidden_bias, tables.readout,
                tables.readout_bias, update_keys, torch.tensor(step, device=device), nca.temperature, nca.identity_bias,
            )
    return from_lanes(torch.stack(frames, dim=2).cpu())
