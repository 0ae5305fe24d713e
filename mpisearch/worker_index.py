"""Indexes that let rank 0's scheduler find a worker without scanning all of them.

Both are heaps with lazy deletion: an update pushes a new entry and leaves the
old one in place, marked stale by a version number; stale entries are skipped
when they reach the top, and the heaps are rebuilt from the live state when
stale entries outnumber live ones by COMPACT_FACTOR, so every operation costs
O(log W) amortised for W workers.
"""

from __future__ import annotations

import heapq

# Rebuild a heap once it holds this many entries per live one (and at least
# COMPACT_MIN in all): the rebuild costs O(W) and comes after >= 3 W updates,
# so it adds O(1) per update; a larger factor only wastes memory.
COMPACT_FACTOR = 4
COMPACT_MIN = 1024


class QueueLengths:
    """The length of each worker's queue, by worker index (0..n-1): the shortest
    queue (ties: the lowest index) and the longest queue (ties: the lowest index)
    in O(log n), how many queues are not empty and how many tasks they hold in O(1)."""

    def __init__(self, n: int) -> None:
        self.lengths = [0] * n
        self._version = [0] * n
        self._short: list[tuple[int, int, int]] = [(0, i, 0) for i in range(n)]  # (length, index, version)
        # (-length, index, version), built at the first longest() (stealing: only once nothing is
        # queued, so a grid's search keeps it only in its last tasks), then kept: one heap push
        # less per update before (0.3-0.5 us, and a smaller heap to keep in cache)
        self._long: list[tuple[int, int, int]] | None = None
        self.n_busy = 0  # queues that are not empty
        self.total = 0  # tasks in all queues
        self._cap = COMPACT_FACTOR * n + COMPACT_MIN  # entries per heap before a rebuild

    def set(self, i: int, length: int) -> None:
        """Queue ``i`` now holds ``length`` tasks (also after :meth:`pop_shortest`)."""
        old = self.lengths[i]
        self.n_busy += (length > 0) - (old > 0)
        self.total += length - old
        self.lengths[i] = length
        self._version[i] += 1
        v = self._version[i]
        heapq.heappush(self._short, (length, i, v))
        if self._long is not None:
            heapq.heappush(self._long, (-length, i, v))
        if len(self._short) > self._cap or (self._long is not None and len(self._long) > self._cap):
            self._compact()

    def pop_shortest(self, below: int) -> int | None:
        """The index of the shortest queue if it is shorter than ``below``, taken out
        of the index until the caller calls :meth:`set` for it; else None."""
        heap = self._short
        while heap and heap[0][0] < below:
            length, i, v = heapq.heappop(heap)
            if v == self._version[i]:  # i has no live entry here until set() is called
                return i
        return None

    def longest(self) -> tuple[int, int]:
        """(index, length) of the longest queue (lowest index among equals); queues
        taken out by :meth:`pop_shortest` count here until they are set again."""
        if self._long is None:
            self._long = self._long_heap()
        heap = self._long
        while heap[0][2] != self._version[heap[0][1]]:
            heapq.heappop(heap)
        return heap[0][1], -heap[0][0]

    def _long_heap(self) -> list[tuple[int, int, int]]:
        heap = [(-n, i, self._version[i]) for i, n in enumerate(self.lengths)]
        heapq.heapify(heap)
        return heap

    def _compact(self) -> None:
        self._version = [0] * len(self.lengths)
        self._short = [(n, i, 0) for i, n in enumerate(self.lengths)]
        heapq.heapify(self._short)
        if self._long is not None:
            self._long = self._long_heap()


class Deadlines:
    """Running tasks by the time from which they may be stragglers: entries are
    (deadline, worker index, task id, start) and may be stale; the caller checks
    each entry it gets back against its own state."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, float]] = []

    def push(self, deadline: float, i: int, task_id: int, start: float) -> None:
        heapq.heappush(self._heap, (deadline, i, task_id, start))

    def pop_due(self, now: float) -> tuple[float, int, int, float] | None:
        """Take out the entry with the earliest deadline (ties: the lowest worker index)
        if that deadline is not after ``now``; else None."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)
        return None

    def __len__(self) -> int:
        return len(self._heap)
