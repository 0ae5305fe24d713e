"""Folds carried as one label per row: exactly the splitter's folds, or not used at all."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, KFold, ShuffleSplit, StratifiedKFold, TimeSeriesSplit

from mpisearch.data.foldlabels import FoldLabels, encode

N = 97
X = np.zeros((N, 2))
y = np.arange(N) % 3
groups = np.arange(N) // 4


@pytest.mark.parametrize("cv", [KFold(5), KFold(5, shuffle=True, random_state=0), StratifiedKFold(5),
                                StratifiedKFold(4, shuffle=True, random_state=1), GroupKFold(3)],
                         ids=["kfold", "kfold-shuffled", "stratified", "stratified-shuffled", "group"])
def test_k_fold_splits_come_back_identical_from_their_labels(cv):
    folds = list(cv.split(X, y, groups))
    labels = encode(folds, N)
    assert labels is not None and labels.dtype == np.uint8
    decoded = FoldLabels(labels, len(folds))
    assert len(decoded) == len(folds)
    for (train, test), (got_train, got_test) in zip(folds, decoded, strict=True):
        for want, got in ((train, got_train), (test, got_test)):
            assert got.dtype == want.dtype and np.array_equal(got, want)


class Unsorted(KFold):
    """A custom splitter whose test indices come in no particular order."""

    def split(self, X, y=None, groups=None):
        for train, test in super().split(X, y, groups):
            yield train, test[::-1]


@pytest.mark.parametrize("cv", [Unsorted(4), ShuffleSplit(3, random_state=0), TimeSeriesSplit(3)],
                         ids=["unsorted", "shuffle-split", "time-series"])
def test_splits_labels_cannot_say_keep_their_indices(cv):
    assert encode(list(cv.split(X, y)), N) is None


def test_a_fold_out_of_range_is_an_index_error():
    decoded = FoldLabels(encode(list(KFold(3).split(X)), N), 3)
    with pytest.raises(IndexError):
        decoded[3]
    assert [len(t) for _, t in decoded[-2:]] == [32, 32]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_a_fold_store_cuts_label_folds_block_by_block_into_the_very_rows_of_x_train(monkeypatch, sparse):
    import uuid

    import scipy.sparse as sp

    from mpisearch.data import foldlabels
    from mpisearch.data.foldstore import PREFIX, NodeFoldStore

    monkeypatch.setattr(foldlabels, "BLOCK_ROWS", 10)  # many blocks, some without a row of the fold
    rng = np.random.default_rng(0)
    data = sp.random(N, 7, density=0.3, format="csr", random_state=0) if sparse else rng.random((N, 7))
    w = rng.random(N)
    folds = list(StratifiedKFold(4, shuffle=True, random_state=2).split(X, y))
    labelled = FoldLabels(encode(folds, N), len(folds))
    store = NodeFoldStore(f"{PREFIX}test-{uuid.uuid4().hex[:8]}", data, y, w, labelled)
    for f, (train, test) in enumerate(folds):
        lease = store.acquire(f)
        parts = lease.parts
        for got, want in ((parts.X_train, data[train]), (parts.X_test, data[test])):
            arrays = (lambda m: (m.data, m.indices, m.indptr)) if sparse else (lambda m: (m,))
            for g, wnt in zip(arrays(got), arrays(want), strict=True):
                assert g.dtype == wnt.dtype and np.array_equal(g, wnt)
        np.testing.assert_array_equal(parts.y_train, y[train])
        np.testing.assert_array_equal(parts.w_train, w[train])
        store.release(lease)
    store.close()
