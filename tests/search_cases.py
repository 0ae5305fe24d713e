"""Cases where MPISearchCV must equal scikit-learn's GridSearchCV to the last bit: train
scores, weighted scores, callable and multi-metric refit rules.

Shared by tests/test_search_parity.py (one process) and tests/test_mpi.py (SPMD). Each
case builds the search from a class (``GridSearchCV`` or ``MPISearchCV``) with the very
same arguments: both take the grid second and these keywords.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dropin_cases import _frame, _frame_pipeline, assert_identical, simplest_within_one_std
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier


def max_error_rate(y_true: Any, y_pred: Any) -> float:
    """A metric without sample weights: scikit-learn scores it unweighted (and warns)."""
    return float(np.mean(y_true != y_pred))


@dataclass
class SearchCase:
    name: str
    make: Callable[[type], Any]  # search class -> unfitted search
    X: Any
    y: Any
    fit_params: dict[str, Any] = field(default_factory=dict)


def cases() -> list[SearchCase]:
    Xi, yi = load_iris(return_X_y=True)
    Xb, yb = load_breast_cancer(return_X_y=True)
    wi = np.random.RandomState(1).rand(len(yi)) * 3
    wb = np.random.RandomState(2).rand(len(yb))
    tree = DecisionTreeClassifier(random_state=0)
    return [
        SearchCase("weighted-train-scores", lambda cls: cls(  # estimator.score takes the weights
            tree, {"max_depth": [1, 2, 4, 8]}, return_train_score=True), Xi, yi, {"sample_weight": wi}),
        SearchCase("weighted-multimetric", lambda cls: cls(  # max_error_rate takes no weights: left unweighted
            LogisticRegression(max_iter=500), {"C": [0.01, 1.0]}, refit="ll", return_train_score=True, cv=3,
            scoring={"acc": "accuracy", "ll": "neg_log_loss", "err": make_scorer(max_error_rate)}),
            Xb / Xb.max(axis=0), yb, {"sample_weight": wb}),
        SearchCase("train-scores-multimetric", lambda cls: cls(
            SVC(), {"C": [0.1, 1.0, 10.0]}, scoring=["accuracy", "f1_macro"], refit="f1_macro",
            return_train_score=True), Xi, yi),
        SearchCase("callable-refit", lambda cls: cls(
            SVC(), {"C": [0.01, 0.1, 1.0, 10.0]}, scoring=["accuracy", "f1_macro"], refit=simplest_within_one_std),
            Xi, yi),
        SearchCase("multimetric-no-refit", lambda cls: cls(
            SVC(), {"C": [0.1, 1.0]}, scoring={"acc": "accuracy", "bal": "balanced_accuracy"}, refit=False), Xi, yi),
        SearchCase("one-metric-no-refit", lambda cls: cls(SVC(), {"C": [0.1, 1.0]}, refit=False), Xi, yi),
        SearchCase("dataframe-columns-by-name", lambda cls: cls(  # numbers, a categorical, strings with NaN
            _frame_pipeline(), {"clf__C": [0.01, 1.0]}, cv=3, return_train_score=True), *_frame()),
        SearchCase("one-metric-named-refit", lambda cls: cls(  # a name with one metric: "score" ranks
            SVC(), {"C": [0.1, 1.0]}, scoring="accuracy", refit="balanced_accuracy"), Xi, yi),
    ]


def case(name: str) -> SearchCase:
    return next(c for c in cases() if c.name == name)


__all__ = ["SearchCase", "assert_identical", "case", "cases"]
