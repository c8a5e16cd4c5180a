"""A checkpoint folder back into a model, for the tools that read checkpoints (evaluate, generate).

The folder is verified first (trainer.checkpoint.read_meta checks every file's size and
sha256 against meta.json), so a damaged or half-copied checkpoint is a one-line error, not
a model with wrong weights. The model is rebuilt from the config saved in the checkpoint,
never from a recipe, so editing a recipe later cannot change what a checkpoint means.
"""

import os
from dataclasses import dataclass

import torch

from trainer.checkpoint import META_NAME, CheckpointError, checkpoint_name, checkpoint_steps, read_meta
from trainer.config import RunConfig, TrainConfigError, config_from_dict
from trainer.model import Transformer


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A verified checkpoint and the model it holds."""

    folder: str
    """The checkpoint folder RUN/step-NNNNNNNN."""
    meta: dict
    """Its meta.json: stage, config, vocabulary, data, step (trainer.training.Trainer.meta)."""
    config: RunConfig
    """The run's resolved config, as saved in the checkpoint."""
    model: Transformer
    """The model with the checkpoint's weights, in eval mode."""

    @property
    def stage(self) -> str:
        return self.meta["stage"]

    @property
    def step(self) -> int:
        return self.meta["step"]

    @property
    def tokens(self) -> int:
        """This stage's training tokens at the checkpoint, as its eval records count them."""
        return self.step * self.meta["global_batch"] * self.config.model.context


def load_checkpoint(folder: str, device: torch.device = torch.device("cpu")) -> LoadedCheckpoint:
    """The checkpoint in `folder` and its model on `device`; CheckpointError (one line) when it is none."""
    if not os.path.isdir(folder):
        raise CheckpointError(f"{folder} is not a folder: give a checkpoint folder RUN/step-NNNNNNNN")
    steps = checkpoint_steps(folder)
    if steps and not os.path.exists(os.path.join(folder, META_NAME)):
        newest = os.path.join(folder, checkpoint_name(steps[-1]))
        raise CheckpointError(f"{folder} is a run folder: give one of its checkpoints, e.g. {newest}")
    meta = read_meta(folder)
    try:
        config = config_from_dict(meta["config"])
    except (KeyError, TrainConfigError) as error:
        raise CheckpointError(f"{folder}: its saved config cannot be read by this code ({error})") from None
    model = Transformer(config.model, meta["vocab_size"])
    model.load_state_dict(torch.load(os.path.join(folder, "model.pt"), map_location="cpu", weights_only=True))
    return LoadedCheckpoint(folder, meta, config, model.to(device).eval())
