"""The in-memory dataset every worker evaluates on: X, y and the CV folds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Fold = tuple[np.ndarray, np.ndarray]  # (train indices, test indices)


@dataclass
class Dataset:
    """Arrays shared read-only by all tasks of a run. Never sent per task."""

    X: Any  # numpy array or scipy.sparse CSR matrix
    y: np.ndarray | None
    folds: list[Fold] = field(default_factory=list)
    sample_weight: np.ndarray | None = None  # passed to fit (train part of each fold)


def weight_problem(weights: np.ndarray) -> str | None:
    """What is wrong with sample weights that every fit would reject (NaN or
    infinite values), or None. Negative weights are left to the estimator."""
    bad = np.flatnonzero(~np.isfinite(weights)) if weights.dtype.kind == "f" else ()
    if len(bad):
        return f"has {len(bad)} NaN or infinite value{'s' if len(bad) > 1 else ''} (first at row {bad[0]})"
    return None
