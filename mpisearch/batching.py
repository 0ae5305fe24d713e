"""How many points rank 0 asks its strategy for at a time, and in which order their tasks go out."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

# Points asked from the strategy per worker at each top-up (see points_per_ask).
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


def points_per_ask(total: int | None, whole_ok: bool, n_folds: int, n_workers: int, prefetch: int) -> int:
    """Points per ask: all of a small search of fixed points (``total`` of them, when
    ``whole_ok``: fixed points, no time limit, no racing; see UPFRONT_TASKS_PER_WORKER),
    else enough to refill every prefetch queue twice, and at least two per worker. Small
    batches keep points finishing steadily, so a time limit leaves few half-done points."""
    if whole_ok and total is not None and total * n_folds <= UPFRONT_TASKS_PER_WORKER * n_workers:
        return total
    refill = 2 * n_workers * prefetch
    return max(BATCH_POINTS_PER_WORKER * n_workers, math.ceil(refill / n_folds))


def fold_major(point_ids: list[int], n_folds: int, wanted: Callable[[int, int], bool]) -> Iterator[tuple[int, int]]:
    """(point, fold) pairs of new points, fold 0 of every point first (which measures their
    cost for longest-first ordering), keeping only those ``wanted(point, fold)``."""
    for fold in range(n_folds):
        for p in point_ids:
            if wanted(p, fold):
                yield p, fold
