"""Rank 0's outgoing messages: the scheduler's actions as RunTask/CancelTask, one message per worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .messages import CancelTask, RunTask
from .reuse.bundles import Bundle
from .scheduler import Cancel, Run
from .transport import Transport
from .types import Subsample


class Outbox:
    """Sends actions to workers: a list per worker when several go at once, and a point's
    parameters (and subsample) only the first time a worker sees the point."""

    def __init__(self, transport: Transport, workers: Sequence[int],
                 point: Callable[[int], tuple[dict[str, Any], Subsample | None]],
                 bundle: Callable[[int], Bundle | None] = lambda task_id: None) -> None:
        self.transport = transport
        self.point = point  # point id -> (parameters, subsample)
        self.bundle = bundle  # task id -> its bundle, if it is one (members' parameters travel with it)
        self._seen: dict[int, set[int]] = {w: set() for w in workers}

    def send(self, actions: Sequence[Run | Cancel]) -> None:
        outgoing: dict[int, list[RunTask | CancelTask]] = {}
        for action in actions:
            outgoing.setdefault(action.worker, []).append(self._message(action))
        for worker, msgs in outgoing.items():
            self.transport.send(msgs if len(msgs) > 1 else msgs[0], worker)

    def _message(self, action: Run | Cancel) -> RunTask | CancelTask:
        task = action.task
        if isinstance(action, Cancel):
            return CancelTask(task.task_id)
        bundle = self.bundle(task.task_id)
        if bundle is not None:
            return RunTask(task.task_id, task.point_id, task.fold, bundle=bundle)
        seen = self._seen[action.worker]
        if task.point_id in seen:
            return RunTask(task.task_id, task.point_id, task.fold)
        seen.add(task.point_id)
        return RunTask(task.task_id, task.point_id, task.fold, *self.point(task.point_id))
