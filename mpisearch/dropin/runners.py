"""Running a search's gathered tasks in this process (no MPI launcher, or one rank)."""

from __future__ import annotations

from typing import Any

from joblib import Parallel, delayed

from .collect import Call, Outcome


class LocalRunner:
    """Tasks in order in this process, or on ``n_jobs`` joblib workers as scikit-learn
    would run them; stops at the first task that raises (``error_score="raise"``)."""

    def __init__(self, n_jobs: int | None = None, pre_dispatch: Any = "2*n_jobs") -> None:
        self.n_jobs = n_jobs
        self.pre_dispatch = pre_dispatch

    def __call__(self, calls: list[Call]) -> list[Outcome]:
        if self.n_jobs in (None, 1):
            return _in_order(calls)
        try:
            values = Parallel(n_jobs=self.n_jobs, pre_dispatch=self.pre_dispatch)(
                delayed(c.func)(*c.args, **c.kwargs) for c in calls)
        except Exception as exc:  # joblib raises the first failure; every task reports it
            return [Outcome(error=exc)] * len(calls)
        return [Outcome(value=v) for v in values]


def _in_order(calls: list[Call]) -> list[Outcome]:
    outcomes = []
    for c in calls:
        try:
            outcomes.append(Outcome(value=c.func(*c.args, **c.kwargs)))
        except Exception as exc:
            return outcomes + [Outcome(error=exc)] * (len(calls) - len(outcomes))
    return outcomes
