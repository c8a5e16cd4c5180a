"""How every benchmark prints: one row per figure, the same-run baseline beside it, and the ratio."""

from generator.text_table import aligned_lines


def rate(value: float) -> str:
    """A rate with an SI suffix: 3.51M, 12.6k, 830."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def print_table(rows: list, header=("figure", "measured", "baseline (same run)", "ratio")) -> None:
    for line in aligned_lines([header, *rows]):
        print("  " + line)
