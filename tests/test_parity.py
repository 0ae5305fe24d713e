"""In one process, cv_results_ equals scikit-learn's GridSearchCV to 1e-12."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from estimators import FailingClassifier
from parity import assert_same_results, case, cases
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid
from sklearn.svm import SVC

from mpisearch import Categorical, MPISearchCV, Real
from mpisearch.errors import InputError, SearchFailedError
from mpisearch.results import TaskFailedError


@pytest.mark.parametrize("name", [c[0] for c in cases()])
def test_grid_equals_gridsearchcv(name):
    _, est, grid, scoring, refit, X, y = case(name)
    ours = MPISearchCV(est, grid, scoring=scoring, refit=refit).fit(X, y)
    theirs = GridSearchCV(est, grid, scoring=scoring, refit=refit).fit(X, y)
    assert_same_results(ours.cv_results_, theirs.cv_results_)
    assert ours.best_index_ == theirs.best_index_
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_score_ == pytest.approx(theirs.best_score_, abs=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=1e-12)


def test_random_search_scores_equal_gridsearch_on_the_sampled_points():
    X, y = load_iris(return_X_y=True)
    space = {"C": Real(1e-2, 1e2, log=True), "kernel": Categorical(["rbf", "linear"])}
    ours = MPISearchCV(SVC(), space, strategy="random", n_iter=6, random_state=0, cv=3).fit(X, y)
    points = ours.cv_results_["params"]
    assert len(points) == 6
    theirs = GridSearchCV(SVC(), [{k: [v] for k, v in p.items()} for p in points], cv=3).fit(X, y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], atol=1e-12)


def test_splitter_and_explicit_folds_are_used():
    X, y = load_iris(return_X_y=True)
    cv = KFold(4, shuffle=True, random_state=3)
    grid = {"C": [0.5, 5.0]}
    ours = MPISearchCV(SVC(), grid, cv=cv).fit(X, y)
    assert_same_results(ours.cv_results_, GridSearchCV(SVC(), grid, cv=cv).fit(X, y).cv_results_)
    folds = list(KFold(3).split(X))
    ours = MPISearchCV(SVC(), grid, cv=folds).fit(X, y)
    assert ours.n_splits_ == 3 and "split2_test_score" in ours.cv_results_


def test_failing_points_get_error_score_as_in_scikit_learn():
    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.1, 1.0], "fail": [False, True]}
    with pytest.warns(FitFailedWarning, match="10 fits failed"):
        ours = MPISearchCV(FailingClassifier(), grid).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = GridSearchCV(FailingClassifier(), grid).fit(X, y)
    assert_same_results(ours.cv_results_, theirs.cv_results_)
    ours = MPISearchCV(FailingClassifier(), grid, error_score=-1.0)
    with pytest.warns(FitFailedWarning):
        ours.fit(X, y)
    assert (ours.cv_results_["mean_test_score"][1::2] == -1.0).all()


def test_every_fit_failing_raises_with_grouped_tracebacks():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(SearchFailedError, match=r"all the 10 fits failed(.|\n)*10 fits failed with(.|\n)*always fails"):
        MPISearchCV(FailingClassifier(fail=True), {"C": [0.1, 1.0]}).fit(X, y)


def test_error_score_raise_stops_with_the_remote_traceback():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(TaskFailedError, match="always fails"):
        MPISearchCV(FailingClassifier(), {"fail": [True]}, error_score="raise").fit(X, y)


def test_is_a_scikit_learn_estimator():
    search = MPISearchCV(SVC(), {"C": [1.0]}, cv=3)
    copy = clone(search)
    assert copy.get_params()["cv"] == 3 and copy.get_params()["estimator__kernel"] == "rbf"
    copy.set_params(estimator__C=2.0, strategy="random")
    assert copy.estimator.C == 2.0 and copy.strategy == "random"
    X, y = load_iris(return_X_y=True)
    fitted = pickle.loads(pickle.dumps(search.fit(X, y)))
    assert fitted.best_params_ == {"C": 1.0}
    np.testing.assert_array_equal(fitted.classes_, [0, 1, 2])
    assert fitted.predict_proba if hasattr(SVC(probability=True), "predict_proba") else True


def test_unknown_parameter_and_scorer_are_input_errors():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(InputError, match=r"space\.Cc: 'Cc' is not a parameter of SVC \(did you mean 'C'\?\)"):
        MPISearchCV(SVC(), {"Cc": [1.0]}).fit(X, y)
    with pytest.raises(InputError, match="unknown scorer 'acuracy' \\(did you mean 'accuracy'\\?\\)"):
        MPISearchCV(SVC(), {"C": [1.0]}, scoring="acuracy").fit(X, y)
    with pytest.raises(InputError, match="different lengths"):
        MPISearchCV(SVC(), {"C": [1.0]}).fit(X, y[:-1])


def test_max_time_keeps_only_finished_points():
    from estimators import SleepyClassifier

    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "delay": [0.1]}
    search = MPISearchCV(SleepyClassifier(), grid, cv=2, max_time=0.5).fit(X, y)
    n = len(search.cv_results_["params"])
    assert 1 <= n < len(ParameterGrid(grid))
    assert search.run_info_["timed_out"] is True
