"""One unit of work: fit a point's estimator on one fold's train part and score it.

Stateless, as scikit-learn's ``_fit_and_score``: estimator errors never raise,
they come back as a formatted traceback, and ``error_score`` is applied later,
in one place (:mod:`mpisearch.results`).
"""

from __future__ import annotations

import time
import traceback
import warnings
from typing import Any

from sklearn.base import clone

from .data.dataset import Dataset
from .data.parts import FoldParts
from .scoring import Scorers, accepts_weight
from .space import Params
from .types import Failure, Subsample, TaskResult


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
    est = clone(estimator).set_params(**clone(params, safe=False))
    start = time.perf_counter()
    with dataset.fold_parts(fold, subsample, est) as parts:
        return _fit_score(est, parts, scorers, start)


def _fit_score(est: Any, parts: FoldParts, scorers: Scorers, start: float) -> TaskResult:
    try:
        _fit(est, parts)
    except Exception as exc:
        if not (parts.shared and _writes_input(exc)):
            return TaskResult(fit_time=time.perf_counter() - start, error=traceback.format_exc(), reason=Failure.FIT)
        warnings.warn(f"{type(est).__name__}.fit writes into its input, which is read-only node-shared "
                      f"memory: it was refitted on a private copy", ReadOnlyInputWarning, stacklevel=1)
        est, parts = clone(est), parts.private()  # a fresh estimator: the failed fit may have set attributes
        try:
            _fit(est, parts)
        except Exception:
            return TaskResult(fit_time=time.perf_counter() - start, error=traceback.format_exc(), reason=Failure.FIT)
    fit_time = time.perf_counter() - start
    try:
        scores = _score_all(scorers, est, parts.X_test, parts.y_test, parts.w_test)
        score_time = time.perf_counter() - start - fit_time  # the test part's, as scikit-learn times it
        train = _score_all(scorers, est, parts.X_train, parts.y_train, parts.w_train) if scorers.train else {}
    except Exception:
        return TaskResult(fit_time=fit_time, score_time=time.perf_counter() - start - fit_time,
                          error=traceback.format_exc(), reason=Failure.SCORE)
    return TaskResult(scores, fit_time, score_time, train_scores=train)


class ReadOnlyInputWarning(UserWarning):
    """A fit wrote into its read-only input; it ran again on a private copy (counted in run.json)."""


def _fit(est: Any, parts: FoldParts) -> None:
    fit_params = {} if parts.w_train is None else {"sample_weight": parts.w_train}
    if parts.y_train is None:
        est.fit(parts.X_train, **fit_params)
    else:
        est.fit(parts.X_train, parts.y_train, **fit_params)


def _writes_input(exc: BaseException) -> bool:
    """Whether a fit failed because it wrote into a read-only array (numpy: "assignment
    destination is read-only"; Cython memoryviews: "buffer source array is read-only")."""
    return isinstance(exc, (ValueError, TypeError, BufferError)) and "read-only" in str(exc)


def _score_all(scorers: Scorers, est: Any, X: Any, y: Any, w: Any) -> dict[str, float]:
    """Every metric on one part; ``w`` (the part's sample weights) goes to the scorers that take it."""
    return {name: _score(scorer, est, X, y, w if w is not None and accepts_weight(scorer) else None)
            for name, scorer in scorers.items()}


def _score(scorer: Any, est: Any, X: Any, y: Any, w: Any = None) -> float:
    kwargs = {} if w is None else {"sample_weight": w}
    value = scorer(est, X, **kwargs) if y is None else scorer(est, X, y, **kwargs)
    if hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, (int, float)):
        raise ValueError(f"scoring must return a number, got {value!r} ({type(value).__name__})")
    return float(value)
