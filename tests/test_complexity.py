import gzip
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from generator.complexity import gzip_ratio, probe_ratios
from generator.tokens import patch_tokens


def ratio_of_frames(frames: torch.Tensor) -> float:
    tokens = patch_tokens(frames).flatten().numpy()
    return probe_ratios(tokens[None, :])[0]


def test_ratio_equals_python_gzip_at_level_9_on_int32_bytes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        data = rng.integers(0, 10000, 360).astype("<i4").tobytes()
        assert len(data) == 1440
        assert gzip_ratio(data) == len(gzip.compress(data, compresslevel=9)) / 1440


def test_constant_grid_scores_about_0_022():
    assert ratio_of_frames(torch.zeros(10, 12, 12, dtype=torch.uint8)) == 32 / 1440  # 14 deflate bytes + 18
    for colour in range(1, 10):
        frames = torch.full((10, 12, 12), colour, dtype=torch.uint8)
        assert ratio_of_frames(frames) == pytest.approx(0.022, abs=0.003)


def test_iid_uniform_ten_colour_noise_scores_about_0_67():
    gen = torch.Generator().manual_seed(1)
    ratios = [ratio_of_frames(torch.randint(0, 10, (10, 12, 12), generator=gen, dtype=torch.uint8)) for _ in range(50)]
    assert np.mean(ratios) == pytest.approx(0.67, abs=0.01)


def test_iid_binary_noise_and_one_repeated_grid_match_spec_reference_points():
    gen = torch.Generator().manual_seed(2)
    binary = ratio_of_frames(torch.randint(0, 2, (10, 12, 12), generator=gen, dtype=torch.uint8))
    repeated = ratio_of_frames(torch.randint(0, 10, (1, 12, 12), generator=gen, dtype=torch.uint8).repeat(10, 1, 1))
    assert binary == pytest.approx(0.280, abs=0.02)
    assert repeated == pytest.approx(0.116, abs=0.01)


def test_scoring_on_a_thread_pool_gives_the_same_ratios_in_the_same_order():
    tokens = np.random.default_rng(3).integers(0, 10000, (300, 360))
    tokens[::7] = 0  # mixed ratios, so a reordering would show
    with ThreadPoolExecutor(2) as pool:
        assert np.array_equal(probe_ratios(tokens), probe_ratios(tokens, pool))
