"""Random candidates drawn exactly as scikit-learn's RandomizedSearchCV draws them.

The space goes to :class:`sklearn.model_selection.ParameterSampler` as
scikit-learn's ``param_distributions``: a finite dimension as its list of
values, a scipy distribution as itself, and mpisearch's own intervals
(``Real``, ``Integer``) as objects with scikit-learn's ``rvs(random_state=)``
protocol. So the same ``random_state`` gives the same candidates, in the same
order, as ``RandomizedSearchCV`` and ``HalvingRandomSearchCV`` (lists and scipy
distributions), including the grid's own order when every dimension is a list
and ``n_iter`` is the grid's size.

ParameterSampler draws lazily: a search of ``n_iter = 10**9`` points over
intervals holds only the points handed out so far. When every dimension is a
list it picks ``min(n_iter, grid size)`` indices up front (the grid itself is
never enumerated).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sklearn.model_selection import ParameterSampler

from ..space import Categorical, Distribution, Interval, Params, SearchSpace


class _IntervalDraw:
    """An mpisearch interval behind scikit-learn's ``rvs`` protocol (uniform in its unit
    coordinates: log-uniform for a log-scaled interval)."""

    def __init__(self, dim: Interval) -> None:
        self.dim = dim

    def rvs(self, random_state: Any = None) -> Any:
        return self.dim.from_unit(float(random_state.uniform()))


def _as_sklearn(dim: Any) -> Any:
    if isinstance(dim, Categorical):
        return dim.values()
    if isinstance(dim, Distribution):
        return dim.dist
    if isinstance(dim, Interval):
        return _IntervalDraw(dim)
    raise TypeError(f"cannot draw from {dim!r}")


def _plain(value: Any) -> Any:
    """numpy scalars from a distribution as Python numbers (the same value)."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", None) == 0 else value


def random_draws(space: SearchSpace, n_iter: int, random_state: int | None) -> Iterator[Params]:
    """``n_iter`` candidates (at most the grid's size when every dimension is a list), drawn
    one at a time as they are taken, as ``ParameterSampler(.., n_iter, random_state)`` gives them."""
    if space.finite:
        n_iter = min(n_iter, space.grid_size())  # the caller warns once, naming n_iter
    distributions = [{name: _as_sklearn(dim) for name, dim in sub.items()} for sub in space.subspaces]
    sampler = ParameterSampler(distributions, n_iter, random_state=random_state)
    return ({name: _plain(value) for name, value in params.items()} for params in sampler)
