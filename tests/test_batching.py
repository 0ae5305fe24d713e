"""Batches of short tasks (mpisearch.batching, BundleKind.BATCH): rank 0 decides how many points
go as one task from its measured load, and results are those of single tasks, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from parity import assert_bitwise_equal, assert_same_results
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

from mpisearch import MPISearchCV, batching
from mpisearch.batching import BatchPolicy, Load, batch_size, guided_size, served_later
from mpisearch.config import load
from mpisearch.errors import InputError
from mpisearch.reuse.bundles import Bundle, BundleKind, Member, batched
from mpisearch.strategies._base import ListStrategy
from mpisearch.testing import CrashingClassifier

X, y = make_classification(200, 6, n_informative=4, random_state=0)
TREES = {"max_depth": [1, 2, 3, 4, 5, 6], "min_samples_leaf": [1, 2, 4, 8], "random_state": [0]}
# batches from the first finished task on, whatever the load (the thresholds a real search uses
# need thousands of workers or very short fits: see bench_scale_sim.py)
EAGER = BatchPolicy(start_load=0.0, aim_load=1e-9, max_size=4, min_timed=1, units_per_worker=1)


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(batching, "DEFAULT_POLICY", EAGER)


def _load(cpu_per_task=20e-6, mean_task_s=0.02, workers=1024, points_per_task=1.0, tasks=1000):
    return Load(cpu_s=cpu_per_task * tasks, tasks=tasks, sent=tasks, points=round(points_per_task * tasks),
                mean_task_s=mean_task_s, workers=workers)


# -- the decision ---------------------------------------------------------------------

def test_no_batches_while_rank_0_keeps_up():
    policy = BatchPolicy()
    assert batch_size(policy, _load(workers=64), queued=10**6) == 1  # rho = 0.064
    assert batch_size(policy, _load(mean_task_s=1.0, workers=4096), queued=10**6) == 1  # rho = 0.08


def test_batch_size_brings_the_load_under_the_aim_and_is_capped():
    policy = BatchPolicy(start_load=0.5, aim_load=0.25, max_size=16)
    # rho = 20 us x 1,024 / 20 ms = 1.024: ceil(1.024 / 0.25) = 5
    assert batch_size(policy, _load(), queued=10**6) == 5
    assert batch_size(policy, _load(workers=16384), queued=10**7) == 16  # rho 16: the cap
    # already batched by 4: per point 5 us of CPU and 20 ms, i.e. rho 0.256 now, ~1.02 without batches
    assert batch_size(policy, _load(cpu_per_task=20e-6, mean_task_s=0.08, points_per_task=4), queued=10**6) == 5


def test_batches_stay_short():
    policy = BatchPolicy(max_seconds=0.5)
    slow = _load(cpu_per_task=60e-6, mean_task_s=1.1, workers=16384)  # rho ~0.9, but tasks of a second
    assert batch_size(policy, slow, queued=10**7) == 1
    assert batch_size(policy, _load(mean_task_s=0.1, workers=8192), queued=10**7) == 5  # 5 x 0.1 s
    # the mean of the first (quickest) tasks finished is 20 ms, but one took 0.3 s
    first = Load(cpu_s=0.02, tasks=64, sent=64, points=64, mean_task_s=0.02, workers=1024, longest_task_s=0.3)
    assert batch_size(policy, first, queued=10**7) == 1


def test_no_batches_before_enough_tasks_are_timed_or_without_a_full_queue():
    policy = BatchPolicy(min_timed=32, units_per_worker=2)
    assert batch_size(policy, _load(tasks=31), queued=10**6) == 1
    assert batch_size(policy, _load(mean_task_s=None), queued=10**6) == 1
    assert batch_size(policy, _load(), queued=3 * 2 * 1024) == 3  # 3 units per worker's 2 at most
    assert batch_size(policy, _load(), queued=2 * 1024) == 1


def test_sending_at_the_start_counts_against_the_cost_per_task():
    policy = BatchPolicy()
    sent_many = Load(cpu_s=0.018, tasks=64, sent=4096 - 64, points=64, mean_task_s=0.02, workers=1024)
    assert batch_size(policy, sent_many, queued=10**6) == 1  # 8.8 us per task: rho 0.45
    assert batch_size(policy, Load(cpu_s=0.018, tasks=64, sent=64, points=64, mean_task_s=0.02, workers=1024),
                      queued=10**6) == 16  # ...not 281 us per finished task


# -- forming batches ------------------------------------------------------------------

def _point(p):
    return {"p": p}, (None if p < 10 else 50)


def _kinds(units):
    return [u if isinstance(u, int) else (u.kind, [m.point_id for m in u.members]) for u in units]


def test_batched_cuts_runs_of_single_points_and_leaves_bundles_alone():
    chain = Bundle(BundleKind.CHAIN, (Member(20, {}), Member(21, {})), None, growth="n")
    units = batched([0, 1, 2, 3, 4, chain, 5, 6, 7, 11, 12], _point, lambda i: 2)
    assert _kinds(units) == [(BundleKind.BATCH, [0, 1]), (BundleKind.BATCH, [2, 3]), 4, (BundleKind.CHAIN, [20, 21]),
                             (BundleKind.BATCH, [5, 6]), 7, (BundleKind.BATCH, [11, 12])]  # 7, 11: other subsamples
    assert units[-1].subsample == 50 and units[0].members[1].params == {"p": 1}


def test_only_the_fold_served_last_ends_the_search():
    # folds are served cyclically from the one served now: from fold 2 of 4, the order is 2, 3, 0, 1
    assert served_later({0: 10, 1: 20, 2: 30, 3: 40}, serving=2, n_folds=4) == {2: 70, 3: 30, 0: 20, 1: 0}
    assert served_later({0: 5, 1: 5}, serving=0, n_folds=2) == {0: 5, 1: 0}
    assert served_later({1: 7}, serving=0, n_folds=3) == {1: 0}


def test_batches_shrink_towards_the_end_of_the_last_ask():
    policy = BatchPolicy(units_per_worker=2)
    assert [guided_size(policy, 8, left, workers=10) for left in (200, 100, 60, 40, 39, 20, 1)] == [8, 5, 3, 2, 1, 1, 1]
    units = batched(list(range(9)), _point, lambda i: guided_size(policy, 8, 9 - i, workers=1))
    assert _kinds(units) == [(BundleKind.BATCH, [0, 1, 2, 3]), (BundleKind.BATCH, [4, 5]), 6, 7, 8]


# -- searches -------------------------------------------------------------------------

def test_batches_give_the_results_of_single_tasks(eager):
    on = MPISearchCV(DecisionTreeClassifier(), TREES, cv=3).fit(X, y)
    off = MPISearchCV(DecisionTreeClassifier(), TREES, cv=3, batch_short_tasks=False).fit(X, y)
    assert on.run_info_["batches"]["formed"] > 0 and on.run_info_["batches"]["tasks"] > 0
    assert off.run_info_["batches"] == {"formed": 0, "tasks": 0}
    assert_bitwise_equal(on.cv_results_, off.cv_results_)
    theirs = GridSearchCV(DecisionTreeClassifier(), TREES, cv=3).fit(X, y)
    assert_same_results(on.cv_results_, theirs.cv_results_, atol=0)


def test_no_batches_with_the_default_thresholds_on_one_worker():
    search = MPISearchCV(DecisionTreeClassifier(), TREES, cv=3).fit(X, y)
    assert search.run_info_["batches"]["formed"] == 0


def test_a_crash_in_a_batch_costs_that_point_only(eager):
    grid = [{"C": [0.1, 0.5, 1.0], "crash": ["none"]}, {"C": [2.0], "crash": ["segfault"]},
            {"C": [5.0, 10.0, 50.0], "crash": ["none"]}]
    runs = {on: MPISearchCV(CrashingClassifier(), grid, cv=3, batch_short_tasks=on,
                            task_memory="64GiB").fit(X, y)  # task_memory: fits in a fit process
            for on in (True, False)}
    ours = runs[True].cv_results_
    assert runs[True].run_info_["batches"]["formed"] > 0
    assert_bitwise_equal(ours, runs[False].cv_results_)
    crashed = np.array([p["crash"] != "none" for p in ours["params"]])
    assert np.isnan(ours["mean_test_score"][crashed]).all() and not np.isnan(ours["mean_test_score"][~crashed]).any()


def test_resume_of_a_run_with_batches(eager, tmp_path):
    full = MPISearchCV(DecisionTreeClassifier(), TREES, cv=3, out=tmp_path / "full").fit(X, y)
    assert full.run_info_["batches"]["formed"] > 0
    journal = (tmp_path / "full" / "journal.jsonl").read_text().splitlines()
    part = tmp_path / "part"
    part.mkdir()
    (part / "journal.jsonl").write_text("\n".join(journal[:30]) + "\n")
    (part / "run.json").write_text((tmp_path / "full" / "run.json").read_text())
    resumed = MPISearchCV(DecisionTreeClassifier(), TREES, cv=3, out=part, resume=True).fit(X, y)
    assert resumed.run_info_["resumed_tasks"] == 30 and resumed.run_info_["tasks"] == len(journal) - 30
    assert resumed.run_info_["batches"]["formed"] > 0
    assert_bitwise_equal(resumed.cv_results_, full.cv_results_)


def test_the_config_key_turns_batches_off(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\npath = "d.h5"\n[estimator]\nclass = "sklearn.tree.DecisionTreeClassifier"\n'
                   '[space]\nmax_depth = [1, 2]\n[search]\nbatch_short_tasks = false\n')
    assert load(cfg).spec.batch_short_tasks is False
    assert load(cfg, ["search.batch_short_tasks=true"]).spec.batch_short_tasks is True
    with pytest.raises(InputError, match="search.batch_short_tasks"):
        load(cfg, ["search.batch_short_tasks=maybe"])


class RecordingGrid(ListStrategy):
    """The grid, as an open strategy that keeps what it is told (one list per tell)."""

    told: list[list[int]] = []

    def __init__(self, space, settings):
        super().__init__(space, space.grid())

    def tell(self, results):
        RecordingGrid.told.append([r.point_id for r in results])


def test_a_batch_tells_its_complete_points_at_once(eager, tmp_path):
    RecordingGrid.told = []
    on = MPISearchCV(DecisionTreeClassifier(), TREES, cv=3, strategy=f"{__name__}:RecordingGrid",
                     out=tmp_path).fit(X, y)
    assert on.run_info_["batches"]["formed"] > 0
    told = [p for call in RecordingGrid.told for p in call]
    assert sorted(told) == list(range(len(on.cv_results_["params"])))  # each point once
    assert max(len(call) for call in RecordingGrid.told) > 1  # a batch's points in one tell
    off = MPISearchCV(DecisionTreeClassifier(), TREES, cv=3, batch_short_tasks=False).fit(X, y)
    assert_bitwise_equal(on.cv_results_, off.cv_results_)
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert len(lines) == on.run_info_["tasks"] == 3 * len(told)
    assert all(json.dumps(json.loads(line)) == line for line in lines)  # the journal's lines as json writes them
