"""Frames to tokens (SPEC section 2).

A 2x2 patch with cells a b / c d (row-major) is the token a + 10 b + 100 c + 1000 d.
A frame is [FRAME_START] + its patch tokens in row-major order + [FRAME_END]; a
sequence is the frames of one trajectory, 27 x 38 = 1026 tokens, stored as uint16.
Decoding, which readers need without torch, lives in generator.format.
"""

import torch

FRAME_START = 10000
FRAME_END = 10001
VOCAB_SIZE = 10002


def patch_tokens(frames: torch.Tensor) -> torch.Tensor:
    """(..., H, W) colours -> (..., H/2 * W/2) int32 patch tokens."""
    *lead, h, w = frames.shape
    patches = frames.to(torch.int32).reshape(*lead, h // 2, 2, w // 2, 2)
    a, b = patches[..., 0, :, 0], patches[..., 0, :, 1]
    c, d = patches[..., 1, :, 0], patches[..., 1, :, 1]
    return (a + 10 * b + 100 * c + 1000 * d).reshape(*lead, (h // 2) * (w // 2))


def frames_to_sequence(frames: torch.Tensor) -> torch.Tensor:
    """(..., F, H, W) colours -> (..., F * (patches + 2)) uint16 tokens with frame markers."""
    patches = patch_tokens(frames)
    start = torch.full((*patches.shape[:-1], 1), FRAME_START, dtype=torch.int32)
    end = torch.full_like(start, FRAME_END)
    framed = torch.cat([start, patches, end], dim=-1)
    return framed.flatten(-2).to(torch.uint16)
