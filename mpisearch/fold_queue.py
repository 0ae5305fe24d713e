"""Rank 0's queue of tasks not yet handed out, in fold-major order.

Tasks are served one fold at a time: every queued task of the current fold, then
the next fold that has queued tasks (cyclically: fold 0 comes again after the
last), so a node holds at most the fold its workers are leaving and the one they
are starting (see mpisearch.data.foldstore). Within a fold, tasks of points whose
duration is unknown go first, in the order they were added (each teaches the
scheduler its point's cost), then the others longest-expected first, ties by
task id.

The order is cyclic rather than "lowest fold first": points added while fold 3
is served (the next batch) wait for fold 0 to come round instead of sending the
node back to fold 0 and then to fold 3 again (each return rebuilds a fold).

Entries are removed lazily: the caller says which tasks are still queued and
reports each task that leaves the queue (:meth:`FoldQueue.left`), so every
operation costs O(log n) for n queued tasks (plus O(log F) for F folds when a
fold empties or fills).
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Callable, Container
from typing import Generic, Protocol, TypeVar


class Queued(Protocol):
    @property
    def task_id(self) -> int: ...

    @property
    def point_id(self) -> int: ...

    @property
    def fold(self) -> int: ...


T = TypeVar("T", bound=Queued)


class FoldQueue(Generic[T]):
    """Queued tasks by fold; :meth:`pop` gives the next in fold-major order (see the module docstring)."""

    def __init__(self) -> None:
        self._fresh: dict[int, deque[T]] = {}  # fold -> tasks whose point had no known duration when added
        self._known: dict[int, list[tuple[float, int, T]]] = {}  # fold -> heap (-expected, task_id, task)
        self._count: dict[int, int] = {}  # fold -> tasks still queued
        self._folds: list[int] = []  # folds with queued tasks, sorted
        self.current = 0  # the fold being served

    def add(self, task: T) -> None:
        self._fresh.setdefault(task.fold, deque()).append(task)
        n = self._count.get(task.fold, 0)
        self._count[task.fold] = n + 1
        if n == 0:
            bisect.insort(self._folds, task.fold)

    def left(self, task: T) -> None:
        """``task`` is no longer queued (handed out or dropped)."""
        n = self._count[task.fold] - 1
        if n:
            self._count[task.fold] = n
            return
        del self._count[task.fold]
        self._folds.pop(bisect.bisect_left(self._folds, task.fold))
        self._fresh.pop(task.fold, None)  # what is left there is stale
        self._known.pop(task.fold, None)

    def serving(self) -> int:
        """How many queued tasks the fold being served still holds: 0 once it has none left
        (the next :meth:`pop` moves on to the next fold then, unless tasks of this fold come
        first)."""
        return self._count.get(self.current, 0)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def pop(self, queued: Container[int], expected: Callable[[int], float | None]) -> T | None:
        """The next queued task (it stays queued until the caller reports :meth:`left`)."""
        fold = self._fold()
        if fold is None:
            return None
        fresh, known = self._fresh.get(fold), self._known.setdefault(fold, [])
        while fresh:
            task = fresh[0]
            if task.task_id not in queued:
                fresh.popleft()
                continue
            time = expected(task.point_id)
            if time is None:
                return task
            fresh.popleft()
            heapq.heappush(known, (-time, task.task_id, task))
        while known:
            task = known[0][2]
            if task.task_id in queued:
                return task
            heapq.heappop(known)
        raise AssertionError(f"fold {fold} counts queued tasks but holds none")  # left() not reported

    def _fold(self) -> int | None:
        """The fold to serve: the current one while it has queued tasks, else the next one
        (cyclically) that has."""
        if self._count.get(self.current):
            return self.current
        if not self._folds:
            return None
        i = bisect.bisect_left(self._folds, self.current)
        self.current = self._folds[i] if i < len(self._folds) else self._folds[0]
        return self.current
