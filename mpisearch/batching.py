"""How many points rank 0 asks its strategy for at a time, and in which order their tasks go out."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

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
# worker's queue (W x prefetch), handed out at once, then one piece per pass of rank 0's
# loop (results are served between pieces) of this many points, or more (see
# piece_points). Measured (bench_scale_sim.py, 4,096 workers, 16 tasks each, load ~2):
# the last worker's first task 0.19 s after the start when the whole first chunk (32,768
# points, ~6 us each) was asked first, 0.09 s in pieces; so a piece of 2,048 points
# stalls rank 0 ~12-16 ms, within the ~40 ms a worker's queue holds with 20 ms tasks.
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
    """Points asked in one pass for the rest of the first chunk (see START_PIECE_POINTS): at
    least what one dispatch may hand out (every queue refilled: ``n_workers * prefetch``
    fold-0 tasks), so the fold being served never runs out between pieces and every fold's
    tasks go out in the order one ask of the whole chunk would give."""
    return max(START_PIECE_POINTS, n_workers * prefetch)
