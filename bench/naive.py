"""The naive baseline: the same automaton, one rule at a time, as the reference runs it.

Per candidate rule: draw its weights, roll out the probe with a dense conv2d and
full Gumbel noise (`generator.reference`), score it with `gzip.compress`, and roll
out a training trajectory when the band accepts it. This is the straightforward
program the batched generator replaces; `bench.generator` runs both on the same
worker processes, so the ratio compares like with like.
"""

import gzip

import torch

from generator.bands import parse_band
from generator.config import GeneratorConfig
from generator.reference import reference_rollout
from generator.rollout import initial_states
from generator.rules import sample_rule_weights
from generator.seeds import PROBE_STREAM
from generator.tokens import frames_to_sequence, patch_tokens


def _frames(config: GeneratorConfig, rule: int, stream: int, num_frames: int, noise: torch.Generator) -> torch.Tensor:
    nca, ids = config.nca, torch.tensor([rule])
    weights = sample_rule_weights(config.seed, ids, nca)
    start = initial_states(config.seed, ids, torch.tensor([[stream]]), nca)[0]
    return reference_rollout(start, weights, 0, nca.burn_in + num_frames - 1, nca, noise)[nca.burn_in :, 0]


def naive_ratio(config: GeneratorConfig, rule: int, noise: torch.Generator) -> float:
    raw = patch_tokens(_frames(config, rule, PROBE_STREAM, config.nca.probe_frames, noise)).numpy().astype("<i4").tobytes()
    return len(gzip.compress(raw, compresslevel=9)) / len(raw)


def naive_sequence(config: GeneratorConfig, rule: int, noise: torch.Generator) -> torch.Tensor:
    return frames_to_sequence(_frames(config, rule, 0, config.nca.frames, noise).to(torch.uint8))


def naive_run(kind: str, config: GeneratorConfig, first_rule: int, stop_rule: int) -> dict:
    """Work counts of one naive task: 'score', 'rollout' or 'generate' (score, filter, roll out)."""
    noise = torch.Generator().manual_seed(config.seed)
    band = parse_band(config.band)
    counts = {"candidates": 0, "accepted_rules": 0, "tokens": 0}
    for rule in range(first_rule, stop_rule):
        if kind != "rollout":
            counts["candidates"] += 1
            accepted = band.accepts(naive_ratio(config, rule, noise))
            if kind == "score" or not accepted:
                continue
        counts["accepted_rules"] += 1
        counts["tokens"] += naive_sequence(config, rule, noise).numel()
    return counts
