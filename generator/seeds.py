"""Counter-based random numbers: every draw is a pure function of its coordinates.

A dataset must come out byte-identical however its rules are batched, split
across workers or scheduled, so no draw may depend on the order in which a
stateful generator was consumed. Instead every uniform number is a hash of
(dataset seed, rule id, stream, purpose, counter), where the stream is a
trajectory id (or PROBE_STREAM for the complexity probe).

The hash is a 32-bit integer mixer (xor-shift / odd multiply, a bijection on
[0, 2^32)) evaluated in int64 torch arithmetic. Every product stays below 2^59,
so nothing overflows and CPU and CUDA compute the same bits. A uniform keeps the
top 24 bits of the hash, which a float32 holds exactly.
"""

import torch

MASK32 = 0xFFFFFFFF
MIX_MULTIPLIER = 0x45D9F3B
GOLDEN32 = 0x9E3779B1
PROBE_STREAM = MASK32  # trajectory ids are < 2^32 - 1; the probe gets its own stream

# Purposes separate the independent uses of one (seed, rule, stream) key.
PURPOSE_RULE_WEIGHTS = 1
PURPOSE_COLOUR_LOGITS = 2
PURPOSE_INITIAL_CELLS = 3
PURPOSE_CELL_UPDATES = 4


def mix32(x):
    """Bijective 32-bit mixer; works on Python ints and int64 tensors alike."""
    x = (((x >> 16) ^ x) * MIX_MULTIPLIER) & MASK32
    x = (((x >> 16) ^ x) * MIX_MULTIPLIER) & MASK32
    return (x >> 16) ^ x


def fold_seed(seed: int) -> int:
    """Fold a non-negative dataset seed of up to 64 bits into one 32-bit key."""
    return mix32(mix32((seed & MASK32) ^ 0x6E636166) ^ ((seed >> 32) & MASK32))


def stream_keys(seed: int, rule_ids: torch.Tensor, stream_ids: torch.Tensor, purpose: int) -> torch.Tensor:
    """Key of each (rule, stream) pair for one purpose, as int64 in [0, 2^32).

    `rule_ids` and `stream_ids` broadcast against each other.
    """
    rule_ids = rule_ids.to(torch.int64)
    key = mix32((rule_ids & MASK32) ^ fold_seed(seed))
    key = mix32(key ^ (rule_ids >> 32))
    key = mix32(key ^ (stream_ids.to(torch.int64) & MASK32))
    return mix32(key ^ purpose)


def uniforms(keys: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """float32 uniforms in [0, 1), one per broadcast (key, counter) pair."""
    bits = mix32(keys ^ mix32((counters.to(torch.int64) * GOLDEN32) & MASK32))
    return (bits >> 8).to(torch.float32) * (1.0 / (1 << 24))

SCHEME = {
    "kind": "counter-based: every draw is a pure function of its coordinates, never of scheduling order",
    "hash": "mix32(x) = two rounds of x = ((x >> 16) ^ x) * 0x45D9F3B mod 2^32, then (x >> 16) ^ x",
    "dataset_seed": "fold_seed(seed) = mix32(mix32((seed mod 2^32) ^ 0x6E636166) ^ (seed >> 32))",
    "stream_key": "mix32(mix32(mix32(mix32(rule_id ^ fold_seed(seed)) ^ (rule_id >> 32)) ^ stream) ^ purpose)",
    "uniform": "top 24 bits of mix32(key ^ mix32(counter * 0x9E3779B1 mod 2^32)) / 2^24",
    "streams": {"trajectory": "trajectory id (0, 1, ...)", "probe": PROBE_STREAM, "rule_weights": 0},
    "purposes": {
        "rule_weights": PURPOSE_RULE_WEIGHTS,
        "initial_colour_logits": PURPOSE_COLOUR_LOGITS,
        "initial_cells": PURPOSE_INITIAL_CELLS,
        "cell_updates": PURPOSE_CELL_UPDATES,
    },
    "counters": {
        "rule_weights": "parameter index in the order conv (HWIO), hidden, readout",
        "initial_colour_logits": "0..2K-1, Box-Muller pairs (k, K + k)",
        "initial_cells": "cell index y * W + x",
        "cell_updates": "step * H * W + y * W + x",
    },
}
