"""What rank 0 measures during a search, and the facts about it that go into run.json."""

from __future__ import annotations

import math
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .reuse.bundles import ReuseCounts
from .types import StopReason


@dataclass
class RunStats:
    """What rank 0 measured, for run.json."""

    search_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the coordinator's process during the search
    n_tasks: int = 0
    n_resumed: int = 0  # tasks taken from the journal of an earlier run
    n_duplicates: int = 0
    duplicate_s: float = 0.0  # fit + score seconds of duplicate results (straggler copies that lost)
    n_stolen: int = 0
    n_raced: int = 0  # points stopped by fold racing
    n_raced_tasks: int = 0  # their folds that were never scored
    n_late: int = 0  # results that came after their point was stopped (dropped)
    late_s: float = 0.0  # fit + score seconds of those results
    workers: dict[int, dict[str, Any]] = field(default_factory=dict)  # rank -> what its Bye reported
    stopped: StopReason | None = None  # why the search ended early
    abandoned: bool = False  # grace period over: running tasks were not waited for
    warnings: Counter[str] = field(default_factory=Counter)  # "Category: message" -> tasks
    bundles: int = 0  # bundles run (tasks of several points of one fold, see mpisearch.reuse)
    reused: ReuseCounts = field(default_factory=ReuseCounts)  # what the bundles saved
    batches: int = 0  # batches of short tasks formed (mpisearch.batching.batch_size; those run count in bundles)
    batched_points: int = 0  # (point, fold) tasks in them

    def wasted(self, seconds: float, late: bool) -> None:
        """A result nobody needs: of a point stopped meanwhile (``late``), or a straggler copy that lost."""
        if late:
            self.n_late += 1
            self.late_s += seconds
        else:
            self.n_duplicates += 1
            self.duplicate_s += seconds

    @property
    def timed_out(self) -> bool:
        return self.stopped == StopReason.MAX_TIME

    def info(self) -> dict[str, Any]:
        """run.json's facts about the search loop and the workers."""
        workers = {str(r): s for r, s in sorted(self.workers.items())}
        busy = sum(s.get("busy_s", 0.0) for s in workers.values())
        host = socket.gethostname()
        return {
            "coordinator_host": host,
            "hosts": sorted({host, *(s.get("host", host) for s in workers.values())}),
            "busy_s": busy,
            "idle_s": sum(s.get("idle_s", 0.0) for s in workers.values()),
            "search_s": self.search_s,
            "coordinator_cpu_s": self.cpu_s,
            "tasks": self.n_tasks,
            "duplicate_results": self.n_duplicates,
            "duplicate_s": self.duplicate_s,
            "stolen_tasks": self.n_stolen,
            "raced_points": self.n_raced,
            "raced_tasks": self.n_raced_tasks,
            "late_results": self.n_late,
            "late_s": self.late_s,
            "timed_out": self.timed_out,
            "stopped": self.stopped,
            "abandoned": self.abandoned,
            "resumed_tasks": self.n_resumed,
            "reused": {"bundles": self.bundles, **self.reused.as_dict()},
            "batches": {"formed": self.batches, "tasks": self.batched_points},
            "warnings": dict(self.warnings.most_common()),
            "workers": workers,
            **self._utilisation(busy, max(len(workers), 1)),
        }

    def _utilisation(self, busy: float, n_workers: int) -> dict[str, float]:
        if self.search_s <= 0:
            return {"utilisation": math.nan, "useful_utilisation": math.nan}
        capacity = n_workers * self.search_s
        # without the work that was thrown away: straggler copies that lost, results of raced-out points
        return {"utilisation": busy / capacity,
                "useful_utilisation": (busy - self.duplicate_s - self.late_s) / capacity}
