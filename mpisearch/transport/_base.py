"""The transport interface between rank 0 (coordinator) and the workers, and its messages.

Messages are small: ids, a point's parameters the first time a worker sees
that point, scores and times. Data never travels in a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..evaluate import Subsample, TaskResult
from ..space import Params

COORDINATOR = 0  # rank of the coordinator


@dataclass(frozen=True)
class RunTask:
    task_id: int
    point_id: int
    fold: int
    params: Params | None = None  # sent only the first time a worker sees point_id
    subsample: Subsample | None = None  # sent with params: fit on this part of each fold


@dataclass(frozen=True)
class CancelTask:
    task_id: int


@dataclass(frozen=True)
class Stop:
    """No more work: drop queued tasks, answer with Bye, leave the loop."""


@dataclass(frozen=True)
class Result:
    task_id: int
    point_id: int
    fold: int
    result: TaskResult


@dataclass(frozen=True)
class Bye:
    """A worker's last message, with what it did (for run.json)."""

    stats: dict[str, Any] = field(default_factory=dict)


class Transport(Protocol):
    """Point-to-point messages between ranks; rank 0 is the coordinator."""

    rank: int
    size: int

    def send(self, msg: Any, dest: int) -> None:
        """Send ``msg`` to rank ``dest`` without waiting for it to be received."""

    def poll(self, timeout: float, max_sleep: float = ...) -> tuple[int, Any] | None:
        """Next message as ``(source, msg)``, waiting at most ``timeout`` seconds
        without burning a core; None if nothing arrived. ``max_sleep`` (seconds):
        how late a message may be noticed while waiting (longer: fewer wake-ups);
        the transport's default when not given, and never a busy spin."""
