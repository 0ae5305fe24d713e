"""Comparing cv_results_ with scikit-learn's (shared by the in-process and MPI tests)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

TIME_KEYS = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")


def cases():
    """(name, estimator, grid, scoring, refit, X, y) for the parity tests."""
    Xi, yi = load_iris(return_X_y=True)
    Xd, yd = load_diabetes(return_X_y=True)
    Xb, yb = load_breast_cancer(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=2000))])
    return [
        ("svc-multimetric", SVC(), {"C": [0.1, 1.0, 10.0], "gamma": [0.01, 0.1, 1.0]},
         ["accuracy", "f1_macro", "balanced_accuracy"], "f1_macro", Xi, yi),
        ("ridge-regressor", Ridge(), {"alpha": [1e-3, 1e-2, 0.1, 1.0, 10.0], "fit_intercept": [True, False]},
         "neg_mean_squared_error", True, Xd, yd),
        ("pipeline", pipe, [{"clf__C": [0.01, 0.1, 1.0]}, {"clf__C": [1.0], "scale__with_mean": [False]}],
         None, True, Xb, yb),
    ]


def case(name):
    return next(c for c in cases() if c[0] == name)


def assert_same_results(ours: dict, theirs: dict, atol: float = 1e-12) -> None:
    """Every key of scikit-learn's cv_results_ (timings aside) is equal in ours."""
    assert set(ours) == set(theirs)
    for key, expected in theirs.items():
        if key in TIME_KEYS:
            continue
        got = ours[key]
        if key == "params":
            assert got == expected
        elif key.startswith("param_"):
            assert list(np.ma.getmaskarray(got)) == list(np.ma.getmaskarray(expected)), key
            assert np.ma.MaskedArray(got).tolist() == np.ma.MaskedArray(expected).tolist(), key
        elif key.startswith("rank_"):
            np.testing.assert_array_equal(got, expected, err_msg=key)
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=atol, err_msg=key)


def assert_bitwise_equal(a: dict, b: dict) -> None:
    """Two runs of mpisearch: every score column identical to the last bit."""
    assert set(a) == set(b)
    for key in a:
        if key in TIME_KEYS or key == "params" or key.startswith("param_"):
            continue
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
    assert a["params"] == b["params"]
