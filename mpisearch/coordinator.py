"""Rank 0's loop: ask the strategy, feed the scheduler, talk to workers, collect results.

The loop only moves work and results; what else happens is decided by policies
(mpisearch.policies: resume, fold racing) through named hooks, and by the
scheduler (mpisearch.scheduler: who runs what).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .batching import (
    BatchPolicy,
    LoadMeter,
    batch_size,
    fold_major,
    guided_size,
    piece_points,
    points_per_ask,
    served_later,
)
from .control import RunControl
from .errors import SearchFailedError
from .hotpath import freeze_kept
from .liveness import Watch, on_lost
from .messages import BundleResult, Bye, Heartbeat, MemberResult, Result, Stop
from .outbox import Outbox
from .policies import Decision, Policy, RacingPolicy, ReplayPolicy
from .progress import Snapshot
from .racing import Racer
from .results import ResultTable
from .reuse.bundles import Bundle, BundleKind, Bundler, NewPoint, batched
from .scheduler import Cancel, Run, Scheduler, Task
from .space import Params
from .spec import DEFAULT_GRACE_SECONDS
from .stats import RunStats
from .strategies import PointResult, Proposal, Strategy
from .transport import Transport
from .types import StopReason, Subsample, TaskResult

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

# Messages rank 0 handles in one pass of its loop when they are waiting already
# (results of many workers at once), before one journal flush and one dispatch
# serve them all. Measured (bench_scale_sim.py, 20 ms tasks, 1,024 workers, on a
# loaded machine): 54-59 us of rank 0's CPU per task against 65-72 us with one
# message per pass. The cap bounds how long a refill waits: 64 results take rank 0
# about 3 ms, well within what a worker's prefetch queue holds.
DRAIN_MESSAGES = 64

# How long one pass may go on gathering results while every worker keeps a task, as a
# fraction of the mean task duration (at most GATHER_MAX seconds): the lateness
# IDLE_SLEEP_FRACTION allows already, hidden by each worker's queued task. The gathered
# results are then handled back to back. With 0.2-2 s tasks a pass otherwise served 1.5
# results, and its fixed part (journal flush, dispatch, the loop's checks) and caches gone
# cold between results cost about as much as the results themselves (bench_scale_sim.py,
# 1,024 workers, quiet machine: 50 -> 37 us per task; 20 ms tasks: 32 -> 27). Windows
# under GATHER_MIN seconds (tasks under 4 ms) would be all spinning in the transport's
# back-off (SPIN_SECONDS): only what is waiting already is taken then.
GATHER_FRACTION = IDLE_SLEEP_FRACTION
GATHER_MIN = 0.0002
# The longest gathering window. With the 20 ms of IDLE_SLEEP_MAX, a pass at 64 workers x
# 0.2-2 s tasks (a result every ~17 ms) gathered one or two results; the wait is safe at
# any length the queued task hides (GATHER_FRACTION of a task, the gathering stops as soon
# as a worker would run dry), so only the fraction bounds it now, up to a tenth of a second
# (how late a progress line or a stop signal may be seen). Measured (bench_scale_sim.py,
# 0.2-2 s tasks, 64 workers, quiet machine): 32.4-33.0 -> 29.2-29.7 us per task.
GATHER_MAX = 0.1
# A pass that gathers results within its window takes up to that window's worth of them, as
# many as rank 0 handles in it at about this cost each, rather than DRAIN_MESSAGES (which
# still bounds a pass once it may not wait, a worker having run dry): with
# 0.2-2 s tasks at 1,024-4,096 workers, a 20-50 ms window holds hundreds of results, and
# passes cut at 64 paid their fixed part (flush, dispatch, checks) several times per window.
# Measured (bench_scale_sim.py, 0.2-2 s tasks, quiet machine): 28.5 / 33.3 us per task at
# 1,024 / 4,096 workers with the cap at 64, 26.0 / 29.4 with it at 1,024.
DRAIN_RESULT_SECONDS = 5e-5

Clock = Callable[[], float]

# What is known of a point proposed as a plain dict (no tag, columns, group, subsample or
# position): no Proposal is made or kept for it (0.53 us and 137 bytes each; a grid proposes
# every point so: at 16,384 workers 131k of them).
_PLAIN = Proposal({})


@dataclass(frozen=True)
class Limits:
    """When a search stops handing out work, and how long running tasks may then take."""

    max_time: float | None = None  # seconds of search; None: no limit
    grace: float = DEFAULT_GRACE_SECONDS  # after a stop signal


@dataclass(frozen=True)
class Best:
    """The best complete point so far (ties: the first row, as cv_results_ ranks)."""

    score: float
    row: int
    params: dict[str, Any]


class Coordinator:
    def __init__(self, strategy: Strategy, table: ResultTable, rank_metric: str, transport: Transport,
                 workers: Sequence[int], *, control: RunControl | None = None, limits: Limits = Limits(),
                 racer: Racer | None = None, clock: Clock = time.monotonic, bundler: Bundler | None = None,
                 batching: BatchPolicy | None = None, cpu: Clock = time.process_time) -> None:
        self.strategy, self.table, self.rank_metric = strategy, table, rank_metric
        # a strategy with the default tell learns nothing (grid, random): its PointResults are not built
        self._learns = type(strategy).tell is not Strategy.tell
        self.transport = transport
        self.workers = list(workers)
        self.control = control or RunControl()
        self.limits = limits
        self.clock = clock
        self.racing = racer is not None
        self.scheduler = Scheduler(self.workers, one_per_point=self.racing)
        self.policies = self._policies(racer)
        self.stats = RunStats()
        # bundles (mpisearch.reuse): not with fold racing, which decides fold by fold and point by point
        self.bundler = bundler if bundler is not None and bundler.may_group and not self.racing else None
        # batches of short tasks when rank 0 would be the bottleneck (mpisearch.batching); not with racing
        self.batching = batching if not self.racing else None
        self._meter = LoadMeter(cpu)  # rank 0's CPU per task, for batching
        self._bundles: dict[int, Bundle] = {}  # open bundle tasks by task id
        self.outbox = Outbox(transport, self.workers, self._point, self._bundles.get)
        self._proposals: dict[int, Proposal] = {}  # points proposed as a Proposal (others: _PLAIN)
        self._cancels: list[Cancel] = []  # fold racing's cancellations, sent with the next dispatch
        self._next_task = 0
        self._best: Best | None = None
        self._start = 0.0
        self._grace_end = math.inf
        self._asked_nothing = False  # the last ask returned no point
        self._owed = 0  # points of the first chunk still to ask, asked in pieces (see batching.START_PIECE_POINTS)
        self._started_up = False  # the first ask was made
        self._sent_any = False  # a first task went out (see _dispatch)
        # each finished point is written out (verbosity 2): its line is formatted only then
        self._shows_points = self.control.progress is not None and self.control.progress.verbosity >= 2
        self.watch = Watch(self.workers, clock(), on_lost(transport))  # ends the job if a worker goes silent

    def _policies(self, racer: Racer | None) -> list[Policy]:
        policies: list[Policy] = []
        if self.control.prior:
            policies.append(ReplayPolicy(self.control.prior, self.table, stops=self.racing))
        if racer is not None:
            policies.append(RacingPolicy(racer, self.table, self.rank_metric, lambda p: self._proposal(p).group))
        return policies

    # -- the loop -------------------------------------------------------------------
    def run(self) -> RunStats:
        self._start, cpu_start = self.clock(), time.process_time()
        if self.batching is not None:
            self._meter.start(self.scheduler.n_timed, self.stats.n_tasks)  # rank 0's cost per task, for batches
        deadline = self._start + self.limits.max_time if self.limits.max_time else math.inf
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
                    self._drain(got)
        finally:
            self.stats.search_s = self.clock() - self._start
            self.stats.cpu_s = time.process_time() - cpu_start
            if self.control.progress is not None:
                self.control.progress.close(self.snapshot())
            if not self.stats.abandoned:
                self._shutdown()
        return self.stats

    def _drain(self, got: tuple[int, Any]) -> None:
        """Handle ``got`` and every message already waiting (up to DRAIN_MESSAGES, more in a
        gathering window: see DRAIN_RESULT_SECONDS), then
        put their journal lines on disk and show progress once, before any more work is
        handed out: one flush and one dispatch serve the whole batch. While every worker
        keeps a task, the pass first gathers the results that come within its window (see
        GATHER_FRACTION), then handles them back to back."""
        batch = self._gather(got)
        for source, msg in batch:
            self.watch.heard(source, self.clock())
            self._handle(source, msg)
        if self.control.journal is not None:
            self.control.journal.flush()  # on disk before any more work is handed out
        progress = self.control.progress
        if progress is not None and progress.due():
            progress.update(self.snapshot())
        freeze_kept()  # what this pass kept (results) is not scanned again by the collector

    def _gather(self, got: tuple[int, Any]) -> list[tuple[int, Any]]:
        """``got`` and the messages waiting after it; while each is one Result whose worker
        still holds another task (and every worker held one), also those due within the
        pass's window: a wait then leaves no worker idle."""
        batch = [got]
        window = self._gather_window()
        until = self.clock() + window
        cap = max(DRAIN_MESSAGES, int(window / DRAIN_RESULT_SECONDS))
        patience = self._patience()
        held: dict[int, int] = {}  # worker -> tasks it still holds, its results so far taken off
        may_wait = self.scheduler.busy_workers() == len(self.workers)
        while len(batch) < (cap if may_wait else DRAIN_MESSAGES):  # no wait: as many as without a window
            source, msg = got
            if may_wait and type(msg) is Result:
                held[source] = held.get(source, self.scheduler.n_assigned(source)) - 1
                may_wait = held[source] > 0
            else:
                may_wait = False
            wait = until - self.clock() if may_wait else 0.0
            got = self.transport.poll(wait, patience) if wait > 0 else self.transport.poll(0.0)
            if got is None:
                break
            batch.append(got)
        return batch

    def _gather_window(self) -> float:
        """How long a pass may wait for more results (0 before the first result, and for tasks
        too short for it to pay; see GATHER_FRACTION)."""
        mean = self.scheduler.mean_duration()
        if mean is None or self.stats.stopped is not None:
            return 0.0
        window = min(GATHER_FRACTION * mean, GATHER_MAX)
        return window if window >= GATHER_MIN else 0.0

    def _patience(self) -> float:
        """Longest sleep while waiting for results (see IDLE_SLEEP_FRACTION)."""
        mean = self.scheduler.mean_duration()
        return IDLE_SLEEP_MIN if mean is None else min(max(IDLE_SLEEP_FRACTION * mean, IDLE_SLEEP_MIN), IDLE_SLEEP_MAX)

    def _finished(self) -> bool:
        return self.scheduler.n_open == 0 and (self.strategy.finished or self.stats.stopped is not None)

    def _check_stop(self, deadline: float) -> None:
        """Time budget spent or stop requested: hand out nothing new, let running tasks
        finish (for at most the grace period after a signal; a second signal: at once)."""
        now, stop = self.clock(), self.control.stop
        if self.stats.stopped is None and (now >= deadline or stop.requested):
            self.stats.stopped = StopReason.SIGNAL if stop.requested else StopReason.MAX_TIME
            self.scheduler.drop_queued()
            if stop.requested:
                self._grace_end = now + self.limits.grace
        if stop.count > 1 or now >= self._grace_end:
            self.stats.abandoned = self.scheduler.n_open > 0

    def _check_stalled(self) -> None:
        if (self._asked_nothing and self.scheduler.n_open == 0 and not self.strategy.finished
                and self.stats.stopped is None):
            raise SearchFailedError(
                f"the {type(self.strategy).__name__} proposed no point while none is running: "
                "the search cannot go on (a bug in the strategy)"
            )

    # -- new points and their tasks -------------------------------------------------------
    def _top_up(self) -> None:
        """Ask the strategy for more points when the queue runs low. A search of fixed points asks
        its first chunk in pieces: what fills every worker's queue first, then a piece whenever the
        fold served holds fewer tasks than the next dispatch could hand out."""
        if self.stats.stopped or self.strategy.finished:
            return
        if self._owed:  # the rest of the first chunk, once the fold served could run dry
            if self.scheduler.n_serving >= self.scheduler.n_wanted:
                return
            n = min(self._owed, piece_points(len(self.workers), self.scheduler.prefetch))
            self._owed -= n
            self._ask(n)
            return
        if self.scheduler.n_ready() >= len(self.workers) * self.scheduler.prefetch:
            return
        whole_ok = self.strategy.fixed_points and not self.limits.max_time and not self.racing
        n = points_per_ask(self.strategy.total, whole_ok, self.table.n_folds, len(self.workers),
                           self.scheduler.prefetch)
        if whole_ok and not self._started_up and self.bundler is None:  # bundles are grouped per ask: whole
            first = min(n, len(self.workers) * self.scheduler.prefetch)
            self._owed, n = n - first, first
        self._started_up = True
        self._ask(n)

    def _ask(self, n: int) -> None:
        cpu = self._meter.cpu() if self._meter.started else 0.0
        points = list(self.strategy.ask(n))  # as before the plain-dict change: any iterable is taken
        self._asked_nothing = not points
        self._add_points(points)
        freeze_kept()  # the points and their tasks stay until the search ends
        if self._meter.started:
            self._meter.exclude(self._meter.cpu() - cpu)  # paid per point, batched or not

    def _add_points(self, points: Sequence[Params | Proposal]) -> None:
        """Register the points, let the policies see each (resumed folds, racing), queue the rest."""
        ids = []
        for point in points:
            if isinstance(point, Proposal):
                ids.append(self.table.add_point(point.params, point.columns, point.position))
                self._proposals[ids[-1]] = point
            else:
                ids.append(self.table.add_point(point))
        for p in ids:
            for policy in self.policies:
                self._apply(policy.on_point(p))
        pairs = list(fold_major(ids, self.table.n_folds, self._to_run))
        size = self._batch_size(len(pairs))
        self.scheduler.add(self._tasks(pairs, size) if self.bundler is not None or size > 1 else
                           [self._task(p, fold) for p, fold in pairs])

    def _batch_size(self, n_new: int) -> int:
        """Points per batch of short tasks for ``n_new`` new tasks (1: none), from rank 0's measured load."""
        if self.batching is None or not self._meter.started or not n_new:
            return 1
        load = self._meter.load(self.scheduler.n_timed, self.stats.n_tasks, self.scheduler.mean_duration(),
                                len(self.workers), self.scheduler.longest_duration or 0.0)
        queued = self.scheduler.n_queued + n_new + self._owed * self.table.n_folds  # owed: asked in the next passes
        return batch_size(self.batching, load, queued)

    def _task(self, point_id: int, fold: int, bundle: Bundle | None = None) -> Task:
        task = Task(self._next_task, point_id, fold)
        self._next_task += 1
        if bundle is not None:
            self._bundles[task.task_id] = bundle
            if bundle.kind == BundleKind.BATCH:
                self.stats.batches += 1
                self.stats.batched_points += len(bundle.members)
        return task

    def _tasks(self, pairs: list[tuple[int, int]], size: int) -> list[Task]:
        """The (point, fold) pairs as tasks, fold by fold, with points that can share work in
        bundles (small enough that every worker gets work: see Bundler.group) and, with ``size``
        above 1, runs of other points in batches of ``size`` (shrinking towards the end of the
        search: batching.guided_size)."""
        by_fold: dict[int, list[NewPoint]] = {}
        for p, fold in pairs:
            by_fold.setdefault(fold, []).append(NewPoint(p, self.table.points[p], self._proposal(p).subsample))
        tasks = []
        later = served_later({fold: len(points) for fold, points in by_fold.items()},
                             self.scheduler.serving_fold, self.table.n_folds)
        for fold, points in by_fold.items():
            units: list[Bundle | int] = [p.point_id for p in points] if self.bundler is None else \
                self.bundler.group(points, len(pairs), len(self.workers))
            if size > 1:
                units = batched(units, self._point, self._sizes(size, len(units) + later[fold]))
            for unit in units:
                tasks.append(self._task(unit, fold) if isinstance(unit, int) else self._task(unit.lead, fold, unit))
        return tasks

    def _sizes(self, size: int, n_units: int) -> Callable[[int], int]:
        """The most points in a batch starting at the i-th of a fold's units, ``n_units`` counting
        them and the new tasks of the folds served after it: ``size``, or in the search's last ask
        guided down towards the end of the search."""
        policy, n_workers = self.batching, len(self.workers)
        if not self.strategy.finished or policy is None:  # more points to come: the queue stays long
            return lambda i: size
        return lambda i: guided_size(policy, size, n_units - i, n_workers)

    def _to_run(self, point_id: int, fold: int) -> bool:
        return (point_id, fold) not in self.table.tasks and not self.table.is_done(point_id)

    def _apply(self, decision: Decision) -> None:
        for known in decision.known:
            self.stats.n_resumed += 1
            self._record(known.point_id, known.fold, known.result)
        for point_id in decision.stop:
            self._stop_point(point_id)

    # -- talking to workers ----------------------------------------------------------------
    def _dispatch(self) -> None:
        """Send what the scheduler decided (and fold racing's cancellations). The first tasks go
        out one per worker before any worker gets a second: the last of 4,096 / 16,384 workers
        started its first task 0.077 / 0.341 s into the search with whole queues sent worker by
        worker, 0.061 / 0.254 s so (bench_scale_sim.py, 0.2-2 s tasks)."""
        if not self._sent_any:
            first = self.scheduler.dispatch(self.clock(), depth=1)
            self._sent_any = bool(first)
            self._send(first)
        actions: list[Run | Cancel] = [*self._cancels, *self.scheduler.dispatch(self.clock())]
        self._cancels = []
        self._send(actions)

    def _send(self, actions: list[Run | Cancel]) -> None:
        if not actions:
            return
        if self.batching is not None:
            self._meter.sent += sum(1 for a in actions if type(a) is Run)
        self.stats.n_stolen += sum(1 for a in actions if isinstance(a, Cancel)
                                   and a.task.point_id not in self.table.stopped)
        self.outbox.send(actions)

    def _point(self, point_id: int) -> tuple[dict[str, Any], Subsample | None]:
        return self.table.points[point_id], self._proposal(point_id).subsample

    def _proposal(self, point_id: int) -> Proposal:
        """What the strategy said of the point besides its parameters (see _PLAIN)."""
        return self._proposals.get(point_id, _PLAIN)

    def _handle(self, source: int, msg: Any) -> None:
        if type(msg) is Result:  # the usual message: one task's result
            self._on_result(source, msg)
            return
        for m in msg if isinstance(msg, list) else (msg,):
            if isinstance(m, Result):
                self._on_result(source, m)
            elif isinstance(m, BundleResult):
                self._on_bundle(source, m)
            elif isinstance(m, Bye):
                self.stats.workers[source] = m.stats
            elif not isinstance(m, Heartbeat):
                raise TypeError(f"coordinator got an unexpected message {m!r} from rank {source}")

    def _on_result(self, source: int, msg: Result) -> None:
        r = msg.result
        if not self.scheduler.complete(source, msg.task_id, r.fit_time + r.score_time, self.clock()):
            self.stats.wasted(r.fit_time + r.score_time, late=msg.point_id in self.table.stopped)
            return
        self._accept(source, msg.point_id, msg.fold, r)

    def _on_bundle(self, source: int, msg: BundleResult) -> None:
        """A bundle's results: one task for the scheduler, one result per point for the rest."""
        duration = sum(m.result.fit_time + m.result.score_time for m in msg.members)
        if not self.scheduler.complete(source, msg.task_id, duration, self.clock()):
            self.stats.wasted(duration, late=False)
            return
        del self._bundles[msg.task_id]
        self.stats.bundles += 1
        self.stats.reused.add(msg.reused)
        if self.policies:  # they see each result as it is recorded
            for m in msg.members:
                self._accept(source, m.point_id, msg.fold, m.result)
        else:
            self._accept_members(source, msg.fold, msg.members)

    def _accept_members(self, source: int, fold: int, members: Sequence[MemberResult]) -> None:
        """A bundle's results when no policy needs to see them one by one: what :meth:`_accept`
        does for each, with the journal's lines appended together and the strategy told once,
        with the bundle's complete points in member order."""
        journal, table = self.control.journal, self.table
        lines: list[str] = []
        told: list[PointResult] = []
        try:
            for m in members:
                point_id, r = m.point_id, m.result
                where = self._tally(source, r)
                if journal is not None:
                    lines.append(journal.line(point_id, fold, r, table.points[point_id], table.n_resources(point_id)))
                if table.add(point_id, fold, r, where=where):
                    done = self._point_done(point_id)
                    if done is not None:
                        told.append(done)
        finally:  # a failed fit with error_score="raise": the lines up to it, as one by one
            if journal is not None:
                journal.write_lines(lines)
        if told:
            self.strategy.tell(told)

    def _accept(self, source: int, point_id: int, fold: int, r: TaskResult) -> None:
        """A task's first result: journal, table, strategy, policies."""
        where = self._tally(source, r)
        if self.control.journal is not None:  # journal first: flushed before anything more is handed out
            self.control.journal.write(point_id, fold, r, self.table.points[point_id],
                                       self.table.n_resources(point_id))
        complete = self._record(point_id, fold, r, where=where)
        for policy in self.policies:
            self._apply(policy.on_result(point_id, fold, complete))

    def _tally(self, source: int, r: TaskResult) -> str:
        """Count a task's first result and its warnings; for a failed one, where it ran (its
        error text names it; "" otherwise)."""
        self.stats.n_tasks += 1
        if r.warnings:  # Counter.update costs ~2 us even when there is nothing to count
            self.stats.warnings.update(r.warnings)
        return f" on {r.origin or f'rank {source}'}" if r.error is not None else ""

    # -- results ---------------------------------------------------------------------------
    def _record(self, point_id: int, fold: int, result: TaskResult, where: str = "") -> bool:
        """Store a task's result; tell the strategy when its point is complete. True then."""
        complete = self.table.add(point_id, fold, result, where=where)
        if complete:
            done = self._point_done(point_id)
            if done is not None:
                self.strategy.tell([done])
        return complete

    def _point_done(self, point_id: int) -> PointResult | None:
        """A point got its last fold: the best so far, the point's line (verbosity 2), and what the
        strategy learns (None for a strategy that learns nothing: see _learns)."""
        params = self.table.points[point_id]
        score = self.table.mean_score(point_id, self.rank_metric)
        row = self.table.positions.get(point_id, point_id)
        best = self._best
        if not math.isnan(score) and (best is None or score > best.score
                                      or (score == best.score and row < best.row)):
            self._best = Best(score, row, params)
        if self._shows_points:
            self._say(f"point {point_id} {params}: mean {self.rank_metric} {score:.5g}")
        return PointResult(point_id, params, score, self._proposal(point_id).tag) if self._learns else None

    def _stop_point(self, point_id: int) -> None:
        """Fold racing: the point's other folds are dropped or cancelled on their workers."""
        n_seen = self.table.stop(point_id)
        params, n_resources = self.table.points[point_id], self.table.n_resources(point_id)
        if self.control.journal is not None:
            self.control.journal.stop(point_id, params, n_resources)
        self.stats.n_raced += 1
        self.stats.n_raced_tasks += self.table.n_folds - n_seen
        self._cancels.extend(self.scheduler.cancel_point(point_id, self.clock()))
        score = self.table.mean_score(point_id, self.rank_metric)
        self.strategy.tell([PointResult(point_id, params, score, self._proposal(point_id).tag, stopped=True)])
        self._say(f"point {point_id} {params}: stopped after {n_seen} folds (mean {self.rank_metric} {score:.5g} "
                  "so far)")

    def _say(self, text: str) -> None:
        if self.control.progress is not None:
            self.control.progress.point_done(text)

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
        total, best = self.strategy.total, self._best
        return Snapshot(done=self.stats.n_tasks + self.stats.n_resumed,
                        total=None if total is None else total * self.table.n_folds - self.stats.n_raced_tasks,
                        best_score=None if best is None else best.score,
                        best_params=None if best is None else best.params,
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
