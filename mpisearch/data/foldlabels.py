"""Folds shipped as one label per row instead of index arrays, where that says the same.

K-fold splitters (KFold without shuffling, StratifiedKFold, GroupKFold's sorted
variants...) make folds whose test sets partition the rows and whose train and test
indices are both ascending: then fold ``f`` is exactly ``(rows labelled != f, rows
labelled == f)``, and one small integer per row (1 byte for up to 255 folds) carries
every fold. Index arrays cost 8 bytes per row per fold (0.05x of a 100-column float64
dataset at 5 folds, held by every node): the labels cost 1/8 of one fold's.

Other splitters (shuffled KFold's test blocks are not ascending, ShuffleSplit leaves
rows out, TimeSeriesSplit's train sets are not complements) keep their index arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

Fold = tuple[np.ndarray, np.ndarray]
# Labels decoded at a time when a fold is cut block by block (LabelRows): 64 Ki rows make
# 512 KiB of indices, instead of 8 bytes per row of the whole fold (6 MB, 0.01x of a
# 606 MB dataset, held by the builder while the node holds two folds: the peak).
BLOCK_ROWS = 65536


def encode(folds: Sequence[Fold], n_rows: int) -> np.ndarray | None:
    """Each row's test fold, if the folds are exactly what :class:`FoldLabels` gives back; else None."""
    if not folds or n_rows == 0:
        return None
    dtype = np.min_scalar_type(len(folds))  # room for the label "no fold" = len(folds)
    labels = np.full(n_rows, len(folds), dtype=dtype)
    for f, (_, test) in enumerate(folds):
        test = np.asarray(test)
        if test.ndim != 1 or test.dtype.kind not in "iu" or (len(test) and (test.min() < 0 or test.max() >= n_rows)):
            return None
        if np.any(np.diff(test) <= 0) or np.any(labels[test] != len(folds)):
            return None  # not ascending, or in two test sets
        labels[test] = f
    if np.any(labels == len(folds)):
        return None  # a row in no test set
    decoded = FoldLabels(labels, len(folds))
    for f, (train, _) in enumerate(folds):
        if not np.array_equal(np.asarray(train), decoded[f][0]):
            return None
    return labels


class FoldLabels(Sequence[Fold]):
    """The folds of ``labels`` (see :func:`encode`): fold ``f`` is ``(train, test)`` index
    arrays, ascending, computed when asked for (O(rows); the node fold store asks once per
    build, a private copy of a fold costs far more)."""

    def __init__(self, labels: np.ndarray, n_folds: int) -> None:
        self.labels = labels
        self.n_folds = n_folds

    def __len__(self) -> int:
        return self.n_folds

    @overload
    def __getitem__(self, f: int) -> Fold: ...

    @overload
    def __getitem__(self, f: slice) -> list[Fold]: ...

    def __getitem__(self, f: int | slice) -> Fold | list[Fold]:
        if isinstance(f, slice):
            return [self[i] for i in range(*f.indices(self.n_folds))]
        if not -self.n_folds <= f < self.n_folds:
            raise IndexError(f"fold {f} of {self.n_folds}")
        f %= self.n_folds
        return np.flatnonzero(self.labels != f), np.flatnonzero(self.labels == f)

    def rows(self, f: int) -> tuple[LabelRows, LabelRows]:
        """Fold ``f``'s (train, test) rows, decoded a block at a time as they are read."""
        return LabelRows(self.labels, f % self.n_folds, test=False), LabelRows(self.labels, f % self.n_folds, test=True)


class LabelRows:
    """The rows labelled ``fold`` (``test``) or not (train), ascending, without holding them all."""

    def __init__(self, labels: np.ndarray, fold: int, test: bool) -> None:
        self.labels, self.fold, self.test = labels, fold, test
        n_test = int(np.count_nonzero(labels == fold))
        self._len = n_test if test else len(labels) - n_test

    def __len__(self) -> int:
        return self._len

    def blocks(self, size: int | None = None) -> Iterator[np.ndarray]:
        """The row indices, in order, at most ``size`` (BLOCK_ROWS) labels' worth at a time."""
        size = size or BLOCK_ROWS
        for start in range(0, len(self.labels), size):
            block = self.labels[start : start + size]
            yield start + np.flatnonzero(block == self.fold if self.test else block != self.fold)

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """All of them at once (sparse rows are cut whole)."""
        return np.concatenate(list(self.blocks())).astype(dtype or np.intp, copy=False)
