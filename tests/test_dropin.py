"""mpisearch's drop-in search classes in one process: scikit-learn's numbers, errors and attributes."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.model_selection as sk_ms
from dropin_cases import assert_identical, case, cases, one_thread_per_process  # noqa: F401 (autouse)
from joblib import Parallel, delayed, parallel_config
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.svm import SVC

import mpisearch
from mpisearch.dropin.collect import CollectingBackend, Outcome


@pytest.mark.parametrize("name", [c.name for c in cases()])
def test_same_as_scikit_learn(name):
    c, fresh = case(name), case(name)  # an estimator may change a fit parameter in place (SGD's coef_init)
    ours = c.make(mpisearch).fit(c.X, c.y, **c.fit_params)
    theirs = fresh.make(sk_ms).fit(fresh.X, fresh.y, **fresh.fit_params)
    assert_identical(ours, theirs)
    if hasattr(theirs, "best_estimator_"):
        np.testing.assert_array_equal(ours.predict(c.X), theirs.predict(c.X))


def test_n_jobs_gives_the_same_numbers():
    c = case("sample-weight")
    one = c.make(mpisearch).fit(c.X, c.y, **c.fit_params)
    two = c.make(mpisearch).set_params(n_jobs=2).fit(c.X, c.y, **c.fit_params)
    assert_identical(two, one)


def test_sample_weight_weights_the_test_scores():
    c = case("sample-weight")
    weighted = c.make(mpisearch).fit(c.X, c.y, **c.fit_params)
    plain = c.make(mpisearch).fit(c.X, c.y)
    assert not np.array_equal(weighted.cv_results_["split0_test_score"], plain.cv_results_["split0_test_score"])


def test_callable_refit_picks_its_index():
    c = case("callable-refit")
    search = c.make(mpisearch).fit(c.X, c.y)
    assert search.best_index_ == c.make(mpisearch).refit(search.cv_results_)
    assert not hasattr(search, "best_score_")


def test_multimetric_refit_true_raises_as_scikit_learn():
    make = lambda ns: ns.GridSearchCV(SVC(), {"C": [1.0]}, scoring=["accuracy", "f1_macro"])  # noqa: E731
    X, y = case("sample-weight").X, case("sample-weight").y
    with pytest.raises(ValueError) as theirs:
        make(sk_ms).fit(X, y)
    with pytest.raises(ValueError) as ours:
        make(mpisearch).fit(X, y)
    assert str(ours.value) == str(theirs.value)


def test_dataframe_reaches_the_fits_with_its_columns():
    c = case("dataframe")
    search = c.make(mpisearch).fit(c.X, c.y)
    assert list(search.feature_names_in_) == list(c.X.columns)
    assert search.best_estimator_.named_steps["columns"].feature_names_in_.tolist() == list(c.X.columns)


def test_drop_in_classes_take_scikit_learns_arguments():
    import inspect

    for name in ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV"):
        ours, theirs = getattr(mpisearch, name), getattr(sk_ms, name)
        assert str(inspect.signature(ours)) == str(inspect.signature(theirs)), name  # nan != nan


def _square(x):
    if x == 3:
        raise ZeroDivisionError("three")
    return x * x


def test_collecting_backend_runs_every_task_at_once_and_keeps_order():
    seen = []

    def runner(calls):
        seen.append(len(calls))
        return [Outcome(value=c.func(*c.args, **c.kwargs)) for c in calls]

    with parallel_config(backend=CollectingBackend(runner)):
        out = Parallel(pre_dispatch="2*n_jobs")(delayed(_square)(i) for i in range(50) if i != 3)
    assert out == [i * i for i in range(50) if i != 3]
    assert seen == [49]


def test_collecting_backend_raises_the_first_error():
    def runner(calls):
        outcomes = []
        for c in calls:
            try:
                outcomes.append(Outcome(value=c.func(*c.args, **c.kwargs)))
            except Exception as exc:
                outcomes.append(Outcome(error=exc))
        return outcomes

    with parallel_config(backend=CollectingBackend(runner)), pytest.raises(ZeroDivisionError, match="three"):
        Parallel()(delayed(_square)(i) for i in range(10))
