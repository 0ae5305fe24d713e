"""Failing, crashing, slow, greedy and noisy fits, and resuming from a journal through the Python API (one process)."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest
from estimators import SleepyClassifier
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression

from mpisearch import MPISearchCV
from mpisearch.engine import WorkerWarning
from mpisearch.errors import InputError
from mpisearch.limits import parse_memory
from mpisearch.testing import CrashingClassifier

CRASHES = ["segfault", "sigkill", "exit", "os_exit", "interrupt"]
REASONS = {"segfault": "killed by signal 11 (SIGSEGV)", "sigkill": "killed by SIGKILL: out of memory?",
           "exit": "SystemExit: 4", "os_exit": "exited with status 4", "interrupt": "KeyboardInterrupt"}


def _good_rows(search):
    """Scores of the points that do not crash, by their parameters."""
    res = search.cv_results_
    keys = [k for k in res if k.startswith(("split", "mean_test", "std_test"))]
    return {json.dumps(p, sort_keys=True): [res[k][i] for k in keys]
            for i, p in enumerate(res["params"]) if p["crash"] == "none"}


def test_fits_that_crash_their_process_fail_alone_with_the_reason(tmp_path):
    X, y = load_iris(return_X_y=True)
    grid = {"crash": ["none", *CRASHES], "C": [0.1, 1.0]}
    with pytest.warns(FitFailedWarning) as caught:  # task_timeout: fits run in a fit process
        search = MPISearchCV(CrashingClassifier(), grid, cv=3, task_timeout=120, out=tmp_path / "out").fit(X, y)
    message = str(caught[0].message)
    for crash, reason in REASONS.items():
        assert reason in message, crash
    failed = [p["crash"] != "none" for p in search.cv_results_["params"]]
    assert np.isnan(search.cv_results_["mean_test_score"][failed]).all()
    clean = MPISearchCV(CrashingClassifier(), {"crash": ["none"], "C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert _good_rows(search) == _good_rows(clean)  # bit for bit
    journal = [json.loads(line) for line in (tmp_path / "out" / "journal.jsonl").read_text().splitlines()]
    assert {e["reason"] for e in journal if e["params"]["crash"] in ("segfault", "sigkill", "os_exit")} == {"crash"}
    resumed = MPISearchCV(CrashingClassifier(), grid, cv=3, task_timeout=120, out=tmp_path / "out",
                          resume=True)
    with pytest.warns(FitFailedWarning):
        resumed.fit(X, y)
    assert resumed.run_info_["tasks"] == 0 and resumed.run_info_["resumed_tasks"] == len(journal)


def test_task_memory_fails_a_greedy_fit_alone():
    X, y = load_iris(return_X_y=True)
    grid = {"crash": ["none", "greedy"]}
    with pytest.warns(FitFailedWarning, match="MemoryError"):
        search = MPISearchCV(CrashingClassifier(greedy_bytes=1 << 30), grid, cv=2, task_memory="256MiB").fit(X, y)
    assert np.isnan(search.cv_results_["mean_test_score"][1])
    assert search.cv_results_["mean_test_score"][0] > 0.5
    # without a limit the same allocation (never touched) succeeds: the limit made it fail
    unlimited = MPISearchCV(CrashingClassifier(greedy_bytes=1 << 30), grid, cv=2).fit(X, y)
    assert not np.isnan(unlimited.cv_results_["mean_test_score"]).any()


@pytest.mark.parametrize(("text", "expected"), [("8GiB", 8 << 30), ("512 MiB", 512 << 20), ("2G", 2 * 10**9),
                                                ("1.5GB", 1_500_000_000), (4096, 4096)])
def test_task_memory_amounts(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["lots", "-1GiB", "0", "8 GiBs", True])
def test_bad_task_memory_is_one_line_naming_the_key(bad):
    with pytest.raises(InputError, match=r"^search\.task_memory: expected .*amount of memory"):
        parse_memory(bad)


def test_warnings_are_counted_with_task_timeout():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = MPISearchCV(LogisticRegression(max_iter=2), {"C": [0.1, 1.0]}, cv=3, refit=False,
                             task_timeout=60).fit(X, y)
    summaries = [w for w in caught if issubclass(w.category, WorkerWarning)]
    assert len(summaries) == 1 and str(summaries[0].message).startswith("6 tasks warned: ConvergenceWarning: ")
    assert search.run_info_["warnings"] == {k: 6 for k in search.run_info_["warnings"]}


def test_task_timeout_fails_only_the_slow_point_and_the_search_goes_on():
    X, y = load_iris(return_X_y=True)
    grid = {"C": [1.0], "delay": [0.0, 60.0]}
    start = time.monotonic()
    # 6 s: a quick fit finished well within 3 s everywhere but once on a 2-core machine at load 15+
    with pytest.warns(Warning, match="2 fits failed"):
        search = MPISearchCV(SleepyClassifier(), grid, cv=2, task_timeout=6.0).fit(X, y)
    assert time.monotonic() - start < 40
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
        queue, stopped, busy = [], False, False

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
