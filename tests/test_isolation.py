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
from mpisearch.reuse.bundles import Bundle, BundleKind, Member
from mpisearch.scoring import make_scorers
from mpisearch.testing import CrashingClassifier, CrashingForest, SleepClassifier


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


def _chain(*sizes, **params):
    return Bundle(BundleKind.CHAIN, tuple(Member(k, {"n_estimators": n, **params}) for k, n in enumerate(sizes)),
                  growth="n_estimators")


def test_a_crash_inside_a_bundle_costs_its_member_and_the_rest_runs_in_a_fresh_process():
    est, dataset, scorers = _setup(CrashingForest(random_state=0, crash="segfault", crash_at=6))
    fits = FitProcess(est, dataset, scorers)
    try:
        fits.submit(FitRequest({}, 0, bundle=_chain(3, 6, 9, 12)))
        fits.submit(FitRequest({"n_estimators": 5}, 1))  # submitted ahead: runs after the bundle's rest
        bundle, after = fits.result(), fits.result()
    finally:
        fits.close()
    assert [r.reason for r in bundle.results] == [None, "crash", None, None]
    assert "SIGSEGV" in bundle.results[1].error
    for n, r in zip((3, 9, 12), (bundle.results[0], *bundle.results[2:]), strict=True):
        assert r.scores == evaluate(est, {"n_estimators": n}, dataset, 0, scorers).scores  # as fresh fits
    assert bundle.counts.chained_fits == 1 and bundle.counts.members_kept == 9  # 9 grown to 12
    assert after.scores == evaluate(est, {"n_estimators": 5}, dataset, 1, scorers).scores
    assert fits.starts == 2


def test_task_timeout_applies_to_each_member_of_a_bundle():
    est, dataset, scorers = _setup(SleepClassifier())
    members = tuple(Member(k, {"duration": d, "tag": k}) for k, d in enumerate([1.0, 1.0, 60.0, 1.0]))
    fits = FitProcess(est, dataset, scorers)
    try:
        # not a real prefix group (no pipeline): every member is a fresh fit, reported one by one
        fits.submit(FitRequest({}, 0, bundle=Bundle(BundleKind.PREFIX, members, prefix_key=())))
        got = fits.result(timeout=2.5)  # the bundle takes longer, each member but one less
    finally:
        fits.close()
    assert [r.reason for r in got.results] == [None, None, "timeout", None]
    assert "timed out after 2.5s" in got.results[2].error


def test_waiting_for_a_bundle_ticks_at_each_member():
    """The rank's heartbeat (tick) is due at each member's result, however fast they come:
    a long bundle of quick members never leaves the rank silent."""
    est, dataset, scorers = _setup(SleepClassifier())
    members = tuple(Member(k, {"duration": 0.0, "tag": k}) for k in range(5))
    ticks = []
    fits = FitProcess(est, dataset, scorers)
    try:
        got = fits.run(FitRequest({}, 0, bundle=Bundle(BundleKind.PREFIX, members, prefix_key=())),
                       tick=lambda: ticks.append(1))
    finally:
        fits.close()
    assert len(got.results) == 5 and len(ticks) >= 4
