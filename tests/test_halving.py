"""Successive halving: rung arithmetic, sync parity with scikit-learn, async (ASHA) promotion rules."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest
from parity import assert_same_results
from sklearn.datasets import load_digits, load_iris, make_classification
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingGridSearchCV
from sklearn.svm import SVC

from mpisearch import MPISearchCV
from mpisearch.errors import InputError
from mpisearch.space import SearchSpace
from mpisearch.strategies import HalvingOptions, HalvingStrategy, PointResult
from mpisearch.strategies.halving import DataFacts, make_halving, top_k
from mpisearch.types import Subsample

DIGITS = load_digits(return_X_y=True)
SVC_GRID = {"C": [0.1, 1, 10, 100], "gamma": [1e-4, 1e-3, 1e-2, 1e-1]}


# -- rungs: the same numbers as scikit-learn -------------------------------------------------
@pytest.mark.parametrize("n_candidates,factor,min_resources,max_resources,aggressive", [
    (16, 3, "exhaust", "auto", False), (16, 3, "smallest", "auto", False), (30, 2, 40, "auto", False),
    (9, 3, "smallest", "auto", True), (100, 4, "exhaust", "auto", False), (7, 1.5, 30, 500, False),
])
def test_rungs_are_scikit_learns(n_candidates, factor, min_resources, max_resources, aggressive):
    X, y = make_classification(n_samples=600, n_classes=3, n_informative=4, random_state=0)
    grid = {"strategy": ["most_frequent", "prior", "stratified", "uniform"][:1],
            "random_state": list(range(n_candidates))}
    sk = HalvingGridSearchCV(DummyClassifier(), grid, factor=factor, min_resources=min_resources,
                             max_resources=max_resources if max_resources != "auto" else "auto",
                             aggressive_elimination=aggressive, random_state=0).fit(X, y)
    opts = HalvingOptions.parse({"factor": factor, "min_resources": min_resources,
                                 "max_resources": max_resources, "aggressive_elimination": aggressive})
    strategy = make_halving(SearchSpace(grid), opts.__dict__, DummyClassifier(), DataFacts(600, 5, 3), None, 0)
    assert strategy.resources == sk.n_resources_
    assert strategy.opts.min_resources == min_resources


@pytest.mark.parametrize("scores", [[0.5, np.nan, 0.7, 0.5, 0.7, 0.1], [np.nan, 0.2], [0.3, 0.3, 0.3, 0.3],
                                    list(np.random.default_rng(0).integers(0, 4, 40) / 4)])
def test_top_k_matches_scikit_learn_including_ties_and_nan(scores):
    from sklearn.model_selection._search_successive_halving import _top_k

    names = [f"p{i}" for i in range(len(scores))]
    results = {"iter": np.zeros(len(scores), int), "mean_test_score": np.array(scores),
               "params": np.array(names, dtype=object)}
    for k in range(1, len(scores) + 1):  # scikit-learn always keeps at least one
        assert top_k(names, scores, k) == list(_top_k(results, k, 0))


def test_subsample_is_nested_deterministic_and_matches_resample():
    from sklearn.utils import resample

    idx = np.arange(10, 1000, 3)
    small, big = Subsample(0.2, 7).indices(idx), Subsample(0.6, 7).indices(idx)
    assert set(small) <= set(big)
    np.testing.assert_array_equal(small, Subsample(0.2, 7).indices(idx))
    np.testing.assert_array_equal(big, resample(idx, replace=False, random_state=7, n_samples=int(0.6 * len(idx))))
    train, test = Subsample(0.5, 0).apply(idx, idx[:50])
    assert len(train) == len(idx) // 2 and len(test) == 50
    assert len(Subsample(0.5, 0, test=True).apply(idx, idx[:50])[1]) == 25


# -- synchronous mode: scikit-learn's choices -----------------------------------------------
def test_sync_mode_reproduces_halvinggridsearchcv_on_n_samples():
    X, y = DIGITS
    theirs = HalvingGridSearchCV(SVC(), SVC_GRID, factor=3, random_state=0, return_train_score=False).fit(X, y)
    ours = MPISearchCV(SVC(), SVC_GRID, strategy="halving", random_state=0,
                       halving={"mode": "sync", "subsample_test": True}).fit(X, y)
    assert_same_results(ours.cv_results_, theirs.cv_results_)
    assert ours.best_index_ == theirs.best_index_ and ours.best_params_ == theirs.best_params_
    assert ours.best_score_ == pytest.approx(theirs.best_score_, abs=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_sync_mode_reproduces_halvinggridsearchcv_on_an_estimator_parameter():
    X, y = make_classification(n_samples=400, n_features=10, random_state=1)
    grid = {"max_depth": [2, 4, 8], "max_features": [0.3, 0.6, 1.0]}
    est = ExtraTreesClassifier(random_state=0)
    theirs = HalvingGridSearchCV(est, grid, resource="n_estimators", max_resources=27, factor=3,
                                 random_state=0, return_train_score=False).fit(X, y)
    ours = MPISearchCV(est, grid, strategy="halving", random_state=0,
                       halving={"mode": "sync", "resource": "n_estimators", "max_resources": 27}).fit(X, y)
    assert_same_results(ours.cv_results_, theirs.cv_results_)
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_params_["n_estimators"] == theirs.n_resources_[-1]


# -- asynchronous mode (ASHA) ----------------------------------------------------------------
def simulate(strategy: HalvingStrategy, score, seed: int, width: int = 4, check=None) -> list[tuple[int, int]]:
    """Run a strategy with ``width`` points in flight, finishing them in a random order."""
    rng, running, order = random.Random(seed), [], []
    for _ in range(10_000):
        asked = strategy.ask(width - len(running))
        for p in asked:
            if check is not None and p.tag[0] > 0:
                check(strategy, *p.tag)
        running += asked
        if not running:
            assert strategy.finished, "stalled: nothing running, nothing proposed, not finished"
            return order
        p = running.pop(rng.randrange(len(running)))
        rung, cand = p.tag
        order.append((rung, cand))
        strategy.tell([PointResult(len(order), p.params, score(cand, rung), p.tag)])
    raise AssertionError("did not finish")


def asha(n: int, factor: float = 3, mode: str = "async") -> HalvingStrategy:
    space = SearchSpace({"x": list(range(n))})
    opts = HalvingOptions.parse({"mode": mode, "factor": factor, "min_resources": 10, "max_resources": 810})
    return make_halving(space, opts.__dict__, DummyClassifier(), DataFacts(1000, 5, 2), None, 0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n,factor", [(27, 3), (40, 3), (16, 2), (5, 3)])
def test_async_promotes_a_superset_of_sync_and_never_stalls(seed, n, factor):
    noise = np.random.default_rng(seed).normal(0, 0.05, size=(n, 8))
    score = lambda c, r: math.sin(c) + noise[c, r]  # noqa: E731 - a fixed score per (candidate, rung)
    sync, fast = asha(n, factor, "sync"), asha(n, factor)
    simulate(sync, score, seed)
    order = simulate(fast, score, seed, check=check_asha_rule)
    assert fast.finished and len(fast.resources) == len(sync.resources)
    for rung in range(len(sync.resources)):
        assert set(sync.members[rung]) <= set(fast.members[rung])
    assert sorted(c for r, c in order if r == 0) == list(range(n))
    assert fast.total is None and sync.total == sum(len(m) for m in sync.members)


def check_asha_rule(strategy: HalvingStrategy, rung: int, cand: int) -> None:
    """A promotion to ``rung``: the candidate is in the top floor(done/factor) of the rung
    below, or that rung has finished every point it holds and it is in its top ceil(n/factor)."""
    below = strategy.scores[rung - 1]
    ranked = sorted(below, key=lambda c: -below[c])
    k = math.floor(len(below) / strategy.opts.factor)
    if len(below) == len(strategy.members[rung - 1]):
        k = max(k, math.ceil(len(below) / strategy.opts.factor))
    assert cand in ranked[:k], (rung, cand, ranked, k)


def test_async_promotes_before_the_rung_is_finished():
    strategy = asha(27)
    first = strategy.ask(9)
    for i, p in enumerate(first):  # 9 results: the top 3 may go on at once, with 18 candidates unstarted
        strategy.tell([PointResult(i, p.params, float(p.tag[1]), p.tag)])
    started = [p.tag[1] for p in first]  # a seeded random order of the candidates
    assert sorted(started) != started and len(set(started)) == 9
    nxt = strategy.ask(3)
    assert [p.tag for p in nxt] == [(1, c) for c in sorted(started, reverse=True)[:3]]
    assert nxt[0].columns == {"iter": 1, "n_resources": 30} and nxt[0].group == 1
    assert nxt[0].subsample == Subsample(0.03, 0, False)
    assert strategy.ask(1)[0].tag[0] == 0


def test_async_search_has_iter_and_n_resources_and_picks_from_the_last_rung():
    X, y = DIGITS
    ours = MPISearchCV(SVC(), SVC_GRID, strategy="halving", random_state=0,
                       scoring=["accuracy", "f1_macro"], refit="accuracy").fit(X, y)
    sync = MPISearchCV(SVC(), SVC_GRID, strategy="halving", random_state=0, scoring=["accuracy", "f1_macro"],
                       refit="accuracy", halving={"mode": "sync"}).fit(X, y)
    res = ours.cv_results_
    assert {"iter", "n_resources", "mean_test_accuracy", "rank_test_f1_macro"} <= set(res)
    last = np.flatnonzero(res["iter"] == res["iter"].max())
    assert ours.best_index_ in last
    assert ours.best_score_ == res["mean_test_accuracy"][last].max()
    assert set(res["n_resources"]) == {199, 597, 1791} and len(res["params"]) >= len(sync.cv_results_["params"])
    # async promotes every point sync promotes, so its best on all the data is at least as good
    sync_last = [p for p, i in zip(sync.cv_results_["params"], sync.cv_results_["iter"], strict=True) if i == 2]
    assert all(p in [res["params"][i] for i in last] for p in sync_last)
    assert ours.best_score_ >= sync.best_score_


def test_halving_random_candidates_and_bad_options():
    from mpisearch import Real

    X, y = load_iris(return_X_y=True)
    space = {"C": Real(1e-2, 1e2, log=True)}
    search = MPISearchCV(SVC(), space, strategy="halving", random_state=0, n_iter=9,
                         halving={"factor": 3, "min_resources": 30}).fit(X, y)
    assert (search.cv_results_["iter"] == 0).sum() == 9
    bad = [({"factr": 3}, "search.halving.factr: unknown option (did you mean 'factor'?)"),
           ({"factor": 1}, "search.halving.factor: expected a number > 1"),
           ({"mode": "fast"}, "search.halving.mode: expected one of"),
           ({"resource": "C"}, "'C' is searched in [space]"),
           ({"resource": "n_estimatorz"}, "is not \"n_samples\" nor a parameter of SVC"),
           ({"resource": "max_iter"}, "max_resources: give an integer"),
           ({"min_resources": 1000}, "is greater than max_resources (150)")]
    for options, message in bad:
        with pytest.raises(InputError) as exc:
            MPISearchCV(SVC(), space, strategy="halving", n_iter=4, halving=options).fit(X, y)
        assert message in str(exc.value), (options, str(exc.value))


def test_halving_resumes_from_its_journal(tmp_path):
    X, y = DIGITS
    make = lambda **kw: MPISearchCV(SVC(), SVC_GRID, strategy="halving", random_state=0,  # noqa: E731
                                    halving={"mode": "sync"}, out=tmp_path, **kw)
    first = make().fit(X, y)
    again = make(resume=True).fit(X, y)
    assert again.run_info_["resumed_tasks"] == first.run_info_["tasks"] == 5 * len(first.cv_results_["params"])
    assert again.run_info_["tasks"] == 0
    np.testing.assert_array_equal(again.cv_results_["mean_test_score"], first.cv_results_["mean_test_score"])


def test_cli_halving_config(tmp_path):
    from mpisearch.data import hdf5

    X, y = load_iris(return_X_y=True)
    hdf5.write(tmp_path / "iris.h5", X, y)
    (tmp_path / "run.toml").write_text(
        '[data]\npath = "iris.h5"\n[estimator]\nclass = "sklearn.svm.SVC"\n'
        '[space]\nC = [0.1, 1, 10]\ngamma = [0.01, 0.1, 1]\n'
        '[search]\nstrategy = "halving"\nrandom_state = 0\nracing = true\n'
        '[search.halving]\nfactor = 3\nmin_resources = 30\n')
    done = subprocess.run([sys.executable, "-m", "mpisearch", "run", str(tmp_path / "run.toml"), "--out",
                           str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    header = (tmp_path / "out" / "cv_results.csv").read_text().splitlines()[0].split(",")
    assert {"iter", "n_resources", "stopped_at_fold"} <= set(header)
    report = subprocess.run([sys.executable, "-m", "mpisearch", "report", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=60)
    top = report.stdout.split("top ")[1].splitlines()
    assert "note" in top[1] and "iter 1, n_resources 90" in top[2], report.stdout
    (tmp_path / "bad.toml").write_text((tmp_path / "run.toml").read_text().replace("factor = 3", "factor = 0.5"))
    bad = subprocess.run([sys.executable, "-m", "mpisearch", "run", str(tmp_path / "bad.toml")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"mpisearch: error: {tmp_path / 'bad.toml'}: search.halving.factor: expected a number > 1, got 0.5"]


def test_halving_warnings_free_on_well_posed_problem():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MPISearchCV(SVC(), {"C": [0.1, 1, 10]}, strategy="halving", halving={"min_resources": 30}).fit(X, y)
