"""What one worker rank tells its node's fold store about the folds its tasks need.

A fold that no task of the node waits for is evicted by the next build (see
:mod:`.foldstore`). A rank counts its tasks there as they arrive and end; the fold of
its last task stays counted while its queue is empty, until its next task arrives:
rank 0 may have sent more tasks of that fold already, and evicting it in between
(another rank of the node starting the next fold) would make the node build it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class RankDemand:
    """One rank's pending tasks, counted in its node's fold store (``store``: a
    :class:`.foldstore.NodeFoldStore`, or None: nothing to count)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._last: int | None = None  # fold of the last finished task, still counted (queue empty)

    def arrived(self, fold: int) -> None:
        if self.store is None:
            return
        self.store.expect(fold)
        self._let_go()

    def finished(self, fold: int, more: bool) -> None:
        """A task of ``fold`` ended; ``more``: this rank has other tasks queued or running."""
        if self.store is None:
            return
        self._let_go()
        if more:
            self.store.done(fold)
        else:
            self._last = fold

    def dropped(self, folds: Iterable[int]) -> None:
        """Tasks that will not run here (cancelled, or the search stopped)."""
        if self.store is not None:
            for fold in folds:
                self.store.done(fold)

    def close(self) -> None:
        if self.store is not None:
            self._let_go()

    def _let_go(self) -> None:
        if self._last is not None:
            self.store.done(self._last)
            self._last = None
