"""k-Dyck sequences, many at once: counter-based draws, then every sequence stepped together.

A word: draw its depth limit D uniformly from 1..max_depth; open a bracket; then, while the
depth is above 0, close at depth D, else open with probability p_open and close otherwise.
Opening draws its pair uniformly; closing always closes the pair on top of the stack. The
word ends when the depth is back at 0, and the next word starts at the next position.
Words are concatenated until the sequence holds exactly tokens_per_sequence tokens; the
last word is cut. Pair i opens with token i and closes with token pairs + i.

Randomness: one 64-bit hash per (seed, sequence id, position) decides everything at that
position (`SEED_SCHEME`), never a draw from a stateful generator. So a sequence is the
same whichever batch, shard or process makes it, and N sequences are the first N of 2N.
Each position needs at most two of its three numbers, which is why one hash is enough:
its high 32 bits choose the pair of an opening bracket, and its low 32 bits either decide
open-or-close (inside a word) or draw the new word's limit (at a word's start, where the
bracket is always an opening one).

Speed: the draws are whole-array numpy arithmetic, made a block of positions at a time,
and the stepping walks the positions once for a batch of 4,096 sequences, each step a
dozen vector operations over all of them with a (batch, max_depth) stack, instead of a
Python loop per token per sequence. Positions are the outer axis of the arrays, so each
step reads contiguous memory. About 20M tokens/s on one core (`make bench` has no line
for it; the CLI prints its rate).
"""

import numpy as np

from generator.dyck.config import DyckConfig

MASK32 = np.uint64(0xFFFFFFFF)
GOLDEN64 = np.uint64(0x9E3779B97F4A7C15)
SEED_SALT = np.uint64(0x64796368)  # "dych": keeps seed 0 from hashing like an unsalted 0
BATCH_SEQUENCES = 4096
"""Sequences stepped together: enough to hide numpy's per-call cost (a step is ~15 calls)."""
POSITION_BLOCK = 32
"""Positions drawn at once: the draws of a block (32 x 4096 hashes, 1 MB) stay in cache, and no
array is large enough for the allocator to map fresh (slow first-touch) pages for it."""

SEED_SCHEME = {
    "kind": "counter-based: every draw is a pure function of (seed, sequence id, position), never of batching",
    "hash": "m(x) = splitmix64's finaliser: x ^= x >> 30; x *= 0xBF58476D1CE4E5B9; x ^= x >> 27; "
            "x *= 0x94D049BB133111EB; x ^= x >> 31 (all mod 2^64)",
    "sequence_key": "key = m(m(seed ^ 0x64796368) ^ sequence_id)",
    "position_hash": "h = m(key + (position + 1) * 0x9E3779B97F4A7C15 mod 2^64), position 0..tokens_per_sequence-1",
    "pair": "(high 32 bits of h) * pairs >> 32: the pair an opening bracket at this position takes",
    "open": "inside a word below its limit: open when (low 32 bits of h) < round(p_open * 2^32), else close",
    "limit": "at a word's first position: 1 + ((low 32 bits of h) * max_depth >> 32), the word's depth limit",
}


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (a bijection; arithmetic wraps mod 2^64)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def sequence_keys(seed: int, sequence_ids: np.ndarray) -> np.ndarray:
    """The key of each sequence id (uint64)."""
    folded = mix64(np.array([seed], dtype=np.uint64) ^ SEED_SALT)
    return mix64(folded ^ np.asarray(sequence_ids, dtype=np.uint64))


def position_draws(config: DyckConfig, keys: np.ndarray, first_position: int, count: int) -> tuple:
    """(wants_open, limits, pairs), each (count, len(keys)), for positions first_position .. + count - 1
    of the sequences with these keys: whether a word below its limit opens there, the limit a word
    starting there takes (1..max_depth), and the pair an opening bracket there takes (0..pairs-1)."""
    positions = np.arange(first_position, first_position + count, dtype=np.uint64) + np.uint64(1)
    hashes = mix64(positions[:, None] * GOLDEN64 + keys[None, :])
    low, high = hashes & MASK32, hashes >> np.uint64(32)
    wants_open = low < np.uint64(round(config.p_open * 2**32))
    limits = ((low * np.uint64(config.max_depth)) >> np.uint64(32)).astype(np.int32) + 1
    pairs = ((high * np.uint64(config.pairs)) >> np.uint64(32)).astype(np.int32)
    return wants_open, limits, pairs


class WordWalker:
    """The state of a batch of sequences between positions: depth, current word's limit, the stack."""

    def __init__(self, batch: int, pair_count: int, max_depth: int):
        self.pair_count, self.max_depth = pair_count, max_depth
        self.depth = np.zeros(batch, dtype=np.int32)
        self.limit = np.zeros(batch, dtype=np.int32)
        self.stack = np.zeros(batch * max_depth, dtype=np.int32)  # [b * max_depth + d]: pair open at depth d + 1
        self.bottom = np.arange(batch, dtype=np.int32) * max_depth

    def walk(self, wants_open: np.ndarray, limits: np.ndarray, pairs: np.ndarray, out: np.ndarray) -> None:
        """Step every sequence through the positions of these (positions, batch) draws, writing each
        position's tokens into the rows of `out` (positions, batch)."""
        depth, stack = self.depth, self.stack
        for t in range(len(pairs)):
            starting = depth == 0
            self.limit = np.where(starting, limits[t], self.limit)
            opens = starting | (wants_open[t] & (depth < self.limit))
            slot = self.bottom + depth - 1 + opens  # opening writes at the current depth, closing reads the top
            pair = np.where(opens, pairs[t], stack[slot])
            stack[slot] = pair
            out[t] = pair + np.where(opens, 0, self.pair_count)
            depth += np.where(opens, 1, -1).astype(np.int32)


def dyck_batch(config: DyckConfig, sequence_ids: np.ndarray) -> np.ndarray:
    """(len(sequence_ids), tokens_per_sequence) uint16 tokens of these sequences."""
    keys = sequence_keys(config.seed, sequence_ids)
    walker = WordWalker(len(keys), config.pairs, config.max_depth)
    out = np.empty((config.tokens_per_sequence, len(keys)), dtype=np.uint16)
    for first in range(0, config.tokens_per_sequence, POSITION_BLOCK):
        count = min(POSITION_BLOCK, config.tokens_per_sequence - first)
        walker.walk(*position_draws(config, keys, first, count), out[first:first + count])
    return np.ascontiguousarray(out.T)


def dyck_sequences(config: DyckConfig, first_id: int, count: int) -> np.ndarray:
    """(count, tokens_per_sequence) uint16 tokens of sequence ids first_id .. first_id + count - 1."""
    out = np.empty((count, config.tokens_per_sequence), dtype=np.uint16)
    for start in range(0, count, BATCH_SEQUENCES):
        ids = np.arange(first_id + start, first_id + min(count, start + BATCH_SEQUENCES), dtype=np.uint64)
        out[start:start + len(ids)] = dyck_batch(config, ids)
    return out


def depth_profile(tokens: np.ndarray, pairs: int) -> np.ndarray:
    """Depth after each token of sequences (..., positions): +1 for an opening bracket, -1 for a closing one."""
    return np.cumsum(np.where(np.asarray(tokens) < pairs, 1, -1), axis=-1)
