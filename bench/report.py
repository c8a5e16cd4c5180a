"""How every benchmark prints: one row per figure, the same-run baseline beside it, and the ratio."""


def rate(value: float) -> str:
    """A rate with an SI suffix: 3.51M, 12.6k, 830."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def print_table(rows: list, header=("figure", "measured", "baseline (same run)", "ratio")) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
