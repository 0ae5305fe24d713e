"""Policies: what the coordinator does beyond running every task of every point.

A policy answers named hooks with a :class:`Decision` and never acts itself;
the coordinator (mpisearch.coordinator) applies decisions in one place, in the
order its policies are given. Hooks:

- ``on_point(point_id)``: a new point was registered, before its tasks are made.
- ``on_result(point_id, fold, complete)``: a task's result was recorded
  (``complete``: the point now has all its folds).

Policies here: :class:`ReplayPolicy` (results of an earlier run, for
``--resume``) and :class:`RacingPolicy` (fold racing). Successive halving plugs
in as a strategy (mpisearch.strategies.halving): its rungs reach the coordinator
as each Proposal's ``group``, ``subsample`` and ``columns``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from .journal import Prior
from .racing import Racer
from .results import ResultTable
from .types import TaskResult


@dataclass(frozen=True)
class KnownResult:
    """A task's result that need not be computed (an earlier run has it)."""

    point_id: int
    fold: int
    result: TaskResult


@dataclass
class Decision:
    """What a policy asks of the coordinator."""

    known: list[KnownResult] = field(default_factory=list)  # record these results as if a worker sent them
    stop: list[int] = field(default_factory=list)  # stop these points: their other folds are not run


class Policy:
    """Base of coordinator policies: every hook decides nothing unless overridden."""

    def on_point(self, point_id: int) -> Decision:
        return Decision()

    def on_result(self, point_id: int, fold: int, complete: bool) -> Decision:
        return Decision()


class ReplayPolicy(Policy):
    """``--resume``: the folds an earlier run of the same search finished are not run again.

    With fold racing (``stops``), a point the earlier run stopped is stopped again
    where it was, unless all its folds were found."""

    def __init__(self, prior: Prior, table: ResultTable, stops: bool) -> None:
        self.prior = prior
        self.table = table
        self.stops = stops

    def on_point(self, point_id: int) -> Decision:
        key = self.table.key(point_id)
        known = [KnownResult(point_id, fold, result) for fold in range(self.table.n_folds)
                 if (result := self.prior.results.get((key, fold))) is not None]
        stopped = self.stops and known and len(known) < self.table.n_folds and key in self.prior.stopped
        return Decision(known=known, stop=[point_id] if stopped else [])


class RacingPolicy(Policy):
    """Fold racing (mpisearch.racing): after fold results, stop this point, or, if it became
    its group's best, every unfinished point of the group that can no longer beat it."""

    def __init__(self, racer: Racer, table: ResultTable, metric: str, group_of: Callable[[int], Hashable]) -> None:
        self.racer = racer
        self.table = table
        self.metric = metric
        self.group_of = group_of
        self._racing: dict[Hashable, set[int]] = {}  # group -> points with some folds done, not finished

    def on_point(self, point_id: int) -> Decision:
        """Race on every fold a new point already has (replayed), at once."""
        ran = self.table.ran_folds(point_id)
        return self._race(point_id, ran, self.table.is_complete(point_id)) if ran else Decision()

    def on_result(self, point_id: int, fold: int, complete: bool) -> Decision:
        return self._race(point_id, [fold], complete)

    def _race(self, point_id: int, folds: list[int], complete: bool) -> Decision:
        if point_id in self.table.stopped:
            return Decision()
        group = self.group_of(point_id)
        for fold in folds:
            self.racer.observe(group, self.table.score(point_id, fold, self.metric))
        racing = self._racing.setdefault(group, set())
        if not complete:
            racing.add(point_id)
            stop = [point_id] if self._beaten(group, point_id) else []
        else:
            racing.discard(point_id)
            new_best = self.racer.finished(group, self.table.fold_scores(point_id, self.metric),
                                           self.table.mean_score(point_id, self.metric))
            stop = [p for p in sorted(racing) if self._beaten(group, p)] if new_best else []
        racing.difference_update(stop)
        return Decision(stop=stop)

    def _beaten(self, group: Hashable, point_id: int) -> bool:
        return self.racer.should_stop(group, self.table.fold_scores(point_id, self.metric),
                                      self.table.ran_folds(point_id))
