"""Rank 0's loop: ask the strategy, feed the scheduler, talk to workers, collect results."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import SearchFailedError
from .evaluate import TaskResult
from .progress import Progress, Snapshot
from .results import ResultTable
from .scheduler import Cancel, Run, Scheduler, Task
from .space import Params, point_key
from .strategies import PointResult, Strategy
from .transport._base import Bye, CancelTask, Result, RunTask, Stop, Transport

# How long one poll of the transport may wait before the loop re-checks the
# scheduler (stragglers) and the time budget. Messages end the wait at once.
POLL_SECONDS = 0.05

# Points asked from the strategy per worker at each top-up (see _batch_points).
BATCH_POINTS_PER_WORKER = 2

# Seconds running tasks may take to finish after a stop signal (search.grace).
DEFAULT_GRACE_SECONDS = 60.0

Clock = Callable[[], float]


class JournalLike(Protocol):
    """Where finished tasks are recorded (see mpisearch.output.Journal)."""

    def write(self, point_id: int, fold: int, result: TaskResult, params: Params) -> None: ...

    def flush(self) -> None: ...


@dataclass
class RunStats:
    """What rank 0 measured, for run.json."""

    search_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the coordinator's process during the search
    n_tasks: int = 0
    n_resumed: int = 0  # tasks taken from the journal of an earlier run
    n_duplicates: int = 0
    n_stolen: int = 0
    workers: dict[int, dict[str, Any]] = field(default_factory=dict)
    stopped: str | None = None  # why the search ended early: "max_time" or "signal"
    abandoned: bool = False  # grace period over: running tasks were not waited for
    warnings: Counter[str] = field(default_factory=Counter)  # "Category: message" -> tasks

    @property
    def timed_out(self) -> bool:
        return self.stopped == "max_time"


class StopRequest:
    """Set from a signal handler (or anywhere) to end a search gracefully."""

    def __init__(self) -> None:
        self.count = 0

    def request(self) -> None:
        self.count += 1

    @property
    def requested(self) -> bool:
        return self.count > 0


class Coordinator:
    def __init__(self, strategy: Strategy, table: ResultTable, transport: Transport,
                 workers: Sequence[int], rank_metric: str, max_time: float | None = None,
                 clock: Clock = time.monotonic, journal: JournalLike | None = None,
                 prior: Mapping[tuple[str, int], TaskResult] | None = None,
                 stop: StopRequest | None = None, grace: float = DEFAULT_GRACE_SECONDS,
                 progress: Progress | None = None) -> None:
        self.strategy = strategy
        self.table = table
        self.transport = transport
        self.workers = list(workers)
        self.rank_metric = rank_metric
        self.max_time = max_time
        self.clock = clock
        self.journal = journal
        self.prior = prior or {}
        self.stop = stop or StopRequest()
        self.grace = grace
        self.progress = progress
        self._best: tuple[float, int, Params] | None = None
        self._start = 0.0
        self.scheduler = Scheduler(self.workers)
        strategy.bind(len(self.workers))
        self.stats = RunStats()
        self._seen: dict[int, set[int]] = {w: set() for w in self.workers}
        self._next_task = 0
        self._grace_end = math.inf
        self._asked_nothing = False  # the last ask returned no point

    def run(self) -> RunStats:
        start, cpu_start = self.clock(), time.process_time()
        self._start = start
        deadline = start + self.max_time if self.max_time else math.inf
        try:
            while not self._finished():
                self._check_stop(deadline)
                if self.stats.abandoned:
                    break
                self._top_up()
                self._check_stalled()
                self._dispatch()
                got = self.transport.poll(POLL_SECONDS)
                if got is not None:
                    self._handle(*got)
                    if self.journal is not None:
                        self.journal.flush()  # on disk before any more work is handed out
        finally:
            self.stats.search_s = self.clock() - start
            self.stats.cpu_s = time.process_time() - cpu_start
            if self.progress is not None:
                self.progress.close(self.snapshot())
            if not self.stats.abandoned:
                self._shutdown()
        return self.stats

    def _finished(self) -> bool:
        return self.scheduler.n_open == 0 and (self.strategy.finished or self.stats.stopped is not None)

    def _check_stop(self, deadline: float) -> None:
        """Time budget spent or stop requested: hand out nothing new, let running tasks
        finish (for at most the grace period after a signal; a second signal: at once)."""
        now = self.clock()
        if self.stats.stopped is None and (now >= deadline or self.stop.requested):
            self.stats.stopped = "signal" if self.stop.requested else "max_time"
            self.scheduler.drop_queued()
            if self.stop.requested:
                self._grace_end = now + self.grace
        if self.stop.count > 1 or now >= self._grace_end:
            self.stats.abandoned = self.scheduler.n_open > 0

    def _check_stalled(self) -> None:
        if (self._asked_nothing and self.scheduler.n_open == 0 and not self.strategy.finished
                and self.stats.stopped is None):
            raise SearchFailedError(
                f"the {type(self.strategy).__name__} proposed no point while none is running: "
                "the search cannot go on (a bug in the strategy)"
            )

    def _top_up(self) -> None:
        if self.stats.stopped or self.strategy.finished:
            return
        if self.scheduler.n_queued >= len(self.workers) * self.scheduler.prefetch:
            return
        points = self.strategy.ask(self._batch_points())
        self._asked_nothing = not points
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
        """Tasks of new points, fold-major; folds found in the journal are not rerun."""
        tasks = []
        keys = {p: point_key(self.table.points[p]) for p in point_ids} if self.prior else {}
        for fold in range(self.table.n_folds):  # fold-major: fold 0 of every point first
            for p in point_ids:
                done = self.prior.get((keys[p], fold)) if self.prior else None
                if done is not None:
                    self.stats.n_resumed += 1
                    self._record(p, fold, done)
                    continue
                tasks.append(Task(self._next_task, p, fold))
                self._next_task += 1
        return tasks

    def _dispatch(self) -> None:
        """Send what the scheduler decided: one message per worker (a list when several)."""
        actions = self.scheduler.dispatch(self.clock())
        if not actions:
            return
        outgoing: dict[int, list[Any]] = {}
        for action in actions:
            outgoing.setdefault(action.worker, []).append(self._message(action))
        for worker, msgs in outgoing.items():
            self.transport.send(msgs if len(msgs) > 1 else msgs[0], worker)

    def _message(self, action: Run | Cancel) -> Any:
        task = action.task
        if isinstance(action, Cancel):
            self.stats.n_stolen += 1
            return CancelTask(task.task_id)
        seen = self._seen[action.worker]
        params = None if task.point_id in seen else self.table.points[task.point_id]
        seen.add(task.point_id)
        return RunTask(task.task_id, task.point_id, task.fold, params)

    def _handle(self, source: int, msg: Any) -> None:
        if isinstance(msg, list):
            for m in msg:
                self._handle(source, m)
            return
        if isinstance(msg, Bye):
            self.stats.workers[source] = msg.stats
            return
        if not isinstance(msg, Result):
            raise TypeError(f"coordinator got an unexpected message {msg!r} from rank {source}")
        r = msg.result
        r.rank = source
        if not self.scheduler.complete(source, msg.task_id, r.fit_time + r.score_time, self.clock()):
            self.stats.n_duplicates += 1
            return
        self.stats.n_tasks += 1
        if self.journal is not None:  # journal first: flushed before anything more is handed out
            self.journal.write(msg.point_id, msg.fold, r, self.table.points[msg.point_id])
        if r.warnings:  # Counter.update costs ~2 us even when there is nothing to count
            self.stats.warnings.update(r.warnings)
        self._record(msg.point_id, msg.fold, r, where=f" on {r.origin or f'rank {source}'}")

    def _record(self, point_id: int, fold: int, result: TaskResult, where: str = "") -> None:
        if self.table.add(point_id, fold, result, where=where):
            params = self.table.points[point_id]
            score = self.table.mean_score(point_id, self.rank_metric)
            if not math.isnan(score) and (self._best is None or (score, -point_id) > self._best[:2]):
                self._best = (score, -point_id, params)  # ties: the first point, as cv_results_ ranks
            self.strategy.tell([PointResult(point_id, params, score)])
            if self.progress is not None:
                self.progress.point_done(f"point {point_id} {params}: mean {self.rank_metric} {score:.5g}")
        if self.progress is not None:
            self.progress.update(self.snapshot())

    def snapshot(self) -> Snapshot:
        """Where the search stands, for the progress display."""
        total = self.strategy.total
        best = self._best
        return Snapshot(done=self.stats.n_tasks + self.stats.n_resumed,
                        total=None if total is None else total * self.table.n_folds,
                        best_score=None if best is None else best[0], best_params=None if best is None else best[2],
                        busy=self.scheduler.busy_workers(), workers=len(self.workers),
                        elapsed=self.clock() - self._start)

    def _shutdown(self) -> None:
        """Tell every worker to stop and wait for each one's Bye (late results are dropped)."""
        for w in self.workers:
            self.transport.send(Stop(), w)
        while len(self.stats.workers) < len(self.workers):
            got = self.transport.poll(POLL_SECONDS * 20)
            if got is not None and isinstance(got[1], Bye):
                self.stats.workers[got[0]] = got[1].stats
