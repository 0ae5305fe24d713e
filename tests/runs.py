"""Helpers for tests that run mpisearch as users do: a subprocess, maybe under mpiexec."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

MPIEXEC = Path(sys.executable).parent / "mpiexec"
# cv_results.csv columns that must not depend on the number of ranks (timings do)
SCORE_PREFIXES = ("split", "mean_test", "std_test", "rank_test", "params", "param_")


def score_table(out: Path) -> list[dict[str, str]]:
    """The rank-independent columns of a run's cv_results.csv."""
    with (Path(out) / "cv_results.csv").open() as fh:
        return [{k: v for k, v in row.items() if k.startswith(SCORE_PREFIXES)} for row in csv.DictReader(fh)]
