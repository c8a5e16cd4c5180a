"""`python -m trainer.weights CHECKPOINT [CHECKPOINT ...]`: how far training moved the weights
from the scale they started at.

Per checkpoint, the root mean square of each group of tensors over all layers, as a multiple
of its scale at initialisation (trainer.model: Normal(0, init_std), the output projections wo
and down scaled by 1/sqrt(2 layers), norms at 1). Why it matters for transfer: Adam moves each
weight by about the learning rate per step whatever its size, so blocks that pre-pre-training
left at several times their initial scale change proportionally less during the language stage
than fresh ones do. Comparing an NCA checkpoint with a scratch run's shows whether that is the
case. Reads model.pt only, after checking every file against meta.json.
"""

import argparse
import math
import os
import sys

import torch

from trainer.checkpoint import CheckpointError, read_meta
from trainer.config import ModelConfig

BLOCK_GROUPS = {
    "attention q, k, v": ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight"),
    "attention output (wo)": ("attention.wo.weight",),
    "MLP gate, up": ("mlp.gate.weight", "mlp.up.weight"),
    "MLP down": ("mlp.down.weight",),
    "block norms": ("attention_norm.weight", "mlp_norm.weight"),
}
"""Block tensors by role, each group initialised at one scale."""
TOP_GROUPS = {"embedding": "embed.weight", "final norm": "norm.weight", "output layer": "head.weight"}
"""Tensors outside the blocks; the embedding and output layer are not carried over by a transfer."""


def initial_scale(group: str, config: ModelConfig) -> float:
    """The RMS a group's tensors have at initialisation."""
    if "norm" in group:
        return 1.0
    if group in ("attention output (wo)", "MLP down"):
        return config.init_std / math.sqrt(2 * config.layers)
    return config.init_std


def group_names(group: str, config: ModelConfig) -> list:
    if group in TOP_GROUPS:
        return [TOP_GROUPS[group]]
    return [f"blocks.{layer}.{part}" for layer in range(config.layers) for part in BLOCK_GROUPS[group]]


def weight_scales(state: dict, config: ModelConfig) -> dict:
    """{group: (RMS over the group's tensors, RMS at initialisation)} of a model state dict."""
    scales = {}
    for group in (*BLOCK_GROUPS, *TOP_GROUPS):
        tensors = [state[name].float() for name in group_names(group, config)]
        squares = sum(float(tensor.pow(2).sum()) for tensor in tensors)
        scales[group] = (math.sqrt(squares / sum(tensor.numel() for tensor in tensors)), initial_scale(group, config))
    return scales


def checkpoint_scales(folder: str) -> tuple:
    """(label, scales) of a checkpoint folder; CheckpointError when it is not a complete checkpoint."""
    if not os.path.isdir(folder):
        raise CheckpointError(f"{folder} is not a folder: give a checkpoint RUN/step-NNNNNNNN")
    meta = read_meta(folder)
    config = ModelConfig(**meta["config"]["model"])
    state = torch.load(os.path.join(folder, "model.pt"), map_location="cpu", weights_only=True)
    path = os.path.normpath(os.path.abspath(folder))
    label = f"{os.path.basename(os.path.dirname(path))}/{os.path.basename(path)}"
    return f"{label} ({meta['stage']})", weight_scales(state, config)


def render(checkpoints: list) -> str:
    """One row per group, one column per checkpoint: 'RMS (multiple of its initial scale)'."""
    header = ["group", *(label for label, _ in checkpoints)]
    rows = [[group, *(f"{scales[group][0]:.4f} ({scales[group][0] / scales[group][1]:.2f}x)"
                      for _, scales in checkpoints)] for group in (*BLOCK_GROUPS, *TOP_GROUPS)]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows)]
    return "\n".join(lines) + "\n\nRMS over all layers (multiple of the group's scale at initialisation)\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.weights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="checkpoint folders RUN/step-NNNNNNNN")
    arguments = parser.parse_args(argv)
    try:
        checkpoints = [checkpoint_scales(folder) for folder in arguments.checkpoints]
    except CheckpointError as error:
        print(f"python -m trainer.weights: error: {error}", file=sys.stderr)
        return 2
    print(render(checkpoints), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
