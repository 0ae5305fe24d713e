"""How a caller follows and steers a search on rank 0: journal, results to resume, stop requests, progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .journal import Prior
from .progress import Progress
from .types import TaskResult


class JournalLike(Protocol):
    """Where finished tasks are recorded (see mpisearch.journal.Journal)."""

    def write(self, point_id: int, fold: int, result: TaskResult, params: Any,
              n_resources: int | None = None) -> None: ...

    def stop(self, point_id: int, params: Any, n_resources: int | None = None) -> None: ...

    def flush(self) -> None: ...


class StopRequest:
    """Set from a signal handler (or anywhere) to end a search gracefully."""

    def __init__(self) -> None:
        self.count = 0

    def request(self) -> None:
        self.count += 1

    @property
    def requested(self) -> bool:
        return self.count > 0


@dataclass
class RunControl:
    """How the caller follows and steers a run (used on rank 0 only)."""

    journal: JournalLike | None = None  # records each finished task; flushed before more work goes out
    prior: Prior = field(default_factory=Prior)  # results of an earlier run of the same search (--resume)
    stop: StopRequest = field(default_factory=StopRequest)  # set by a signal handler to stop gracefully
    progress: Progress | None = None  # live display on rank 0
