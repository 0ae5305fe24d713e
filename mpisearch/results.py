"""Results of a search: per-task scores -> scikit-learn's ``cv_results_``.

``error_score`` is applied here and nowhere else; failures are grouped by
traceback, as scikit-learn does.
"""

from __future__ import annotations

import numbers
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.ma import MaskedArray
from scipy.stats import rankdata
from sklearn.exceptions import FitFailedWarning

from .errors import SearchFailedError
from .evaluate import TaskResult
from .space import Params


class TaskFailedError(SearchFailedError):
    """A fit failed and ``error_score='raise'``; carries the remote traceback."""


class ResultTable:
    """Every (point, fold) result of a run, keyed by ids, in point order."""

    def __init__(self, metrics: Sequence[str], n_folds: int, error_score: Any = np.nan) -> None:
        if not (error_score == "raise" or isinstance(error_score, numbers.Number)):
            raise ValueError(f"error_score must be 'raise' or a number, got {error_score!r}")
        self.metrics = list(metrics)
        self.n_folds = n_folds
        self.error_score = error_score
        self.points: list[Params] = []
        self.tasks: dict[tuple[int, int], TaskResult] = {}
        self._done_folds: Counter[int] = Counter()

    def add_point(self, params: Params) -> int:
        self.points.append(params)
        return len(self.points) - 1

    def add(self, point_id: int, fold: int, result: TaskResult, where: str = "") -> bool:
        """Store a task's result; True when the point has all its folds."""
        if result.error is not None and self.error_score == "raise":
            last_line = result.error.strip().splitlines()[-1]
            raise TaskFailedError(
                f"fit of point {self.points[point_id]} on fold {fold} failed{where}: {last_line}\n{result.error}"
            )
        if (point_id, fold) not in self.tasks:
            self.tasks[(point_id, fold)] = result
            self._done_folds[point_id] += 1
        return self.is_complete(point_id)

    def is_complete(self, point_id: int) -> bool:
        return self._done_folds[point_id] == self.n_folds

    def scores(self, point_id: int, metric: str) -> np.ndarray:
        """Per-fold scores of one point, error_score where a fold failed."""
        return np.array([self._score(self.tasks[(point_id, k)], metric) for k in range(self.n_folds)])

    def mean_score(self, point_id: int, metric: str) -> float:
        """What np.average gives (and cv_results_ reports), bit for bit, at a third of its cost."""
        scores = self.scores(point_id, metric)
        return float(np.add.reduce(scores)) / len(scores)

    def _score(self, r: TaskResult, metric: str) -> float:
        return float(self.error_score) if r.error is not None else r.scores[metric]

    def complete_ids(self) -> list[int]:
        return [p for p in range(len(self.points)) if self.is_complete(p)]

    # -- failures -----------------------------------------------------------------
    def failures(self) -> Counter[str]:
        """Tracebacks of failed tasks, grouped (identical ones counted)."""
        return Counter(r.error for r in self.tasks.values() if r.error is not None)

    def check_failures(self) -> None:
        """Raise if every fit failed, warn (grouped) if some did; as scikit-learn."""
        failed = self.failures()
        n_failed, n_total = sum(failed.values()), len(self.tasks)
        if not n_failed:
            return
        summary = "\n".join(f"{n} fits failed with the following error:\n{tb}" for tb, n in failed.most_common())
        if n_failed == n_total:
            last_line = failed.most_common(1)[0][0].strip().splitlines()[-1]
            raise SearchFailedError(f"all the {n_total} fits failed; most common error: {last_line}\n"
                                    f"The grouped errors are:\n{summary}")
        warnings.warn(
            f"{n_failed} fits failed out of a total of {n_total}; the score on these train-test partitions "
            f"for these parameters will be set to {self.error_score}.\n{summary}",
            FitFailedWarning,
            stacklevel=2,
        )

    # -- cv_results_ ------------------------------------------------------------------
    def cv_results(self) -> dict[str, Any]:
        """scikit-learn's ``cv_results_`` over the complete points, in point order."""
        ids = self.complete_ids()
        params = [self.points[p] for p in ids]
        results: dict[str, Any] = {}
        times = [[self.tasks[(p, k)] for k in range(self.n_folds)] for p in ids]
        _store(results, "fit_time", self._array([[t.fit_time for t in row] for row in times]))
        _store(results, "score_time", self._array([[t.score_time for t in row] for row in times]))
        results.update(param_columns(params))
        results["params"] = params
        for metric in self.metrics:
            table = self._array([self.scores(p, metric) for p in ids])
            _store(results, f"test_{metric}", table, splits=True, rank=True)
        return results

    def _array(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        return np.array(rows, dtype=np.float64).reshape(len(rows), self.n_folds)


def _store(results: dict[str, Any], key: str, array: np.ndarray, splits: bool = False, rank: bool = False) -> None:
    """Mean/std/splits/rank columns (points x folds), computed exactly as scikit-learn does."""
    if splits:
        for k in range(array.shape[1]):
            results[f"split{k}_{key}"] = array[:, k]
    means = np.average(array, axis=1) if len(array) else np.zeros(0)
    results[f"mean_{key}"] = means
    results[f"std_{key}"] = np.sqrt(np.average((array - means[:, None]) ** 2, axis=1)) if len(array) else means
    if rank:
        results[f"rank_{key}"] = rank_scores(means)


def rank_scores(means: np.ndarray) -> np.ndarray:
    """Rank 1 = best; NaN ties with the worst, as in scikit-learn."""
    if len(means) == 0 or np.isnan(means).all():
        return np.ones_like(means, dtype=np.int32)
    filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
    return rankdata(-filled, method="min").astype(np.int32)


def param_columns(params: Sequence[Params]) -> dict[str, MaskedArray]:
    """``param_<name>`` masked arrays, with scikit-learn's dtype rules."""
    by_name: dict[str, dict[int, Any]] = {}
    for i, p in enumerate(params):
        for name, value in p.items():
            by_name.setdefault(f"param_{name}", {})[i] = value
    out = {}
    for key, values in by_name.items():
        try:
            arr = np.array(list(values.values()))
            dtype = arr.dtype if arr.dtype.kind != "U" and arr.ndim == 1 else np.dtype(object)
        except ValueError:
            dtype = np.dtype(object)
        column = MaskedArray(np.empty(len(params), dtype=dtype), mask=True)
        for i, value in values.items():
            column[i] = value
        out[key] = column
    return out


def best_index(cv_results: dict[str, Any], metric: str) -> int:
    return int(np.asarray(cv_results[f"rank_test_{metric}"]).argmin())
