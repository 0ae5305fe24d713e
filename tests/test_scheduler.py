"""Scheduler policies, with a fake clock and a simulated cluster (no MPI)."""

from __future__ import annotations

import random
from collections import deque

import pytest

from mpisearch.scheduler import Cancel, Run, Scheduler, Task


def tasks(n_points: int, n_folds: int) -> list[Task]:
    out, tid = [], 0
    for fold in range(n_folds):
        for p in range(n_points):
            out.append(Task(tid, p, fold))
            tid += 1
    return out


def runs(actions) -> list[Run]:
    return [a for a in actions if isinstance(a, Run)]


def test_prefetch_fills_every_worker_up_to_depth():
    s = Scheduler([1, 2, 3], prefetch=2)
    s.add(tasks(10, 1))
    actions = s.dispatch(0.0)
    per_worker = {w: sum(1 for a in runs(actions) if a.worker == w) for w in (1, 2, 3)}
    assert per_worker == {1: 2, 2: 2, 3: 2}
    assert s.n_queued == 4 and s.n_open == 10
    assert s.dispatch(0.0) == []  # nothing more until a result comes back


def test_a_shallower_dispatch_gives_every_worker_a_task_before_any_gets_a_second():
    s = Scheduler([1, 2, 3], prefetch=2)
    s.add(tasks(10, 1))
    first = runs(s.dispatch(0.0, depth=1))
    assert [(a.worker, a.task.task_id) for a in first] == [(1, 0), (2, 1), (3, 2)]
    assert s.n_wanted == 3 and s.n_serving == 7  # each queue lacks one task; fold 0 holds 7 more
    second = runs(s.dispatch(0.0))  # then up to the prefetch
    assert sorted(a.worker for a in second) == [1, 2, 3]
    assert s.n_wanted == 0 and s.n_serving == 4


def test_unknown_points_first_then_longest_expected_first():
    s = Scheduler([1], prefetch=1)
    s.add(tasks(3, 2))  # fold 0 of points 0,1,2 then fold 1 of points 0,1,2
    order, now = [], 0.0
    durations = {0: 1.0, 1: 5.0, 2: 3.0}
    while s.n_open:
        (run,) = runs(s.dispatch(now))
        order.append((run.task.point_id, run.task.fold))
        now += durations[run.task.point_id]
        assert s.complete(1, run.task.task_id, durations[run.task.point_id], now)
    assert order == [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (0, 1)]


def serve(s: Scheduler, n: int, now: float = 0.0) -> list[Task]:
    """Run ``n`` tasks on worker 1 (prefetch 1), each taking 1 s; the tasks in order."""
    done = []
    for _ in range(n):
        (run,) = runs(s.dispatch(now))
        now += 1.0
        assert s.complete(1, run.task.task_id, 1.0, now)
        done.append(run.task)
    return done


def test_tasks_go_fold_major_and_points_added_later_join_the_fold_being_served():
    s = Scheduler([1], prefetch=1)
    first = tasks(3, 3)
    s.add(first)
    head = serve(s, 5)  # fold 0 of points 0-2, then fold 1 of points 0 and 1
    later = [Task(9 + t.task_id, 3 + t.point_id, t.fold) for t in tasks(3, 3)]  # the next batch
    s.add(later)
    rest = serve(s, 13)
    assert s.n_open == 0
    assert sorted(t.task_id for t in head + rest) == list(range(18))
    # fold 1 goes on (the new points' fold 1 first: their cost is unknown), then fold 2 of
    # every point, then fold 0 of the new points: each fold is served in one stretch
    assert [t.fold for t in head + rest] == [0] * 3 + [1] * 6 + [2] * 6 + [0] * 3
    assert [t.point_id for t in rest[:4]] == [3, 4, 5, 2]


def test_within_a_fold_stolen_and_dropped_tasks_leave_the_order_fold_major():
    s = Scheduler([1, 2], prefetch=2)
    s.add(tasks(4, 2))
    s.drop_point(1)
    order = [a.task.fold for a in runs(s.dispatch(0.0))]
    assert order == [0, 0, 0, 1]  # points 0, 2, 3 at fold 0, then fold 1
    assert s.n_queued == 2


def test_idle_worker_steals_not_started_task_from_longest_queue():
    s = Scheduler([1, 2], prefetch=3)
    s.add(tasks(4, 1))
    first = runs(s.dispatch(0.0))
    assert [a.worker for a in first] == [1, 1, 1, 2]
    head_of_2 = first[3].task
    assert s.complete(2, head_of_2.task_id, 1.0, 1.0)
    actions = s.dispatch(1.0)
    cancel = [a for a in actions if isinstance(a, Cancel)]
    assert cancel == [Cancel(1, first[2].task)]  # the victim's last, not-started task
    assert runs(actions) == [Run(2, first[2].task)]


def test_late_result_of_a_stolen_task_is_a_duplicate():
    s = Scheduler([1, 2], prefetch=3)
    s.add(tasks(4, 1))
    first = runs(s.dispatch(0.0))
    s.complete(2, first[3].task.task_id, 1.0, 1.0)
    s.dispatch(1.0)  # worker 2 steals first[2] from worker 1
    stolen = first[2].task
    assert s.complete(2, stolen.task_id, 1.0, 2.0) is True
    assert s.complete(1, stolen.task_id, 1.0, 2.5) is False  # victim had started it anyway


def test_results_in_and_out_of_queue_order_keep_the_queue_and_start_times():
    s = Scheduler([1], prefetch=3)
    s.add(tasks(3, 1))
    a, b, c = (r.task for r in runs(s.dispatch(0.0)))
    assert s.complete(1, b.task_id, 1.0, 1.0)  # not the head: the head keeps its start time
    assert s.running(1) == (a, 0.0) and s.n_open == 2
    assert s.complete(1, a.task_id, 1.0, 2.0)  # the head: the next one starts now
    assert s.running(1) == (c, 2.0)
    assert s.complete(1, c.task_id, 1.0, 3.0) and s.running(1) is None and s.n_open == 0


def test_straggler_is_reissued_once_and_first_result_wins():
    s = Scheduler([1, 2], prefetch=1, straggler_factor=3.0, straggler_min_seconds=1.0)
    s.add(tasks(3, 1))
    a = runs(s.dispatch(0.0))
    assert s.complete(2, a[1].task.task_id, 1.0, 1.0)
    b = runs(s.dispatch(1.0))  # worker 2 takes the last queued task
    assert s.complete(2, b[0].task.task_id, 1.0, 2.0)
    assert s.dispatch(2.5) == []  # worker 1 at 2.5 s: not yet 3x the 1 s median
    (copy,) = s.dispatch(3.5)
    assert copy == Run(2, a[0].task)
    assert s.dispatch(10.0) == []  # never a third copy
    assert s.complete(2, a[0].task.task_id, 1.0, 4.5) is True
    assert s.complete(1, a[0].task.task_id, 9.0, 9.0) is False
    assert s.n_open == 0


def test_short_tasks_are_never_duplicated():
    s = Scheduler([1, 2], prefetch=1, straggler_min_seconds=1.0)
    s.add(tasks(2, 1))
    a = runs(s.dispatch(0.0))
    s.complete(2, a[1].task.task_id, 0.01, 0.01)
    assert s.dispatch(0.5) == []  # 50x the median but under a second


def test_drop_point_and_drop_queued_forget_only_unassigned_tasks():
    s = Scheduler([1], prefetch=1)
    s.add(tasks(2, 3))
    (run,) = runs(s.dispatch(0.0))
    dropped = s.drop_point(run.task.point_id)
    assert [t.fold for t in dropped] == [1, 2]
    assert s.n_open == 4  # the running one and the 3 of the other point
    assert len(s.drop_queued()) == 3
    assert s.n_open == 1 and s.n_queued == 0


def simulate(n_workers: int, durations: dict[int, float], n_folds: int, prefetch: int = 2):
    """Run a whole schedule on a simulated cluster; return (makespan, results per task)."""
    s = Scheduler(list(range(1, n_workers + 1)), prefetch=prefetch)
    s.add(tasks(len(durations), n_folds))
    queues = {w: deque() for w in s.workers}
    finish = {w: 0.0 for w in s.workers}  # when the head task of w ends
    now, results = 0.0, {}
    while s.n_open:
        for action in s.dispatch(now):
            if isinstance(action, Cancel):
                q = queues[action.worker]
                if action.task in list(q)[1:]:
                    q.remove(action.task)
                continue
            q = queues[action.worker]
            q.append(action.task)
            if len(q) == 1:
                finish[action.worker] = now + durations[action.task.point_id]
        busy = [w for w in s.workers if queues[w]]
        w = min(busy, key=lambda w: finish[w])
        now = finish[w]
        task = queues[w].popleft()
        if s.complete(w, task.task_id, durations[task.point_id], now):
            assert task.task_id not in results
            results[task.task_id] = w
        if queues[w]:
            finish[w] = now + durations[queues[w][0].point_id]
    return now, results


@pytest.mark.parametrize("n_workers", [1, 2, 5, 16])
def test_simulated_run_completes_every_task_once_near_the_lower_bound(n_workers):
    rng = random.Random(n_workers)
    durations = {p: rng.uniform(0.2, 2.0) for p in range(60)}
    makespan, results = simulate(n_workers, durations, n_folds=5)
    assert len(results) == 300
    total = 5 * sum(durations.values())
    bound = max(total / n_workers, max(durations.values()))
    assert makespan <= 1.03 * bound  # LPT plus stealing: within 3% of the optimum


def test_scheduler_needs_workers():
    with pytest.raises(ValueError):
        Scheduler([])


def test_a_straggler_whose_copy_already_won_is_not_copied_again():
    s = Scheduler([1, 2, 3], prefetch=1, straggler_factor=3.0, straggler_min_seconds=1.0)
    s.add(tasks(3, 1))
    a = runs(s.dispatch(0.0))
    assert s.complete(2, a[1].task.task_id, 1.0, 1.0) and s.complete(3, a[2].task.task_id, 1.0, 1.0)
    (copy,) = runs(s.dispatch(3.5))  # worker 1's task is a straggler: worker 2 gets a copy
    assert copy == Run(2, a[0].task)
    assert s.complete(2, a[0].task.task_id, 1.0, 4.5)  # the copy wins; worker 1 still runs the original
    assert s.dispatch(20.0) == []  # idle workers 2 and 3 get no copy of a finished task


def test_many_idle_workers_steal_in_worker_order_from_the_longest_queue():
    s = Scheduler(list(range(1, 9)), prefetch=4)
    s.add(tasks(9, 1))
    actions = s.dispatch(0.0)  # 1 and 2 get 4 tasks, 3 the last one; idle 4..8 then steal
    assert [(type(a).__name__, a.worker) for a in actions] == [
        *[("Run", 1)] * 4, *[("Run", 2)] * 4, ("Run", 3),
        ("Cancel", 1), ("Run", 4), ("Cancel", 2), ("Run", 5), ("Cancel", 1), ("Run", 6),
        ("Cancel", 2), ("Run", 7), ("Cancel", 1), ("Run", 8)]
    assert s.busy_workers() == 8 and s.dispatch(0.0) == []


def test_the_straggler_copied_is_the_one_whose_deadline_came_first():
    # point 0 takes ~1 s a task, point 1 ~2 s; one more fold of each then hangs
    s = Scheduler([1, 2, 3], prefetch=1, straggler_factor=3.0, straggler_min_seconds=1.0)
    s.add([Task(0, 0, 0), Task(1, 1, 0), Task(2, 0, 1), Task(3, 1, 1)])
    first = {a.task.task_id: a.worker for a in runs(s.dispatch(0.0))}  # tasks 0, 1, 2
    assert s.complete(first[0], 0, 1.0, 1.0)
    assert s.complete(first[1], 1, 2.0, 2.0)
    (last,) = runs(s.dispatch(2.0))  # task 3 (point 1, expected 2 s) starts at 2.0 s on worker 1's or 2's place
    idle = ({1, 2, 3} - {first[2], last.worker}).pop()
    # task 2 (point 0, from 0 s, expected 1 s) is a straggler from 3 s; task 3 from 2 + 6 = 8 s. At 9 s
    # task 3's ratio (3.5) is below task 2's (9): both orders agree, and the first deadline wins.
    (copy,) = runs(s.dispatch(9.0))
    assert copy == Run(idle, Task(2, 0, 1))


def test_of_stragglers_never_timed_the_longest_running_is_copied_first():
    s = Scheduler([1, 2, 3, 4], prefetch=1, straggler_factor=3.0, straggler_min_seconds=1.0)
    s.add(tasks(4, 1))
    a = runs(s.dispatch(0.0))  # one task each, all started at 0 s
    assert s.complete(4, a[3].task.task_id, 1.0, 1.0)
    assert s.complete(2, a[1].task.task_id, 1.0, 1.0)
    s.add([Task(10, 10, 0)])
    (b,) = runs(s.dispatch(1.0))  # a new point starts at 1 s on the first idle worker (2)
    assert b.worker == 2
    # at 10 s the tasks of workers 1 and 3 (from 0 s) and 2 (from 1 s) are all over 3x the
    # longest task: the copies go to the longest running first, the lowest worker among equals
    (c1,) = runs(s.dispatch(10.0))
    assert c1 == Run(4, a[0].task)
    assert s.complete(4, a[0].task.task_id, 1.0, 11.0)  # the copy wins; worker 4 is idle again
    (c2,) = runs(s.dispatch(11.0))
    assert c2 == Run(4, a[2].task)
