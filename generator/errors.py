"""The package's errors and the constants its modules share. Imports nothing of ncaforge, so
any module (config, bands, device, rules, the pipeline's parts) can use it without an import cycle."""

LANES = 16
"""Rules side by side in the step's innermost axis: one AVX-512 register of float32.
Batches of rules are multiples of this."""

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


class ConfigError(ValueError):
    """A configuration value is invalid; the message says how to fix it."""


class PipelineError(Exception):
    """A pipeline run cannot go on; the message names the cause and what to do."""
