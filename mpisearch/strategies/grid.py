"""Exhaustive grid search, in scikit-learn's ParameterGrid order."""

from __future__ import annotations

from ..errors import InputError
from ..space import SearchSpace
from ._base import ListStrategy


class GridStrategy(ListStrategy):
    def __init__(self, space: SearchSpace) -> None:
        intervals = space.intervals()
        if intervals:
            raise InputError(
                f"space.{intervals[0]}: strategy 'grid' needs a list of values, not an interval "
                "or distribution; give values or use strategy = \"random\""
            )
        super().__init__(space, space.grid())
