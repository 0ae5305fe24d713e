"""Fold racing: the bound, the scheduler's cancellations, and searches that stop points early."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from mpisearch import MPISearchCV, Real
from mpisearch.errors import InputError
from mpisearch.racing import Racer
from mpisearch.scheduler import Cancel, Run, Scheduler, Task

# Points whose grid means differ by less than this tie (one test sample of digits moves a mean
# by ~1e-3 / 5 folds; C = 1, 10, 100 at gamma = 1e-3 differ by 1.5e-6): racing may keep any of them.
TIE = 1e-5


def assert_same_winner(raced, full) -> None:
    """Racing kept the grid's best point, or one that ties with it to TIE."""
    if raced.best_params_ == full.best_params_:
        return
    i = full.cv_results_["params"].index(raced.best_params_)
    metric = f"mean_test_{full.refit if isinstance(full.refit, str) else 'score'}"
    assert full.cv_results_[metric][i] >= full.cv_results_[metric][full.best_index_] - TIE, (
        raced.best_params_, full.best_params_)


# -- the bound -------------------------------------------------------------------------------
def test_range_bound_stops_a_hopeless_point_after_one_fold():
    racer = Racer(5)
    for s in (0.97, 0.99, 0.96, 0.98, 0.97):
        racer.observe(None, s)
    assert not racer.should_stop(None, [0.5])  # no finished point yet: nothing to beat
    assert racer.finished(None, [0.97, 0.99, 0.96, 0.98, 0.97], 0.974)
    racer.observe(None, 0.5)
    assert racer.upper_bound(None, [0.5]) == pytest.approx((0.5 + 4 * 0.99) / 5)
    assert racer.should_stop(None, [0.5])
    assert not racer.should_stop(None, [0.95])  # could still reach 0.982


def test_t_bound_needs_two_folds_and_respects_the_typical_spread():
    from scipy.stats import t

    racer = Racer(5, confidence=0.95)
    racer.observe(None, 0.99)
    racer.finished(None, [0.90, 0.92, 0.94, 0.96, 0.98], 0.94)
    typical = float(np.std([0.90, 0.92, 0.94, 0.96, 0.98], ddof=1))
    # two equal folds: the spread used is the finished point's, not zero; here the range bound is lower
    t_bound = 0.93 + t.ppf(0.95, 1) * typical / math.sqrt(2) * math.sqrt(3 / 4)
    assert racer.upper_bound(None, [0.93, 0.93]) == pytest.approx(min((1.86 + 3 * 0.99) / 5, t_bound))
    assert not racer.should_stop(None, [0.93, 0.93])
    # four folds: the t bound (0.874) is below the range bound (0.882) and decides
    seen = [0.85, 0.86, 0.85, 0.86]
    t_bound = 0.855 + t.ppf(0.95, 3) * typical / 2 * math.sqrt(1 / 4)
    assert racer.upper_bound(None, seen) == pytest.approx(t_bound) and t_bound < (3.42 + 0.99) / 5
    racer.best[None] = 0.878
    assert racer.should_stop(None, seen)
    assert not racer.should_stop(None, [0.80, math.nan])  # a failed fold: never stopped on it
    assert not racer.should_stop("other group", [0.1])  # nothing finished in that group
    with pytest.raises(ValueError):
        Racer(5, confidence=1.0)


# -- the scheduler drops and cancels a point's tasks -------------------------------------------
def test_cancel_point_drops_queued_and_cancels_assigned_tasks():
    s = Scheduler([1, 2], prefetch=2)
    tasks = [Task(i, point_id=i % 2, fold=i // 2) for i in range(8)]
    s.add(tasks)
    runs = s.dispatch(0.0)
    assert [a.task.task_id for a in runs] == [0, 1, 2, 3]
    cancels = s.cancel_point(1, now=0.5)
    assert all(isinstance(c, Cancel) and c.task.point_id == 1 for c in cancels)
    assert sorted(c.task.task_id for c in cancels) == [1, 3]
    assert s.n_open == 4 and s.n_queued == 2  # point 0: tasks 0 and 2 assigned, 4 and 6 queued
    assert not s.complete(2, 1, 0.1, 1.0)  # a cancelled task that had started: not a first result
    refill = s.dispatch(1.0)
    assert all(isinstance(a, Run) and a.task.point_id == 0 for a in refill)
    for a in runs[::2] + refill:
        assert s.complete(a.worker, a.task.task_id, 0.1, 2.0)
    assert s.n_open == 0


# -- searches ---------------------------------------------------------------------------------
DIGITS_GRID = {"C": [0.01, 0.1, 1, 10, 100], "gamma": [1e-4, 1e-3, 1e-2, 1e-1]}


def test_decisive_racing_runs_fewer_tasks_and_finds_the_grid_winner():
    X, y = load_digits(return_X_y=True)
    full = GridSearchCV(SVC(), DIGITS_GRID).fit(X, y)
    raced = MPISearchCV(SVC(), DIGITS_GRID, racing=True).fit(X, y)
    res, info = raced.cv_results_, raced.run_info_
    assert_same_winner(raced, full)
    assert raced.best_score_ == pytest.approx(full.best_score_, abs=TIE)
    n_points = len(res["params"])
    assert n_points == 20 and info["tasks"] + info["raced_tasks"] == 5 * n_points
    assert info["tasks"] <= 0.7 * 5 * n_points, info
    stopped = res["stopped_at_fold"] >= 0
    assert stopped.sum() == info["raced_points"] > 5
    splits = np.array([res[f"split{k}_test_score"] for k in range(5)]).T
    for row, at in zip(splits, res["stopped_at_fold"], strict=True):
        assert np.isnan(row).sum() == (0 if at < 0 else 5 - at)
    # complete points keep GridSearchCV's scores; stopped ones rank after every complete one
    complete = ~stopped
    np.testing.assert_allclose(res["mean_test_score"][complete], full.cv_results_["mean_test_score"][complete],
                               atol=1e-12)
    assert res["rank_test_score"][stopped].min() > res["rank_test_score"][complete].max()
    for i in np.flatnonzero(stopped):
        assert res["mean_test_score"][i] == pytest.approx(np.nanmean(splits[i]))
        assert res["mean_test_score"][i] < raced.best_score_


@pytest.mark.parametrize("name", ["iris-svc", "cancer-logreg", "diabetes-ridge", "digits-svc-multimetric"])
def test_racing_never_removes_the_winner(name):
    Xi, yi = load_iris(return_X_y=True)
    Xc, yc = load_breast_cancer(return_X_y=True)
    Xd, yd = load_diabetes(return_X_y=True)
    Xg, yg = load_digits(return_X_y=True)
    est, grid, scoring, refit, X, y = {
        "iris-svc": (SVC(), {"C": np.logspace(-2, 3, 6), "gamma": np.logspace(-3, 1, 5)}, None, True, Xi, yi),
        "cancer-logreg": (LogisticRegression(max_iter=500), {"C": np.logspace(-4, 2, 13)}, "roc_auc", True,
                          Xc / Xc.max(axis=0), yc),
        "diabetes-ridge": (Ridge(), {"alpha": np.logspace(-4, 3, 15)}, "neg_mean_squared_error", True, Xd, yd),
        "digits-svc-multimetric": (SVC(), {"C": [0.1, 1, 10], "gamma": [1e-4, 1e-3, 1e-2]},
                                   ["accuracy", "f1_macro"], "f1_macro", Xg, yg),
    }[name]
    full = GridSearchCV(est, grid, scoring=scoring, refit=refit).fit(X, y)
    raced = MPISearchCV(est, grid, scoring=scoring, refit=refit, racing=True).fit(X, y)
    assert_same_winner(raced, full)
    assert raced.run_info_["tasks"] <= 5 * len(full.cv_results_["params"])


def test_racing_with_random_and_bayes_tells_stopped_points():
    X, y = load_iris(return_X_y=True)
    space = {"C": Real(1e-4, 1e3, log=True), "gamma": Real(1e-4, 1e2, log=True)}
    for strategy in ("random", "bayes"):
        search = MPISearchCV(SVC(), space, strategy=strategy, n_iter=16, random_state=3, racing=True).fit(X, y)
        assert len(search.cv_results_["params"]) == 16
        assert search.cv_results_["stopped_at_fold"][search.best_index_] == -1


def test_racing_resumes_from_its_journal(tmp_path):
    X, y = load_digits(return_X_y=True)
    first = MPISearchCV(SVC(), DIGITS_GRID, racing=True, out=tmp_path).fit(X, y)
    again = MPISearchCV(SVC(), DIGITS_GRID, racing=True, out=tmp_path, resume=True).fit(X, y)
    assert again.run_info_["tasks"] == 0 and again.best_params_ == first.best_params_
    np.testing.assert_array_equal(again.cv_results_["stopped_at_fold"] >= 0, first.cv_results_["stopped_at_fold"] >= 0)


def test_bad_racing_confidence_is_an_input_error():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(InputError, match="racing_confidence: expected a number between 0.5 and 1"):
        MPISearchCV(SVC(), {"C": [1.0]}, racing=True, racing_confidence=1.5).fit(X, y)


def test_one_task_per_point_while_other_points_wait():
    s = Scheduler([1, 2], prefetch=2, one_per_point=True)
    s.add([Task(p * 5 + f, point_id=p, fold=f) for f in range(5) for p in range(2)])  # fold-major, 2 points
    s.add([Task(10 + p * 5 + f, point_id=2 + p, fold=f) for f in range(5) for p in range(2)])
    runs = s.dispatch(0.0)
    assert sorted(a.task.point_id for a in runs) == [0, 1, 2, 3]  # four points, one fold each
    assert s.n_ready() == 0  # every queued task belongs to a point with a fold assigned
    first = runs[0]
    s.complete(first.worker, first.task.task_id, 0.1, 1.0)
    again = s.dispatch(1.0)
    assert [a.task.point_id for a in again] == [first.task.point_id]  # its next fold, no other is free
    plain = Scheduler([1, 2], prefetch=2)
    plain.add([Task(f, point_id=0, fold=f) for f in range(5)])
    assert len(plain.dispatch(0.0)) == 4 and plain.n_ready() == 1


def test_racing_evaluates_a_grid_in_a_seeded_shuffled_order_but_reports_grid_order():
    from mpisearch.space import SearchSpace
    from mpisearch.strategies import GridStrategy

    space = SearchSpace({"a": [1, 2, 3], "b": [4, 5]})
    shuffled = GridStrategy(space, shuffle_seed=0).ask(10)
    assert [p.params for p in sorted(shuffled, key=lambda p: p.position)] == space.grid()
    assert [p.params for p in shuffled] != space.grid()
    assert [p.position for p in GridStrategy(space, shuffle_seed=0).ask(10)] == [p.position for p in shuffled]
    assert GridStrategy(space).ask(10) == space.grid()  # without racing: plain grid order
