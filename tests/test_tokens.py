import torch

from generator.config import NCAConfig
from generator.format import decode_frames
from generator.tokens import FRAME_END, FRAME_START, frames_to_sequence, patch_tokens


def test_patch_token_is_a_plus_10b_plus_100c_plus_1000d():
    grid = torch.zeros(12, 12, dtype=torch.uint8)
    grid[0, 0], grid[0, 1], grid[1, 0], grid[1, 1] = 1, 2, 3, 4  # first patch: a b / c d
    grid[0, 10], grid[0, 11], grid[1, 10], grid[1, 11] = 9, 9, 9, 9  # last patch of the first patch row
    grid[11, 11] = 7  # bottom-right cell of the last patch is its d
    tokens = patch_tokens(grid)
    assert tokens.shape == (36,)
    assert tokens[0] == 4321
    assert tokens[5] == 9999
    assert tokens[35] == 7000
    assert tokens[1:5].eq(0).all()


def test_patches_run_row_major_over_the_6x6_patch_grid():
    grid = torch.zeros(12, 12, dtype=torch.uint8)
    grid[2, 0] = 5  # patch row 1, patch column 0: top-left cell
    grid[0, 3] = 6  # patch row 0, patch column 1: top-right cell
    tokens = patch_tokens(grid)
    assert tokens[6] == 5
    assert tokens[1] == 60


def test_sequence_layout_is_27_frames_of_38_tokens():
    frames = torch.randint(0, 10, (27, 12, 12), dtype=torch.uint8)
    seq = frames_to_sequence(frames)
    assert seq.dtype == torch.uint16
    assert seq.shape == (1026,) == (NCAConfig().tokens_per_sequence,)
    framed = seq.to(torch.int64).view(27, 38)
    assert framed[:, 0].eq(FRAME_START).all() and framed[:, -1].eq(FRAME_END).all()
    assert framed[:, 1:-1].lt(10000).all()
    assert torch.equal(framed[3, 1:-1], patch_tokens(frames[3]).to(torch.int64))
    assert (decode_frames(seq.numpy()) == frames.numpy()).all()
