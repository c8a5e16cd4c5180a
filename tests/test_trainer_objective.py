"""The loss mask, frames, and both baselines, against hand computations."""

import math

import numpy as np
import torch

from trainer.baselines import ALPHAS, baseline_losses, earlier_occurrences, unigram_distribution
from trainer.objective import masked_mean_loss, target_frames, target_mask


def test_first_frame_targets_are_masked_and_frame_markers_are_predicted():
    mask = target_mask(1024, 37)
    assert mask.tolist() == [False] * 37 + [True] * (1024 - 37)  # targets 1..37 are tokens of frame 0
    frames = target_frames(1024, 38)
    assert frames[36].item() == 0 and frames[37].item() == 1  # target 37 is token 38: frame 1's opening 10000
    assert frames[-1].item() == 26  # token 1024 lies in the 27th frame


def test_masked_loss_ignores_the_first_frame():
    torch.manual_seed(0)
    logits = torch.randn(2, 100, 12)
    targets = torch.randint(0, 12, (2, 100))
    changed = logits.clone()
    changed[:, :37] = 100.0  # anything in the first frame's targets
    assert torch.equal(masked_mean_loss(logits, targets, 37), masked_mean_loss(changed, targets, 37))
    by_hand = torch.nn.functional.cross_entropy(logits[:, 37:].reshape(-1, 12), targets[:, 37:].reshape(-1))
    assert torch.allclose(masked_mean_loss(logits, targets, 37), by_hand)


def test_earlier_occurrences_by_brute_force():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 7, 300)
    expected = [int((tokens[:j] == tokens[j]).sum()) for j in range(len(tokens))]
    assert earlier_occurrences(tokens).tolist() == expected


def test_baselines_by_hand():
    samples = np.array([[5, 5, 6, 5, 7]])
    unigram = unigram_distribution(np.array([[5, 5, 6, 7]]), vocab_size=10)
    assert np.allclose(unigram[[5, 6, 7, 0]], [3 / 14, 2 / 14, 2 / 14, 1 / 14])
    losses = baseline_losses(samples, unigram)
    assert np.allclose(losses["unigram"][0], -np.log(unigram[[5, 6, 5, 7]]))
    alpha = ALPHAS[2]
    # target 3 is token 5, after tokens 5 5 6: count 2 of 3 seen
    expected = -math.log((2 + alpha * unigram[5]) / (3 + alpha))
    assert math.isclose(losses["in_context"][alpha][0, 2], expected)
    # target 4 is token 7, never seen before: only the smoothing
    assert math.isclose(losses["in_context"][alpha][0, 3], -math.log(alpha * unigram[7] / (4 + alpha)))
