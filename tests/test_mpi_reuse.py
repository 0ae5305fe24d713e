"""SPMD tests of reuse (mpisearch.reuse): warm-start chains and pipeline prefix groups give the
same cv_results_ at any number of ranks, on or off, as GridSearchCV. Run as
``mpiexec -n K python -m mpi4py -m pytest --with-mpi tests/test_mpi_reuse.py``.
"""

from __future__ import annotations

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
