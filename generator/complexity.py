"""The gzip complexity of a rule (SPEC section 3), exactly as the paper defines it.

Score = gzip-compressed size / raw size of the probe's 10 post-burn-in frames,
patch tokens only (360 tokens, no frame markers), serialised as int32
little-endian (1440 bytes) and compressed at level 9 with a gzip header, as
Python's gzip.compress writes it. The byte width changes the score (int64 gives
0.35 where int32 gives 0.67), so it is part of the definition and is recorded in
every manifest.

zlib releases the GIL, so a thread pool scores probes in parallel; within a
pipeline worker, the other workers' rollouts overlap this work anyway.
"""

import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

GZIP_HEADER_AND_TRAILER = 18  # gzip.compress: 10-byte header (no file name) + CRC32 + size
DEFINITION = {
    "probe": "one trajectory per rule with its own seed (stream 2^32-1)",
    "frames": "the probe_frames frames right after burn-in",
    "tokens": "patch tokens only, frame markers dropped",
    "serialisation": "int32 little-endian",
    "compressor": "gzip level 9 with header (Python gzip.compress)",
    "ratio": "compressed bytes / raw bytes",
    "acceptance": "lo < ratio < hi, strict on both sides",
}


def gzip_ratio(data: bytes) -> float:
    """len(gzip.compress(data, 9)) / len(data), without building the gzip framing."""
    compressed = zlib.compress(data, 9, wbits=-15)  # raw deflate, as gzip.compress uses
    return (len(compressed) + GZIP_HEADER_AND_TRAILER) / len(data)


def probe_ratios(patch_tokens: np.ndarray, threads: int = 1) -> np.ndarray:
    """Ratio of each row of (N, tokens) patch tokens, serialised as int32 little-endian."""
    rows = np.ascontiguousarray(patch_tokens, dtype="<i4")
    payloads = [row.tobytes() for row in rows]
    if threads <= 1 or len(payloads) < 64:
        return np.fromiter(map(gzip_ratio, payloads), dtype=np.float64, count=len(payloads))
    with ThreadPoolExecutor(threads) as pool:
        return np.fromiter(pool.map(gzip_ratio, payloads, chunksize=64), dtype=np.float64, count=len(payloads))
