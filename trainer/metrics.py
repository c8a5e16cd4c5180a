"""Metrics as JSON lines: one line per logged step and one per evaluation, in RUN/metrics.jsonl.

Only rank 0 writes. Each line is flushed as it is written, so a crash loses at most
the line being written. A resumed run first rewrites the file (atomically) without the
lines past the step it resumes from, so the log of a run that was killed and resumed
reads exactly like the log of one that was not: one line per step, in order.
"""

import json
import os

from generator.atomic import write_bytes_atomically

METRICS_NAME = "metrics.jsonl"


def read_metrics(run_dir: str) -> list:
    """Every complete line of a run's metrics (a torn last line is ignored)."""
    path = os.path.join(run_dir, METRICS_NAME)
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                break
    return records


class MetricsLog:
    """Appends records to RUN/metrics.jsonl; a no-op on ranks other than 0."""

    def __init__(self, run_dir: str, enabled: bool, resumed_step: int | None):
        """resumed_step: the step a resumed run continues from (its lines up to it are kept), or None
        for a fresh run (an empty log)."""
        self.file = None
        if not enabled:
            return
        path = os.path.join(run_dir, METRICS_NAME)
        kept = [] if resumed_step is None else [r for r in read_metrics(run_dir) if r["step"] <= resumed_step]
        write_bytes_atomically(path, "".join(json.dumps(record, sort_keys=True) + "\n" for record in kept).encode())
        self.file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        if self.file:
            self.file.write(json.dumps(record, sort_keys=True) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None
