"""Cases where mpisearch's drop-in search classes must equal scikit-learn's to the last bit.

Shared by tests/test_dropin.py (one process) and tests/test_mpi_dropin.py (SPMD).
Each case builds a search from a namespace holding the four classes (scikit-learn's
``sklearn.model_selection`` or ``mpisearch``), so the very same arguments go to both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from parity import TIME_KEYS
from scipy.stats import loguniform, randint
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier


@pytest.fixture(autouse=True)
def one_thread_per_process():
    """One BLAS/OpenMP thread: HistGradientBoosting's OpenMP threads spin on loaded or
    oversubscribed machines (22 s instead of 2 s for one case at 2 ranks on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@dataclass
class DropinCase:
    name: str
    make: Callable[[Any], Any]  # namespace with the search classes -> unfitted search
    X: Any
    y: Any
    fit_params: dict[str, Any] = field(default_factory=dict)


def simplest_within_one_std(cv_results: dict[str, Any]) -> int:
    """A callable refit: the smallest C whose mean accuracy is within one std of the best."""
    means, stds = cv_results["mean_test_accuracy"], cv_results["std_test_accuracy"]
    best = int(np.argmax(means))
    ok = np.flatnonzero(means >= means[best] - stds[best])
    return int(ok[np.argmin(np.asarray(cv_results["param_C"], dtype=float)[ok])])


def _frame() -> tuple[Any, Any]:
    import pandas as pd

    X, y = make_classification(n_samples=160, n_features=3, n_informative=3, n_redundant=0, random_state=0)
    rng = np.random.RandomState(0)
    colours = rng.choice(["red", "green", "blue"], size=len(y))
    sizes = rng.choice(["s", "m", "l"], size=len(y))
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1].astype(np.float32), "n": (X[:, 2] * 10).astype(np.int64),
                          "colour": pd.Categorical(colours), "size": pd.Series(sizes, dtype=object)})
    frame.loc[rng.rand(len(y)) < 0.1, "size"] = np.nan
    return frame, pd.Series(y, name="target")


def _frame_pipeline() -> Pipeline:
    columns = ColumnTransformer([("num", StandardScaler(), ["a", "b", "n"]),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                                 ("str", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                        encoded_missing_value=-2), ["size"])])
    return Pipeline([("columns", columns), ("clf", LogisticRegression(max_iter=500))])


def cases() -> list[DropinCase]:
    Xi, yi = load_iris(return_X_y=True)
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb = Xb / Xb.max(axis=0)
    w = np.random.RandomState(1).rand(len(yi)) * 3
    frame, target = _frame()
    return [
        DropinCase("sample-weight", lambda ns: ns.GridSearchCV(
            DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 4, 8]}, return_train_score=True),
            Xi, yi, {"sample_weight": w}),
        DropinCase("fit-params", lambda ns: ns.GridSearchCV(  # X_val, y_val: not per sample, passed whole
            HistGradientBoostingClassifier(max_iter=5, max_bins=32, early_stopping=True, random_state=0),
            {"learning_rate": [0.1, 0.3]}, scoring="f1_macro"),
            Xi, yi, {"sample_weight": w, "X_val": Xi[::5] + 0.1, "y_val": yi[::5]}),
        DropinCase("dataframe", lambda ns: ns.GridSearchCV(
            _frame_pipeline(), {"clf__C": [0.01, 1.0], "columns__num": [StandardScaler(), "passthrough"]},
            cv=3, return_train_score=True), frame, target),
        DropinCase("callable-refit", lambda ns: ns.GridSearchCV(
            SVC(), {"C": [0.01, 0.1, 1.0, 10.0]}, scoring=["accuracy", "f1_macro"], refit=simplest_within_one_std),
            Xi, yi),
        DropinCase("multimetric-no-refit", lambda ns: ns.GridSearchCV(
            SVC(), {"C": [0.1, 1.0]}, scoring={"acc": "accuracy", "bal": "balanced_accuracy"}, refit=False), Xi, yi),
        DropinCase("random-draws", lambda ns: ns.RandomizedSearchCV(
            LogisticRegression(max_iter=300), {"C": loguniform(1e-3, 1e3), "fit_intercept": [True, False],
                                               "tol": [1e-4, 1e-3]}, n_iter=6, random_state=0), Xb, yb),
        DropinCase("random-lists", lambda ns: ns.RandomizedSearchCV(
            SVC(), {"C": [0.1, 1.0, 10.0], "gamma": ["scale", 0.1]}, n_iter=4, random_state=3), Xi, yi),
        DropinCase("halving-random", lambda ns: ns.HalvingRandomSearchCV(
            DecisionTreeClassifier(random_state=0), {"max_depth": randint(1, 10), "min_samples_leaf": [1, 2, 5]},
            factor=2, random_state=0), Xb, yb, {"sample_weight": np.linspace(0.5, 2, len(yb))}),
    ]


def case(name: str) -> DropinCase:
    return next(c for c in cases() if c.name == name)


def assert_identical(ours: Any, theirs: Any) -> None:
    """cv_results_ (timings aside) and the best_* attributes equal to the last bit, or absent in both."""
    assert set(ours.cv_results_) == set(theirs.cv_results_)
    for key, expected in theirs.cv_results_.items():
        if key in TIME_KEYS:
            continue
        got = ours.cv_results_[key]
        if key == "params" or key.startswith("param_"):
            assert _plain(got) == _plain(expected), key
        else:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(expected), err_msg=key)
    for name in ("best_index_", "best_score_", "best_params_", "n_splits_", "multimetric_"):
        assert hasattr(ours, name) == hasattr(theirs, name), name
        if hasattr(theirs, name):
            assert _plain(getattr(ours, name)) == _plain(getattr(theirs, name)), name


def _plain(value: Any) -> Any:
    """Estimator-valued parameters compare by their repr (two clones are never ``==``)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ma.MaskedArray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return repr(value) if hasattr(value, "get_params") else value
