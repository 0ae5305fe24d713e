"""Failing, slow and noisy fits, and resuming from a journal through the Python API (one process)."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest
from estimators import SleepyClassifier
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mpisearch import MPISearchCV
from mpisearch.engine import WorkerWarning
from mpisearch.errors import InputError
from mpisearch.limits import TaskTimeout, call_with_timeout


def test_call_with_timeout_returns_raises_and_kills():
    assert call_with_timeout(lambda: 41 + 1, 5.0) == 42
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        call_with_timeout(lambda: 1 / 0, 5.0)
    start = time.monotonic()
    with pytest.raises(TaskTimeout, match="timed out after 0.3s"):
        call_with_timeout(lambda: time.sleep(30), 0.3)
    assert time.monotonic() - start < 3


def test_task_timeout_fails_only_the_slow_point_and_the_search_goes_on():
    X, y = load_iris(return_X_y=True)
    grid = {"C": [1.0], "delay": [0.0, 60.0]}
    start = time.monotonic()
    with pytest.warns(Warning, match="2 fits failed"):
        search = MPISearchCV(SleepyClassifier(), grid, cv=2, task_timeout=3.0).fit(X, y)
    assert time.monotonic() - start < 30
    means = search.cv_results_["mean_test_score"]
    assert means[0] > 0.9 and np.isnan(means[1])
    assert search.best_params_ == {"C": 1.0, "delay": 0.0}


def test_worker_warnings_are_counted_and_reported_once():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = MPISearchCV(LogisticRegression(max_iter=2), {"C": [0.1, 1.0]}, cv=3, refit=False).fit(X, y)
    summaries = [w for w in caught if issubclass(w.category, WorkerWarning)]
    assert len(summaries) == 1
    assert str(summaries[0].message).startswith("6 tasks warned: ConvergenceWarning: ")
    assert search.run_info_["warnings"] == {k: 6 for k in search.run_info_["warnings"]}
    assert not [w for w in caught if w.category.__name__ == "ConvergenceWarning"]  # not printed per task


def test_api_resume_skips_journal_tasks_and_gives_identical_results(tmp_path):
    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.01, 0.1, 1.0, 10.0]}
    full = MPISearchCV(LogisticRegression(max_iter=500), grid, cv=3, out=tmp_path / "full").fit(X, y)
    journal = (tmp_path / "full" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 12
    part = tmp_path / "part"
    part.mkdir()
    (part / "journal.jsonl").write_text("\n".join(journal[:7]) + "\n")
    (part / "run.json").write_text((tmp_path / "full" / "run.json").read_text())
    resumed = MPISearchCV(LogisticRegression(max_iter=500), grid, cv=3, out=part, resume=True).fit(X, y)
    assert resumed.run_info_["resumed_tasks"] == 7 and resumed.run_info_["tasks"] == 5
    for key in ("mean_test_score", "std_test_score", "rank_test_score", "split2_test_score"):
        np.testing.assert_array_equal(resumed.cv_results_[key], full.cv_results_[key])
    assert json.loads((part / "best.json").read_text())["best_params"] == full.best_params_
    with pytest.raises(InputError, match="config or data differ"):
        MPISearchCV(LogisticRegression(max_iter=500), grid, cv=4, out=part, resume=True).fit(X, y)


def test_a_strategy_that_stalls_ends_the_search_with_an_error():
    from mpisearch.coordinator import Coordinator
    from mpisearch.errors import SearchFailedError
    from mpisearch.results import ResultTable
    from mpisearch.space import SearchSpace
    from mpisearch.strategies import Strategy
    from mpisearch.transport.local import LocalTransport

    class Stuck(Strategy):
        def ask(self, n):
            return []

        @property
        def finished(self):
            return False

    class Idle:
        queue, stopped = [], False

        def receive(self, msg):
            self.stopped = True

        def stats(self):
            return {}

    coordinator = Coordinator(Stuck(SearchSpace({"C": [1]})), ResultTable(["score"], 2), "score",
                              LocalTransport(Idle()), [1])
    with pytest.raises(SearchFailedError, match="proposed no point while none is running"):
        coordinator.run()


def test_a_failed_refit_raises_with_the_search_results_written(tmp_path):
    from estimators import FailsOnAllRows

    X, y = load_iris(return_X_y=True)
    search = MPISearchCV(FailsOnAllRows(max_rows=120), {"C": [0.1, 1.0]}, cv=3, out=tmp_path / "out")
    with pytest.raises(MemoryError, match="150 rows are more than this estimator can take"):
        search.fit(X, y)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "refit failed"
    assert (tmp_path / "out" / "cv_results.csv").exists() and not (tmp_path / "out" / "best_model.pkl").exists()
    assert search.best_params_ in ({"C": 0.1}, {"C": 1.0})  # the search's own attributes are set
