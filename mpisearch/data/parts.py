"""The train and test parts of one fold, as a fit and its scorers get them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import _safe_split


class Pick(Protocol):
    """A subsample of each fold (:class:`mpisearch.evaluate.Subsample`)."""

    test: bool

    def indices(self, idx: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FoldParts:
    """What one task fits on and scores on. ``shared``: read-only views of node-shared
    memory (the node fold store), which a fit must not write into."""

    X_train: Any
    y_train: np.ndarray | None
    X_test: Any
    y_test: np.ndarray | None
    w_train: np.ndarray | None
    w_test: np.ndarray | None = None  # the test part's weights: the scorers get them
    shared: bool = False

    def private(self) -> FoldParts:
        """Writable copies of every part (for a fit that writes into its input)."""
        return FoldParts(*(None if a is None else a.copy() for a in
                           (self.X_train, self.y_train, self.X_test, self.y_test, self.w_train, self.w_test)))

    def pick(self, pick: Pick | None) -> FoldParts:
        """The subsample ``pick`` of these parts: the rows, in the order, that ``pick`` takes
        from the fold's indices (it draws positions: ``pick.indices(arange(n))`` indexes
        the fold as ``pick.indices(train)`` indexes X). Only the subsample is copied."""
        if pick is None:
            return self
        rows = pick.indices(np.arange(_rows(self.X_train)))
        parts = replace(self, X_train=self.X_train[rows], y_train=_take(self.y_train, rows),
                        w_train=_take(self.w_train, rows))
        if pick.test:
            rows = pick.indices(np.arange(_rows(self.X_test)))
            parts = replace(parts, X_test=self.X_test[rows], y_test=_take(self.y_test, rows),
                            w_test=_take(self.w_test, rows))
        return parts


def storable(est: Any, X: Any) -> bool:
    """Whether a fold of ``X`` can be cut into the node fold store for ``est``: numpy or CSR
    rows (a pairwise estimator's square kernel matrix is cut on both axes: not stored)."""
    return (isinstance(X, np.ndarray) or sp.isspmatrix_csr(X)) and not _pairwise(est)


def split(est: Any, X: Any, y: Any, w: Any, train: np.ndarray, test: np.ndarray) -> FoldParts:
    """Private train and test parts; plain indexing for numpy/CSR data (what scikit-learn's
    _safe_split does for them, without its ~0.4 ms of type checks per call)."""
    w_train, w_test = _take(w, train), _take(w, test)
    if (isinstance(X, np.ndarray) or sp.issparse(X)) and not _pairwise(est):
        return FoldParts(X[train], _take(y, train), X[test], _take(y, test), w_train, w_test)
    X_train, y_train = _safe_split(est, X, y, train)
    X_test, y_test = _safe_split(est, X, y, test, train)
    return FoldParts(X_train, y_train, X_test, y_test, w_train, w_test)


def _pairwise(est: Any) -> bool:
    return est is not None and get_tags(est).input_tags.pairwise


def _take(a: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if a is None else a[rows]


def _rows(X: Any) -> int:
    return int(X.shape[0])


def csr_over(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A CSR matrix over these very arrays: the tuple constructor would copy int64 indices
    down to int32 when the values fit, and so leave the shared copy."""
    X = sp.csr_matrix(shape, dtype=data.dtype)
    X.data, X.indices, X.indptr = data, indices, indptr
    X.check_format(full_check=False)
    return X
