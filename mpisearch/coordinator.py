"""Rank 0's loop: ask the strategy, feed the scheduler, talk to workers, collect results."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .results import ResultTable
from .scheduler import Cancel, Run, Scheduler, Task
from .strategies import PointResult, Strategy
from .transport._base import Bye, CancelTask, Result, RunTask, Stop, Transport

# How long one poll of the transport may wait before the loop re-checks the
# scheduler (stragglers) and the time budget. Messages end the wait at once.
POLL_SECONDS = 0.05

# Points asked from the strategy per worker at each top-up (see _batch_points).
BATCH_POINTS_PER_WORKER = 2

Clock = Callable[[], float]


@dataclass
class RunStats:
    """What rank 0 measured, for run.json."""

    search_s: float = 0.0
    n_tasks: int = 0
    n_duplicates: int = 0
    n_stolen: int = 0
    workers: dict[int, dict[str, Any]] = field(default_factory=dict)
    timed_out: bool = False


class Coordinator:
    def __init__(self, strategy: Strategy, table: ResultTable, transport: Transport,
                 workers: Sequence[int], rank_metric: str, max_time: float | None = None,
                 clock: Clock = time.monotonic,
                 on_result: Callable[[int, int, Any, Any], None] | None = None) -> None:
        self.strategy = strategy
        self.table = table
        self.transport = transport
        self.workers = list(workers)
        self.rank_metric = rank_metric
        self.max_time = max_time
        self.clock = clock
        self.on_result = on_result
        self.scheduler = Scheduler(self.workers)
        self.stats = RunStats()
        self._seen: dict[int, set[int]] = {w: set() for w in self.workers}
        self._next_task = 0
        self._hosts: dict[int, str] = {}

    def run(self) -> RunStats:
        start = self.clock()
        deadline = start + self.max_time if self.max_time else math.inf
        try:
            while not self._finished():
                if self.clock() >= deadline:
                    self._stop_early()
                self._top_up()
                self._dispatch()
                got = self.transport.poll(POLL_SECONDS)
                if got is not None:
                    self._handle(*got)
        finally:
            self.stats.search_s = self.clock() - start
            self._shutdown()
        return self.stats

    def _finished(self) -> bool:
        return self.scheduler.n_open == 0 and (self.strategy.finished or self.stats.timed_out)

    def _stop_early(self) -> None:
        """Time budget spent: hand out nothing new, let running tasks finish."""
        if not self.stats.timed_out:
            self.stats.timed_out = True
            self.scheduler.drop_queued()

    def _top_up(self) -> None:
        if self.stats.timed_out or self.strategy.finished:
            return
        if self.scheduler.n_queued >= len(self.workers) * self.scheduler.prefetch:
            return
        points = self.strategy.ask(self._batch_points())
        ids = [self.table.add_point(p) for p in points]
        self.scheduler.add(self._tasks(ids))

    def _batch_points(self) -> int:
        """Points per ask: enough to refill every prefetch queue twice, and at least
        two per worker. Batches are split fold-major (fold 0 of each point first,
        which measures their cost for longest-first ordering); small batches keep
        points finishing steadily, so a time limit leaves few half-done points."""
        refill = 2 * len(self.workers) * self.scheduler.prefetch
        return max(BATCH_POINTS_PER_WORKER * len(self.workers), math.ceil(refill / self.table.n_folds))

    def _tasks(self, point_ids: list[int]) -> list[Task]:
        tasks = []
        for fold in range(self.table.n_folds):  # fold-major: fold 0 of every point first
            for p in point_ids:
                tasks.append(Task(self._next_task, p, fold))
                self._next_task += 1
        return tasks

    def _dispatch(self) -> None:
        for action in self.scheduler.dispatch(self.clock()):
            task = action.task
            if isinstance(action, Cancel):
                self.transport.send(CancelTask(task.task_id), action.worker)
                self.stats.n_stolen += 1
                continue
            assert isinstance(action, Run)
            seen = self._seen[action.worker]
            params = None if task.point_id in seen else self.table.points[task.point_id]
            seen.add(task.point_id)
            self.transport.send(RunTask(task.task_id, task.point_id, task.fold, params), action.worker)

    def _handle(self, source: int, msg: Any) -> None:
        if isinstance(msg, Bye):
            self.stats.workers[source] = msg.stats
            return
        if not isinstance(msg, Result):
            raise TypeError(f"coordinator got an unexpected message {msg!r} from rank {source}")
        r = msg.result
        first = self.scheduler.complete(source, msg.task_id, r.fit_time + r.score_time, self.clock())
        if not first:
            self.stats.n_duplicates += 1
            return
        self.stats.n_tasks += 1
        if self.table.add(msg.point_id, msg.fold, r, where=f" on rank {source}"):
            score = self.table.mean_score(msg.point_id, self.rank_metric)
            self.strategy.tell([PointResult(msg.point_id, self.table.points[msg.point_id], score)])
        if self.on_result is not None:
            self.on_result(msg.point_id, msg.fold, r, self.table.points[msg.point_id])

    def _shutdown(self) -> None:
        """Tell every worker to stop and wait for each one's Bye (late results are dropped)."""
        for w in self.workers:
            self.transport.send(Stop(), w)
        while len(self.stats.workers) < len(self.workers):
            got = self.transport.poll(POLL_SECONDS * 20)
            if got is not None and isinstance(got[1], Bye):
                self.stats.workers[got[0]] = got[1].stats
