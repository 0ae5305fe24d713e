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
from .liveness import Heartbeat, Watch, on_lost
from .progress import Progress, Snapshot
from .racing import Racer
from .results import ResultTable
from .scheduler import Cancel, Run, Scheduler, Task
from .space import Params
from .strategies import PointResult, Strategy
from .strategies._base import Proposal, as_proposal
from .transport._base import Bye, CancelTask, Result, RunTask, Stop, Transport

STOPPED_FOLD = -1  # the journal's marker of a point stopped by fold racing (see mpisearch.output)

# How long one poll of the transport may wait before the loop re-checks the
# scheduler (stragglers) and the time budget. A message ends the wait as soon as
# it is noticed (within the poll's longest sleep, see IDLE_SLEEP_FRACTION).
POLL_SECONDS = 0.05

# How late rank 0 may notice a result, as a fraction of the mean task duration,
# between these bounds (seconds). A worker holds a queued task behind its running
# one (prefetch), so a refill that comes within a small part of a task's duration
# costs it nothing, while every wake-up of rank 0 costs ~30 us of CPU taken from
# the workers: with 1 ms sleeps rank 0 used 1.1 s of CPU in a 35 s search of 50
# RandomForest fits (1.6% of the workers' CPU on 2 cores). The cap bounds how late
# the last result of a search is seen (Byes are awaited with the 1 ms default).
IDLE_SLEEP_FRACTION = 0.05
IDLE_SLEEP_MIN = 0.001
IDLE_SLEEP_MAX = 0.02

# Points asked from the strategy per worker at each top-up (see _batch_points).
BATCH_POINTS_PER_WORKER = 2
# A search of fixed points with at most this many tasks per worker is queued whole
# at the start: fold 0 of every point first, then the rest longest-first. In small
# batches the last points' costs are learnt only at the end, and with few tasks per
# worker one long task started late decides the makespan (50 RandomForest fits on
# 2 workers: the two largest points came last and a worker idled 1.1 s at the end).
# With more tasks per worker the tail is a small part of the run and steady batches
# are worth more (points finish as the search goes: progress, partial results).
# The price for small searches: a stop signal in the first 1/folds of the run leaves
# no complete point in the partial results (the journal keeps every finished task
# for --resume).
UPFRONT_TASKS_PER_WORKER = 32

# Seconds running tasks may take to finish after a stop signal (search.grace).
DEFAULT_GRACE_SECONDS = 60.0

Clock = Callable[[], float]


class JournalLike(Protocol):
    """Where finished tasks are recorded (see mpisearch.output.Journal)."""

    def write(self, point_id: int, fold: int, result: TaskResult, params: Params,
              n_resources: int | None = None) -> None: ...

    def stop(self, point_id: int, params: Params, n_resources: int | None = None) -> None: ...

    def flush(self) -> None: ...


@dataclass
class RunStats:
    """What rank 0 measured, for run.json."""

    search_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the coordinator's process during the search
    n_tasks: int = 0
    n_resumed: int = 0  # tasks taken from the journal of an earlier run
    n_duplicates: int = 0
    duplicate_s: float = 0.0  # fit + score seconds of duplicate results (straggler copies that lost)
    n_stolen: int = 0
    n_raced: int = 0  # points stopped by fold racing
    n_raced_tasks: int = 0  # their folds that were never scored
    n_late: int = 0  # results that came after their point was stopped (dropped)
    late_s: float = 0.0  # fit + score seconds of those results
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
                 progress: Progress | None = None, racer: Racer | None = None) -> None:
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
        self.racer = racer
        table.racing = racer is not None
        self._proposals: dict[int, Proposal] = {}
        self._racing: dict[Any, set[int]] = {}  # group -> points with some folds done, not finished
        self._cancels: list[Cancel] = []  # fold racing's cancellations, sent with the next dispatch
        self._best: tuple[float, int, Params] | None = None
        self._start = 0.0
        self.scheduler = Scheduler(self.workers, one_per_point=racer is not None)
        strategy.bind(len(self.workers))
        self.stats = RunStats()
        self._seen: dict[int, set[int]] = {w: set() for w in self.workers}
        self._next_task = 0
        self._grace_end = math.inf
        self._asked_nothing = False  # the last ask returned no point
        self.watch = Watch(self.workers, clock(), on_lost(transport))  # ends the job if a worker goes silent

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
                got = self.transport.poll(POLL_SECONDS, self._patience())
                if got is None:
                    self.watch.check(self.clock(), self._doing)
                else:
                    self.watch.heard(got[0], self.clock())
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

    def _patience(self) -> float:
        """Longest sleep while waiting for results (see IDLE_SLEEP_FRACTION)."""
        mean = self.scheduler.mean_duration()
        return IDLE_SLEEP_MIN if mean is None else min(max(IDLE_SLEEP_FRACTION * mean, IDLE_SLEEP_MIN), IDLE_SLEEP_MAX)

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
        if self.scheduler.n_ready() >= len(self.workers) * self.scheduler.prefetch:
            return
        proposals = [as_proposal(p) for p in self.strategy.ask(self._batch_points())]
        self._asked_nothing = not proposals
        ids = []
        for proposal in proposals:
            ids.append(self.table.add_point(proposal.params, proposal.columns, proposal.position))
            self._proposals[ids[-1]] = proposal
        self.scheduler.add(self._tasks(ids))

    def _batch_points(self) -> int:
        """Points per ask: all of a small search of fixed points (see
        UPFRONT_TASKS_PER_WORKER), else enough to refill every prefetch queue twice,
        and at least two per worker. Batches are split fold-major (fold 0 of each point first,
        which measures their cost for longest-first ordering); small batches keep
        points finishing steadily, so a time limit leaves few half-done points."""
        total = self.strategy.total
        if (self.strategy.fixed_points and total is not None and not self.max_time and self.racer is None
                and total * self.table.n_folds <= UPFRONT_TASKS_PER_WORKER * len(self.workers)):
            return total
        refill = 2 * len(self.workers) * self.scheduler.prefetch
        return max(BATCH_POINTS_PER_WORKER * len(self.workers), math.ceil(refill / self.table.n_folds))

    def _tasks(self, point_ids: list[int]) -> list[Task]:
        """Tasks of new points, fold-major; folds found in the journal are not rerun."""
        for p in point_ids if self.prior else ():
            key = self.table.key(p)
            replayed = []
            for fold in range(self.table.n_folds):
                done = self.prior.get((key, fold))
                if done is not None:
                    self.stats.n_resumed += 1
                    self._record(p, fold, done, race=False)
                    replayed.append(fold)
            if self.racer is None or not replayed:
                continue
            if (key, STOPPED_FOLD) in self.prior and not self.table.is_complete(p):
                self._stop_point(p)  # where the earlier run stopped it
            else:  # race on all the folds found, not fold by fold
                self._race(p, replayed, self.table.is_complete(p))
        tasks = []
        for fold in range(self.table.n_folds):  # fold-major: fold 0 of every point first
            for p in point_ids:
                if (p, fold) not in self.table.tasks and not self.table.is_done(p):
                    tasks.append(Task(self._next_task, p, fold))
                    self._next_task += 1
        return tasks

    def _dispatch(self) -> None:
        """Send what the scheduler decided: one message per worker (a list when several)."""
        actions: list[Run | Cancel] = [*self._cancels, *self.scheduler.dispatch(self.clock())]
        self._cancels = []
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
            if task.point_id not in self.table.stopped:
                self.stats.n_stolen += 1
            return CancelTask(task.task_id)
        seen = self._seen[action.worker]
        if task.point_id in seen:
            return RunTask(task.task_id, task.point_id, task.fold)
        seen.add(task.point_id)
        return RunTask(task.task_id, task.point_id, task.fold, self.table.points[task.point_id],
                       self._proposals[task.point_id].subsample)

    def _handle(self, source: int, msg: Any) -> None:
        if isinstance(msg, list):
            for m in msg:
                self._handle(source, m)
            return
        if isinstance(msg, Bye):
            self.stats.workers[source] = msg.stats
            return
        if not isinstance(msg, Result):
            if isinstance(msg, Heartbeat):
                return
            raise TypeError(f"coordinator got an unexpected message {msg!r} from rank {source}")
        r = msg.result
        r.rank = source
        if not self.scheduler.complete(source, msg.task_id, r.fit_time + r.score_time, self.clock()):
            if msg.point_id in self.table.stopped:
                self.stats.n_late += 1
                self.stats.late_s += r.fit_time + r.score_time
            else:
                self.stats.n_duplicates += 1
                self.stats.duplicate_s += r.fit_time + r.score_time
            return
        self.stats.n_tasks += 1
        if self.journal is not None:  # journal first: flushed before anything more is handed out
            self.journal.write(msg.point_id, msg.fold, r, self.table.points[msg.point_id],
                               self.table.n_resources(msg.point_id))
        if r.warnings:  # Counter.update costs ~2 us even when there is nothing to count
            self.stats.warnings.update(r.warnings)
        self._record(msg.point_id, msg.fold, r, where=f" on {r.origin or f'rank {source}'}")

    def _record(self, point_id: int, fold: int, result: TaskResult, where: str = "", race: bool = True) -> None:
        complete = self.table.add(point_id, fold, result, where=where)
        if complete:
            params = self.table.points[point_id]
            score = self.table.mean_score(point_id, self.rank_metric)
            row = self.table.positions.get(point_id, point_id)
            if not math.isnan(score) and (self._best is None or (score, -row) > self._best[:2]):
                self._best = (score, -row, params)  # ties: the first row, as cv_results_ ranks
            self.strategy.tell([PointResult(point_id, params, score, self._proposals[point_id].tag)])
            if self.progress is not None:
                self.progress.point_done(f"point {point_id} {params}: mean {self.rank_metric} {score:.5g}")
        if race and self.racer is not None:
            self._race(point_id, [fold], complete)
        if self.progress is not None:
            self.progress.update(self.snapshot())

    # -- fold racing ---------------------------------------------------------------------
    def _race(self, point_id: int, folds: list[int], complete: bool) -> None:
        """After fold results: stop this point, or, if it became its group's best,
        every unfinished point of the group that can no longer beat it."""
        assert self.racer is not None
        if point_id in self.table.stopped:
            return
        group = self._proposals[point_id].group
        seen = self.table.fold_scores(point_id, self.rank_metric)
        ran = self.table.ran_folds(point_id)
        for fold in folds:
            self.racer.observe(group, self.table.score(point_id, fold, self.rank_metric))
        racing = self._racing.setdefault(group, set())
        if not complete:
            racing.add(point_id)
            if self.racer.should_stop(group, seen, ran):
                self._stop_point(point_id)
            return
        racing.discard(point_id)
        if self.racer.finished(group, seen, self.table.mean_score(point_id, self.rank_metric)):
            for p in sorted(racing):
                if self.racer.should_stop(group, self.table.fold_scores(p, self.rank_metric),
                                         self.table.ran_folds(p)):
                    self._stop_point(p)

    def _stop_point(self, point_id: int) -> None:
        """Fold racing: the point's other folds are dropped or cancelled on their workers."""
        n_seen = self.table.stop(point_id)
        if self.journal is not None:
            self.journal.stop(point_id, self.table.points[point_id], self.table.n_resources(point_id))
        self._racing[self._proposals[point_id].group].discard(point_id)
        self.stats.n_raced += 1
        self.stats.n_raced_tasks += self.table.n_folds - n_seen
        self._cancels.extend(self.scheduler.cancel_point(point_id, self.clock()))
        params = self.table.points[point_id]
        score = self.table.mean_score(point_id, self.rank_metric)
        self.strategy.tell([PointResult(point_id, params, score, self._proposals[point_id].tag, stopped=True)])
        if self.progress is not None:
            self.progress.point_done(f"point {point_id} {params}: stopped after {n_seen} folds "
                                     f"(mean {self.rank_metric} {score:.5g} so far)")

    def _doing(self, rank: int) -> str:
        """What a worker was doing, in words (for the lost-rank error)."""
        running = self.scheduler.running(rank)
        if running is None:
            return "it had no task"
        task, since = running
        return (f"it was running fold {task.fold} of point {task.point_id} {self.table.points[task.point_id]}, "
                f"started {self.clock() - since:.0f} s ago")

    def snapshot(self) -> Snapshot:
        """Where the search stands, for the progress display."""
        total = self.strategy.total
        best = self._best
        return Snapshot(done=self.stats.n_tasks + self.stats.n_resumed,
                        total=None if total is None else total * self.table.n_folds - self.stats.n_raced_tasks,
                        best_score=None if best is None else best[0], best_params=None if best is None else best[2],
                        busy=self.scheduler.busy_workers(), workers=len(self.workers),
                        elapsed=self.clock() - self._start)

    def _shutdown(self) -> None:
        """Tell every worker to stop and wait for each one's Bye (late results are dropped)."""
        for w in self.workers:
            self.transport.send(Stop(), w)
        while len(self.stats.workers) < len(self.workers):
            got = self.transport.poll(POLL_SECONDS * 20)
            if got is None:
                self.watch.check(self.clock(), lambda rank: "the search was over and it had been told to stop")
                continue
            self.watch.heard(got[0], self.clock())
            if isinstance(got[1], Bye):
                self.stats.workers[got[0]] = got[1].stats
