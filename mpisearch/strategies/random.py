"""Random search: ``n_iter`` points drawn from the space, seeded.

Without replacement when every dimension is finite (as scikit-learn's
ParameterSampler does); the points are drawn once, up front, so they do not
depend on the order in which results come back.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..space import SearchSpace
from ._base import ListStrategy


class RandomStrategy(ListStrategy):
    def __init__(self, space: SearchSpace, n_iter: int, random_state: int | None = None) -> None:
        if n_iter < 1:
            raise ValueError(f"n_iter must be at least 1, got {n_iter}")
        if space.finite and n_iter > space.grid_size():
            warnings.warn(
                f"n_iter={n_iter} is larger than the {space.grid_size()} points of the space; "
                "every point is evaluated once",
                UserWarning,
                stacklevel=2,
            )
        rng = np.random.default_rng(random_state)
        super().__init__(space, space.sample(n_iter, rng))
