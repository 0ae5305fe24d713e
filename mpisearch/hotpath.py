"""Process settings for the duration of a search loop (rank 0's and the workers').

- :func:`frozen_heap`: everything alive when the loop starts (scikit-learn, SciPy and
  the data: ~500k objects on a worker rank) is taken out of the cyclic garbage
  collector's view (``gc.freeze``), so the collector's full passes scan only what the
  loop itself made. Measured on 4 worker ranks passing 16,000 no-op tasks: each rank
  ran one full collection of 40 ms (10 us per task), rank 0 two (77 ms); frozen, none
  of them took over 1 ms. Objects are unfrozen when the loop ends, so garbage among
  them is collected as usual afterwards. Rank 0 also freezes what its loop keeps
  (points, tasks, results) once per pass (:func:`freeze_kept`).
- :func:`rare_young_collections` on rank 0: the youngest generation is collected after
  GEN0_THRESHOLD allocations instead of 700.
- :func:`mpisearch.signatures.pinned_signatures` on ranks that clone estimators.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from .signatures import pinned_signatures

# Rank 0 makes several container objects per task (Task, Run, RunTask, Result, its
# TaskResult and scores, the table's entries) and keeps most of them, so with the default
# threshold of 700 the youngest generation was collected every ~100 tasks, each pass
# scanning objects that are all alive. Measured (bench_scale_sim.py, quiet machine): 20 ms
# tasks at 1,024 workers, efficiency 0.928 -> 0.9435-0.9437 (14.0-14.7 -> 13.6-13.9 us per
# task); 0.2-2 s tasks at 4,096 workers, 29.3-30.8 -> 29.1-29.2 us. A pass over 20,000
# young objects takes about 1 ms, well within what a worker's queued task hides.
GEN0_THRESHOLD = 20_000

_owned = False  # a frozen_heap block froze the heap and unfreezes it at its end


@contextmanager
def frozen_heap() -> Iterator[None]:
    """``gc.freeze()`` for the block, unless someone else froze objects already (then
    their freeze is left as it is)."""
    global _owned
    if gc.get_freeze_count() > 0:
        yield
        return
    gc.freeze()
    _owned = True
    try:
        yield
    finally:
        _owned = False
        gc.unfreeze()


def freeze_kept() -> None:
    """Inside a :func:`frozen_heap` block that froze the heap: freeze what was made since
    (O(1)), so full collections do not scan it again. Rank 0 keeps most of what its loop
    makes (points, tasks, results: several objects per task) until the search ends, and the
    collector's full passes, one each time the heap grows by a quarter, scanned it again and
    again: 4 us of rank 0's ~38 per task (bench_scale_sim.py, 1,024 workers x 20 ms tasks,
    against the collector off). What it frees by reference counting is freed as before;
    cyclic garbage made meanwhile waits for the block's end."""
    if _owned:
        gc.freeze()


_young_lock = threading.Lock()
_young_depth = 0  # rare_young_collections blocks open (searches in threads may overlap)
_young_before: tuple[int, ...] = ()  # the thresholds when the first of them opened


@contextmanager
def rare_young_collections(threshold: int = GEN0_THRESHOLD) -> Iterator[None]:
    """The collector's youngest generation collected after ``threshold`` allocations for the
    block (not lowered if it is higher already, left off if automatic collection was turned
    off by a threshold of 0); the thresholds from before the first open block once the last
    one closes, whatever order overlapping blocks (in threads) close in."""
    global _young_depth, _young_before
    with _young_lock:
        if _young_depth == 0:
            _young_before = gc.get_threshold()
        _young_depth += 1
        current = gc.get_threshold()
        if current[0] > 0:
            gc.set_threshold(max(current[0], threshold), *current[1:])
    try:
        yield
    finally:
        with _young_lock:
            _young_depth -= 1
            if _young_depth == 0:
                gc.set_threshold(*_young_before)


@contextmanager
def search_loop(estimator: Any = None, coordinator: bool = False) -> Iterator[None]:
    """The settings above; signatures pinned when ``estimator`` (cloned per task here) is given,
    rare young collections on the ``coordinator`` (rank 0)."""
    with ExitStack() as stack:
        if estimator is not None:
            stack.enter_context(pinned_signatures(estimator))
        stack.enter_context(frozen_heap())
        if coordinator:
            stack.enter_context(rare_young_collections())
        yield
