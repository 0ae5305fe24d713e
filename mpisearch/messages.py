"""What rank 0 and the workers say to each other, as matched pairs.

Rank 0 -> workers: one :class:`JobHeader` (or :class:`JobRefused`) by broadcast
at the start, then :class:`RunTask`, :class:`CancelTask` and finally
:class:`Stop`. Workers -> rank 0: :class:`Result` per task and a last
:class:`Bye`. Messages are small: ids, a point's parameters the first time a
worker sees that point, scores and times. Data never travels in a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .limits import TaskLimits
from .reuse.bundles import Bundle, ReuseCounts
from .types import Subsample, TaskResult

COORDINATOR = 0  # rank of the coordinator


@dataclass(frozen=True)
class JobHeader:
    """Broadcast by rank 0 before the data: what every worker needs to evaluate tasks."""

    estimator: Any
    scoring: Any
    shared_memory: bool  # the data arrives in a node-shared window
    task_limits: TaskLimits  # time and memory each task may take in its fit process
    train_scores: bool = False  # tasks also score their train part (return_train_score)
    prefix_cache_memory: int = 0  # bytes of fitted pipeline prefixes a worker keeps (mpisearch.reuse.prefix)


@dataclass(frozen=True)
class JobRefused:
    """Broadcast instead of a JobHeader when rank 0 failed before the search: workers raise ``error``."""

    error: BaseException


@dataclass(slots=True)  # one per task, never changed: not frozen, as mpisearch.scheduler.Task
class RunTask:
    task_id: int
    point_id: int
    fold: int
    params: dict[str, Any] | None = None  # sent only the first time a worker sees point_id
    subsample: Subsample | None = None  # sent with params: fit on this part of each fold
    bundle: Bundle | None = None  # several points of this fold, run together (point_id is the first)


@dataclass(frozen=True)
class CancelTask:
    task_id: int


@dataclass(frozen=True)
class Stop:
    """No more work: drop queued tasks, answer with Bye, leave the loop."""


@dataclass(slots=True)  # one per task, never changed: not frozen, as mpisearch.scheduler.Task
class Result:
    task_id: int
    point_id: int
    fold: int
    result: TaskResult


@dataclass(frozen=True)
class MemberResult:
    point_id: int
    result: TaskResult


@dataclass(frozen=True)
class BundleResult:
    """The results of a bundle's points (one message: the bundle is one task for the scheduler)."""

    task_id: int
    fold: int
    members: tuple[MemberResult, ...]
    reused: ReuseCounts


@dataclass(frozen=True)
class Heartbeat:
    """A worker rank is alive (sent only when it has sent nothing else for a while; see mpisearch.liveness)."""


@dataclass(frozen=True)
class Bye:
    """A worker's last message, with what it did (for run.json)."""

    stats: dict[str, Any] = field(default_factory=dict)


ToWorker = RunTask | CancelTask | Stop
ToCoordinator = Result | BundleResult | Heartbeat | Bye
