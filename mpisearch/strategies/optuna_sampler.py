"""Any Optuna sampler (TPE, CMA-ES, NSGA-II, GP, ...) as an mpisearch strategy.

Needs ``optuna`` (``pip install "mpisearch[optuna]"``). The study lives in
memory on rank 0 and maximises the ranking score. As with ``bayes``, point
``i`` is asked from the sampler once every point before ``i - batch + 1`` is
scored, and exactly those results have been told to the study then (in the
order of the points; the ``batch - 1`` points in between are running trials),
so the points depend on the seed, ``batch`` and the scores only: the same at
any number of ranks, and again on resume. Failed points (NaN) are failed
trials; points stopped by fold racing are told their mean over the folds run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from ..space import Categorical, Dimension, Integer, Params, Real, SearchSpace
from ._base import PointResult, Proposal, Strategy, StrategySettings

SUBSPACE_PARAM = "subspace"  # the Optuna parameter that selects one of several subspaces
OPTUNA_CHOICE_TYPES = (type(None), bool, int, float, str)  # what suggest_categorical takes


class OptunaStrategy(Strategy):
    def __init__(self, space: SearchSpace, settings: StrategySettings, sampler: Any) -> None:
        import optuna

        super().__init__(space)
        _check_space(space)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.settings = settings
        self.study = optuna.create_study(sampler=sampler, direction="maximize")
        self._trials: list[Any] = []
        self._scores: dict[int, float] = {}
        self._told = 0

    def ask(self, n: int) -> list[Proposal]:
        out: list[Proposal] = []
        while len(out) < n and not self.finished:
            i = len(self._trials)
            first_pending = max(i - self.settings.batch + 1, 0)
            if any(j not in self._scores for j in range(self._told, first_pending)):
                break
            self._tell_below(first_pending)
            trial = self.study.ask()
            self._trials.append(trial)
            out.append(Proposal(self._suggest(trial), tag=i))
        return out

    def tell(self, results: Sequence[PointResult]) -> None:
        for r in results:
            self._scores[int(r.tag)] = r.score

    @property
    def finished(self) -> bool:
        return len(self._trials) >= self.settings.n_iter

    @property
    def total(self) -> int:
        return self.settings.n_iter

    def _tell_below(self, m: int) -> None:
        import math

        from optuna.trial import TrialState

        for j in range(self._told, m):
            score = self._scores[j]
            if math.isnan(score):
                self.study.tell(self._trials[j], state=TrialState.FAIL)
            else:
                self.study.tell(self._trials[j], score)
        self._told = max(self._told, m)

    def _suggest(self, trial: Any) -> Params:
        subs = self.space.subspaces
        j = trial.suggest_categorical(SUBSPACE_PARAM, list(range(len(subs)))) if len(subs) > 1 else 0
        suffix = f" [{j}]" if len(subs) > 1 else ""
        return {name: _suggest_one(trial, name + suffix, subs[j][name]) for name in sorted(subs[j])}


def _suggest_one(trial: Any, key: str, d: Dimension) -> Any:
    if isinstance(d, Real):
        return trial.suggest_float(key, d.low, d.high, log=d.log)
    if isinstance(d, Integer):
        return trial.suggest_int(key, d.low, d.high, log=d.log)
    assert isinstance(d, Categorical)
    if all(isinstance(c, OPTUNA_CHOICE_TYPES) for c in d.categories):
        return trial.suggest_categorical(key, list(d.categories))
    return d.categories[trial.suggest_categorical(key, list(range(len(d.categories))))]


def _check_space(space: SearchSpace) -> None:
    for sub in space.subspaces:
        for name, d in sub.items():
            if not isinstance(d, (Real, Integer, Categorical)):
                raise InputError(f"space.{name}: an Optuna sampler needs Real, Integer or a list of values, "
                                 f"got {d!r}")


__all__ = ["OptunaStrategy"]
