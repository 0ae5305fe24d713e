"""The strategy interface: what to evaluate next (ask) and what was learnt (tell).

Who calls what, and when (the coordinator on rank 0 is the only caller):

- ``ask(n)`` whenever workers could take more work; returns up to ``n`` new
  points (parameter dicts, or :class:`Proposal` when a point needs more than
  its parameters). An empty list while ``finished`` is False means "wait for
  results".
- ``tell(results)`` once per point, after *all* of its folds are done, or
  once it was stopped early by fold racing (``stopped`` is then True and the
  score is the mean over the folds it ran). One call may carry several points
  (those a bundle of tasks completed). A strategy that keeps the default
  ``tell`` (which ignores them) is not told.
- ``finished`` is True once ``ask`` will never return another point.

Strategies never evaluate anything and never see data.

Open strategies: ``strategy = "package.module:Class"`` (config) or
``MPISearchCV(strategy="package.module:Class")`` builds ``Class(space, settings)``
with the :class:`SearchSpace` and a :class:`StrategySettings`; ``Class`` must
subclass :class:`Strategy`. Its points must depend only on the settings and the
scores told (never on the number of workers or on when results arrive), so that
a search gives the same ``cv_results_`` at any number of ranks and a resumed
search (which tells the journal's results again) proposes the same points.
An Optuna sampler class (``optuna.samplers:TPESampler``) is run through
:class:`mpisearch.strategies.optuna_sampler.OptunaStrategy`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..space import Params, SearchSpace
from ..types import Subsample

# Points in flight of a model-based strategy (bayes, open strategies) unless
# ``[search] batch`` says otherwise: a constant, so that the points do not depend
# on the number of workers. 4 keeps 4 x cv folds tasks running (20 with cv=5)
# and costs little regret (bench_bayes.py: 4 in flight against 1).
DEFAULT_BATCH = 4


@dataclass(frozen=True)
class StrategySettings:
    """What a search tells its strategy besides the space (see "Open strategies")."""

    n_iter: int  # points to propose
    random_state: int | None = None  # seed: the same seed and scores give the same points
    batch: int = DEFAULT_BATCH  # at most this many points proposed and not yet scored


@dataclass(frozen=True)
class Proposal:
    """A point to evaluate, with what a plain parameter dict cannot say.

    ``tag`` comes back in the point's :class:`PointResult`; ``columns`` are
    extra ``cv_results_`` columns of the point (halving's ``iter`` and
    ``n_resources``); ``group`` is what fold racing compares the point with
    (points of one halving rung); ``subsample`` makes the workers fit on a
    part of each fold (halving with ``resource = "n_samples"``); ``position``
    is the point's row in ``cv_results_`` when it differs from the order of
    proposal (a grid evaluated in a shuffled order).
    """

    params: Params
    tag: Any = None
    columns: dict[str, Any] | None = None
    group: Any = None
    subsample: Subsample | None = None
    position: int | None = None


@dataclass(frozen=True)
class PointResult:
    """What a strategy learns about one finished point."""

    point_id: int
    params: Params
    score: float  # mean over folds of the ranking metric; NaN if every fold failed
    tag: Any = None  # the Proposal's tag
    stopped: bool = False  # stopped by fold racing: score is the mean over the folds it ran


def as_proposal(point: Params | Proposal) -> Proposal:
    return point if isinstance(point, Proposal) else Proposal(point)


class Strategy(ABC):
    """Base class of search strategies (ask/tell)."""

    # True when ask's answers never depend on tell (points fixed up front): asking
    # for all of them at once then loses nothing.
    fixed_points = False

    def __init__(self, space: SearchSpace) -> None:
        self.space = space  # what the strategy searches (open strategies read it here)

    @abstractmethod
    def ask(self, n: int) -> list[Params] | list[Proposal]:
        """Return up to ``n`` new points to evaluate."""

    def tell(self, results: Sequence[PointResult]) -> None:  # noqa: B027 - optional hook
        """Learn from finished points (all folds done). Default: ignore."""

    @property
    @abstractmethod
    def finished(self) -> bool:
        """True once ``ask`` will never return another point."""

    @property
    def total(self) -> int | None:
        """Number of points this strategy will propose, when known in advance."""
        return None


class ListStrategy(Strategy):
    """A strategy whose points are fixed up front (grid, random)."""

    fixed_points = True

    def __init__(self, space: SearchSpace, points: list[Params]) -> None:
        super().__init__(space)
        self._points = points
        self._next = 0

    def ask(self, n: int) -> list[Params]:
        batch = self._points[self._next : self._next + max(n, 0)]
        self._next += len(batch)
        return batch

    @property
    def finished(self) -> bool:
        return self._next >= len(self._points)

    @property
    def total(self) -> int:
        return len(self._points)
