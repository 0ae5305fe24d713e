"""The fit process (mpisearch.isolation): tasks submitted ahead, crashes, time limits."""

from __future__ import annotations

import os
import signal
import time

from sklearn.datasets import load_iris

from mpisearch.cv import make_folds
from mpisearch.data.dataset import Dataset
from mpisearch.evaluate import evaluate
from mpisearch.isolation import FitProcess, FitRequest, death_reason
from mpisearch.scoring import make_scorers
from mpisearch.testing import CrashingClassifier, SleepClassifier


def _setup(estimator):
    X, y = load_iris(return_X_y=True)
    return estimator, Dataset(X, y, make_folds(3, estimator, X, y)), make_scorers(None, estimator)


def test_tasks_submitted_ahead_survive_a_crash_before_them_in_order():
    est, dataset, scorers = _setup(CrashingClassifier())
    crashes = ["none", "segfault", "none", "os_exit", "none", "sigkill", "none"]
    fits = FitProcess(est, dataset, scorers)
    try:
        for k, crash in enumerate(crashes):
            fits.submit(FitRequest({"crash": crash, "C": 1.0 + k}, k % 3))
        results = [fits.result() for _ in crashes]
    finally:
        fits.close()
    assert [r.error.strip() for r in results if r.error] == [
        "killed by signal 11 (SIGSEGV)", "exited with status 4", "killed by SIGKILL: out of memory?"]
    for k, (crash, r) in enumerate(zip(crashes, results, strict=True)):
        if crash == "none":  # the same scores as in this process, bit for bit
            assert r.scores == evaluate(est, {"crash": "none", "C": 1.0 + k}, dataset, k % 3, scorers).scores
        else:
            assert r.reason == "crash" and not r.scores
    assert fits.starts == 4  # one, and one more after each crash


def test_a_task_past_its_time_limit_is_killed_and_the_next_one_runs():
    est, dataset, scorers = _setup(SleepClassifier())
    fits = FitProcess(est, dataset, scorers)
    try:
        fits.submit(FitRequest({"duration": 60.0}, 0))
        fits.submit(FitRequest({"duration": 0.0}, 1))
        start = time.monotonic()
        slow = fits.result(timeout=0.5)
        fast = fits.result(timeout=30)
    finally:
        fits.close()
    assert time.monotonic() - start < 20
    assert slow.reason == "timeout" and "timed out after 0.5s and was killed" in slow.error
    assert fast.error is None and fast.scores


def test_a_fit_process_killed_while_idle_is_replaced():
    est, dataset, scorers = _setup(CrashingClassifier())
    fits = FitProcess(est, dataset, scorers)
    try:
        assert fits.run(FitRequest({"crash": "none"}, 0)).error is None
        os.kill(fits.pid, signal.SIGKILL)
        time.sleep(0.2)
        assert fits.run(FitRequest({"crash": "none"}, 1)).error is None
    finally:
        fits.close()


def test_death_reasons_in_words():
    assert death_reason(signal.SIGSEGV) == "killed by signal 11 (SIGSEGV)"
    assert death_reason(signal.SIGKILL) == "killed by SIGKILL: out of memory?"
    assert death_reason(4 << 8) == "exited with status 4"
