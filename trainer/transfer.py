"""Starting the language stage from a pre-pre-training checkpoint: what is carried over,
re-initialised, frozen.

SPEC section 5: every transformer block and the final norm are carried over; the token
embedding and the output layer start fresh, sized for the language vocabulary. The source is
a `--stage nca` checkpoint (NCA or Dyck shards) or a `--stage language` one: natural-text
pre-pre-training, the paper's C4 baseline, transfers the same way. The
paper's ablations re-initialise attention (q, k, v, o), the MLP or the norms over a
range of layers, or freeze them. Groups name tensors of the blocks:

    attn   blocks.i.attention.{wq, wk, wv, wo}.weight
    mlp    blocks.i.mlp.{gate, up, down}.weight
    norm   blocks.i.{attention_norm, mlp_norm}.weight   (the final norm is never in a range)

A re-initialised tensor keeps the fresh model's initial values (the run's seed), so
"carried over" and "re-initialised" together cover every block tensor exactly once.
`rescale` (not in the paper) shrinks or grows each carried-over block matrix to the RMS of its
initial distribution (trainer.model.initial_std), keeping its direction: pre-pre-training without weight decay can leave the
blocks several times their initial scale, which by itself changes how fast Adam moves them.
"""

import os
import re

import torch

from trainer.checkpoint import CheckpointError, read_meta
from trainer.config import ModelConfig, TransferConfig
from trainer.model import initial_std

GROUP_PARTS = {"attn": ("attention.wq", "attention.wk", "attention.wv", "attention.wo"),
               "mlp": ("mlp.gate", "mlp.up", "mlp.down"),
               "norm": ("attention_norm", "mlp_norm")}
BLOCK_TENSOR = re.compile(r"blocks\.(\d+)\.(.+)\.weight")
SHAPE_FIELDS = ("layers", "heads", "d_model", "mlp_hidden")


def tensors_in(names, groups: tuple, layers: range) -> list:
    """The names among `names` that belong to `groups` in blocks `layers`."""
    chosen = []
    for name in names:
        match = BLOCK_TENSOR.fullmatch(name)
        if match and int(match.group(1)) in layers and any(match.group(2) in GROUP_PARTS[g] for g in groups):
            chosen.append(name)
    return chosen


def carried_over(names) -> list:
    """Tensors an NCA checkpoint passes on: every block tensor and the final norm."""
    return [name for name in names if name.startswith("blocks.") or name == "norm.weight"]


SOURCE_STAGES = ("nca", "language")


def load_source_checkpoint(folder: str, model_config: ModelConfig) -> tuple:
    """(meta, model state) of a pre-pre-training checkpoint whose blocks fit this model; CheckpointError otherwise."""
    if not os.path.isdir(folder):
        raise CheckpointError(f"--init-from {folder}: no such checkpoint folder; give RUN/step-NNNNNNNN of an NCA run")
    meta = read_meta(folder)
    if meta.get("stage") not in SOURCE_STAGES:
        raise CheckpointError(f"--init-from {folder} is a {meta.get('stage')!r} checkpoint: give a checkpoint of a "
                              f"--stage nca or --stage language run")
    source = meta["config"]["model"]
    for field in SHAPE_FIELDS:
        if source[field] != getattr(model_config, field):
            raise CheckpointError(f"--init-from {folder} has model.{field}={source[field]} but the recipe asks for "
                                  f"{getattr(model_config, field)}: use the NCA run's model shape")
    state = torch.load(os.path.join(folder, "model.pt"), map_location="cpu", weights_only=True)
    return meta, state


def transfer(model: torch.nn.Module, config: TransferConfig) -> dict:
    """Copy the source checkpoint's blocks and final norm into `model`, except the re-initialised
    groups; return the record kept in every checkpoint's metadata."""
    meta, state = load_source_checkpoint(config.init_from, model.config)
    names = [name for name, _ in model.named_parameters()]
    reinitialised = tensors_in(names, config.groups("reinit"), config.layer_range("reinit_layers", model.config.layers))
    carried = [name for name in carried_over(names) if name not in reinitialised]
    parameters = dict(model.named_parameters())
    rescaled = [name for name in carried if config.rescale and name.startswith("blocks.")
                and not name.endswith("norm.weight")]
    with torch.no_grad():
        for name in carried:
            parameters[name].copy_(state[name])
        for name in rescaled:
            parameter = parameters[name]
            parameter.mul_(initial_std(name, model.config) / parameter.pow(2).mean().sqrt())
    return {"init_from": os.path.abspath(config.init_from), "source_stage": meta["stage"], "source_step": meta["step"],
            "source_run": meta["config"]["train"]["run_dir"], "source_data": meta["data"]["train"]["id"],
            "carried": carried, "reinitialised": reinitialised, "rescaled": rescaled,
            "fresh": [name for name in names if name not in carried and name not in reinitialised]}


def freeze(model: torch.nn.Module, config: TransferConfig) -> list:
    """Stop gradients for the frozen groups; return their names."""
    frozen = tensors_in([name for name, _ in model.named_parameters()], config.groups("freeze"),
                        config.layer_range("freeze_layers", model.config.layers))
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    return frozen
