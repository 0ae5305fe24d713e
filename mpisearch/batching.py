"""How many points rank 0 asks its strategy for at a time, in which order their tasks go
out, and how many short tasks go as one batch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Points asked from the strategy per worker at each top-up (see points_per_ask).
BATCH_POINTS_PER_WORKER = 2
# A search of fixed points (grid, random with n_iter; no time limit, no racing) is
# queued whole, up to this many tasks at a time (a larger one streams in chunks of
# this size): the scheduler serves the queue fold-major (mpisearch.fold_queue), so
# each node builds each fold once per chunk instead of once per small batch (with
# batches of 2 points per worker, a 600 MB fold costing ~0.5 s to build was rebuilt
# every few tasks: 1.1 s per task of overhead at 2 workers). Measured on rank 0
# (loaded 2-core machine, a grid of 5 folds): asking and queuing 10,000 tasks took
# 54 ms and ~420 bytes per task (tracemalloc), so a chunk of 20,000 tasks stalls
# rank 0 ~0.1-0.2 s and holds ~8 MB.
QUEUE_TASKS = 20_000
# ...and at least this many per worker (with many workers a chunk must still give
# each node many tasks per fold; 32 per worker is also what used to be queued whole:
# few tasks per worker make the tail, one long task started late, the makespan).
UPFRONT_TASKS_PER_WORKER = 32
# The first chunk of such a search is asked in pieces, so that the first tasks go out
# before the whole chunk is queued: first the points whose fold-0 tasks fill every
# worker's queue (W x prefetch), handed out at once, then a piece of this many points, or
# more (see piece_points), whenever the fold being served holds fewer tasks than the next
# dispatch could hand out (results are served between pieces). A piece in every pass, as
# before, took 72 ms of rank 0's first 110 ms at 1,024 workers x 20 ms tasks, and the
# workers were 27% busy in the second 55 ms (56% with pieces asked only when needed;
# efficiency 0.895-0.898 -> 0.925-0.927, bench_scale_sim.py). Measured (bench_scale_sim.py,
# 4,096 workers, 16 tasks each, load ~2): the last worker's first task 0.19 s after the
# start when the whole first chunk (32,768 points, ~6 us each) was asked first, 0.09 s in
# pieces; so a piece of 2,048 points stalls rank 0 ~12-16 ms, within the ~40 ms a worker's
# queue holds with 20 ms tasks.
START_PIECE_POINTS = 2048


def points_per_ask(total: int | None, whole_ok: bool, n_folds: int, n_workers: int, prefetch: int) -> int:
    """Points per ask: a search of fixed points (``total`` of them, when ``whole_ok``: fixed
    points, no time limit, no racing) whole, or in chunks of QUEUE_TASKS tasks (at least
    UPFRONT_TASKS_PER_WORKER per worker); else enough to refill every prefetch queue twice,
    and at least two per worker. Small batches keep points finishing steadily, so a time
    limit leaves few half-done points."""
    if whole_ok and total is not None:
        return max(1, min(total, max(QUEUE_TASKS, UPFRONT_TASKS_PER_WORKER * n_workers) // max(n_folds, 1)))
    refill = 2 * n_workers * prefetch
    return max(BATCH_POINTS_PER_WORKER * n_workers, math.ceil(refill / n_folds))


def fold_major(point_ids: list[int], n_folds: int, wanted: Callable[[int, int], bool]) -> Iterator[tuple[int, int]]:
    """(point, fold) pairs of new points, fold 0 of every point first (which measures their
    cost for longest-first ordering), keeping only those ``wanted(point, fold)``."""
    for fold in range(n_folds):
        for p in point_ids:
            if wanted(p, fold):
                yield p, fold


def piece_points(n_workers: int, prefetch: int) -> int:
    """Points asked in one piece of the rest of the first chunk (see START_PIECE_POINTS): at
    least what one dispatch may hand out (every queue refilled: ``n_workers * prefetch``
    fold-0 tasks), so the fold being served never runs out between pieces and every fold's
    tasks go out in the order one ask of the whole chunk would give."""
    return max(START_PIECE_POINTS, n_workers * prefetch)


# -- batches of short tasks (mpisearch.reuse.bundles.BundleKind.BATCH) ----------------------
# Rank 0 serves W workers whose tasks take T seconds each, spending c seconds of CPU per
# task: its load is rho = c * W / T. bench_scale_sim.py (quiet machine, journal on,
# before batching) measured rho ~0.2 with 0.99 efficiency (4,096 workers, 0.2-2 s tasks),
# rho ~0.8 with 0.92 (16,384 workers) and rho ~1.4 with 0.59 (1,024 workers, 20 ms tasks):
# results wait for rank 0 once it is busy about half of the time. Batches are not free
# (coarser units to balance): at 256 workers x 20 ms (rho ~0.4) an early estimate above
# 0.5 (few results, a loaded machine) formed batches once and cost 3 points (0.948 against
# 0.975-0.979), so tasks are batched from this load on (what rho would be without batches)...
START_LOAD = 0.7
# ...into batches of about ceil(rho / AIM_LOAD) points, which would bring rho to a tenth
# if all of rank 0's cost were per message. The cost of recording each result (table,
# journal line, strategy) is not divided: it is most of what is left (about 20 of 24 us
# per point at 1,024 workers x 20 ms), so the aim is set low and the other limits below
# decide. Measured (bench_scale_sim.py, 1,024 x 20 ms, two runs each, loaded machine):
# aim 0.25: 0.691/0.692 efficiency, 24.0 us per point; 0.1: 0.757/0.709, 21.7 us;
# 0.02: 0.713/0.760, 21.8 us.
AIM_LOAD = 0.1
# At most this many points per batch: a batch is one task for stealing and straggler
# copies, and 16 points leave rank 0 with its per-result cost only (about 40% of a task's
# at 1,024 workers x 20 ms, cProfile), which is what larger batches could still divide.
MAX_BATCH = 16
# A batch is expected to take at most this long (its points' mean task duration times
# their number): batches are for short tasks. Half of the scheduler's
# STRAGGLER_MIN_SECONDS, so that a batch stays a task too short to be copied as a
# straggler; with 0.2-2 s tasks (bench_scale_sim.py, 16,384 workers) batches of 2-5 such
# tasks unbalanced the run (0.91 -> 0.78 efficiency). The mean is that of the tasks
# finished, the quickest ones early on, so the longest task finished so far is the
# measure here (the age of the task running longest is not: rank 0 learns late that a
# task ended when it is saturated, which is when batches matter).
MAX_BATCH_SECONDS = 0.5
# Tasks finished before rank 0 trusts its measurement.
MIN_TIMED_TASKS = 32
# A batch is formed only while the queue (with the new tasks) holds at least this many
# units per worker (a unit: a task, a bundle or a batch): the prefetch depth, so every
# worker's queue can still be filled. Chosen, not tuned. The search's last ask follows
# the same rule task by task (guided self-scheduling: a batch holds at most the tasks
# from it on, in its fold and the folds served after it (served_later), / (W x
# UNITS_PER_WORKER)), so batches shrink towards the end of the search and its last
# 2 x UNITS_PER_WORKER tasks per worker go alone. Measured (1,024 x 20 ms, pickling and MPI
# free): with one batch size per ask and the last 4 tasks per worker alone, batches of 9
# (0.18 s) left workers 0.22 s apart at the end (efficiency 0.78 against 0.85 unbatched).
UNITS_PER_WORKER = 2

@dataclass(frozen=True)
class BatchPolicy:
    """When and how much rank 0 batches short tasks (the module's constants; tests inject others)."""

    start_load: float = START_LOAD
    aim_load: float = AIM_LOAD
    max_size: int = MAX_BATCH
    max_seconds: float = MAX_BATCH_SECONDS
    min_timed: int = MIN_TIMED_TASKS
    units_per_worker: int = UNITS_PER_WORKER


DEFAULT_POLICY = BatchPolicy()  # what a search uses (read at each search: tests put in their own)


@dataclass(frozen=True)
class Load:
    """What rank 0 measured since its loop started."""

    cpu_s: float  # its CPU serving tasks (the loop, less asking the strategy for points)
    tasks: int  # tasks finished meanwhile (a batch is one)
    sent: int  # tasks sent meanwhile (rank 0 pays for each sent and each finished task)
    points: int  # (point, fold) results they carried
    mean_task_s: float | None  # the scheduler's mean task duration (a batch: its members' sum)
    workers: int
    longest_task_s: float = 0.0  # the longest task finished so far (a batch: its points' sum)


def batch_size(policy: BatchPolicy, load: Load, queued: int) -> int:
    """Points per batch for the tasks asked now (1: no batches), ``queued`` tasks counting
    them. From rho = c * W / T per task measured now, times the points a task carried
    (an upper estimate of rho without batches, so k does not shrink back while rank 0's
    cost per point is unchanged): batches from START_LOAD on, of ceil(rho / AIM_LOAD)
    points, at most MAX_BATCH, at most MAX_BATCH_SECONDS of work and at most what leaves
    UNITS_PER_WORKER units per worker."""
    if load.tasks < policy.min_timed or not load.mean_task_s:
        return 1
    per_task = 2 * load.cpu_s / (load.sent + load.tasks)  # more sent than finished at the start: sending cost it
    rho = per_task * load.workers / load.mean_task_s * (load.points / load.tasks)
    if rho < policy.start_load:
        return 1
    share = queued // (load.workers * policy.units_per_worker)
    # per point: the longest task finished, not the mean (early on: of the quickest tasks)
    point_s = max(load.mean_task_s, load.longest_task_s) * load.tasks / load.points
    short = math.floor(policy.max_seconds / point_s)
    return max(1, min(math.ceil(rho / policy.aim_load), policy.max_size, share, short))


def guided_size(policy: BatchPolicy, size: int, left: int, workers: int) -> int:
    """Points in a batch followed by ``left`` tasks (itself included; see served_later) in the search's last ask:
    ``size`` at most, and at most left / (W x UNITS_PER_WORKER), so that the end balances."""
    return max(1, min(size, left // (workers * policy.units_per_worker)))


def served_later(new: dict[int, int], serving: int, n_folds: int) -> dict[int, int]:
    """For each fold of ``new`` (fold -> tasks just added), how many of those tasks are in folds
    served after it: the queue serves folds cyclically from the one it serves now
    (mpisearch.fold_queue), so only the last of them ends the search. Guiding every fold down as
    if it were the last left half the tasks of a 2-fold search's last ask unbatched
    (bench_scale_sim.py, 1,024 x 20 ms: 38,916 of 51,200 tasks in batches against 43,010, rank 0
    17.2 against 15.7 us per task, efficiency 0.881-0.896 against 0.891-0.893, three runs each)."""
    turn = {fold: (fold - serving) % n_folds for fold in new}
    return {fold: sum(k for other, k in new.items() if turn[other] > turn[fold]) for fold in new}


class LoadMeter:
    """Rank 0's CPU per task from the start of its loop, less the time it spends asking the
    strategy for points (paid per point whether batched or not)."""

    def __init__(self, cpu: Callable[[], float] = time.process_time) -> None:
        self.cpu = cpu
        self._mark: tuple[float, int, int, int] | None = None  # (CPU, tasks, points, sent) at the start
        self._asking = 0.0
        self.sent = 0  # tasks sent (counted by the coordinator)

    @property
    def started(self) -> bool:
        return self._mark is not None

    def start(self, tasks: int, points: int) -> None:
        self._mark = (self.cpu(), tasks, points, self.sent)

    def exclude(self, seconds: float) -> None:
        """CPU spent asking for points, not counted."""
        if self._mark is not None:
            self._asking += seconds

    def load(self, tasks: int, points: int, mean_task_s: float | None, workers: int, longest_task_s: float) -> Load:
        cpu, tasks0, points0, sent0 = self._mark or (self.cpu(), tasks, points, self.sent)
        return Load(max(self.cpu() - cpu - self._asking, 0.0), tasks - tasks0, self.sent - sent0, points - points0,
                    mean_task_s, workers, longest_task_s)
