"""Scorers by scikit-learn name; the single-metric case is called ``score``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sklearn.metrics import check_scoring, get_scorer, get_scorer_names

from .errors import InputError, did_you_mean

Scorers = dict[str, Callable[..., float]]
SINGLE = "score"  # scikit-learn's key for a single metric (mean_test_score, ...)


def make_scorers(scoring: Any, estimator: Any) -> Scorers:
    """Map metric names to scorers, following scikit-learn's naming.

    ``None`` uses ``estimator.score``; a string or callable is one metric named
    ``score``; a list/tuple or dict gives several metrics under their names.
    """
    if scoring is None or isinstance(scoring, str) or callable(scoring):
        return {SINGLE: _one(scoring, estimator)}
    if isinstance(scoring, Mapping):
        return {str(name): _one(s, estimator) for name, s in scoring.items()}
    if isinstance(scoring, (list, tuple)):
        if len(set(scoring)) != len(scoring) or not all(isinstance(s, str) for s in scoring):
            raise InputError(f"scoring: expected distinct scorer names, got {list(scoring)!r}")
        return {name: _one(name, estimator) for name in scoring}
    raise InputError(f"scoring: expected a scorer name, a list of names or a dict, got {scoring!r}")


def _one(scoring: Any, estimator: Any) -> Callable[..., float]:
    if isinstance(scoring, str):
        if scoring not in get_scorer_names():
            hint = did_you_mean(scoring, get_scorer_names())
            raise InputError(f"scoring: unknown scorer '{scoring}'{hint}; see sklearn.metrics.get_scorer_names()")
        return get_scorer(scoring)
    try:
        return check_scoring(estimator, scoring=scoring)
    except TypeError as exc:
        raise InputError(f"scoring: {exc}") from None


def refit_metric(scorers: Scorers, refit: bool | str) -> str:
    """The metric that ranks points and picks the refit: the named one, else the first."""
    if isinstance(refit, str):
        if refit not in scorers:
            raise InputError(f"refit: '{refit}' is not one of the metrics {list(scorers)}")
        return refit
    return next(iter(scorers))
