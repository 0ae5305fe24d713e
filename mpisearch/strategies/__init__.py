"""Search strategies behind one ask/tell interface."""

from __future__ import annotations

from ..errors import InputError, did_you_mean
from ..space import SearchSpace
from ._base import ListStrategy, PointResult, Strategy
from .bayes import BayesStrategy
from .grid import GridStrategy
from .random import RandomStrategy

STRATEGIES = ("grid", "random", "bayes")
DEFAULT_N_ITER = 10  # scikit-learn's RandomizedSearchCV default


def make_strategy(
    name: str, space: SearchSpace, n_iter: int | None = None, random_state: int | None = None
) -> Strategy:
    """Build the strategy called ``name`` (``grid`` or ``random``)."""
    if name == "grid":
        return GridStrategy(space)
    if name == "random":
        return RandomStrategy(space, n_iter or DEFAULT_N_ITER, random_state)
    if name == "bayes":
        return BayesStrategy(space, n_iter or DEFAULT_N_ITER, random_state)
    planned = {"halving"}
    if name in planned:
        raise InputError(f"search.strategy: '{name}' is not available in this version; use one of {STRATEGIES}")
    hint = did_you_mean(name, STRATEGIES)
    raise InputError(f"search.strategy: unknown strategy '{name}'{hint}; expected one of {STRATEGIES}")


__all__ = ["STRATEGIES", "BayesStrategy", "GridStrategy", "ListStrategy", "PointResult", "RandomStrategy",
           "Strategy", "make_strategy"]
