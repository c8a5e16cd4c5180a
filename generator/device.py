"""Pick the torch device: CUDA when present, the CPU otherwise, from the same code."""

import re

from generator.errors import DEVICE_CHOICES, ConfigError


def resolve_device(name: str) -> str:
    """Map 'auto' | 'cpu' | 'cuda' | 'cuda:N' to a concrete device string, or raise ConfigError."""
    import torch

    name = str(name).strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if re.fullmatch(r"cuda(:\d+)?", name):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available here: use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s); use cuda:0..")
        return name
    raise ConfigError(f"unknown device {name!r}: use {DEVICE_CHOICES}")
