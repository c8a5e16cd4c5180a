"""`python -m trainer.weights CHECKPOINT [CHECKPOINT ...]`: how far training moved the weights
from the scale they started at.

Per checkpoint, the root mean square of each group of tensors over all layers, as a multiple
of its scale at initialisation (trainer.model.initial_std: Normal(0, init_std), the output
projections wo and down scaled by 1/sqrt(2 layers), norms at 1). Why it matters for transfer: Adam moves each
weight by about the learning rate per step whatever its size, so blocks that pre-pre-training
left at several times their initial scale change proportionally less during the language stage
than fresh ones do. Comparing an NCA checkpoint with a scratch run's shows whether that is the
case. The checkpoint is read through trainer.loading, so a damaged one is a one-line error.
"""

import argparse
import math
import sys

from generator.text_table import aligned_lines
from trainer.checkpoint import CheckpointError
from trainer.config import ModelConfig
from trainer.loading import load_checkpoint
from trainer.model import initial_std

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


def group_names(group: str, config: ModelConfig) -> list:
    """The state-dict names of a group's tensors, over every layer for block groups."""
    if group in TOP_GROUPS:
        return [TOP_GROUPS[group]]
    return [f"blocks.{layer}.{part}" for layer in range(config.layers) for part in BLOCK_GROUPS[group]]


def weight_scales(state: dict, config: ModelConfig) -> dict:
    """{group: (RMS over the group's tensors, RMS at initialisation)} of a model state dict."""
    scales = {}
    for group in (*BLOCK_GROUPS, *TOP_GROUPS):
        names = group_names(group, config)
        squares = sum(float(state[name].float().pow(2).sum()) for name in names)
        count = sum(state[name].numel() for name in names)
        scales[group] = (math.sqrt(squares / count), initial_std(names[0], config))
    return scales


def render(checkpoints: list) -> str:
    """One row per group, one column per (label, scales): 'RMS (multiple of its initial scale)'."""
    header = ["group", *(label for label, _ in checkpoints)]
    rows = [[group, *(f"{scales[group][0]:.4f} ({scales[group][0] / scales[group][1]:.2f}x)"
                      for _, scales in checkpoints)] for group in (*BLOCK_GROUPS, *TOP_GROUPS)]
    table = "\n".join(aligned_lines([header, *rows]))
    return table + "\n\nRMS over all layers (multiple of the group's scale at initialisation)\n"


def main(argv=None) -> int:
    from generator.arguments import OneLineParser

    parser = OneLineParser(prog="python -m trainer.weights", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="checkpoint folders RUN/step-NNNNNNNN")
    arguments = parser.parse_args(argv)
    checkpoints = []
    try:
        for folder in arguments.checkpoints:
            loaded = load_checkpoint(folder)
            checkpoints.append((f"{folder} ({loaded.stage})",
                                weight_scales(loaded.model.state_dict(), loaded.config.model)))
    except CheckpointError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(render(checkpoints), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
