"""Warm-start chains: the estimators whose growth parameter can be grown in place.

An entry is here only if growing a fitted estimator with ``warm_start=True`` from a
smaller value of its growth parameter to a larger one gives predictions (and so
scores) identical, bit for bit, to a fresh fit with the larger value:
``tests/test_reuse.py::test_growing_equals_a_fresh_fit`` checks every entry
(scikit-learn 1.9). Only exact classes count (a subclass may fit differently), never
an estimator nested in a pipeline or meta-estimator, and only when ``random_state``
is an int or None: an int gives the same numbers as fresh fits; None gives fits as
random as fresh fits are (the members of the grown ensemble are drawn independently,
as in a fresh fit); a ``RandomState`` instance is never chained (a fresh fit starts
from a copy of its state, a grown one from the state the first fit left).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)


def _always(params: dict[str, Any]) -> bool:
    return True


def _no_early_stop_gb(params: dict[str, Any]) -> bool:
    return params.get("n_iter_no_change") is None  # early stopping draws a validation split per fit


def _no_early_stop_hgb(params: dict[str, Any]) -> bool:
    return params.get("early_stopping") is False  # "auto" turns it on above 10,000 rows


@dataclass(frozen=True)
class Growth:
    """How an estimator class grows: the parameter, and when growing is exact (given its parameters)."""

    param: str
    exact_when: Callable[[dict[str, Any]], bool] = _always


GROWTH: dict[type, Growth] = {
    RandomForestClassifier: Growth("n_estimators"),
    RandomForestRegressor: Growth("n_estimators"),
    ExtraTreesClassifier: Growth("n_estimators"),
    ExtraTreesRegressor: Growth("n_estimators"),
    BaggingClassifier: Growth("n_estimators"),
    BaggingRegressor: Growth("n_estimators"),
    GradientBoostingClassifier: Growth("n_estimators", _no_early_stop_gb),
    GradientBoostingRegressor: Growth("n_estimators", _no_early_stop_gb),
    HistGradientBoostingClassifier: Growth("max_iter", _no_early_stop_hgb),
    HistGradientBoostingRegressor: Growth("max_iter", _no_early_stop_hgb),
}


def growth_param(estimator: Any, params: dict[str, Any]) -> str | None:
    """The parameter along which ``estimator`` with ``params`` set may be grown exactly, or None."""
    growth = GROWTH.get(type(estimator))
    if growth is None or "warm_start" in params:
        return None
    merged = {**estimator.get_params(deep=False), **params}
    state = merged.get("random_state")
    if not (state is None or _integer(state)) or not _integer(merged.get(growth.param)):
        return None
    if not growth.exact_when(merged):
        return None
    return growth.param


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
