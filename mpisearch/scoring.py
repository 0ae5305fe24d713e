"""Scorers by scikit-learn name; the single-metric case is called ``score``.

Scorers are called as scikit-learn 1.9's searches call them: with a fold's test (and,
for ``return_train_score``, train) sample weights when the fit got ``sample_weight``
and the scorer accepts it (:func:`accepts_weight`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from inspect import signature
from typing import Any

from sklearn.metrics import check_scoring, get_scorer, get_scorer_names

from .errors import InputError, did_you_mean

SINGLE = "score"  # scikit-learn's key for a single metric (mean_test_score, ...)


class Scorers(dict[str, Callable[..., float]]):
    """Scorers by metric name. ``train``: each task also scores the train part it was
    fitted on (``return_train_score``), with the same scorers."""

    train: bool = False


def make_scorers(scoring: Any, estimator: Any, train: bool = False) -> Scorers:
    """Map metric names to scorers, following scikit-learn's naming.

    ``None`` uses ``estimator.score``; a string or callable is one metric named
    ``score``; a list/tuple or dict gives several metrics under their names.
    ``train``: tasks also give train scores (see :class:`Scorers`).
    """
    scorers = Scorers(_by_name(scoring, estimator))
    scorers.train = bool(train)
    return scorers


def _by_name(scoring: Any, estimator: Any) -> dict[str, Callable[..., float]]:
    if scoring is None or isinstance(scoring, str) or callable(scoring):
        return {SINGLE: _one(scoring, estimator)}
    if isinstance(scoring, Mapping):
        return {str(name): _one(s, estimator) for name, s in scoring.items()}
    if isinstance(scoring, (list, tuple)):
        if len(set(scoring)) != len(scoring) or not all(isinstance(s, str) for s in scoring):
            raise InputError(f"scoring: expected distinct scorer names, got {list(scoring)!r}")
        return {name: _one(name, estimator) for name in scoring}
    raise InputError(f"scoring: expected a scorer name, a list of names or a dict, got {scoring!r}")


def is_multimetric(scoring: Any) -> bool:
    """Whether scikit-learn names the columns after each metric (a list or dict, also of one)."""
    return not (scoring is None or isinstance(scoring, str) or callable(scoring))


def check_refit(scoring: Any, refit: Any) -> Any:
    """scikit-learn's rules for ``refit``, as the ``refit`` a search runs with: with several
    metrics it must be False, a metric name or a callable (ValueError otherwise, in
    scikit-learn's words); with one metric a name is taken as True (``score`` ranks)."""
    if not is_multimetric(scoring):
        return True if isinstance(refit, str) else refit
    names = list(scoring) if isinstance(scoring, (list, tuple, Mapping)) else []
    if refit is not False and not (isinstance(refit, str) and refit in names) and not callable(refit):
        raise ValueError("For multi-metric scoring, the parameter refit must be set to a scorer key or a callable "
                         "to refit an estimator with the best parameter setting on the whole data and make the "
                         "best_* attributes available for that metric. If this is not needed, refit should be set "
                         f"to False explicitly. {refit!r} was passed.")
    return refit


def warn_unweighted(scorers: Scorers) -> None:
    """As scikit-learn's searches do with ``sample_weight``: one warning per scorer that
    cannot take the weights (its scores stay unweighted)."""
    for name, scorer in scorers.items():
        if not accepts_weight(scorer):
            warnings.warn(f"The scoring {name}={scorer} does not support sample_weight, which may lead to "
                          "statistically incorrect results when fitting with sample_weight.", UserWarning,
                          stacklevel=3)


def accepts_weight(scorer: Any) -> bool:
    """Whether scikit-learn 1.9's search passes ``sample_weight`` to this scorer: a scorer
    object says so itself (``estimator.score``'s or the metric's signature), a plain
    callable by its own signature."""
    if hasattr(scorer, "_accept_sample_weight"):
        return bool(scorer._accept_sample_weight())
    try:
        return "sample_weight" in signature(scorer).parameters
    except (TypeError, ValueError):
        return False


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


def refit_metric(scorers: Scorers, refit: Any) -> str:
    """The metric that ranks points and picks the refit: the named one, else the first
    (with a callable refit it ranks for the strategies; the callable picks the best)."""
    if isinstance(refit, str):
        if refit not in scorers:
            raise InputError(f"refit: '{refit}' is not one of the metrics {list(scorers)}")
        return refit
    return next(iter(scorers))
