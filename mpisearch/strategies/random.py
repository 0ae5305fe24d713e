"""Random search: ``n_iter`` points drawn from the space, seeded.

The same candidates as scikit-learn's RandomizedSearchCV for the same
``random_state`` (see :mod:`.sampling`): without replacement when every
dimension is a list. The points are a fixed sequence of the seed, drawn
lazily as the coordinator asks for them (the same points as drawing them all up
front), so they do not depend on the order in which results come back, and a
huge ``n_iter`` costs memory only for the points handed out.
"""

from __future__ import annotations

import itertools
import warnings

from ..space import Params, SearchSpace
from ._base import Strategy
from .sampling import random_draws


class RandomStrategy(Strategy):
    fixed_points = True

    def __init__(self, space: SearchSpace, n_iter: int, random_state: int | None = None) -> None:
        super().__init__(space)
        if n_iter < 1:
            raise ValueError(f"n_iter must be at least 1, got {n_iter}")
        if space.finite and n_iter > space.grid_size():
            warnings.warn(
                f"n_iter={n_iter} is larger than the {space.grid_size()} points of the space; "
                "every point is evaluated once",
                UserWarning,
                stacklevel=2,
            )
        self._total = min(n_iter, space.grid_size()) if space.finite else n_iter
        self._draws = random_draws(space, n_iter, random_state)
        self._next = 0

    def ask(self, n: int) -> list[Params]:
        batch = list(itertools.islice(self._draws, max(n, 0)))
        self._next += len(batch)
        return batch

    @property
    def finished(self) -> bool:
        return self._next >= self._total

    @property
    def total(self) -> int:
        return self._total
