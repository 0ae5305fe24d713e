"""Reuse (mpisearch.reuse): warm-start chains and pipeline prefix groups give scikit-learn's numbers.

Every entry of the growth registry is proven here: growing with warm_start equals a
fresh fit (predictions and probabilities bit for bit), and a search through
MPISearchCV with chains on equals GridSearchCV's cv_results_ to the last bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from parity import assert_bitwise_equal, assert_same_results
from sklearn.base import clone, is_classifier
from sklearn.datasets import make_classification, make_regression
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mpisearch import MPISearchCV
from mpisearch.config import load
from mpisearch.errors import InputError
from mpisearch.reuse.bundles import PREFIX_PIECES_PER_WORKER, Bundle, Bundler, NewPoint, ReuseOptions
from mpisearch.reuse.growth import GROWTH, Growth
from mpisearch.reuse.prefix import FittedPrefix, PrefixCache, PrefixKey
from mpisearch.testing import CrashingClassifier, CrashingForest, SleepClassifier

Xc, yc = make_classification(300, 8, n_informative=5, random_state=0)
Xr, yr = make_regression(300, 8, random_state=0)


def _data(est):
    return (Xc, yc) if is_classifier(est) else (Xr, yr)


def _registry_estimator(cls):
    est = cls(random_state=0)
    if "early_stopping" in est.get_params():
        est.set_params(early_stopping=False)
    if "max_features" in est.get_params() and cls.__name__.startswith(("Gradient", "Random", "Extra")):
        est.set_params(max_features=3)
    if "subsample" in est.get_params():
        est.set_params(subsample=0.7)  # the random part of gradient boosting
    return est


@pytest.mark.parametrize("cls", list(GROWTH), ids=lambda c: c.__name__)
def test_growing_equals_a_fresh_fit(cls):
    est, growth = _registry_estimator(cls), GROWTH[cls].param
    X, y = _data(est)
    grown = clone(est).set_params(**{growth: 3}).fit(X[:200], y[:200])
    for size in (5, 9):
        grown.set_params(warm_start=True, **{growth: size}).fit(X[:200], y[:200])
        fresh = clone(est).set_params(**{growth: size}).fit(X[:200], y[:200])
        np.testing.assert_array_equal(grown.predict(X[200:]), fresh.predict(X[200:]))
        if hasattr(fresh, "predict_proba"):
            np.testing.assert_array_equal(grown.predict_proba(X[200:]), fresh.predict_proba(X[200:]))


@pytest.mark.parametrize("cls", list(GROWTH), ids=lambda c: c.__name__)
def test_chained_search_equals_gridsearchcv(cls):
    est, growth = _registry_estimator(cls), GROWTH[cls].param
    X, y = _data(est)
    grid = {growth: [9, 3, 5], "random_state": [0, 1]}
    ours = MPISearchCV(est, grid, cv=3).fit(X, y)
    assert_same_results(ours.cv_results_, GridSearchCV(est, grid, cv=3).fit(X, y).cv_results_, atol=0)
    reused = ours.run_info_["reused"]
    # 2 chains of 3 points per fold: 2 grown fits each, keeping 3 then 5 members
    assert reused["chained_fits"] == 3 * 2 * 2
    assert reused["members_kept"] == 3 * 2 * (3 + 5)


def test_a_point_left_at_the_default_size_takes_its_place_in_the_chain():
    grid = [{"n_estimators": [150, 3]}, {}]  # the second point: the default, 100 trees
    est = RandomForestClassifier(random_state=0)
    ours = MPISearchCV(est, grid, cv=3).fit(Xc, yc)
    assert_same_results(ours.cv_results_, GridSearchCV(est, grid, cv=3).fit(Xc, yc).cv_results_, atol=0)
    assert ours.run_info_["reused"]["chained_fits"] == 3 * 2


@pytest.mark.parametrize("est", [
    RandomForestClassifier(random_state=np.random.RandomState(0)),  # a fresh fit starts from a copy of the state
    GradientBoostingClassifier(random_state=0, n_iter_no_change=2),  # early stopping
    HistGradientBoostingClassifier(random_state=0),  # early_stopping="auto"
    Pipeline([("scale", StandardScaler()), ("rf", RandomForestClassifier(random_state=0))]),  # nested: not proven
], ids=["random-state-instance", "gb-early-stopping", "hgb-auto", "nested-in-pipeline"])
def test_what_is_not_proven_is_never_chained(est):
    growth = "rf__n_estimators" if isinstance(est, Pipeline) else \
        ("max_iter" if isinstance(est, HistGradientBoostingClassifier) else "n_estimators")
    grid = {growth: [3, 5]}
    ours = MPISearchCV(est, grid, cv=3).fit(Xc, yc)
    assert ours.run_info_["reused"]["chained_fits"] == 0
    if not isinstance(est.get_params().get("random_state"), np.random.RandomState):
        assert_same_results(ours.cv_results_, GridSearchCV(est, grid, cv=3).fit(Xc, yc).cv_results_, atol=0)


def _svc_pipeline():
    return Pipeline([("scale", StandardScaler()), ("pca", PCA(random_state=0)), ("svc", SVC())])


PIPE_GRID = {"pca__n_components": [2, 4], "svc__C": [0.1, 1.0, 10.0], "svc__gamma": [0.05, 0.5]}


@pytest.mark.parametrize("scoring", [None, ["accuracy", "roc_auc", "balanced_accuracy"]])
def test_prefix_groups_equal_gridsearchcv(scoring):
    """Scorers call predict and decision_function on the pipeline made of the shared fitted prefix."""
    est = _svc_pipeline()
    refit = "accuracy" if scoring else True
    ours = MPISearchCV(est, PIPE_GRID, cv=3, scoring=scoring, refit=refit).fit(Xc, yc)
    theirs = GridSearchCV(est, PIPE_GRID, cv=3, scoring=scoring, refit=refit).fit(Xc, yc)
    assert_same_results(ours.cv_results_, theirs.cv_results_, atol=0)
    # 2 prefixes x 3 folds, each shared by 6 points: 5 prefix fits saved each
    assert ours.run_info_["reused"]["prefix_fits_reused"] == 2 * 3 * 5


@pytest.mark.parametrize("kind", ["chain", "prefix"])
def test_bundled_points_train_scores_and_weights_equal_gridsearchcvs(kind):
    """return_train_score through bundles; with sample_weight (weighting the fit, the test and
    the train scores) where the estimator takes it (a Pipeline's fit does not)."""
    if kind == "chain":
        est, grid = RandomForestClassifier(random_state=0), {"n_estimators": [3, 6], "max_features": [2, 4]}
        fit_params = {"sample_weight": np.random.default_rng(0).uniform(0.5, 2.0, len(yc))}
    else:
        est, grid, fit_params = _svc_pipeline(), {"pca__n_components": [2, 4], "svc__C": [0.1, 1.0]}, {}
    ours = MPISearchCV(est, grid, cv=3, return_train_score=True).fit(Xc, yc, **fit_params)
    theirs = GridSearchCV(est, grid, cv=3, return_train_score=True).fit(Xc, yc, **fit_params)
    assert_same_results(ours.cv_results_, theirs.cv_results_, atol=0)
    assert ours.run_info_["reused"]["bundles"] > 0


def test_reuse_can_be_turned_off_and_gives_the_same_numbers():
    rf = RandomForestClassifier(random_state=0)
    on = MPISearchCV(rf, {"n_estimators": [3, 6]}, cv=3).fit(Xc, yc)
    off = MPISearchCV(rf, {"n_estimators": [3, 6]}, cv=3, warm_start_chains=False).fit(Xc, yc)
    assert_bitwise_equal(on.cv_results_, off.cv_results_)
    assert off.run_info_["reused"]["bundles"] == 0 < on.run_info_["reused"]["bundles"]
    pipe = MPISearchCV(_svc_pipeline(), PIPE_GRID, cv=3, prefix_cache=False).fit(Xc, yc)
    assert pipe.run_info_["reused"]["prefix_fits_reused"] == 0


def test_bundles_run_in_a_fit_process_too():
    """task_memory runs fits in a fit process (mpisearch.isolation): bundles go there whole."""
    grid = {"n_estimators": [3, 6, 9]}
    ours = MPISearchCV(RandomForestClassifier(random_state=0), grid, cv=3, task_memory="8GiB").fit(Xc, yc)
    theirs = GridSearchCV(RandomForestClassifier(random_state=0), grid, cv=3).fit(Xc, yc)
    assert_same_results(ours.cv_results_, theirs.cv_results_, atol=0)
    assert ours.run_info_["reused"]["chained_fits"] == 3 * 2


def test_failing_members_fail_alone():
    """A chain whose first fit fails leaves every member to a fresh fit: each fails or scores as alone."""
    grid = {"n_estimators": [3, 6], "max_features": [2, "nope"]}  # "nope": those fits fail
    ours = MPISearchCV(RandomForestClassifier(random_state=0), grid, cv=3).fit(Xc, yc)
    theirs = GridSearchCV(RandomForestClassifier(random_state=0), grid, cv=3).fit(Xc, yc)
    assert_same_results(ours.cv_results_, theirs.cv_results_, atol=0)
    assert np.isnan(ours.cv_results_["mean_test_score"]).sum() == 2


def test_halving_over_samples_chains_within_a_rung():
    grid = {"n_estimators": [3, 6, 12], "max_depth": [2, 4, None]}
    est = RandomForestClassifier(random_state=0)
    on = MPISearchCV(est, grid, cv=3, strategy="halving", random_state=0, halving={"mode": "sync"}).fit(Xc, yc)
    off = MPISearchCV(est, grid, cv=3, strategy="halving", random_state=0, halving={"mode": "sync"},
                      warm_start_chains=False).fit(Xc, yc)
    assert_bitwise_equal(on.cv_results_, off.cv_results_)
    assert on.run_info_["reused"]["chained_fits"] > 0


def test_resume_reads_every_chained_point_from_the_journal(tmp_path):
    grid = {"n_estimators": [3, 6, 9]}
    first = MPISearchCV(RandomForestClassifier(random_state=0), grid, cv=3, out=tmp_path).fit(Xc, yc)
    again = MPISearchCV(RandomForestClassifier(random_state=0), grid, cv=3, out=tmp_path, resume=True).fit(Xc, yc)
    assert again.run_info_["resumed_tasks"] == 9 and again.run_info_["tasks"] == 0
    assert_bitwise_equal(first.cv_results_, again.cv_results_)


def _points(params_list, subsample=None):
    return [NewPoint(i, p, subsample) for i, p in enumerate(params_list)]


def test_chains_are_sorted_and_split_to_keep_workers_busy():
    bundler = Bundler(RandomForestClassifier(), ReuseOptions())
    points = _points([{"n_estimators": n, "max_depth": d} for d in (2, 4) for n in (200, 25, 100, 50)])
    whole = bundler.group(points, n_tasks=8, n_workers=1)
    assert [[m.params["n_estimators"] for m in b.members] for b in whole] == [[25, 50, 100, 200]] * 2
    halves = bundler.group(points, n_tasks=8, n_workers=4)
    assert [[m.point_id for m in b.members] for b in halves] == [[1, 3], [2, 0], [5, 7], [6, 4]]
    ones = bundler.group(points, n_tasks=8, n_workers=8)
    assert sorted(ones) == list(range(8))  # chains of one point are plain tasks


def test_only_points_differing_in_growth_share_a_chain():
    bundler = Bundler(RandomForestClassifier(), ReuseOptions())
    points = _points([{"n_estimators": 10, "max_depth": 2}, {"n_estimators": 20, "max_depth": 2.0},
                      {"n_estimators": 30, "max_depth": [2]}])
    units = bundler.group(points, n_tasks=10, n_workers=1)
    assert units == [0, 1, 2]  # max_depth 2 and 2.0 differ in type; a list is no plain value
    assert Bundler(RandomForestClassifier(), ReuseOptions(chains=False)).group(_points(
        [{"n_estimators": 10}, {"n_estimators": 20}]), n_tasks=10, n_workers=1) == [0, 1]


def test_estimators_that_cannot_share_work_are_never_grouped():
    assert not Bundler(SVC(), ReuseOptions()).may_group
    assert not Bundler(RandomForestClassifier(), ReuseOptions(chains=False)).may_group
    assert not Bundler(_svc_pipeline(), ReuseOptions(prefix=False)).may_group
    assert Bundler(_svc_pipeline(), ReuseOptions()).may_group
    assert Bundler(RandomForestClassifier(), ReuseOptions()).may_group


def test_prefix_groups_key_on_the_steps_before_the_final_one():
    bundler = Bundler(_svc_pipeline(), ReuseOptions())
    points = _points([{"pca__n_components": k, "svc__C": c} for k in (2, 3) for c in (1.0, 2.0)])
    units = bundler.group(points, n_tasks=4 * PREFIX_PIECES_PER_WORKER, n_workers=1)
    assert all(isinstance(u, Bundle) for u in units)
    assert [[m.point_id for m in u.members] for u in units] == [[0, 1], [2, 3]]
    pieces = bundler.group(points, n_tasks=4 * PREFIX_PIECES_PER_WORKER, n_workers=4)  # 1 point per piece
    assert [[m.point_id for m in u.members] for u in pieces] == [[0], [1], [2], [3]]
    assert pieces[0].prefix_key == pieces[1].prefix_key != pieces[2].prefix_key  # the cache shares a prefix
    assert bundler.group(_points([{"steps": []}]), n_tasks=10, n_workers=1) == [0]


def test_prefix_cache_keeps_the_most_recently_used_within_its_budget():
    part = np.zeros((100, 10))  # 8,000 bytes
    cache = PrefixCache(budget=20_000)
    keys = [PrefixKey(fold, None, ()) for fold in range(3)]
    for key in keys[:2]:
        cache.put(key, FittedPrefix([], part, 0.1))
    assert cache.get(keys[0]) is not None  # now the most recent
    cache.put(keys[2], FittedPrefix([], part, 0.1))
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is not None and len(cache) == 2
    cache.put(PrefixKey(9, None, ()), FittedPrefix([], np.zeros((1000, 10)), 0.1))  # larger than the budget
    assert len(cache) == 2 and cache.held <= 20_000


def test_config_keys_turn_reuse_off(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('[data]\npath = "d.h5"\n[estimator]\nclass = "sklearn.ensemble.RandomForestClassifier"\n'
                   '[space]\nn_estimators = [10, 20]\n[search]\nwarm_start_chains = false\nprefix_cache = false\n'
                   'prefix_cache_memory = "64MiB"\n')
    spec = load(cfg).spec
    assert (spec.warm_start_chains, spec.prefix_cache, spec.prefix_cache_memory) == (False, False, 64 * 2**20)
    with pytest.raises(InputError, match="search.prefix_cache_memory"):
        load(cfg, ["search.prefix_cache_memory=lots"])


# -- what a crash, a hang or an exception costs a bundle (its fits run in a fit process) --------------

@pytest.fixture
def crashing_forest_chains(monkeypatch):
    """CrashingForest grows as RandomForestClassifier does: chained here as its parent is."""
    monkeypatch.setitem(GROWTH, CrashingForest, Growth("n_estimators"))


def _without_crashes(ours, theirs, crashed):
    """``ours`` equals ``theirs`` (scikit-learn's, for an estimator that never crashes) on every point
    but the ``crashed`` ones, whose scores are error_score (nan)."""
    keep = np.array([not crashed(p) for p in ours.cv_results_["params"]])
    assert keep.sum() and not keep.all()
    for key, value in theirs.cv_results_.items():
        if key.startswith(("split", "mean_test", "std_test")):
            np.testing.assert_array_equal(np.asarray(ours.cv_results_[key])[keep], np.asarray(value)[keep], key)
            assert np.isnan(np.asarray(ours.cv_results_[key], dtype=float)[~keep]).all(), key


FOREST_GRID = {"n_estimators": [3, 6, 9, 12], "max_features": [2, 4]}


@pytest.mark.parametrize("crash", ["segfault", "sigkill", "os_exit", "exit", "greedy"])
def test_a_crash_in_a_chain_costs_only_the_point_that_crashed(crashing_forest_chains, crash, tmp_path):
    """Growing to 6 trees crashes (a fresh fit of 6 would too): that point fails, 3 keeps its
    result, 9 and 12 run again (9 afresh, 12 grown from it) with the numbers of fresh fits."""
    est = CrashingForest(random_state=0, crash=crash, crash_at=6, greedy_bytes=1 << 44)
    ours = MPISearchCV(est, FOREST_GRID, cv=3, task_memory="64GiB", out=tmp_path).fit(Xc, yc)
    alone = MPISearchCV(est, FOREST_GRID, cv=3, task_memory="64GiB", warm_start_chains=False).fit(Xc, yc)
    assert_bitwise_equal(ours.cv_results_, alone.cv_results_)
    theirs = GridSearchCV(RandomForestClassifier(random_state=0), FOREST_GRID, cv=3).fit(Xc, yc)
    _without_crashes(ours, theirs, lambda p: p["n_estimators"] == 6)
    reused = ours.run_info_["reused"]
    assert reused["chained_fits"] == 3 * 2 and reused["members_kept"] == 3 * 2 * 9  # 9 -> 12 only
    assert (tmp_path / "errors.txt").read_text().count('"n_estimators": 6}') == 2 * 3  # each fold of each point


def _crash_grid(crash):
    """15 points of one prefix: with 3 folds on one worker, bundles of 5 (the crashing one is the
    second of the middle bundle)."""
    Cs = [0.01 * 2 ** k for k in range(14)]
    return [{"clf__C": Cs[:6], "clf__crash": ["none"]}, {"clf__C": [1.0], "clf__crash": [crash]},
            {"clf__C": Cs[6:], "clf__crash": ["none"]}]


@pytest.mark.parametrize("crash", ["segfault", "exit"])
def test_a_crash_in_a_prefix_group_costs_only_the_point_that_crashed(crash):
    est = Pipeline([("scale", StandardScaler()), ("clf", CrashingClassifier())])
    ours = MPISearchCV(est, _crash_grid(crash), cv=3, task_memory="64GiB").fit(Xc, yc)
    alone = MPISearchCV(est, _crash_grid(crash), cv=3, task_memory="64GiB", prefix_cache=False).fit(Xc, yc)
    assert_bitwise_equal(ours.cv_results_, alone.cv_results_)
    theirs = GridSearchCV(est, _crash_grid("none"), cv=3).fit(Xc, yc)
    _without_crashes(ours, theirs, lambda p: p["clf__crash"] != "none")
    # per fold, 3 bundles of 5 of one prefix: 4 prefix fits reused in the first and 5 in the others
    # (from the cache), less the crashing point's, and the prefix of the 3 points after it is fitted
    # again where the crash lost the cache (a segfault) but not after an exception (sys.exit)
    assert ours.run_info_["reused"]["prefix_fits_reused"] == 3 * (12 if crash == "segfault" else 13)


def test_task_timeout_applies_to_each_point_of_a_bundle(crashing_forest_chains, tmp_path):
    """A growth step that hangs is killed after task_timeout: that point fails with a time-out,
    the rest of its chain runs again; a slow final step of a prefix group likewise."""
    est = CrashingForest(random_state=0, crash="hang", crash_at=6)
    grid = {"n_estimators": [3, 6, 9, 12]}
    ours = MPISearchCV(est, grid, cv=2, task_timeout=2.0, out=tmp_path).fit(Xc, yc)
    theirs = GridSearchCV(RandomForestClassifier(random_state=0), grid, cv=2).fit(Xc, yc)
    _without_crashes(ours, theirs, lambda p: p["n_estimators"] == 6)
    errors = (tmp_path / "errors.txt").read_text()
    assert "2 tasks failed (timeout): TaskTimeout: task timed out after 2s" in errors
    assert errors.count('point {"n_estimators": 6}') == 2
    assert ours.run_info_["reused"]["chained_fits"] == 2 * 1
    pipe = Pipeline([("scale", StandardScaler()), ("clf", SleepClassifier())])
    grid = {"clf__duration": [0.0, 600.0], "clf__tag": [0, 1]}
    ours = MPISearchCV(pipe, grid, cv=2, task_timeout=2.0).fit(Xc, yc)
    assert ours.run_info_["reused"]["prefix_fits_reused"] > 0
    theirs = GridSearchCV(pipe, {"clf__duration": [0.0, 0.0], "clf__tag": [0, 1]}, cv=2).fit(Xc, yc)
    _without_crashes(ours, theirs, lambda p: p["clf__duration"] > 0)
