"""Search strategies behind one ask/tell interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InputError, did_you_mean
from ..space import SearchSpace
from ._base import DEFAULT_BATCH, ListStrategy, PointResult, Proposal, Strategy, StrategySettings
from .bayes import BayesStrategy
from .grid import GridStrategy
from .halving import DataFacts, HalvingOptions, HalvingStrategy, make_halving
from .loader import load_strategy
from .random import RandomStrategy

STRATEGIES = ("grid", "random", "bayes", "halving")
DEFAULT_N_ITER = 10  # scikit-learn's RandomizedSearchCV default


def make_strategy(
    name: str, space: SearchSpace, n_iter: int | None = None, random_state: int | None = None,
    halving: Mapping[str, Any] | None = None, estimator: Any = None, facts: DataFacts | None = None,
    racing: bool = False, batch: int | None = None,
) -> Strategy:
    """Build the strategy called ``name`` (or ``package.module:Class``, see loader); ``halving``
    needs the estimator and the data's facts; with ``racing`` a grid is evaluated in a seeded random
    order (see GridStrategy); ``batch``: points in flight of bayes and open strategies."""
    if batch is not None and (batch < 1 or isinstance(batch, bool)):
        raise InputError(f"search.batch: expected a positive integer, got {batch!r}")
    if batch is not None and name in ("grid", "random", "halving"):
        raise InputError(f"search.batch: strategy '{name}' has no batches (its points do not depend on "
                         "scores); batch is for 'bayes' and 'package.module:Class' strategies")
    if ":" in name:
        settings = StrategySettings(n_iter or DEFAULT_N_ITER, random_state, batch or DEFAULT_BATCH)
        return load_strategy(name, space, settings)
    if name == "grid":
        return GridStrategy(space, (random_state or 0) if racing else None)
    if name == "random":
        return RandomStrategy(space, n_iter or DEFAULT_N_ITER, random_state)
    if name == "bayes":
        return BayesStrategy(space, n_iter or DEFAULT_N_ITER, random_state, batch=batch or DEFAULT_BATCH)
    if name == "halving":
        if facts is None:
            raise ValueError("the halving strategy needs the data's facts (n_samples, n_splits, n_classes)")
        return make_halving(space, halving, estimator, facts, n_iter, random_state)
    hint = did_you_mean(name, STRATEGIES)
    raise InputError(f"search.strategy: unknown strategy '{name}'{hint}; expected one of {STRATEGIES} "
                     "or 'package.module:Class'")


__all__ = ["DEFAULT_BATCH", "STRATEGIES", "BayesStrategy", "DataFacts", "GridStrategy", "HalvingOptions",
           "HalvingStrategy", "ListStrategy", "PointResult", "Proposal", "RandomStrategy", "Strategy",
           "StrategySettings", "make_strategy"]
