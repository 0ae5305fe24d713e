"""SPMD tests of reuse (mpisearch.reuse): warm-start chains and pipeline prefix groups give the
same cv_results_ at any number of ranks, on or off, as GridSearchCV. Run as
``mpiexec -n K python -m mpi4py -m pytest --with-mpi tests/test_mpi_reuse.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from parity import assert_bitwise_equal, assert_same_results
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from spmd import quiet_allgather

from mpisearch.reuse.growth import GROWTH, Growth
from mpisearch.testing import CrashingClassifier, CrashingForest

pytestmark = pytest.mark.mpi(min_size=1)

MPI = pytest.importorskip("mpi4py.MPI")
COMM = MPI.COMM_WORLD
ROOT = COMM.Get_rank() == 0
X, y = make_classification(400, 8, n_informative=5, random_state=0)

CASES = {
    "chains": (RandomForestClassifier(random_state=0), {"n_estimators": [4, 8, 16, 2], "max_features": [2, 4]},
               "chained_fits"),
    "prefix": (Pipeline([("scale", StandardScaler()), ("pca", PCA()), ("svc", SVC())]),
               {"pca__n_components": [2, 5], "svc__C": [0.1, 1.0, 10.0], "svc__gamma": [0.05, 0.5]},
               "prefix_fits_reused"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reuse_on_and_off_equal_gridsearchcv_at_any_number_of_ranks(name):
    from mpisearch import MPISearchCV

    est, grid, counter = CASES[name]
    results = {}
    for on in (True, False):
        search = MPISearchCV(est, grid, cv=4, comm=COMM, warm_start_chains=on, prefix_cache=on)
        search.fit(X if ROOT else None, y if ROOT else None)
        results[on] = search
    if ROOT:
        assert_bitwise_equal(results[True].cv_results_, results[False].cv_results_)
        theirs = GridSearchCV(est, grid, cv=4).fit(X, y)
        assert_same_results(results[True].cv_results_, theirs.cv_results_, atol=0)
        assert results[True].run_info_["reused"][counter] > 0
        assert results[False].run_info_["reused"]["bundles"] == 0
    best = quiet_allgather(COMM, results[True].best_params_)
    assert all(b == best[0] for b in best)


@pytest.fixture
def crashing_forest_chains():
    """CrashingForest grows as RandomForestClassifier does: chained here as its parent is."""
    GROWTH[CrashingForest] = Growth("n_estimators")
    yield
    del GROWTH[CrashingForest]


def _prefix_grid(crash):
    """Six points of one prefix; the third's final step does what ``crash`` says."""
    return [{"clf__C": [0.1, 0.5], "clf__crash": ["none"]}, {"clf__C": [1.0], "clf__crash": [crash]},
            {"clf__C": [5.0, 10.0, 50.0], "clf__crash": ["none"]}]


PIPE = Pipeline([("scale", StandardScaler()), ("clf", CrashingClassifier())])
FOREST = {"n_estimators": [4, 8, 16, 2], "max_features": [2, 4]}
CRASH_CASES = {  # estimator, grid, what the search adds, the grid without the crash (for GridSearchCV)
    "chain-segfault": (CrashingForest(random_state=0, crash="segfault", crash_at=8), FOREST, {}, FOREST),
    "prefix-os_exit": (PIPE, _prefix_grid("os_exit"), {}, _prefix_grid("none")),
    "chain-hang": (CrashingForest(random_state=0, crash="hang", crash_at=8), {"n_estimators": [4, 8, 16]},
                   {"task_timeout": 3.0}, {"n_estimators": [4, 8, 16]}),
}


@pytest.mark.parametrize("name", list(CRASH_CASES))
def test_a_crash_or_hang_in_a_bundle_costs_one_point_at_any_number_of_ranks(crashing_forest_chains, name):
    """The point that crashes (or hangs past task_timeout) gets error_score; every other point
    equals a run without reuse and GridSearchCV's numbers for an estimator that does not crash."""
    from mpisearch import MPISearchCV

    est, grid, extra, clean = CRASH_CASES[name]
    results = {}
    for on in (True, False):
        search = MPISearchCV(est, grid, cv=3, comm=COMM, warm_start_chains=on, prefix_cache=on,
                             task_memory="64GiB", **extra)  # task_memory: a fit process at 1 rank too
        search.fit(X if ROOT else None, y if ROOT else None)
        results[on] = search
    if ROOT:
        ours = results[True].cv_results_
        assert_bitwise_equal(ours, results[False].cv_results_)
        crashed = np.array([p.get("n_estimators") == 8 or p.get("clf__crash", "none") != "none"
                            for p in ours["params"]])
        assert crashed.any() and np.isnan(ours["mean_test_score"][crashed]).all()
        plain = RandomForestClassifier(random_state=0) if isinstance(est, CrashingForest) else PIPE
        theirs = GridSearchCV(plain, clean, cv=3).fit(X, y).cv_results_
        for key in [k for k in theirs if k.startswith(("split", "mean_test", "std_test"))]:
            np.testing.assert_array_equal(ours[key][~crashed], theirs[key][~crashed], key)
        assert results[True].run_info_["reused"]["bundles"] > 0


def test_batches_of_short_tasks_equal_single_tasks_at_any_number_of_ranks(monkeypatch):
    """Batches (BundleKind.BATCH) formed from the first result on (thresholds injected: real ones
    need thousands of workers) give the cv_results_ of single tasks and of GridSearchCV."""
    from sklearn.tree import DecisionTreeClassifier

    from mpisearch import MPISearchCV, batching

    monkeypatch.setattr(batching, "DEFAULT_POLICY", batching.BatchPolicy(
        start_load=0.0, aim_load=1e-9, max_size=4, min_timed=1, units_per_worker=1))
    grid = {"max_depth": [1, 2, 3, 4, 5, 6], "min_samples_leaf": [1, 2, 4, 8], "random_state": [0]}
    results = {on: MPISearchCV(DecisionTreeClassifier(), grid, cv=3, comm=COMM, batch_short_tasks=on).fit(
        X if ROOT else None, y if ROOT else None) for on in (True, False)}
    if ROOT:
        assert results[True].run_info_["batches"]["formed"] > 0
        assert_bitwise_equal(results[True].cv_results_, results[False].cv_results_)
        theirs = GridSearchCV(DecisionTreeClassifier(), grid, cv=3).fit(X, y)
        assert_same_results(results[True].cv_results_, theirs.cv_results_, atol=0)
