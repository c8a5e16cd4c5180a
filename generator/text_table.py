"""Aligned plain-text tables, the way the command-line reports print them (trainer.compare,
trainer.weights, the benchmarks): one place decides padding and alignment, so they all read alike."""


def aligned_lines(rows: list, numbers_from: int | None = None) -> list:
    """Each row as one line, cells padded to their column's widest and joined by two spaces.
    Columns from index `numbers_from` on are right-aligned (figures line up on their last digit);
    without it every column is left-aligned. Trailing spaces are dropped."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]
    first_right = len(widths) if numbers_from is None else numbers_from
    return ["  ".join(cell.rjust(width) if column >= first_right else cell.ljust(width)
                      for column, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in cells]
