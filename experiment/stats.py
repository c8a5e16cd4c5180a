"""Statistics over seeds for the experiment's report: spread, paired differences, Student's t intervals.

An arm is compared with scratch seed by seed (same seed, same data order, same initialisation of
everything but the carried-over blocks), so the differences are paired: the interval is over the
per-seed differences, which removes the seed-to-seed variation both runs share.

No scipy: the 97.5% quantile of Student's t comes from a table for 1 to 30 degrees of freedom and
is the normal 1.96 beyond, an interval at most 4% too narrow (t is 2.040 at 31).
"""

import math
import statistics
from dataclasses import dataclass

T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
"""The 97.5% quantile of Student's t for 1, 2, ..., 30 degrees of freedom (three decimals)."""
NORMAL_975 = 1.96
"""The limit of T_975, used past 30 degrees of freedom."""


@dataclass(frozen=True)
class Spread:
    """Where the values of several seeds lie."""

    mean: float
    minimum: float
    maximum: float
    std: float | None
    """Sample standard deviation (n - 1); None for a single value."""


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided 95% confidence interval."""

    mean: float
    low: float | None
    """Lower end; None with a single value (no interval can be had from one seed)."""
    high: float | None
    """Upper end; None with a single value."""
    degrees_of_freedom: int
    """n - 1."""
    t: float | None
    """The t quantile the half-width was multiplied by; None with a single value."""

    def contains(self, value: float) -> bool:
        return self.low is not None and self.low <= value <= self.high


def t_quantile_975(degrees_of_freedom: int) -> float:
    """The 97.5% quantile of Student's t (so mean +- t * s / sqrt(n) is a 95% interval)."""
    if degrees_of_freedom < 1:
        raise ValueError(f"Student's t needs at least 1 degree of freedom, not {degrees_of_freedom}")
    return T_975[degrees_of_freedom - 1] if degrees_of_freedom <= len(T_975) else NORMAL_975


def spread(values: list) -> Spread:
    """Mean, extremes and sample standard deviation of one or more values."""
    return Spread(statistics.fmean(values), min(values), max(values),
                  statistics.stdev(values) if len(values) > 1 else None)


def relative_range_percent(values: list) -> float | None:
    """(maximum - minimum) in % of the mean: how far apart the seeds land; None for a single value."""
    if len(values) < 2:
        return None
    return 100 * (max(values) - min(values)) / statistics.fmean(values)


def paired_percent_differences(values: list, references: list) -> list:
    """100 * (value / reference - 1) for each pair: the % by which each value exceeds its reference."""
    return [100 * (value / reference - 1) for value, reference in zip(values, references, strict=True)]


def mean_interval(values: list) -> Interval:
    """The mean of `values` and its 95% Student's t interval over them (n - 1 degrees of freedom)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, None, None, 0, None)
    t = t_quantile_975(len(values) - 1)
    half_width = t * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half_width, mean + half_width, len(values) - 1, t)
