"""The simulation estimators of mpisearch.testing (used by benchmarks/bench_scaling.py)."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.metrics import r2_score
from sklearn.model_selection import cross_val_score

from mpisearch import MPISearchCV
from mpisearch.testing import NoopClassifier, SleepClassifier, SleepRegressor

X = np.arange(24, dtype=float).reshape(12, 2)
y = np.array([0, 1, 1] * 4)


def test_sleep_classifier_sleeps_for_its_duration():
    est = SleepClassifier(duration=0.05)
    start = time.perf_counter()
    est.fit(X, y)
    took = time.perf_counter() - start
    assert 0.05 <= took < 0.5
    assert list(est.classes_) == [0, 1]
    assert est.predict(X).tolist() == [0] * 12
    assert est.score(X, y) == pytest.approx(4 / 12)


def test_noop_classifier_is_fast_and_scores():
    est = NoopClassifier(tag=3)
    start = time.perf_counter()
    for _ in range(100):
        est.fit(X, y)
    assert (time.perf_counter() - start) / 100 < 1e-3
    assert est.score(X, y) == pytest.approx(4 / 12)


def test_sleep_regressor_scores_like_r2():
    yr = np.linspace(0.0, 3.0, 12) ** 2
    est = SleepRegressor(duration=0.0).fit(X[:8], yr[:8])
    assert est.score(X[8:], yr[8:]) == pytest.approx(r2_score(yr[8:], est.predict(X[8:])))
    assert SleepRegressor().fit(X, np.ones(12)).score(X, np.ones(12)) == 1.0


@pytest.mark.parametrize("cls", [SleepClassifier, SleepRegressor])
def test_negative_or_nan_duration_is_rejected(cls):
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="duration"):
            cls(duration=bad).fit(X, y)


@pytest.mark.parametrize("est", [SleepClassifier(duration=0.01, tag=7), NoopClassifier(tag=2),
                                 SleepRegressor(duration=0.01, tag="a")])
def test_estimators_follow_scikit_learn_conventions(est):
    params = est.get_params()
    assert clone(est).get_params() == params
    assert pickle.loads(pickle.dumps(est)).get_params() == params
    assert is_classifier(est) or is_regressor(est)
    scores = cross_val_score(est, X, y, cv=2, scoring="accuracy" if is_classifier(est) else "r2")
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


def test_searched_duration_sets_each_tasks_cost():
    durations = [0.01, 0.06]
    search = MPISearchCV(SleepClassifier(), {"duration": durations}, cv=2, refit=False).fit(X, y)
    fit_times = search.cv_results_["mean_fit_time"]
    assert [p["duration"] for p in search.cv_results_["params"]] == durations
    assert fit_times[0] >= 0.01 and fit_times[1] >= 0.06
    assert fit_times[1] - fit_times[0] == pytest.approx(0.05, abs=0.03)
