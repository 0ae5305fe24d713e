"""Results of a search: per-task scores -> scikit-learn's ``cv_results_``.

``error_score`` is applied here and nowhere else; failures are grouped by
traceback, as scikit-learn does.
"""

from __future__ import annotations

import math
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
from .space import Params, point_key
from .types import TaskResult

# Fold counts below this have their mean score summed in Python instead of numpy (one call per
# finished point on rank 0: 1.75 -> 0.83 us for 2 folds, timeit on a quiet machine). numpy's float64
# add.reduce of fewer than 8 values is 0.0 + (a0 + a1 + ...) in order (the first block of its
# pairwise sum); _SUMS_AS_NUMPY checks that on import, and numpy is used if it ever differs.
SHORT_SUM = 8


def _short_sum(values: Sequence[Any]) -> float | None:
    """numpy's add.reduce of fewer than SHORT_SUM floats, bit for bit; None if a value is not a float."""
    total = -0.0
    for v in values:
        if not isinstance(v, float):  # ints or float32 go through numpy as before
            return None
        total += v
    return 0.0 + total


def _sums_as_numpy() -> bool:
    """Whether :func:`_short_sum` gives numpy's bits on awkward and random values."""
    rng = np.random.default_rng(0)
    probes = [[-0.0], [-0.0, -0.0], [0.0, -0.0], [-0.0, 0.0], [1e16, 1.0, -1e16], [1.0, 1e16, -1e16, 3.0]]
    probes += [list(rng.standard_normal(n) * 10.0 ** rng.integers(-17, 17, n)) for n in range(1, SHORT_SUM)
               for _ in range(12)]
    for values in probes:
        want, got = float(np.add.reduce(np.array(values, dtype=np.float64))), _short_sum([float(v) for v in values])
        if got is None or want != got or math.copysign(1.0, want) != math.copysign(1.0, got):
            return False
    return True


_SUMS_AS_NUMPY = _sums_as_numpy()


class TaskFailedError(SearchFailedError):
    """A fit failed and ``error_score='raise'``; carries the remote traceback."""


class ResultTable:
    """Every (point, fold) result of a run, keyed by ids, in point order."""

    def __init__(self, metrics: Sequence[str], n_folds: int, error_score: Any = np.nan, racing: bool = False,
                 train_scores: bool = False) -> None:
        if not (error_score == "raise" or isinstance(error_score, numbers.Number)):
            raise ValueError(f"error_score must be 'raise' or a number, got {error_score!r}")
        self.metrics = list(metrics)
        self.n_folds = n_folds
        self.error_score = error_score
        self.points: list[Params] = []
        self.tasks: dict[tuple[int, int], TaskResult] = {}
        self.columns: dict[int, dict[str, Any]] = {}  # extra cv_results_ columns (halving: iter, n_resources)
        self.stopped: dict[int, int] = {}  # point -> number of folds it had when fold racing stopped it
        self.racing = racing  # fold racing on: cv_results_ gets a stopped_at_fold column
        self.with_train = train_scores  # return_train_score: cv_results_ gets the train_<metric> columns
        self.positions: dict[int, int] = {}  # cv_results_ row order, where it is not the point order
        self._done_folds: Counter[int] = Counter()

    def add_point(self, params: Params, columns: dict[str, Any] | None = None, position: int | None = None) -> int:
        self.points.append(params)
        point_id = len(self.points) - 1
        if columns:
            self.columns[point_id] = dict(columns)
        if position is not None:
            self.positions[point_id] = position
        return point_id

    def n_resources(self, point_id: int) -> int | None:
        columns = self.columns.get(point_id)  # none for most points
        return None if columns is None else columns.get("n_resources")

    def key(self, point_id: int) -> str:
        """What identifies a point's tasks across runs (the journal's key)."""
        return point_key(self.points[point_id], self.n_resources(point_id))

    def add(self, point_id: int, fold: int, result: TaskResult, where: str = "") -> bool:
        """Store a task's result; True when the point has all its folds."""
        if point_id in self.stopped:
            return False  # a late result of a point stopped by fold racing
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

    def is_done(self, point_id: int) -> bool:
        """All folds done, or stopped by fold racing."""
        return point_id in self.stopped or self.is_complete(point_id)

    def stop(self, point_id: int) -> int:
        """Fold racing stopped the point: its other folds will not be scored. Returns folds it has."""
        self.stopped[point_id] = self._done_folds[point_id]
        return self.stopped[point_id]

    def scores(self, point_id: int, metric: str) -> np.ndarray:
        """Per-fold scores of one point, error_score where a fold failed, NaN where it did not run."""
        return np.array([self._score(self.tasks.get((point_id, k)), metric) for k in range(self.n_folds)])

    def ran(self, point_id: int) -> np.ndarray:
        """Which folds of the point have a result."""
        return np.array([(point_id, k) in self.tasks for k in range(self.n_folds)])

    def score(self, point_id: int, fold: int, metric: str) -> float:
        """One fold's score (error_score if it failed, NaN if it did not run)."""
        return self._score(self.tasks.get((point_id, fold)), metric)

    def ran_folds(self, point_id: int) -> list[int]:
        """The folds of the point that have a result, in fold order."""
        return [k for k in range(self.n_folds) if (point_id, k) in self.tasks]

    def fold_scores(self, point_id: int, metric: str) -> list[float]:
        """Scores of the folds that ran so far (error_score where they failed), in fold order."""
        return [self._score(self.tasks[(point_id, k)], metric) for k in self.ran_folds(point_id)]

    def mean_score(self, point_id: int, metric: str) -> float:
        """Mean over the folds; for a point stopped by fold racing, over the folds it ran.
        What np.average gives (and cv_results_ reports), bit for bit, at a third of its cost
        (a tenth for fewer than SHORT_SUM folds)."""
        if not self.is_complete(point_id):
            scores = np.array(self.fold_scores(point_id, metric))
        else:
            if self.n_folds < SHORT_SUM and _SUMS_AS_NUMPY:
                tasks, score = self.tasks, self._score
                total = _short_sum([score(tasks[(point_id, k)], metric) for k in range(self.n_folds)])
                if total is not None:
                    return total / self.n_folds
            scores = self.scores(point_id, metric)
        return float(np.add.reduce(scores)) / len(scores) if len(scores) else math.nan

    def _score(self, r: TaskResult | None, metric: str) -> float:
        if r is None:
            return math.nan
        return float(self.error_score) if r.error is not None else r.scores[metric]

    def train_scores(self, point_id: int, metric: str) -> np.ndarray:
        """Per-fold train scores of one point (error_score where a fold failed, NaN where it did not run)."""
        tasks = [self.tasks.get((point_id, k)) for k in range(self.n_folds)]
        return np.array([math.nan if r is None else float(self.error_score) if r.error is not None
                         else r.train_scores.get(metric, math.nan) for r in tasks])

    def complete_ids(self) -> list[int]:
        """Points in cv_results_, in row order: complete ones and those stopped by fold racing."""
        done = [p for p in range(len(self.points)) if self.is_done(p)]
        return sorted(done, key=lambda p: self.positions.get(p, p)) if self.positions else done

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
        """scikit-learn's ``cv_results_`` over the complete points, in point order.

        Points stopped by fold racing come too: NaN for the folds they did not
        run, means over the folds they ran, ranked after every complete point."""
        ids = self.complete_ids()
        params = [self.points[p] for p in ids]
        results: dict[str, Any] = {}
        ran = np.array([self.ran(p) for p in ids], dtype=bool).reshape(len(ids), self.n_folds)
        partial = None if ran.all() else ran
        times = [[self.tasks.get((p, k)) for k in range(self.n_folds)] for p in ids]
        _store(results, "fit_time", self._array([[_time(t, "fit_time") for t in row] for row in times]),
               ran=partial)
        _store(results, "score_time", self._array([[_time(t, "score_time") for t in row] for row in times]),
               ran=partial)
        results.update(param_columns(params))
        results["params"] = params
        for metric in self.metrics:
            table = self._array([self.scores(p, metric) for p in ids])
            _store(results, f"test_{metric}", table, splits=True, rank=True, ran=partial)
            if self.with_train:  # after each metric's test columns, as scikit-learn orders them
                _store(results, f"train_{metric}", self._array([self.train_scores(p, metric) for p in ids]),
                       splits=True, ran=partial)
        for name in sorted({n for p in ids for n in self.columns.get(p, {})}):
            results[name] = np.array([self.columns.get(p, {}).get(name) for p in ids])
        if self.racing:
            results["stopped_at_fold"] = np.array([self.stopped.get(p, -1) for p in ids], dtype=np.int64)
        return results

    def _array(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        return np.array(rows, dtype=np.float64).reshape(len(rows), self.n_folds)


def _time(r: TaskResult | None, name: str) -> float:
    return math.nan if r is None else getattr(r, name)


def _store(results: dict[str, Any], key: str, array: np.ndarray, splits: bool = False, rank: bool = False,
           ran: np.ndarray | None = None) -> None:
    """Mean/std/splits/rank columns (points x folds), computed exactly as scikit-learn does.

    ``ran`` (points x folds, when some points were stopped by fold racing):
    those points' mean and std are over the folds they ran, and they rank
    after every complete point."""
    if splits:
        for k in range(array.shape[1]):
            results[f"split{k}_{key}"] = array[:, k]
    means = np.average(array, axis=1) if len(array) else np.zeros(0)
    stds = np.sqrt(np.average((array - means[:, None]) ** 2, axis=1)) if len(array) else means
    partial = None if ran is None else ~ran.all(axis=1)
    if partial is not None:
        for i in np.flatnonzero(partial):
            seen = array[i, ran[i]]
            means[i] = np.average(seen) if len(seen) else math.nan
            stds[i] = np.sqrt(np.average((seen - means[i]) ** 2)) if len(seen) else math.nan
    results[f"mean_{key}"] = means
    results[f"std_{key}"] = stds
    if rank:
        results[f"rank_{key}"] = rank_scores(means, partial)


def rank_scores(means: np.ndarray, partial: np.ndarray | None = None) -> np.ndarray:
    """Rank 1 = best; NaN ties with the worst, as in scikit-learn. ``partial`` rows
    (points stopped by fold racing) rank after every other row."""
    if partial is not None and partial.any():
        ranks = np.empty(len(means), dtype=np.int32)
        ranks[~partial] = rank_scores(means[~partial])
        ranks[partial] = int((~partial).sum()) + rank_scores(means[partial])
        return ranks
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


def chosen_index(cv_results: dict[str, Any], metric: str, refit: Any) -> int:
    """:func:`best_index`, or the row a callable ``refit`` picks from ``cv_results``
    (checked as scikit-learn's searches check it)."""
    if not callable(refit):
        return best_index(cv_results, metric)
    index = refit(cv_results)
    if not isinstance(index, numbers.Integral):
        raise TypeError("best_index_ returned is not an integer")
    if index < 0 or index >= len(cv_results["params"]):
        raise IndexError("best_index_ index out of range")
    return int(index)


def best_index(cv_results: dict[str, Any], metric: str) -> int:
    """Rank 1; for successive halving, the best point of the last iteration, as
    scikit-learn's halving searches choose (points stopped by racing excluded)."""
    if "iter" not in cv_results:
        return int(np.asarray(cv_results[f"rank_test_{metric}"]).argmin())
    iters = np.asarray(cv_results["iter"])
    last = np.flatnonzero(iters == iters.max())
    stopped = np.asarray(cv_results.get("stopped_at_fold", np.full(len(iters), -1)))[last]
    if (stopped < 0).any():
        last = last[stopped < 0]
    scores = np.asarray(cv_results[f"mean_test_{metric}"], dtype=float)[last]
    return int(last[0] if np.isnan(scores).all() else last[np.nanargmax(scores)])
