"""Fast paths of the per-task code: same results as the plain code, state restored."""

from __future__ import annotations

import inspect
import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mpisearch import MPISearchCV
from mpisearch.messages import BundleResult, Bye, CancelTask, MemberResult, Result, RunTask, Stop
from mpisearch.results import ResultTable
from mpisearch.reuse.bundles import Bundle, BundleKind, Member, ReuseCounts
from mpisearch.signatures import pinned_signatures
from mpisearch.testing import NoopClassifier
from mpisearch.transport import wire
from mpisearch.types import Subsample, TaskResult


def _has_pin(cls: type) -> bool:
    return "__signature__" in cls.__init__.__dict__


def test_pinned_signatures_cover_nested_estimators_and_are_removed_afterwards():
    pipe = Pipeline([("scale", StandardScaler()), ("svc", SVC(C=2.0))])
    before = {cls: inspect.signature(cls.__init__) for cls in (Pipeline, StandardScaler, SVC)}
    with pinned_signatures(pipe):
        for cls, sig in before.items():
            assert _has_pin(cls) and inspect.signature(cls.__init__) == sig
        copy = clone(pipe).set_params(svc__C=3.0)
        assert copy.get_params()["svc__C"] == 3.0 and pipe.get_params()["svc__C"] == 2.0
    assert not any(_has_pin(cls) for cls in before)


def test_an_existing_signature_attribute_is_left_alone():
    class Custom(NoopClassifier):
        def __init__(self, tag=0):
            super().__init__(tag=tag)

    marker = inspect.signature(Custom.__init__)
    Custom.__init__.__signature__ = marker
    with pinned_signatures(Custom()):
        pass
    assert Custom.__init__.__signature__ is marker


def test_search_under_an_outer_pin_keeps_it_and_matches_gridsearchcv():
    X = np.random.default_rng(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    grid = {"C": [0.1, 1.0, 10.0]}
    expected = GridSearchCV(LogisticRegression(), grid, cv=3, refit=False).fit(X, y).cv_results_
    with pinned_signatures(LogisticRegression()):
        ours = MPISearchCV(LogisticRegression(), grid, cv=3, refit=False).fit(X, y).cv_results_
        assert _has_pin(LogisticRegression)  # the search's own pin did not remove the outer one
    assert not _has_pin(LogisticRegression)
    for key in ("mean_test_score", "split0_test_score", "split2_test_score", "rank_test_score"):
        assert np.array_equal(ours[key], expected[key])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, as np.average
def test_mean_score_is_cv_results_mean_bit_for_bit():
    rng = np.random.default_rng(1)
    specials = [0.0, -0.0, 1e300, -1e300, 1e-320, math.nan, math.inf, -math.inf]
    for n_folds in (1, 2, 3, 5, 7, 8, 9, 10, 17):
        table = ResultTable(["score"], n_folds)
        for p in range(200):
            table.add_point({"p": p})
            for k in range(n_folds):
                normal = float(rng.normal() * 10.0 ** rng.integers(-5, 5))
                v = float(rng.choice(specials)) if rng.random() < 0.2 else normal
                table.add(p, k, TaskResult({"score": v}))
        means = table.cv_results()["mean_test_score"]
        for p in range(200):
            ours = table.mean_score(p, "score")
            assert (ours == means[p] and math.copysign(1, ours) == math.copysign(1, means[p])) or (
                math.isnan(ours) and math.isnan(means[p]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("error_score", [math.nan, 0.0, -1.5, 2])
def test_mean_score_is_cv_results_mean_with_numpy_ints_and_failed_folds(error_score):
    """numpy float64 scores, int scores (summed by numpy as before) and failed folds (error_score)."""
    rng = np.random.default_rng(2)
    kinds = [lambda v: v, np.float64, lambda v: int(v * 10), lambda v: np.float32(v).item(), lambda v: -0.0]
    for n_folds in (1, 2, 3, 5, 7, 8, 9):
        table = ResultTable(["score"], n_folds, error_score=error_score)
        for p in range(150):
            table.add_point({"p": p})
            kind = kinds[p % len(kinds)]
            for k in range(n_folds):
                v = kind(float(rng.normal() * 10.0 ** rng.integers(-3, 3)))
                failed = rng.random() < 0.15
                table.add(p, k, TaskResult({} if failed else {"score": v}, error="tb" if failed else None))
        means = table.cv_results()["mean_test_score"]
        for p in range(150):
            ours = table.mean_score(p, "score")
            assert (ours == means[p] and math.copysign(1, ours) == math.copysign(1, means[p])) or (
                math.isnan(ours) and math.isnan(means[p]))


_BATCH = Bundle(BundleKind.BATCH, (Member(4, {"C": 1.0}), Member(5, {"C": 2.0, "kernel": "rbf"})))
_CHAIN = Bundle(BundleKind.CHAIN, (Member(6, {"n": 10}), Member(7, {"n": 20})), Subsample(0.5, 3, True), "n",
                ("prefix", 1))
_BUNDLE_RESULT = BundleResult(9, 1, (MemberResult(4, TaskResult({"score": 0.5}, 0.1, 0.2, started=3.0, rank=2)),
                                     MemberResult(5, TaskResult({"score": math.nan}, error="tb", reason="fit",
                                                                warnings={"W: x": 1}))), ReuseCounts(1, 2, 3))
_BUNDLE_MESSAGES = [
    RunTask(8, 4, 1, bundle=_BATCH), RunTask(9, 6, 0, bundle=_CHAIN),
    [RunTask(8, 4, 1, bundle=_BATCH), RunTask(10, 2, 1, {"C": 3.0}), RunTask(9, 6, 0, bundle=_CHAIN)],
    _BUNDLE_RESULT, [_BUNDLE_RESULT, Result(1, 2, 3, TaskResult({"score": 0.5}, 0.1, 0.2)), _BUNDLE_RESULT],
    [_BUNDLE_RESULT, Bye({"tasks": 3})],  # mixed: pickled as it is
]


@pytest.mark.parametrize("msg", [
    Result(1, 2, 3, TaskResult({"score": 0.5}, 0.1, 0.2, started=12.5)),
    [Result(i, i // 2, i % 2, TaskResult({"a": 1.0, "b": math.nan}, 0.1, 0.2, error="tb\n" if i == 3 else None,
                                         reason="fit" if i == 3 else None, warnings={"UserWarning: x": 2},
                                         origin="rank 1 (host h)", started=1.0 + i, rank=None)) for i in range(5)],
    RunTask(7, 3, 1, {"C": 1.0, "kernel": "rbf"}),
    [RunTask(7, 3, 1, {"C": 1.0}), RunTask(8, 3, 2)],
    [RunTask(7, 3, 1), CancelTask(5)],  # mixed: pickled as it is
    CancelTask(5), Stop(), Bye({"tasks": 3}), [], [Stop()],
    *_BUNDLE_MESSAGES,
])
def test_wire_form_round_trips(msg):
    packed = pickle.loads(pickle.dumps(wire.encode(msg), protocol=pickle.HIGHEST_PROTOCOL))
    assert repr(wire.decode(packed)) == repr(msg)  # repr: NaN scores compare unequal
    assert type(wire.decode(packed)) is type(msg)


def test_wire_form_of_results_and_tasks_is_smaller():
    for batch, ratio in (([Result(i, i, 0, TaskResult({"score": 0.5}, 0.1, 0.2)) for i in range(16)], 0.7),
                         ([RunTask(i, i, 0) for i in range(16)], 0.7),
                         ([replace(_BUNDLE_RESULT, task_id=i) for i in range(4)], 0.9),
                         ([RunTask(i, 4, 1, bundle=replace(_BATCH)) for i in range(4)], 0.9)):
        packed = pickle.dumps(wire.encode(batch), protocol=5)
        assert len(packed) < len(pickle.dumps(batch, protocol=5)) * ratio
        assert repr(wire.decode(pickle.loads(packed))) == repr(batch)


def test_frozen_heap_freezes_for_the_block_and_respects_an_outer_freeze():
    import gc

    from mpisearch.hotpath import frozen_heap

    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        outer = gc.get_freeze_count()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() == outer  # the caller's freeze is left alone
    finally:
        gc.unfreeze()


def test_freeze_kept_freezes_what_the_loop_made_only_inside_an_owned_frozen_heap():
    import gc

    from mpisearch.hotpath import freeze_kept, frozen_heap

    kept = []
    with frozen_heap():
        before = gc.get_freeze_count()
        kept.extend([i] for i in range(1000))  # what a loop keeps (lists: tracked by the collector)
        freeze_kept()
        assert gc.get_freeze_count() >= before + 1000
    assert gc.get_freeze_count() == 0  # the block's end unfreezes all of it
    freeze_kept()
    assert gc.get_freeze_count() == 0  # outside a block nothing is frozen
    gc.freeze()
    try:
        outer = gc.get_freeze_count()
        with frozen_heap():  # someone else froze: their freeze is theirs, nothing more is frozen
            kept.extend([i] for i in range(10))
            freeze_kept()
            assert gc.get_freeze_count() == outer
    finally:
        gc.unfreeze()


def test_rare_young_collections_raise_the_youngest_threshold_for_the_block_only():
    import gc

    from mpisearch.hotpath import GEN0_THRESHOLD, rare_young_collections, search_loop

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with search_loop(coordinator=True):
            assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        with search_loop():  # a worker: as it was
            assert gc.get_threshold() == (700, 10, 10)
        with pytest.raises(KeyError), rare_young_collections():
            raise KeyError  # restored on the way out of an error too
        assert gc.get_threshold() == (700, 10, 10)
        for chosen in ((0, 10, 10), (10 * GEN0_THRESHOLD, 5, 5)):  # off, or higher already: left as it is
            gc.set_threshold(*chosen)
            with rare_young_collections():
                assert gc.get_threshold() == chosen
        gc.set_threshold(700, 10, 10)
        first, second = rare_young_collections(), rare_young_collections()  # searches in two threads
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first to open closes first: the other still runs
        assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
        second.__exit__(None, None, None)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_in_process_search_leaves_the_collector_as_it_found_it():
    import gc

    X = np.random.default_rng(0).normal(size=(30, 2))
    y = (X[:, 0] > 0).astype(int)
    thresholds = gc.get_threshold()
    MPISearchCV(NoopClassifier(), {"tag": [0, 1]}, cv=2, refit=False).fit(X, y)
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0 and not any(
        "__signature__" in cls.__init__.__dict__ for cls in (NoopClassifier,))


def test_journal_lines_are_plain_json_dumps_with_params_encoded_once():
    import io
    import json

    from mpisearch.journal import Journal
    from mpisearch.space import jsonable

    fh = io.StringIO()
    journal = Journal(fh)
    params = {"C": np.float64(1.5), "kernel": "rbf", "sizes": (1, 2), "gamma": None}
    result = TaskResult({"a": 0.5, "b": math.nan}, 0.1, 0.2, None, None, {}, None, 123.0, 2)
    journal.write(3, 1, result, params)
    journal.write(3, 2, result, {"C": 99.0})  # a point's parameters never change: the first encoding stays
    journal.write(4, 0, result, params, n_resources=np.int64(40))
    lines = fh.getvalue().splitlines()
    expected = {"point": 3, "params": jsonable(params), "fold": 1, "scores": result.scores, "fit_time": 0.1,
                "score_time": 0.2, "error": None, "reason": None, "rank": 2, "start": 123.0}
    assert lines[0] == json.dumps(expected)
    assert json.loads(lines[1])["params"] == jsonable(params)
    assert lines[2] == json.dumps({**expected, "point": 4, "fold": 0, "n_resources": 40})


@pytest.mark.parametrize("result", [
    TaskResult({"a": -0.0, "é \"b\"\n": 1e300, "c": math.inf, "d": -math.inf}, 5e-324, 0.0, None, None, {}, None,
               -1.5, 10 ** 30),
    TaskResult({"a": 0.25}, 1.0, 2.0, 'Traceback:\n  ValueError: "x" \u2013 bad\t', "SystemExit: 4", {}, None, 0.0, 0),
    TaskResult({"a": np.float64(0.5), "b": True}, np.float64(0.1), 0.2, None, None, {}, None, 3.0, None),
    TaskResult({1: 0.5, "x": None}, 0.1, 0.2, None, None, {}, None, 3.0, 7),
    TaskResult({"a": 0.5}, 0.1, 0.2, None, None, {}, None, 3.0, 7, {"a": 0.75, "b": math.nan}),
])
def test_journal_lines_match_json_dumps_for_every_kind_of_value(result):
    import io
    import json

    from mpisearch.journal import Journal

    fh = io.StringIO()
    Journal(fh).write(0, 3, result, {"C": 1.0}, n_resources=9)
    expected = {"point": 0, "params": {"C": 1.0}, "fold": 3, "scores": result.scores, "fit_time": result.fit_time,
                "score_time": result.score_time, "error": result.error, "reason": result.reason,
                "rank": result.rank, "start": result.started}
    if result.train_scores:
        expected["train_scores"] = result.train_scores
    assert fh.getvalue() == json.dumps({**expected, "n_resources": 9}) + "\n"
