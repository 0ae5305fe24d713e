"""SPMD tests: run as ``mpiexec -n K python -m mpi4py -m pytest --with-mpi tests/test_mpi.py``.

Every rank calls fit; rank 0 alone holds the data. Results must equal the
one-process run to the last bit, whatever K (also oversubscribed).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from parity import assert_bitwise_equal, assert_same_results, case, cases
from search_cases import assert_identical
from search_cases import case as search_case
from search_cases import cases as search_cases
from spmd import quiet_allgather

pytestmark = pytest.mark.mpi(min_size=1)

MPI = pytest.importorskip("mpi4py.MPI")
COMM = MPI.COMM_WORLD
ROOT = COMM.Get_rank() == 0


def fit_everywhere(make_search, X, y):
    """Fit on COMM_WORLD (data on rank 0 only) and, on rank 0, in one process."""
    search = make_search(COMM).fit(X if ROOT else None, y if ROOT else None)
    local = make_search(MPI.COMM_SELF).fit(X, y) if ROOT else None
    return search, local


@pytest.mark.parametrize("name", [c[0] for c in cases()])
def test_grid_equals_gridsearchcv_and_one_process(name):
    from sklearn.model_selection import GridSearchCV

    from mpisearch import MPISearchCV

    _, est, grid, scoring, refit, X, y = case(name)
    search, local = fit_everywhere(lambda c: MPISearchCV(est, grid, scoring=scoring, refit=refit, comm=c), X, y)
    assert search.best_params_ == search.cv_results_["params"][search.best_index_]
    if ROOT:
        assert_bitwise_equal(search.cv_results_, local.cv_results_)
        theirs = GridSearchCV(est, grid, scoring=scoring, refit=refit).fit(X, y)
        assert_same_results(search.cv_results_, theirs.cv_results_)
        np.testing.assert_array_equal(search.predict(X), theirs.predict(X))
        assert search.run_info_["ranks"] == COMM.Get_size()
        assert len(search.run_info_["workers"]) == max(COMM.Get_size() - 1, 1)
    all_best = quiet_allgather(COMM, search.best_params_)
    assert all(b == all_best[0] for b in all_best)


def test_random_search_is_identical_for_any_number_of_ranks():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from mpisearch import MPISearchCV, Real

    X, y = load_breast_cancer(return_X_y=True)
    X = X / X.max(axis=0)
    space = {"C": Real(1e-3, 1e3, log=True), "fit_intercept": [True, False]}
    make = lambda c: MPISearchCV(LogisticRegression(max_iter=300), space, strategy="random",  # noqa: E731
                                 n_iter=12, random_state=7, scoring=["accuracy", "roc_auc"], refit="accuracy",
                                 comm=c)
    search, local = fit_everywhere(make, X, y)
    if ROOT:
        assert_bitwise_equal(search.cv_results_, local.cv_results_)
    gathered = quiet_allgather(COMM, search.cv_results_["mean_test_accuracy"].tobytes())
    assert len(set(gathered)) == 1


@pytest.mark.parametrize("n_iter", [6, 8])
def test_random_search_draws_randomizedsearchcvs_candidates(n_iter):
    """The same candidates and numbers as RandomizedSearchCV for the same random_state (lists and
    scipy distributions; n_iter=8 is the whole grid of the list-only space, kept in grid order)."""
    from scipy import stats
    from sklearn.datasets import load_iris
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.svm import SVC

    from mpisearch import MPISearchCV

    X, y = load_iris(return_X_y=True)
    for space in ({"C": [0.1, 1.0, 10.0, 100.0], "kernel": ["rbf", "linear"]},
                  {"C": stats.loguniform(1e-2, 1e2), "kernel": ["rbf", "linear"], "gamma": stats.uniform(0.01, 1)}):
        seed = None if n_iter == 8 and "gamma" not in space else 3  # no seed: the grid's own order
        make = lambda c, space=space, seed=seed: MPISearchCV(  # noqa: E731
            SVC(), space, strategy="random", n_iter=n_iter, random_state=seed, comm=c)
        search, _ = fit_everywhere(make, X, y)
        if ROOT:
            theirs = RandomizedSearchCV(SVC(), space, n_iter=n_iter, random_state=seed).fit(X, y)
            assert search.cv_results_["params"] == theirs.cv_results_["params"]
            assert_same_results(search.cv_results_, theirs.cv_results_)


def test_failing_fits_get_error_score_on_every_rank():
    from estimators import FailingClassifier
    from sklearn.datasets import load_iris

    from mpisearch import MPISearchCV

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = MPISearchCV(FailingClassifier(), {"C": [0.1, 1.0], "fail": [False, True]}, comm=COMM)
        search.fit(X if ROOT else None, y if ROOT else None)
    assert np.isnan(search.cv_results_["mean_test_score"][1::2]).all()
    assert not np.isnan(search.cv_results_["mean_test_score"][0::2]).any()


def test_errors_raise_on_every_rank_and_nobody_hangs():
    from estimators import FailingClassifier
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    from mpisearch import MPISearchCV
    from mpisearch.errors import InputError, SearchFailedError
    from mpisearch.results import TaskFailedError

    X, y = load_iris(return_X_y=True)
    data = (X, y) if ROOT else (None, None)
    with pytest.raises(InputError, match="not a parameter of SVC"):
        MPISearchCV(SVC(), {"Cx": [1.0]}, comm=COMM).fit(*data)
    with pytest.raises(SearchFailedError, match="fits failed"):
        MPISearchCV(FailingClassifier(fail=True), {"C": [1.0, 2.0]}, comm=COMM).fit(*data)
    where = r"on rank \d \(host .+\)" if COMM.Get_size() > 1 else "on rank 1"
    with pytest.raises(TaskFailedError, match=f"failed {where}: ValueError: this point always fails"):
        MPISearchCV(FailingClassifier(), {"fail": [False, True]}, error_score="raise", comm=COMM).fit(*data)
    search = MPISearchCV(SVC(), {"C": [1.0]}, cv=3, comm=COMM).fit(*data)  # still in step afterwards
    assert search.best_params_ == {"C": 1.0}


@pytest.mark.parametrize("kind", ["float32", "sparse", "strings"])
def test_dataset_ships_as_buffers_and_arrives_read_only(kind):
    from mpisearch.data.dataset import Dataset
    from mpisearch.data.shipping import bcast_dataset

    rng = np.random.default_rng(0)
    X = rng.random((50, 6)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    if kind == "sparse":
        X = sp.random(50, 30, density=0.1, format="csr", random_state=1)
    if kind == "strings":
        y = np.array(["cat", "dog", "wolf"])[y]
    folds = [(np.arange(0, 40), np.arange(40, 50)), (np.arange(10, 50), np.arange(0, 10))]
    got = bcast_dataset(Dataset(X, y, folds) if ROOT else None, COMM)
    dense = X.toarray() if sp.issparse(X) else X
    got_dense = got.X.toarray() if sp.issparse(got.X) else got.X
    np.testing.assert_array_equal(got_dense, dense)
    assert got_dense.dtype == dense.dtype and sp.issparse(got.X) == sp.issparse(X)
    np.testing.assert_array_equal(got.y, y)
    for (a, b), (c, d) in zip(got.folds, folds, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    if not ROOT:
        arr = got.X.data if sp.issparse(got.X) else got.X
        assert not arr.flags.writeable and not got.y.flags.writeable


def test_task_timeout_kills_the_fit_and_the_worker_goes_on():
    from estimators import SleepyClassifier
    from sklearn.datasets import load_iris

    from mpisearch import MPISearchCV

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = MPISearchCV(SleepyClassifier(), {"delay": [0.0, 60.0, 0.01]}, cv=2, task_timeout=1.0, comm=COMM)
        search.fit(X if ROOT else None, y if ROOT else None)
    means = search.cv_results_["mean_test_score"]
    assert np.isnan(means[1]) and means[0] > 0.9 and means[2] > 0.9


def test_bayes_search_is_identical_for_any_number_of_ranks():
    """Points depend on the batch, not on the number of workers: the same cv_results_ as one process."""
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    from mpisearch import MPISearchCV, Real

    X, y = load_iris(return_X_y=True)
    space = {"C": Real(1e-2, 1e3, log=True), "gamma": Real(1e-4, 10.0, log=True)}
    make = lambda c: MPISearchCV(SVC(), space, strategy="bayes", n_iter=16, cv=3, random_state=0,  # noqa: E731
                                 batch=3, comm=c)
    search, local = fit_everywhere(make, X, y)
    assert len(search.cv_results_["params"]) == 16 and search.best_score_ > 0.9  # 10 design points, 6 of the model
    if ROOT:
        assert_bitwise_equal(search.cv_results_, local.cv_results_)
    gathered = quiet_allgather(COMM, search.cv_results_["mean_test_score"].tobytes())
    assert len(set(gathered)) == 1


def test_halving_and_racing_under_mpi():
    """Sync halving gives the one-process result bitwise; async halving and fold racing
    (whose work depends on the order results arrive) keep the grid's winner."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    from mpisearch import MPISearchCV

    X, y = load_digits(return_X_y=True)
    grid = {"C": [0.1, 1, 10, 100], "gamma": [1e-4, 1e-3, 1e-2, 1e-1]}
    sync = lambda c: MPISearchCV(SVC(), grid, strategy="halving", random_state=0,  # noqa: E731
                                 halving={"mode": "sync"}, comm=c)
    search, local = fit_everywhere(sync, X, y)
    if ROOT:
        assert_bitwise_equal(search.cv_results_, local.cv_results_)
    fast = MPISearchCV(SVC(), grid, strategy="halving", random_state=0, comm=COMM)
    fast.fit(X if ROOT else None, y if ROOT else None)
    last = np.flatnonzero(fast.cv_results_["iter"] == 2)
    assert fast.best_index_ in last and len(last) >= 2
    raced = MPISearchCV(SVC(), grid, racing=True, comm=COMM).fit(X if ROOT else None, y if ROOT else None)
    # GridSearchCV's best is C=1, gamma=1e-3 (0.9721866); C=10 and C=100 at gamma=1e-3 tie with it
    # to 1.5e-6 (one test sample), so racing may keep any of the three, depending on arrival order
    assert raced.best_params_["gamma"] == 0.001 and abs(raced.best_score_ - 0.9721866295264624) < 1e-5
    assert raced.run_info_["tasks"] < 80 and (raced.cv_results_["stopped_at_fold"] >= 0).sum() >= 4
    assert quiet_allgather(COMM, raced.best_index_) == [raced.best_index_] * COMM.Get_size()


@pytest.mark.parametrize("name", [c.name for c in search_cases()])
def test_train_scores_weights_and_refit_rules_equal_gridsearchcv(name):
    """return_train_score, weighted scores, callable and multi-metric refit: on rank 0 the
    same as GridSearchCV to the last bit; every rank ends with the same attributes."""
    from functools import partial

    from sklearn.model_selection import GridSearchCV

    from mpisearch import MPISearchCV

    c = search_case(name)
    params = c.fit_params if ROOT else {}
    search = c.make(partial(MPISearchCV, comm=COMM)).fit(c.X if ROOT else None, c.y if ROOT else None, **params)
    if ROOT:
        assert_identical(search, c.make(GridSearchCV).fit(c.X, c.y, **c.fit_params))
    key = min(k for k in search.cv_results_ if k.startswith(("mean_test_", "mean_train_")))
    seen = quiet_allgather(COMM, (getattr(search, "best_index_", None), hasattr(search, "best_score_"),
                                  sorted(search.cv_results_), search.cv_results_[key].tobytes()))
    assert all(s == seen[0] for s in seen)
