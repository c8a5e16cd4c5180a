"""The gzip complexity of a rule (SPEC section 3), exactly as the paper defines it.

Score = gzip-compressed size / raw size of the probe's 10 post-burn-in frames,
patch tokens only (360 tokens, no frame markers), serialised as int32
little-endian (1440 bytes) and compressed at level 9 with a gzip header, as
Python's gzip.compress writes it. The byte width changes the score (int64 gives
0.35 where int32 gives 0.67), so it is part of the definition and is recorded in
every manifest.

zlib releases the GIL, so a thread pool compresses chunks of probes while the
caller's thread goes on rolling out the next batch.
"""

import zlib
from concurrent.futures import Executor

import numpy as np

GZIP_HEADER_AND_TRAILER = 18  # gzip.compress: 10-byte header (no file name) + CRC32 + size
CHUNK_ROWS = 64  # probes per pool task: large enough that scheduling costs little
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


def _ratios_of_rows(rows: np.ndarray) -> np.ndarray:
    return np.fromiter((gzip_ratio(row.tobytes()) for row in rows), dtype=np.float64, count=len(rows))


def submit_probe_ratios(patch_tokens: np.ndarray, pool: Executor) -> list:
    """Queue the ratios of each row of (N, tokens) patch tokens; collect with `gather_ratios`."""
    rows = np.ascontiguousarray(patch_tokens, dtype="<i4")
    return [pool.submit(_ratios_of_rows, rows[i : i + CHUNK_ROWS]) for i in range(0, len(rows), CHUNK_ROWS)]


def gather_ratios(futures: list) -> np.ndarray:
    return np.concatenate([f.result() for f in futures]) if futures else np.empty(0, np.float64)


def probe_ratios(patch_tokens: np.ndarray, pool: Executor | None = None) -> np.ndarray:
    """Ratio of each row of (N, tokens) patch tokens, serialised as int32 little-endian."""
    if pool is None:
        return _ratios_of_rows(np.ascontiguousarray(patch_tokens, dtype="<i4"))
    return gather_ratios(submit_probe_ratios(patch_tokens, pool))
