"""One unit of work: fit a point's estimator on one fold's train part and score it.

Stateless, as scikit-learn's ``_fit_and_score``: estimator errors never raise,
they come back as a formatted traceback, and ``error_score`` is applied later,
in one place (:mod:`mpisearch.results`).
"""

from __future__ import annotations

import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import get_tags, resample
from sklearn.utils.metaestimators import _safe_split

from .data.dataset import Dataset
from .scoring import Scorers
from .space import Params


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


@dataclass
class TaskResult:
    """Scores and times of one (point, fold) task; ``error`` is a traceback or None."""

    scores: dict[str, float] = field(default_factory=dict)
    fit_time: float = 0.0
    score_time: float = 0.0
    error: str | None = None
    reason: str | None = None  # short failure kind: "fit", "score", "timeout", "crash" (see mpisearch.isolation)
    warnings: dict[str, int] = field(default_factory=dict)  # "Category: message" -> count
    origin: str | None = None  # "rank R (host H)" where it ran, set by MPI workers
    started: float = 0.0  # wall-clock time (time.time()) when the task started, for timelines
    rank: int | None = None  # the rank that ran it (set by the coordinator on receipt)


def evaluate(estimator: Any, params: Params, dataset: Dataset, fold: int, scorers: Scorers,
             subsample: Subsample | None = None) -> TaskResult:
    """fit_and_score, with the warnings it raised counted (time limits: see mpisearch.isolation)."""
    started = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_and_score(estimator, params, dataset, fold, scorers, subsample)
    for w in caught:
        key = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0] if str(w.message).strip() else ''}"
        result.warnings[key] = result.warnings.get(key, 0) + 1
    result.started = started
    return result


def fit_and_score(estimator: Any, params: Params, dataset: Dataset, fold: int, scorers: Scorers,
                  subsample: Subsample | None = None) -> TaskResult:
    """Fit ``clone(estimator).set_params(**params)`` on fold ``fold`` (or a subsample of it) and score it."""
    train, test = dataset.folds[fold]
    if subsample is not None:
        train, test = subsample.apply(train, test)
    est = clone(estimator).set_params(**clone(params, safe=False))
    start = time.perf_counter()
    X_train, y_train, X_test, y_test = split(est, dataset.X, dataset.y, train, test)
    fit_params = {} if dataset.sample_weight is None else {"sample_weight": dataset.sample_weight[train]}
    try:
        est.fit(X_train, **fit_params) if y_train is None else est.fit(X_train, y_train, **fit_params)
    except Exception:
        return TaskResult(fit_time=time.perf_counter() - start, error=traceback.format_exc(), reason="fit")
    fit_time = time.perf_counter() - start
    try:
        scores = {name: _score(scorer, est, X_test, y_test) for name, scorer in scorers.items()}
    except Exception:
        return TaskResult(fit_time=fit_time, score_time=time.perf_counter() - start - fit_time,
                          error=traceback.format_exc(), reason="score")
    return TaskResult(scores, fit_time, time.perf_counter() - start - fit_time)


def split(est: Any, X: Any, y: Any, train: np.ndarray, test: np.ndarray) -> tuple[Any, Any, Any, Any]:
    """Train and test parts; plain indexing for numpy/CSR data (what scikit-learn's
    _safe_split does for them, without its ~0.4 ms of type checks per call)."""
    if (isinstance(X, np.ndarray) or sp.issparse(X)) and not get_tags(est).input_tags.pairwise:
        return X[train], None if y is None else y[train], X[test], None if y is None else y[test]
    X_train, y_train = _safe_split(est, X, y, train)
    X_test, y_test = _safe_split(est, X, y, test, train)
    return X_train, y_train, X_test, y_test


def _score(scorer: Any, est: Any, X: Any, y: Any) -> float:
    value = scorer(est, X) if y is None else scorer(est, X, y)
    if hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, (int, float)):
        raise ValueError(f"scoring must return a number, got {value!r} ({type(value).__name__})")
    return float(value)
