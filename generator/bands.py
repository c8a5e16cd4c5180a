"""Complexity bands: which gzip ratios a rule may have to be kept.

The paper's bands (SPEC section 3) are open intervals lo < ratio < hi. They go by
name, by alias (the domain each band suits best) or as a custom 'LO-HI' range.
"""

from dataclasses import dataclass

from generator.errors import ConfigError

# SPEC section 3: share (%) of random rules per 0.1 ratio bin, 10,000 reference candidates;
# the last bin is [0.7, 1.0], where no rule scores.
REFERENCE_SHARES = [14.1, 5.6, 6.3, 9.6, 18.5, 33.3, 12.5, 0.0]
REFERENCE_BIN_EDGES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0]
NAMED_BANDS = {"high": (0.5, 1.0), "upper": (0.4, 0.5), "mid": (0.3, 0.4), "low": (0.2, 0.3)}
ALIASES = {"web": "high", "math": "high", "code": "mid"}
CHOICES = "high (0.5-1.0), upper (0.4-0.5), mid (0.3-0.4), low (0.2-0.3), web, math, code, or a range LO-HI such as 0.35-0.6"


@dataclass(frozen=True)
class Band:
    """An open interval of gzip ratios."""

    name: str
    """Canonical name: a named band, or 'LO-HI' for a custom range."""
    lo: float
    """Exclusive lower bound."""
    hi: float
    """Exclusive upper bound."""

    def accepts(self, ratios):
        """Whether each ratio lies strictly inside the band: a bool for a float, a mask for an array."""
        return (ratios > self.lo) & (ratios < self.hi)


def parse_band(text: str) -> Band:
    """Parse a band name, alias or 'LO-HI'; raise ConfigError naming the valid choices."""
    key = str(text).strip().lower()
    key = ALIASES.get(key, key)
    if key in NAMED_BANDS:
        return Band(key, *NAMED_BANDS[key])
    parts = key.split("-")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"unknown band {text!r}: use {CHOICES}") from None
    if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
        raise ConfigError(f"band {text!r} lies outside [0, 1]: gzip ratios are fractions, use e.g. 0.35-0.6")
    if lo >= hi:
        raise ConfigError(f"band {text!r} has LO >= HI: write the lower bound first, e.g. 0.35-0.6")
    return Band(f"{lo:g}-{hi:g}", lo, hi)


def expected_acceptance(band: Band) -> float:
    """Share of random rules the band should accept, from the reference table, assuming
    ratios spread evenly within each 0.1 bin. Sizes shards and estimates disk and time."""
    share = 0.0
    for lo, hi, percent in zip(REFERENCE_BIN_EDGES[:-1], REFERENCE_BIN_EDGES[1:], REFERENCE_SHARES):
        overlap = max(0.0, min(hi, band.hi) - max(lo, band.lo))
        share += percent / 100 * overlap / (hi - lo)
    return share
