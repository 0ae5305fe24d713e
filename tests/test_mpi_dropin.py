"""SPMD tests of the drop-in search classes: ``mpiexec -n K python -m mpi4py -m pytest --with-mpi``.

Every rank calls fit, rank 0 alone holds the data; on rank 0 the results must equal
scikit-learn's own class (fitted in rank 0's process) to the last bit, and every
rank must end with the same fitted attributes, or the same error.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.model_selection as sk_ms
from dropin_cases import assert_identical, case, cases, one_thread_per_process  # noqa: F401 (autouse)
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.svm import SVC
from spmd import quiet_allgather

import mpisearch
from mpisearch.errors import InputError

pytestmark = pytest.mark.mpi(min_size=1)

MPI = pytest.importorskip("mpi4py.MPI")
COMM = MPI.COMM_WORLD
ROOT = COMM.Get_rank() == 0


@pytest.mark.parametrize("name", [c.name for c in cases()])
def test_same_as_scikit_learn_on_every_rank(name):
    c = case(name)
    params = c.fit_params if ROOT else {}
    search = c.make(mpisearch).fit(c.X if ROOT else None, c.y if ROOT else None, **params)
    if ROOT:  # scikit-learn's own class, in rank 0's process
        fresh = case(name)
        theirs = fresh.make(sk_ms).fit(fresh.X, fresh.y, **fresh.fit_params)
        assert_identical(search, theirs)
        if hasattr(theirs, "best_estimator_"):
            np.testing.assert_array_equal(search.predict(c.X), theirs.predict(c.X))
    key = next(k for k in sorted(search.cv_results_) if k.startswith("mean_test_"))
    seen = quiet_allgather(COMM, (getattr(search, "best_index_", None), search.cv_results_[key].tobytes(),
                                  hasattr(search, "best_estimator_")))
    assert all(s == seen[0] for s in seen)

def test_error_score_raise_raises_the_fits_error_on_every_rank():
    c = case("sample-weight")
    search = mpisearch.GridSearchCV(SVC(), {"C": [1.0, -1.0]}, error_score="raise")
    with pytest.raises(ValueError, match="'C' parameter of SVC"):
        search.fit(c.X if ROOT else None, c.y if ROOT else None)
    quiet_allgather(COMM, None)


def test_unshippable_column_is_named_on_every_rank():
    import pandas as pd

    X = pd.DataFrame({"ok": np.arange(20.0), "bad": [object()] * 20})
    y = np.arange(20) % 2
    search = mpisearch.GridSearchCV(SVC(), {"C": [1.0]}, cv=2)
    if COMM.Get_size() == 1:
        pytest.skip("nothing is shipped on one rank")
    with pytest.raises(InputError, match="X column 'bad'"):
        search.fit(X if ROOT else None, y if ROOT else None)
    quiet_allgather(COMM, None)


def test_search_nested_in_a_search_runs_inside_its_tasks():
    c = case("callable-refit")
    make = lambda ns: ns.GridSearchCV(ns.GridSearchCV(SVC(), {"C": [0.1, 1.0]}, cv=2),  # noqa: E731
                                      {"estimator__gamma": ["scale", 0.1]}, cv=3)
    search = make(mpisearch).fit(c.X if ROOT else None, c.y if ROOT else None)
    if ROOT:
        assert_identical(search, make(sk_ms).fit(c.X, c.y))
    assert len(set(quiet_allgather(COMM, search.best_index_))) == 1


def test_failed_fits_warn_on_every_rank():
    from sklearn.exceptions import FitFailedWarning

    c = case("sample-weight")
    search = mpisearch.GridSearchCV(SVC(), {"C": [1.0, -1.0]}, error_score=0.0)
    with pytest.warns(FitFailedWarning, match="fits failed"):
        search.fit(c.X if ROOT else None, c.y if ROOT else None)
    assert search.cv_results_["mean_test_score"][1] == 0.0


def test_callback_events_of_every_task_reach_rank_0s_callbacks():
    """Each (candidate, split) task's events reach rank 0's callback, with the search itself
    as their estimator, wherever the task ran (scikit-learn's callback transport)."""
    recording = pytest.importorskip("sklearn.callback.tests._utils")
    from sklearn.tree import DecisionTreeClassifier

    c = case("sample-weight")
    callback = recording.RecordingCallback()
    search = mpisearch.GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3]}, cv=2,
                                    refit=False).set_callbacks(callback)
    search.fit(c.X if ROOT else None, c.y if ROOT else None)
    if ROOT:
        evaluations = [e for e in callback.record if e["context"].task_name == "candidate-split-evaluation"]
        assert sorted(e["name"] for e in evaluations) == ["on_fit_task_begin"] * 6 + ["on_fit_task_end"] * 6
        assert all(e["estimator"] is search for e in callback.record)
    quiet_allgather(COMM, None)
