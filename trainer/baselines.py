"""What a model could score without learning any automaton: two baselines on the validation rows.

- Unigram: every target predicted from the band's token frequencies (counted on
  training rows, add-one smoothed). Its loss is the cross-entropy of that fixed
  distribution: what a model knows when it has learned only which tokens are common.
- In-context unigram: each target predicted from the counts of the tokens already seen
  in its own sequence, smoothed toward the band's unigram:
      p(x | t_0..t_j) = (count_j(x) + alpha * p_unigram(x)) / (j + 1 + alpha)
  In band high a grid keeps many of its patches from frame to frame, so copying what
  has appeared before already predicts a lot. A model that only matches this has
  learned token statistics, not rules. alpha is fitted on the same rows (the best of a
  geometric grid from 0.25 to 8192 in steps of sqrt 2), which makes the baseline as strong
  as it can be, not a straw man. In band high the best alpha is about 384: a grid that
  stopped at 128 (as this module's first version did) made the baseline 0.1 nats weaker.

Both are computed with the model's mask (first frame as context only), overall and per
frame, on exactly the rows the model is evaluated on. Dyck sequences have no frames and
no mask: their baselines are computed over whole sequences, without per-frame figures.
"""

import numpy as np

FIRST_SCORED_FRAME = 2
"""Frames are numbered from 1; frame 1 is context only (its targets are not scored), so every
per-frame list, the baselines' and the model's, starts at frame 2."""
ALPHAS = tuple(2.0 ** (k / 2) for k in range(-4, 27))  # 0.25 ... 8192


def unigram_distribution(token_rows: np.ndarray, vocab_size: int) -> np.ndarray:
    """Add-one smoothed token frequencies of (rows, tokens) uint16 token rows."""
    counts = np.bincount(token_rows.reshape(-1).astype(np.int64), minlength=vocab_size)[:vocab_size]
    return (counts + 1.0) / (counts.sum() + vocab_size)


def earlier_occurrences(tokens: np.ndarray) -> np.ndarray:
    """For each position j of one sequence: how often tokens[j] occurred at positions < j."""
    order = np.argsort(tokens, kind="stable")
    ranked = tokens[order]
    group_start = np.r_[0, np.flatnonzero(np.diff(ranked)) + 1]
    group_sizes = np.diff(np.r_[group_start, len(tokens)])
    within = np.arange(len(tokens)) - np.repeat(group_start, group_sizes)
    out = np.empty(len(tokens), dtype=np.int64)
    out[order] = within
    return out


def baseline_losses(samples: np.ndarray, unigram: np.ndarray) -> dict:
    """Per-target losses (rows, T) of both baselines on samples (rows, T + 1): targets are
    samples[:, 1:]. The in-context losses are given per alpha."""
    samples = samples.astype(np.int64)
    targets = samples[:, 1:]
    seen = np.arange(1, samples.shape[1], dtype=np.float64)  # tokens before target j: j + 1
    previous = np.stack([earlier_occurrences(row)[1:] for row in samples])  # occurrences of target j in 0..j
    prior = unigram[targets]
    in_context = {alpha: -np.log((previous + alpha * prior) / (seen + alpha)) for alpha in ALPHAS}
    return {"unigram": -np.log(prior), "in_context": in_context}


def summarise_baselines(samples: np.ndarray, unigram: np.ndarray, mask: np.ndarray,
                        frames: np.ndarray | None = None, frame_count: int = 0) -> dict:
    """Overall mean loss of both baselines under the model's mask, and per frame when `frames` (the 0-based
    frame of each target) is given; in-context at its best alpha."""
    losses = baseline_losses(samples, unigram)

    def summary(loss, **extra):
        result = {"loss": float(loss[:, mask].mean()), **extra}
        if frames is not None:
            scored = range(FIRST_SCORED_FRAME - 1, frame_count)  # 0-based frame indices
            result["per_frame"] = [float(loss[:, frames == f].mean()) for f in scored if (frames == f).any()]
        return result

    best_alpha = min(ALPHAS, key=lambda a: losses["in_context"][a][:, mask].mean())
    return {"unigram": summary(losses["unigram"]),
            "in_context_unigram": summary(losses["in_context"][best_alpha], alpha=best_alpha)}
