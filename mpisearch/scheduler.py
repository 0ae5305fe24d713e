"""Who runs which (point, fold) task: rank 0's pure bookkeeping.

No MPI and no clock of its own: callers pass ``now`` (seconds), so every policy
is testable with a fake transport and a fake clock.

Policies
- Prefetch: each worker holds up to ``prefetch`` assigned tasks (one running,
  the rest queued on the worker), so it does not wait for rank 0 between tasks
  (rank 0 notices a result within a small part of a typical task; see
  mpisearch.coordinator.IDLE_SLEEP_FRACTION).
- Ordering: tasks of points whose duration is unknown go first, in the order
  they were added (fold-major, so fold 0 of every point runs first and teaches
  us its cost); the others are served longest-expected-first (LPT).
- Stealing: when the global queue is empty, an idle worker takes the last
  not-yet-started task from the worker with the longest queue (the victim is
  told to cancel it; if it already started, the first result wins).
- Stragglers: when nothing is left to steal, an idle worker gets a copy of a
  task that has run far longer than expected; the first result wins.
- One task per point (``one_per_point``, for fold racing): a point's next fold
  waits while another of its folds is assigned, as long as other points' tasks
  can go instead, so each fold result can stop the point before its next fold
  has started.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Task:
    task_id: int
    point_id: int
    fold: int


@dataclass(frozen=True)
class Run:
    """Send ``task`` to ``worker``."""

    worker: int
    task: Task


@dataclass(frozen=True)
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
        self._fresh: deque[Task] = deque()            # duration of the point unknown
        self._known: list[tuple[float, int, Task]] = []  # heap: (-expected, task_id, task)
        self._assigned: dict[int, deque[Task]] = {w: deque() for w in self.workers}
        self._started: dict[int, float] = {}           # worker -> start of its head task
        self._copies: dict[int, set[int]] = {}         # task_id -> workers running it
        self._point_times: dict[int, list[float]] = {}
        self._all_times: list[float] = []
        self._sum_times = 0.0
        self._typical_cache: tuple[int, float | None] = (0, None)
        self._open: dict[int, Task] = {}               # tasks without a result yet
        self._queued: set[int] = set()                 # open and never assigned

    # -- feeding -----------------------------------------------------------
    def add(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self._open[task.task_id] = task
            self._queued.add(task.task_id)
            self._fresh.append(task)

    def drop_point(self, point_id: int) -> list[Task]:
        """Forget the not-yet-assigned tasks of a point; return them."""
        dropped = [self._open[i] for i in self._queued if self._open[i].point_id == point_id]
        for t in dropped:
            del self._open[t.task_id]
            self._queued.discard(t.task_id)
        return sorted(dropped, key=lambda t: t.task_id)

    def cancel_point(self, point_id: int, now: float) -> list[Cancel]:
        """Forget every open task of a point (fold racing stopped it): queued ones are
        dropped, assigned ones cancelled on their workers. A task that had already
        started still reports; :meth:`complete` then returns False for it."""
        self.drop_point(point_id)
        actions = []
        for worker, queue in self._assigned.items():
            mine = [t for t in queue if t.point_id == point_id]
            if not mine:
                continue
            head = queue[0]
            self._assigned[worker] = queue = deque(t for t in queue if t.point_id != point_id)
            if queue and queue[0] is not head:
                self._started[worker] = now
            for task in mine:
                self._open.pop(task.task_id, None)
                self._copies.pop(task.task_id, None)
                actions.append(Cancel(worker, task))
        return actions

    def drop_queued(self) -> list[Task]:
        """Forget every not-yet-assigned task (time budget spent); return them."""
        dropped = [self._open.pop(i) for i in sorted(self._queued)]
        self._queued.clear()
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
        if not self.one_per_point:
            return self.n_queued
        return len({self._open[i].point_id for i in self._queued} - self._busy_points())

    def busy_workers(self) -> int:
        return sum(1 for q in self._assigned.values() if q)

    def running(self, worker: int) -> tuple[Task, float] | None:
        """The task ``worker`` runs (the first assigned to it) and when it started, if any."""
        queue = self._assigned.get(worker)
        return (queue[0], self._started.get(worker, math.nan)) if queue else None

    def mean_duration(self) -> float | None:
        """Mean duration of the tasks finished so far (None before the first)."""
        return self._sum_times / len(self._all_times) if self._all_times else None

    def expected(self, point_id: int) -> float | None:
        times = self._point_times.get(point_id)
        return statistics.fmean(times) if times else None

    # -- decisions ------------------------------------------------------------
    def dispatch(self, now: float) -> list[Action]:
        """Actions that keep every worker's prefetch queue full."""
        actions: list[Action] = []
        busy = self._busy_points() if self.one_per_point else None
        for w in sorted(self.workers, key=lambda w: len(self._assigned[w])):
            while len(self._assigned[w]) < self.prefetch:
                task = self._pop() if busy is None else self._pop_spread(busy)
                if task is None:
                    break
                if busy is not None:
                    busy.add(task.point_id)
                actions.append(self._assign(w, task, now))
        for w in self.workers:
            if not self._assigned[w]:
                actions.extend(self._steal(w, now) or self._reissue(w, now))
        return actions

    def complete(self, worker: int, task_id: int, duration: float, now: float) -> bool:
        """Record a result; True if it is the first one for this task."""
        queue = self._assigned.get(worker)
        if queue and queue[0].task_id == task_id:  # the usual case: a worker runs its queue in order
            queue.popleft()
            if queue:
                self._started[worker] = now
        elif queue is not None and task_id in (t.task_id for t in queue):
            self._assigned[worker] = deque(t for t in queue if t.task_id != task_id)
        self._copies.get(task_id, set()).discard(worker)
        task = self._open.pop(task_id, None)
        if task is None:
            return False
        self._point_times.setdefault(task.point_id, []).append(duration)
        self._all_times.append(duration)
        self._sum_times += duration
        self._adapt_prefetch()
        return True

    def _adapt_prefetch(self) -> None:
        """Deeper worker queues for short tasks (see QUEUE_SECONDS)."""
        mean = self.mean_duration() or 0.0  # called after a result is recorded: never None
        wanted = math.ceil(QUEUE_SECONDS / max(mean, 1e-6))
        self.prefetch = min(max(wanted, self.min_prefetch), MAX_PREFETCH)

    # -- helpers -----------------------------------------------------------------
    def _pop(self) -> Task | None:
        while self._fresh:
            task = self._fresh.popleft()
            if task.task_id not in self._queued:
                continue
            expected = self.expected(task.point_id)
            if expected is None:
                return task
            heapq.heappush(self._known, (-expected, task.task_id, task))
        while self._known:
            task = heapq.heappop(self._known)[2]
            if task.task_id in self._queued:
                return task
        return None

    def _busy_points(self) -> set[int]:
        return {t.point_id for queue in self._assigned.values() for t in queue}

    def _pop_spread(self, busy: set[int]) -> Task | None:
        """Racing order: of the queued tasks whose point is not in ``busy``, one of the
        point with the most folds done (a point finished early gives racing its bar to
        beat), oldest first; if every queued task's point is busy, the oldest anyway
        (keeping workers busy beats waiting). Entries left in the LPT queues are
        skipped by :meth:`_pop`, as they are no longer queued."""
        best, best_key, oldest = None, None, None
        for task_id in self._queued:
            task = self._open[task_id]
            if oldest is None or task_id < oldest.task_id:
                oldest = task
            if task.point_id in busy:
                continue
            key = (len(self._point_times.get(task.point_id, ())), -task_id)
            if best_key is None or key > best_key:
                best, best_key = task, key
        return best or oldest

    def _assign(self, worker: int, task: Task, now: float) -> Run:
        if not self._assigned[worker]:
            self._started[worker] = now
        self._assigned[worker].append(task)
        self._queued.discard(task.task_id)
        self._copies.setdefault(task.task_id, set()).add(worker)
        return Run(worker, task)

    def _steal(self, thief: int, now: float) -> list[Action]:
        victim = max(self.workers, key=lambda w: len(self._assigned[w]))
        if len(self._assigned[victim]) < 2:
            return []
        task = self._assigned[victim].pop()
        self._copies[task.task_id].discard(victim)
        return [Cancel(victim, task), self._assign(thief, task, now)]

    def _typical(self) -> float | None:
        """What a task of a point never timed may take: the longest task so far. (The
        median made every first task of a larger halving rung, 3-9x longer than the
        tasks before it, look like a straggler: 79 s of copies thrown away in a 58 s
        search with 8 workers.) Cached until a new result arrives."""
        if self._typical_cache[0] != len(self._all_times):
            longest = max(self._all_times) if self._all_times else None
            self._typical_cache = (len(self._all_times), longest)
        return self._typical_cache[1]

    def _reissue(self, worker: int, now: float) -> list[Action]:
        worst, worst_ratio = None, self.straggler_factor
        for w, queue in self._assigned.items():
            if not queue or len(self._copies.get(queue[0].task_id, ())) > 1:
                continue
            elapsed = now - self._started[w]
            if elapsed < self.straggler_min_seconds:
                continue
            expected = self.expected(queue[0].point_id) or self._typical()
            if expected is None:
                continue
            ratio = elapsed / max(expected, 1e-9)
            if ratio > worst_ratio:
                worst, worst_ratio = queue[0], ratio
        return [self._assign(worker, worst, now)] if worst is not None else []
