"""Who runs which (point, fold) task: rank 0's pure bookkeeping.

No MPI and no clock of its own: callers pass ``now`` (seconds), so every policy
is testable with a fake transport and a fake clock.

Policies
- Prefetch: each worker holds up to ``prefetch`` assigned tasks (one running,
  the rest queued on the worker), so it does not wait for rank 0 between tasks
  (rank 0 notices a result within a small part of a typical task; see
  mpisearch.coordinator.IDLE_SLEEP_FRACTION).
- Ordering: fold-major (:class:`mpisearch.fold_queue.FoldQueue`): every queued
  task of one fold before the next fold's (cyclically), so a node holds about two
  folds (the one its workers leave and the one they start); within a fold, tasks
  of points whose duration is unknown go first, in the order they were added (fold
  0 of every new point teaches us its cost), the others longest-expected-first
  (LPT), ties by task id. With ``one_per_point`` racing decides the order instead.
- Stealing: when the global queue is empty, an idle worker takes the last
  not-yet-started task from the worker with the longest queue (the victim is
  told to cancel it; if it already started, the first result wins).
- Stragglers: when nothing is left to steal, an idle worker gets a copy of a
  task that has run far longer than expected (the one that became a straggler
  first); the first result wins.
- One task per point (``one_per_point``, for fold racing): a point's next fold
  waits while another of its folds is assigned, as long as other points' tasks
  can go instead, so each fold result can stop the point before its next fold
  has started.

Cost: every call costs O(log W) per task it hands out or takes back, for W
workers, not O(W): workers are indexed by queue length
(:class:`mpisearch.worker_index.QueueLengths`), running tasks by the time from
which they may be stragglers (:class:`mpisearch.worker_index.Deadlines`, built
in O(W) at the first look for a straggler, when nothing is left to steal, and
kept from then on), and
queued and held tasks by point; an idle worker that finds nothing to steal and
no straggler ends the round for every other idle worker; the straggler copied
is the one at the top of the deadline heap, so no overdue task is scanned.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .fold_queue import FoldQueue
from .worker_index import COMPACT_FACTOR, COMPACT_MIN, Deadlines, QueueLengths

# One task running plus one waiting on the worker hides rank 0's latency (~100 us
# per round trip on one node, plus up to 5% of the mean task while rank 0 sleeps
# between polls, at most 20 ms) behind any task longer than that; a deeper queue
# only makes the end of the run less balanced (more stealing).
PREFETCH = 2
# For tiny tasks the queue grows to hold about this much work per worker (rank 0
# may sleep up to 1 ms between polls, workers batch results for up to 2 ms), up
# to MAX_PREFETCH tasks; measured: no-op tasks went from 1,900/s to 5,100/s with
# prefetch 16 instead of 2 on 4 workers, and from 20,600/s to 21,200/s (median of
# 3 interleaved pairs, 4 workers on 2 loaded cores) with 128 instead of 64: fewer
# idle waits on workers when rank 0 is descheduled for a time slice.
QUEUE_SECONDS = 0.005
MAX_PREFETCH = 128
# A running task is a straggler once it has taken this many times its
# expected duration; 3x keeps re-issues rare for the usual spread of fit times
# (fold-to-fold variation of one point is rarely above 1.5x).
STRAGGLER_FACTOR = 3.0
# ...and at least this long, so that short tasks are never duplicated (a
# duplicate costs a whole fit; below a second the gain is noise).
STRAGGLER_MIN_SECONDS = 1.0


# Task, Run and Cancel are made and read once per task on rank 0 and never changed: plain
# slotted dataclasses, as frozen ones cost ~0.2 us more each to make (object.__setattr__
# per field; timeit: 0.30 against 0.09 us for a Task), ~1.3-1.5 us per task in all with
# messages.RunTask and Result (bench_scale_sim.py, 1,024-4,096 workers).
@dataclass(slots=True)
class Task:
    task_id: int
    point_id: int
    fold: int


@dataclass(slots=True)
class Run:
    """Send ``task`` to ``worker``."""

    worker: int
    task: Task


@dataclass(slots=True)
class Cancel:
    """Tell ``worker`` to drop ``task`` if it has not started it."""

    worker: int
    task: Task


Action = Run | Cancel


class Scheduler:
    def __init__(self, workers: Sequence[int], prefetch: int = PREFETCH,
                 straggler_factor: float = STRAGGLER_FACTOR,
                 straggler_min_seconds: float = STRAGGLER_MIN_SECONDS, one_per_point: bool = False) -> None:
        if not workers:
            raise ValueError("the scheduler needs at least one worker")
        self.workers = list(workers)
        self.min_prefetch = self.prefetch = prefetch
        self.straggler_factor = straggler_factor
        self.straggler_min_seconds = straggler_min_seconds
        self.one_per_point = one_per_point
        self._index = {w: i for i, w in enumerate(self.workers)}
        self._deadline_cap = COMPACT_FACTOR * len(self.workers) + COMPACT_MIN  # see _renew_deadlines
        self._queue: FoldQueue[Task] = FoldQueue()      # queued tasks, fold-major (not with one_per_point)
        # each worker's tasks, running first: lists, not deques, as a worker holds a few (at
        # most MAX_PREFETCH) and an empty deque takes 760 bytes against a list's 56-88: 12 MB
        # less to keep in cache at 16,384 workers (bench_scale_sim.py, 0.2-2 s x 16,384, four
        # interleaved pairs: 30.1-31.8 -> 28.5-30.5 us per task)
        self._assigned: dict[int, list[Task]] = {w: [] for w in self.workers}
        self._lengths = QueueLengths(len(self.workers))
        self._started: dict[int, float] = {}           # worker -> start of its head task
        self._deadlines = Deadlines()                  # head tasks, by when they may be stragglers
        # kept only from the first look for a straggler on (when nothing was left to steal):
        # before that no task can be copied, and a push per started task cost ~1 us
        self._watching = False
        self._untimed: list[int] = []                  # workers whose head started before any result
        self._copies: dict[int, set[int]] = {}         # task_id -> workers holding it (none: no entry)
        self._held: dict[int, set[int]] = {}           # point -> its tasks held by some worker
        self._point_times: dict[int, list[float]] = {}
        self._expected: dict[int, float] = {}          # point -> mean of its times (made once per result)
        self._n_times = 0
        self._sum_times = 0.0
        self._longest: float | None = None             # the longest task so far
        self._open: dict[int, Task] = {}               # tasks without a result yet
        self._queued: set[int] = set()                 # open and never assigned
        # queued tasks by point, kept only with one_per_point (racing, the only caller of drop_point
        # in a search): a set per point cost 216 bytes and ~0.5 us per task (131k points at 16,384
        # workers x 0.2-2 s tasks); without it drop_point scans the queue
        self._queued_by_point: dict[int, set[int]] = {}
        self._ready: set[int] = set()                  # points with queued tasks and none held
        self._spread: list[tuple[int, int, int]] = []  # heap: (-folds done, oldest queued task, point)
        self._oldest: list[int] = []                   # heap of queued task ids (stale ones skipped)

    # -- feeding -----------------------------------------------------------
    def add(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self._open[task.task_id] = task
            self._queued.add(task.task_id)
            if not self.one_per_point:
                self._queue.add(task)
            else:
                self._queued_by_point.setdefault(task.point_id, set()).add(task.task_id)
                heapq.heappush(self._oldest, task.task_id)
                self._refresh(task.point_id)

    def drop_point(self, point_id: int) -> list[Task]:
        """Forget the not-yet-assigned tasks of a point; return them (O(queued tasks) without
        ``one_per_point``: see _queued_by_point)."""
        if self.one_per_point:
            dropped = sorted(self._queued_by_point.pop(point_id, ()))
        else:
            dropped = sorted(t for t in self._queued if self._open[t].point_id == point_id)
        for task_id in dropped:
            self._queued.discard(task_id)
            if not self.one_per_point:
                self._queue.left(self._open[task_id])
        self._ready.discard(point_id)
        return [self._open.pop(i) for i in dropped]

    def cancel_point(self, point_id: int, now: float) -> list[Cancel]:
        """Forget every open task of a point (fold racing stopped it): queued ones are
        dropped, assigned ones cancelled on their workers. A task that had already
        started still reports; :meth:`complete` then returns False for it."""
        self.drop_point(point_id)
        holders = {self._index[w] for t in self._held.get(point_id, ()) for w in self._copies[t]}
        actions = []
        for i in sorted(holders):
            worker = self.workers[i]
            queue = self._assigned[worker]
            mine = [t for t in queue if t.point_id == point_id]
            head = queue[0]
            self._assigned[worker] = queue = [t for t in queue if t.point_id != point_id]
            for task in mine:
                self._open.pop(task.task_id, None)
                self._release(worker, task)
                actions.append(Cancel(worker, task))
            if queue and queue[0] is not head:
                self._start(worker, now)
            self._lengths.set(i, len(queue))
        return actions

    def drop_queued(self) -> list[Task]:
        """Forget every not-yet-assigned task (time budget spent); return them."""
        dropped = [self._open.pop(i) for i in sorted(self._queued)]
        self._queued.clear()
        self._queued_by_point.clear()
        self._ready.clear()
        self._queue.clear()
        return dropped

    # -- state ---------------------------------------------------------------
    @property
    def n_queued(self) -> int:
        """Tasks not yet handed to any worker."""
        return len(self._queued)

    @property
    def n_open(self) -> int:
        """Tasks without a result yet (queued or assigned)."""
        return len(self._open)

    def n_ready(self) -> int:
        """Queued tasks that can go out now without waiting for a point's other fold:
        all of them, or with ``one_per_point`` one per point with nothing assigned."""
        return len(self._ready) if self.one_per_point else self.n_queued

    @property
    def n_wanted(self) -> int:
        """Tasks a dispatch could hand out now: what every worker's prefetch queue lacks."""
        return self.prefetch * len(self.workers) - self._lengths.total

    @property
    def n_serving(self) -> int:
        """Queued tasks that can go out in the order they would now, without moving on to
        another fold: those of the fold served (with ``one_per_point``: :meth:`n_ready`)."""
        return len(self._ready) if self.one_per_point else self._queue.serving()

    def busy_workers(self) -> int:
        return self._lengths.n_busy

    def running(self, worker: int) -> tuple[Task, float] | None:
        """The task ``worker`` runs (the first assigned to it) and when it started, if any."""
        queue = self._assigned.get(worker)
        return (queue[0], self._started.get(worker, math.nan)) if queue else None

    def n_assigned(self, worker: int) -> int:
        """Tasks ``worker`` holds: the one it runs and those queued on it."""
        return len(self._assigned.get(worker, ()))

    def mean_duration(self) -> float | None:
        """Mean duration of the tasks finished so far (None before the first)."""
        return self._sum_times / self._n_times if self._n_times else None

    @property
    def serving_fold(self) -> int:
        """The fold whose queued tasks go out now (the queue serves folds cyclically from it)."""
        return self._queue.current

    @property
    def n_timed(self) -> int:
        """Tasks finished so far (what mean_duration is the mean of)."""
        return self._n_times

    @property
    def longest_duration(self) -> float | None:
        """The longest task finished so far (None before the first)."""
        return self._longest

    def expected(self, point_id: int) -> float | None:
        """Mean duration of the point's finished tasks (None before the first)."""
        return self._expected.get(point_id)

    # -- decisions ------------------------------------------------------------
    def dispatch(self, now: float, depth: int | None = None) -> list[Action]:
        """Actions that fill every worker's queue up to ``depth`` tasks (default: the
        prefetch), shortest queues first (ties: in the order of ``workers``), then idle
        workers steal or copy stragglers. A shallower dispatch first (``depth=1``) gives
        every worker a task before any gets a second."""
        actions: list[Action] = []
        if self._queued:
            self._fill(now, actions, self.prefetch if depth is None else min(depth, self.prefetch))
        while True:  # idle workers, in the order of ``workers``
            i = self._lengths.pop_shortest(1)
            if i is None:
                break
            got = self._steal(self.workers[i], now) or self._reissue(self.workers[i], now)
            if not got:  # nothing to steal and no straggler: the same for every other idle worker
                self._lengths.set(i, 0)
                break
            actions.extend(got)
        return actions

    def _fill(self, now: float, actions: list[Action], depth: int) -> None:
        while True:
            i = self._lengths.pop_shortest(depth)
            if i is None:
                return
            worker = self.workers[i]
            task = None
            while len(self._assigned[worker]) < depth:
                task = self._pop_spread() if self.one_per_point else self._pop()
                if task is None:
                    break
                actions.append(self._assign(worker, task, now))
            self._lengths.set(i, len(self._assigned[worker]))
            if task is None:  # nothing left to hand out
                return

    def complete(self, worker: int, task_id: int, duration: float, now: float) -> bool:
        """Record a result; True if it is the first one for this task."""
        queue = self._assigned.get(worker)
        if queue and queue[0].task_id == task_id:  # the usual case: a worker runs its queue in order
            self._release(worker, queue.pop(0))
            if queue:
                self._start(worker, now)
            self._lengths.set(self._index[worker], len(queue))
        elif queue is not None and task_id in (t.task_id for t in queue):
            self._release(worker, next(t for t in queue if t.task_id == task_id))
            self._assigned[worker] = [t for t in queue if t.task_id != task_id]
            self._lengths.set(self._index[worker], len(queue) - 1)
        task = self._open.pop(task_id, None)
        if task is None:
            return False
        self._record(task.point_id, duration)
        self._adapt_prefetch()
        return True

    def _record(self, point_id: int, duration: float) -> None:
        times = self._point_times.get(point_id)
        if times is None:
            times = self._point_times[point_id] = [duration]
        else:
            times.append(duration)
        self._expected[point_id] = math.fsum(times) / len(times)  # statistics.fmean, without its overhead
        self._n_times += 1
        self._sum_times += duration
        if self._longest is None or duration > self._longest:
            self._longest = duration
        if self._watching:
            self._renew_point_deadlines(point_id)
        if self.one_per_point:
            self._refresh(point_id)

    def _renew_point_deadlines(self, point_id: int) -> None:
        """Deadlines after a result of ``point_id``: its running tasks' expected time changed."""
        if self._untimed:  # the first result: every running task now has an expected time
            for i in self._untimed:
                if self._assigned[self.workers[i]]:
                    self._push_deadline(self.workers[i])
            self._untimed.clear()
        for task_id in self._held.get(point_id, ()):
            for w in self._copies[task_id]:
                if self._assigned[w][0].task_id == task_id:
                    self._push_deadline(w)

    def _adapt_prefetch(self) -> None:
        """Deeper worker queues for short tasks (see QUEUE_SECONDS)."""
        mean = self._sum_times / self._n_times  # called after a result is recorded: never 0 / 0
        wanted = math.ceil(QUEUE_SECONDS / (mean if mean > 1e-6 else 1e-6))
        self.prefetch = MAX_PREFETCH if wanted > MAX_PREFETCH else max(wanted, self.min_prefetch)

    # -- helpers -----------------------------------------------------------------
    def _pop(self) -> Task | None:
        return self._queue.pop(self._queued, self.expected)

    def _pop_spread(self) -> Task | None:
        """Racing order: of the queued tasks whose point has no task held by a worker,
        one of the point with the most folds done (a point finished early gives racing
        its bar to beat), oldest first; if every queued task's point is busy, the
        oldest anyway (keeping workers busy beats waiting)."""
        while self._spread:
            minus_done, task_id, point_id = self._spread[0]
            if (point_id in self._ready and -minus_done == len(self._point_times.get(point_id, ()))
                    and task_id == min(self._queued_by_point[point_id])):
                return self._open[task_id]
            heapq.heappop(self._spread)  # stale: the point changed since
        while self._oldest:
            task_id = self._oldest[0]
            if task_id in self._queued:
                return self._open[task_id]
            heapq.heappop(self._oldest)
        return None

    def _refresh(self, point_id: int) -> None:
        """Racing index: whether the point can go now, and its place in the spread heap."""
        queued = self._queued_by_point.get(point_id)
        if queued and point_id not in self._held:
            self._ready.add(point_id)
            done = len(self._point_times.get(point_id, ()))
            heapq.heappush(self._spread, (-done, min(queued), point_id))
        else:
            self._ready.discard(point_id)

    def _assign(self, worker: int, task: Task, now: float) -> Run:
        queue = self._assigned[worker]
        queue.append(task)
        if len(queue) == 1:
            self._start(worker, now)
        if task.task_id in self._queued:
            self._queued.discard(task.task_id)
            if not self.one_per_point:
                self._queue.left(task)
            else:
                queued = self._queued_by_point[task.point_id]
                queued.discard(task.task_id)
                if not queued:
                    del self._queued_by_point[task.point_id]
        copies = self._copies.get(task.task_id)  # not setdefault: it makes a set per call, used or not
        if copies is None:
            self._copies[task.task_id] = {worker}
        else:
            copies.add(worker)
        held = self._held.get(task.point_id)
        if held is None:
            self._held[task.point_id] = {task.task_id}
        else:
            held.add(task.task_id)
        if self.one_per_point:
            self._refresh(task.point_id)
        return Run(worker, task)

    def _release(self, worker: int, task: Task) -> None:
        """``worker`` no longer holds ``task``."""
        copies = self._copies.get(task.task_id)
        if copies is None or worker not in copies:
            return
        copies.discard(worker)
        if not copies:
            del self._copies[task.task_id]
            held = self._held[task.point_id]
            held.discard(task.task_id)
            if not held:
                del self._held[task.point_id]
                if self.one_per_point:
                    self._refresh(task.point_id)

    def _steal(self, thief: int, now: float) -> list[Action]:
        i, length = self._lengths.longest()
        if length < 2:
            return []
        victim = self.workers[i]
        task = self._assigned[victim].pop()
        self._lengths.set(i, length - 1)
        self._release(victim, task)
        run = self._assign(thief, task, now)
        self._lengths.set(self._index[thief], 1)
        return [Cancel(victim, task), run]

    def _typical(self) -> float | None:
        """What a task of a point never timed may take: the longest task so far. (The
        median made every first task of a larger halving rung, 3-9x longer than the
        tasks before it, look like a straggler: 79 s of copies thrown away in a 58 s
        search with 8 workers.)"""
        return self._longest

    # -- stragglers ------------------------------------------------------------------
    def _start(self, worker: int, now: float) -> None:
        """``worker``'s head task starts now."""
        self._started[worker] = now
        self._push_deadline(worker)

    def _push_deadline(self, worker: int) -> None:
        if not self._watching:
            return
        head = self._assigned[worker][0]
        expected = self._expected.get(head.point_id) or self._longest  # as expected() or _typical()
        if expected is None:
            self._untimed.append(self._index[worker])
            return
        wait = max(self.straggler_min_seconds, self.straggler_factor * max(expected, 1e-9))
        started = self._started[worker]
        # a hair early: _straggler() then decides with the exact test
        self._deadlines.push(started + wait * (1 - 1e-9), self._index[worker], head.task_id, started)
        if len(self._deadlines) > self._deadline_cap:
            self._renew_deadlines()

    def _renew_deadlines(self) -> None:
        """Rebuild the deadline heap from the head tasks (the entries of finished tasks
        stay until their deadline otherwise): O(W) after more than 3 W pushes."""
        self._deadlines = Deadlines()
        untimed = set(self._untimed)
        for worker in self.workers:
            if self._assigned[worker] and self._index[worker] not in untimed:
                self._push_deadline(worker)

    def _straggler(self, worker: int, now: float) -> tuple[float, Task] | None:
        """(ratio of elapsed to expected time, task) if ``worker``'s head task is a
        straggler that may be copied now; None if not (yet)."""
        queue = self._assigned[worker]
        head = queue[0]
        elapsed = now - self._started[worker]
        expected = self.expected(head.point_id) or self._typical()
        if expected is None or elapsed < self.straggler_min_seconds:
            return None
        ratio = elapsed / max(expected, 1e-9)
        return (ratio, head) if ratio > self.straggler_factor else None

    def _reissue(self, worker: int, now: float) -> list[Action]:
        """A copy of the running task that became a straggler first: the earliest
        deadline (start + max(straggler_min_seconds, straggler_factor x expected), ties:
        the first in ``workers``) whose task is still running, open, not copied yet and
        over ``straggler_factor`` now. Entries are looked at from the top of the deadline
        heap only: a stale one is dropped, one whose expected time grew since is put
        back with its new deadline, and the first straggler ends the search, so the cost
        is O(log W) per entry ever pushed, never a scan of every overdue task."""
        if not self._watching:  # the first look: every running task's deadline, from now on
            self._watching = True
            self._untimed.clear()
            self._renew_deadlines()
        later: list[int] = []  # workers whose head task is not a straggler yet: their deadlines renewed
        chosen = None
        while chosen is None:
            entry = self._deadlines.pop_due(now)
            if entry is None:
                break
            _, i, task_id, start = entry
            queue = self._assigned[self.workers[i]]
            if not (queue and queue[0].task_id == task_id and self._started[self.workers[i]] == start
                    and task_id in self._open and len(self._copies[task_id]) == 1):
                continue  # stale: finished, copied, or no longer its worker's head task
            if self._straggler(self.workers[i], now) is None:
                later.append(i)
            else:
                chosen = queue[0]
        for i in later:
            self._push_deadline(self.workers[i])
        if chosen is None:
            return []
        run = self._assign(worker, chosen, now)
        self._lengths.set(self._index[worker], 1)
        return [run]
