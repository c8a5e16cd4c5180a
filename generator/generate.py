"""From candidate rule ids to accepted token sequences: probe, score, filter, roll out.

A unit of work is a range of candidate rule ids. Every candidate gets one probe
trajectory and a gzip ratio; those inside the band get `trajectories_per_rule`
training trajectories. The output depends only on (config, range): rules are
independent in the batched step and every draw is counter-based, so any split
of the ids into batches, workers or shards yields the same rows.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from generator.bands import parse_band
from generator.complexity import gather_ratios, submit_probe_ratios
from generator.config import GeneratorConfig
from generator.device import resolve_device
from generator.rollout import rollout
from generator.rules import LANES, build_rule_tables, sample_rule_weights
from generator.seeds import PROBE_STREAM
from generator.step import nca_step
from generator.tokens import frames_to_sequence, patch_tokens


@dataclass
class GeneratedRows:
    """Accepted sequences of a range of candidate rules, in (rule id, trajectory id) order."""

    candidate_ids: np.ndarray
    """int64 (C,) every candidate rule id that was scored."""
    candidate_ratios: np.ndarray
    """float64 (C,) the gzip ratio of each candidate."""
    rule_ids: np.ndarray
    """int64 (N,) rule id of each row."""
    trajectory_ids: np.ndarray
    """int64 (N,) trajectory id of each row, 0 .. trajectories_per_rule - 1."""
    ratios: np.ndarray
    """float64 (N,) the rule's gzip ratio, per row."""
    tokens: np.ndarray
    """uint16 (N, tokens_per_sequence)."""


SCORING_CHUNK_BATCHES = 8
"""With max_rows, candidates are scored one batch first, then twice as many each time up to this
many batches at once: a shard that needs few rows scores few more candidates than it keeps."""


class RuleGenerator:
    """Holds the device, the (optionally compiled) step and the gzip threads of one process.
    close() (or a `with` block) stops the gzip threads."""

    def __init__(self, config: GeneratorConfig):
        self.config = config.validate()
        self.nca = config.nca
        self.band = parse_band(config.band)
        self.device = resolve_device(config.device)
        self.step_fn = torch.compile(nca_step, dynamic=False) if config.compile else nca_step
        self.gzip_pool = ThreadPoolExecutor(config.gzip_threads, thread_name_prefix="gzip")

    def close(self) -> None:
        self.gzip_pool.shutdown()

    def __enter__(self) -> "RuleGenerator":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _batches(self, rule_ids: np.ndarray):
        """Yield (ids, real count) chunks, padded with copies of their first id to a whole
        number of lanes, and with a compiled step to rules_per_batch (one shape, one compile)."""
        size = self.config.rules_per_batch
        for start in range(0, len(rule_ids), size):
            chunk = rule_ids[start : start + size]
            real = len(chunk)
            padded = size if self.config.compile else -(-real // LANES) * LANES
            chunk = np.concatenate([chunk, np.full(padded - real, chunk[0])])
            yield torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.int64)), real

    def _rollout(self, rule_ids: torch.Tensor, stream_ids: torch.Tensor, num_frames: int) -> torch.Tensor:
        weights = sample_rule_weights(self.config.seed, rule_ids, self.nca)
        tables = build_rule_tables(weights, self.nca, self.device)
        return rollout(tables, self.config.seed, rule_ids, stream_ids, num_frames, self.nca, self.step_fn)

    def score(self, rule_ids) -> np.ndarray:
        """gzip ratio of each rule id (SPEC section 3). Each batch's probes are compressed
        on the gzip threads while the next batch rolls out."""
        pending = []
        for ids, real in self._batches(np.asarray(rule_ids)):
            frames = self._rollout(ids, torch.tensor([[PROBE_STREAM]]), self.nca.probe_frames)[:real, 0]
            pending += submit_probe_ratios(patch_tokens(frames).flatten(1).numpy(), self.gzip_pool)
        return gather_ratios(pending)

    def sequences(self, rule_ids) -> np.ndarray:
        """(len(rule_ids) * trajectories_per_rule, tokens_per_sequence) uint16, rule-major."""
        per_rule = self.config.trajectories_per_rule
        streams = torch.arange(per_rule).view(1, -1)
        out = []
        for ids, real in self._batches(np.asarray(rule_ids)):
            frames = self._rollout(ids, streams, self.nca.frames)[:real]
            out.append(frames_to_sequence(frames).flatten(0, 1).numpy())
        return np.concatenate(out) if out else np.empty((0, self.nca.tokens_per_sequence), np.uint16)

    def generate(self, first_rule: int, stop_rule: int, max_rows: int | None = None) -> GeneratedRows:
        """Score candidates first_rule .. stop_rule - 1 and roll out the accepted ones.

        With `max_rows`, scoring stops once the band has yielded that many rows and only
        those rows are rolled out: the result is the first `max_rows` rows of the full
        range, and the candidates are the scored prefix."""
        per_rule = self.config.trajectories_per_rule
        batch = self.config.rules_per_batch
        chunk = (stop_rule - first_rule) if max_rows is None else batch
        candidates, ratios, accepted_rows, start = [], [], 0, first_rule
        while start < stop_rule:
            ids = np.arange(start, min(start + chunk, stop_rule), dtype=np.int64)
            candidates.append(ids)
            ratios.append(self.score(ids))
            accepted_rows += per_rule * int(self.band.accepts(ratios[-1]).sum())
            if max_rows is not None and accepted_rows >= max_rows:
                break
            start, chunk = start + len(ids), min(2 * chunk, SCORING_CHUNK_BATCHES * batch)
        candidates = np.concatenate(candidates) if candidates else np.empty(0, np.int64)
        ratios = np.concatenate(ratios) if ratios else np.empty(0, np.float64)
        keep = self.band.accepts(ratios)
        rules_needed = len(candidates) if max_rows is None else -(-max_rows // per_rule)
        accepted, accepted_ratios = candidates[keep][:rules_needed], ratios[keep][:rules_needed]
        return GeneratedRows(
            candidate_ids=candidates,
            candidate_ratios=ratios,
            rule_ids=np.repeat(accepted, per_rule),
            trajectory_ids=np.tile(np.arange(per_rule, dtype=np.int64), len(accepted)),
            ratios=np.repeat(accepted_ratios, per_rule),
            tokens=self.sequences(accepted),
        )
