"""Typed configuration of a Dyck dataset: the k-Dyck baseline of SPEC section 5.

Defaults are the paper's: 64 bracket pairs, word depths 1-16, p(open) 0.5, words
concatenated into 1025-token sequences (a 1024-token context and its last target), and
160,000 sequences, the same 164M training tokens as the NCA stage. Every field decides
the bytes of the dataset, so the dataset id hashes all of them (generator.dyck.format).
`validate()` turns a bad value into one line naming the fix. No numpy, no pyarrow here.
"""

import math
from dataclasses import asdict, dataclass

from generator.errors import ConfigError

TOKEN_LIMIT = 2**16
"""Tokens are stored as uint16, so 2 x pairs may not exceed this."""

@dataclass(frozen=True)
class DyckConfig:
    """One Dyck dataset: how many sequences, their words, and how they are cut into shards."""

    sequences: int = 160_000
    """Rows to write, one sequence each. 160,000 x 1024 training tokens = the paper's 164M."""
    tokens_per_sequence: int = 1025
    """Tokens stored per row: words are concatenated until the row holds exactly this many, the
    last word cut. 1025 = a 1024-token context plus its last target."""
    pairs: int = 64
    """Bracket pairs k: pair i opens with token i and closes with token k + i; the vocabulary is 2k."""
    max_depth: int = 16
    """Each word draws its own depth limit uniformly from 1..max_depth."""
    p_open: float = 0.5
    """Below its limit, a word opens a bracket with this probability and closes one otherwise."""
    seed: int = 0
    """Dataset seed: every draw is a hash of (seed, sequence id, position) (generator.dyck.words)."""
    sequences_per_shard: int = 8192
    """Rows per shard file (16.8 MB of tokens): shard k holds sequence ids [k S, (k + 1) S), the last
    one fewer, so a dataset of N sequences is the first N rows of any larger one of the same seed."""

    @property
    def vocab_size(self) -> int:
        return 2 * self.pairs

    @property
    def shard_count(self) -> int:
        return math.ceil(self.sequences / self.sequences_per_shard)

    def shard_rows(self, index: int) -> range:
        """Sequence ids of shard `index`."""
        first = index * self.sequences_per_shard
        return range(first, min(first + self.sequences_per_shard, self.sequences))

    def validate(self) -> "DyckConfig":
        for name in ("sequences", "tokens_per_sequence", "pairs", "max_depth", "sequences_per_shard"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}={value!r}: use a positive whole number")
        if 2 * self.pairs > TOKEN_LIMIT:
            raise ConfigError(f"pairs={self.pairs}: use at most {TOKEN_LIMIT // 2} so every token fits in uint16 "
                              f"(the paper's is 64)")
        if not isinstance(self.p_open, (int, float)) or not 0 < self.p_open < 1:
            raise ConfigError(f"p_open={self.p_open}: use a probability strictly between 0 and 1 (the paper's is 0.5)")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise ConfigError(f"seed={self.seed}: use an integer in [0, 2^64)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DyckConfig":
        """The config saved in a manifest; TypeError when its keys are not this dataclass's."""
        return cls(**values)


def sequences_for_tokens(tokens: int, tokens_per_sequence: int) -> int:
    """Sequences holding at least `tokens` training tokens, counting L - 1 per row of L tokens as
    `make shards TOKENS=` does for NCA (1024 per row by default)."""
    return math.ceil(tokens / max(1, tokens_per_sequence - 1))
