"""Before any work: resolve the config, name the dataset, and check everything that can fail early.

`resolve_config` fills the shard size from the band's expected acceptance, `dataset_id`
hashes everything that decides the bytes, and `preflight` probes the output folder,
the free disk and the Ray address, so bad input stops the run in one line having
created nothing.
"""

import hashlib
import json
import math
import os
import shutil

from generator.bands import expected_acceptance, parse_band
from generator.config import DatasetConfig, RunOptions, dataset_content
from generator.errors import ConfigError
from generator.format import FORMAT_VERSION

TARGET_SHARD_ROWS = 8192  # 16.8 MB of tokens: small enough to resume cheaply, large enough to batch well
CANDIDATE_GRANULE = 1024  # candidates_per_shard is a multiple of this
MIN_EXPECTED_ACCEPTANCE = 1e-3
DISK_HEADROOM = 1.1


def resolve_config(config: DatasetConfig) -> DatasetConfig:
    """Validate, and fill candidates_per_shard from the band's expected acceptance when 0."""
    config.validate()
    band = parse_band(config.generator.band)
    acceptance = expected_acceptance(band)
    if acceptance < MIN_EXPECTED_ACCEPTANCE:
        raise ConfigError(f"band {band.name} accepts almost no random rules (expected {acceptance:.2%}); "
                          f"random rules score 0.02-0.66, so pick a band inside that range, e.g. high or 0.35-0.6")
    if config.candidates_per_shard:
        return config
    rows_per_candidate = acceptance * config.generator.trajectories_per_rule
    granules = max(1, math.ceil(TARGET_SHARD_ROWS / rows_per_candidate / CANDIDATE_GRANULE))
    return DatasetConfig.from_dict({**config.to_dict(), "candidates_per_shard": granules * CANDIDATE_GRANULE})


def dataset_id(config: DatasetConfig, device_kind: str) -> str:
    """'<band>-<sequences>-<hash>': the hash covers everything that decides the bytes, which is
    the manifest's config, the format version and the kind of device."""
    document = json.dumps({"format_version": FORMAT_VERSION, "device": device_kind, "dataset": dataset_content(config)},
                          sort_keys=True)
    return f"{parse_band(config.generator.band).name}-{config.sequences}-{hashlib.sha256(document.encode()).hexdigest()[:12]}"


def local_device_kind(options: RunOptions) -> str:
    """The kind of device a local runtime's actors would use (cluster.plan_workers decides it for real)."""
    import torch

    return "cuda" if options.device != "cpu" and torch.cuda.is_available() else "cpu"


def estimated_bytes(config: DatasetConfig) -> int:
    """Upper bound of the dataset's size on disk: uncompressed tokens plus the small columns."""
    return int(config.sequences * (2 * config.generator.nca.tokens_per_sequence + 20) * DISK_HEADROOM)


def preflight(config: DatasetConfig, options: RunOptions) -> None:
    """Every check that can fail before any work starts; raises ConfigError, creates nothing."""
    existing = os.path.abspath(options.out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:  # a real probe: permission bits do not stop root, and read-only file systems ignore them
        os.close(os.open(probe := os.path.join(existing, f".ncaforge-probe-{os.getpid()}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.remove(probe)
    except OSError as error:
        raise ConfigError(f"OUT={options.out} cannot be written ({existing}: {error.strerror}): "
                          f"choose another OUT or fix its permissions") from None
    need, free = estimated_bytes(config), shutil.disk_usage(existing).free
    if need > free:
        raise ConfigError(f"OUT={options.out} has {free / 1e9:.2f} GB free but the dataset needs up to "
                          f"{need / 1e9:.2f} GB: free some space, choose another OUT, or ask for fewer TOKENS")
    if options.ray_address:
        from generator.cluster import check_reachable

        check_reachable(options.ray_address)
