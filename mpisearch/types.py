"""Plain types that cross module boundaries: what a task produced, how a run ended.

The bottom of the package: imports nothing from mpisearch, so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from sklearn.utils import resample


@dataclass(frozen=True)
class Subsample:
    """Fit on a part of each fold, as scikit-learn's successive halving does with
    ``resource="n_samples"``: ``int(fraction * len(part))`` indices drawn without
    replacement by ``sklearn.utils.resample`` with a fixed seed, so every worker
    draws the same indices and a larger fraction holds every smaller one (nested)."""

    fraction: float
    random_state: int = 0
    test: bool = False  # also score on a part of the test fold (scikit-learn's halving does)

    def indices(self, idx: np.ndarray) -> np.ndarray:
        return resample(idx, replace=False, random_state=self.random_state, n_samples=int(self.fraction * len(idx)))

    def apply(self, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.indices(train), self.indices(test) if self.test else test


class Failure(StrEnum):
    """Why a task has no scores (``TaskResult.reason``; kept in the journal)."""

    FIT = "fit"  # the estimator's fit raised
    SCORE = "score"  # a scorer raised or returned no number
    TIMEOUT = "timeout"  # longer than search.task_timeout
    CRASH = "crash"  # the fit process died (a signal, os._exit, sys.exit, ...): see mpisearch.isolation


@dataclass
class TaskResult:
    """Scores and times of one (point, fold) task; ``error`` is a traceback or None."""

    scores: dict[str, float] = field(default_factory=dict)
    fit_time: float = 0.0
    score_time: float = 0.0
    error: str | None = None
    reason: str | None = None  # a Failure when error is set
    warnings: dict[str, int] = field(default_factory=dict)  # "Category: message" -> count
    origin: str | None = None  # "rank R (host H)" where it ran, set by MPI workers
    started: float = 0.0  # wall-clock time (time.time()) when the task started, for timelines
    rank: int | None = None  # the rank that ran it (set by the worker)
    train_scores: dict[str, float] = field(default_factory=dict)  # on the train part (return_train_score)


class StopReason(StrEnum):
    """Why a search handed out no more work before its strategy was finished (run.json ``stopped``)."""

    MAX_TIME = "max_time"  # search.max_time spent
    SIGNAL = "signal"  # SIGTERM / SIGUSR1 (or a StopRequest)


class RunStatus(StrEnum):
    """How a run ended (run.json ``status``)."""

    RUNNING = "running"
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    REFIT_FAILED = "refit failed"
    FAILED = "failed"  # the search stopped on an error (run.json ``error`` says which)


@dataclass
class Outcome:
    """What every rank knows after a search: scikit-learn's ``cv_results_`` and the run's facts."""

    cv_results: dict[str, Any]
    metrics: list[str]
    rank_metric: str
    best_index: int | None
    n_splits: int
    info: dict[str, Any] = field(default_factory=dict)  # run.json's facts (times, workers, stopped, ...)

    @property
    def best_params(self) -> dict[str, Any] | None:
        return None if self.best_index is None else self.cv_results["params"][self.best_index]

    @property
    def best_score(self) -> float | None:
        if self.best_index is None:
            return None
        return float(self.cv_results[f"mean_test_{self.rank_metric}"][self.best_index])

    @property
    def stopped(self) -> StopReason | None:
        return self.info.get("stopped")
