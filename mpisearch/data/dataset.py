"""The in-memory dataset every worker evaluates on: X, y and the CV folds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .foldstore import RESIDENT_FOLDS
from .parts import FoldParts, Pick, split, storable

Fold = tuple[np.ndarray, np.ndarray]  # (train indices, test indices)


@dataclass
class Dataset:
    """Arrays shared read-only by all tasks of a run. Never sent per task."""

    X: Any  # numpy array or scipy.sparse CSR matrix
    y: np.ndarray | None
    folds: Sequence[Fold] = field(default_factory=list)  # index arrays, or FoldLabels (shipped as labels)
    sample_weight: np.ndarray | None = None  # passed to fit (train part) and the scorers (each part)
    store: Any = None  # a NodeFoldStore: each fold's parts built once per node (set on worker ranks)
    shared_folds: bool = True  # whether worker ranks open a node fold store (shipped with the data)
    resident_folds: int | None = RESIDENT_FOLDS  # folds a node's store holds at most (None: as racing needs)

    @contextmanager
    def fold_parts(self, fold: int, pick: Pick | None = None, est: Any = None) -> Iterator[FoldParts]:
        """Fold ``fold``'s train and test parts for one task (subsampled by ``pick``), rows in
        the order of ``X[train]``. With a node fold store: read-only zero-copy views of the
        node's copy (only a subsample is private), held for the block; else private copies."""
        lease = self.store.acquire(fold) if self.store is not None and storable(est, self.X) else None
        if lease is None:
            train, test = self.folds[fold]
            if pick is not None:
                train, test = pick.indices(train), pick.indices(test) if pick.test else test
            yield split(est, self.X, self.y, self.sample_weight, train, test)
            return
        try:
            yield lease.parts.pick(pick)
        finally:
            self.store.release(lease)


def weight_problem(weights: np.ndarray) -> str | None:
    """What is wrong with sample weights that every fit would reject (NaN or
    infinite values), or None. Negative weights are left to the estimator."""
    bad = np.flatnonzero(~np.isfinite(weights)) if weights.dtype.kind == "f" else ()
    if len(bad):
        return f"has {len(bad)} NaN or infinite value{'s' if len(bad) > 1 else ''} (first at row {bad[0]})"
    return None
