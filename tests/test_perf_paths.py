"""Fast paths of the per-task code: same results as the plain code, state restored."""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mpisearch import MPISearchCV
from mpisearch.signatures import pinned_signatures
from mpisearch.testing import NoopClassifier


def _has_pin(cls: type) -> bool:
    return "__signature__" in cls.__init__.__dict__


def test_pinned_signatures_cover_nested_estimators_and_are_removed_afterwards():
    pipe = Pipeline([("scale", StandardScaler()), ("svc", SVC(C=2.0))])
    before = {cls: inspect.signature(cls.__init__) for cls in (Pipeline, StandardScaler, SVC)}
    with pinned_signatures(pipe):
        for cls, sig in before.items():
            assert _has_pin(cls) and inspect.signature(cls.__init__) == sig
        copy = clone(pipe).set_params(svc__C=3.0)
        assert copy.get_params()["svc__C"] == 3.0 and pipe.get_params()["svc__C"] == 2.0
    assert not any(_has_pin(cls) for cls in before)


def test_an_existing_signature_attribute_is_left_alone():
    class Custom(NoopClassifier):
        def __init__(self, tag=0):
            super().__init__(tag=tag)

    marker = inspect.signature(Custom.__init__)
    Custom.__init__.__signature__ = marker
    with pinned_signatures(Custom()):
        pass
    assert Custom.__init__.__signature__ is marker


def test_search_under_an_outer_pin_keeps_it_and_matches_gridsearchcv():
    X = np.random.default_rng(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    grid = {"C": [0.1, 1.0, 10.0]}
    expected = GridSearchCV(LogisticRegression(), grid, cv=3, refit=False).fit(X, y).cv_results_
    with pinned_signatures(LogisticRegression()):
        ours = MPISearchCV(LogisticRegression(), grid, cv=3, refit=False).fit(X, y).cv_results_
        assert _has_pin(LogisticRegression)  # the search's own pin did not remove the outer one
    assert not _has_pin(LogisticRegression)
    for key in ("mean_test_score", "split0_test_score", "split2_test_score", "rank_test_score"):
        assert np.array_equal(ours[key], expected[key])
