"""Cross-validation folds as index arrays, made once per run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import check_cv

from .data.dataset import Fold


@dataclass(frozen=True)
class KFoldSpec:
    """``folds`` splits, stratified for classifiers (as scikit-learn's ``cv=int``)."""

    folds: int = 5
    shuffle: bool = False
    random_state: int | None = None

    def splitter(self, estimator: Any, y: Any) -> Any:
        base = check_cv(self.folds, y, classifier=is_classifier(estimator))
        if not self.shuffle:
            return base
        return type(base)(n_splits=self.folds, shuffle=True, random_state=self.random_state)


def make_folds(cv: Any, estimator: Any, X: Any, y: Any, groups: Any = None) -> list[Fold]:
    """Split once, as scikit-learn's search does (StratifiedKFold for classifiers).

    ``cv`` may be an int, a splitter, or an iterable of (train, test) pairs.
    """
    if isinstance(cv, KFoldSpec):
        splitter = cv.splitter(estimator, y)
    else:
        splitter = check_cv(cv, y, classifier=is_classifier(estimator))
    folds = [(_indices(tr), _indices(te)) for tr, te in splitter.split(X, y, groups)]
    if not folds:
        raise ValueError("the cross-validation splitter produced no folds")
    return folds


def _indices(idx: Any) -> np.ndarray:
    arr = np.asarray(idx)
    if arr.dtype == bool:
        arr = np.flatnonzero(arr)
    return np.ascontiguousarray(arr, dtype=np.int64)
