"""A search space as a unit cube, for model-based strategies.

Every subspace's parameters get their own coordinates in [0, 1]; with several
subspaces a first coordinate selects the subspace, and the coordinates of the
other subspaces are inactive (held at 0.5). Reals and integers use their
``to_unit`` map (log-scaled when asked), scipy.stats distributions their CDF
(so a log-uniform is log-scaled and a normal denser near its mean), and a list
of values one cell per value. :meth:`UnitCube.snap` moves a coordinate to the
value it stands for (integers, categories and discrete distributions to the
centre of their cell), so that equal parameters have equal coordinates.

The model's features (:meth:`UnitCube.features`): numeric coordinates as they
are, one-hot columns for categories and for the subspace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from ..errors import InputError
from ..space import Categorical, Dimension, Distribution, Integer, Params, Real, SearchSpace

INACTIVE = 0.5  # the coordinate of a parameter whose subspace is not selected
# Distributions with unbounded support are cut at these CDF values (a normal: +-4.75 sd).
CDF_EDGE = 1e-6


@dataclass(frozen=True)
class Column:
    """One coordinate: a parameter of a subspace (``sub`` = -1: the subspace selector)."""

    sub: int
    name: str
    dim: Dimension
    cells: int  # 0: numeric; else the number of values (one-hot features)
    snap: Callable[[np.ndarray], np.ndarray]  # unit values -> the centres of what they stand for
    decode: Callable[[float], object]


class UnitCube:
    """The unit-cube encoding of a :class:`SearchSpace` (see the module docstring)."""

    def __init__(self, space: SearchSpace, strategy: str = "bayes") -> None:
        self.n_sub = len(space.subspaces)
        self.columns: list[Column] = []
        if self.n_sub > 1:
            self.columns.append(_categorical(-1, "subspace", Categorical(list(range(self.n_sub)))))
        for j, sub in enumerate(space.subspaces):
            for name in sorted(sub):
                self.columns.append(_column(j, name, sub[name], strategy))
        self.dims = len(self.columns)
        self._sub_of = np.array([c.sub for c in self.columns])
        self._numeric = np.array([c.cells == 0 and c.sub >= 0 for c in self.columns], dtype=bool)
        widths = [c.cells or 1 for c in self.columns]
        self.n_features = int(sum(widths))
        self._offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int)
        self.one_hot = np.repeat([c.cells > 0 for c in self.columns], widths)  # per feature: a one-hot column

    # -- coordinates ---------------------------------------------------------------
    def subspace(self, U: np.ndarray) -> np.ndarray:
        """The selected subspace of each row."""
        if self.n_sub == 1:
            return np.zeros(len(U), dtype=int)
        return np.minimum(np.floor(np.clip(U[:, 0], 0, 1) * self.n_sub), self.n_sub - 1).astype(int)

    def snap(self, U: np.ndarray) -> np.ndarray:
        """Clip to [0, 1], move each coordinate to the centre of what it stands for and
        hold the inactive ones at INACTIVE."""
        U = np.clip(np.atleast_2d(U), 0.0, 1.0)
        out = np.empty_like(U)
        for k, col in enumerate(self.columns):
            out[:, k] = col.snap(U[:, k])
        if self.n_sub > 1:
            inactive = (self._sub_of[None, :] >= 0) & (self._sub_of[None, :] != self.subspace(out)[:, None])
            out[inactive] = INACTIVE
        return out

    @property
    def numeric(self) -> np.ndarray:
        """Per coordinate: a numeric parameter (not a list of values, not the subspace selector)."""
        return self._numeric

    def active_numeric(self, u: np.ndarray) -> np.ndarray:
        """Indices of the numeric coordinates of the row's subspace (what a gradient may move)."""
        sub = int(self.subspace(u[None, :])[0])
        return np.flatnonzero(self._numeric & (self._sub_of == sub))

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.snap(rng.random((n, self.dims)))

    def design(self, n: int, seed: int) -> np.ndarray:
        """A Latin hypercube of ``n`` snapped points."""
        return self.snap(qmc.LatinHypercube(d=self.dims, seed=seed).random(n))

    def decode(self, u: np.ndarray) -> Params:
        sub = int(self.subspace(u[None, :])[0])
        return {c.name: c.decode(float(v)) for c, v in zip(self.columns, u, strict=True) if c.sub == sub}

    # -- model features ---------------------------------------------------------------
    def features(self, U: np.ndarray) -> np.ndarray:
        """Numeric coordinates as they are, one-hot columns per category (inactive: zeros)."""
        U = np.atleast_2d(U)
        F = np.zeros((len(U), self.n_features))
        sub = self.subspace(U)
        for k, col in enumerate(self.columns):
            at = self._offsets[k]
            active = (sub == col.sub) if col.sub >= 0 else np.ones(len(U), dtype=bool)
            if col.cells == 0:
                F[:, at] = np.where(active, U[:, k], INACTIVE)
                continue
            idx = np.minimum(np.floor(U[:, k] * col.cells), col.cells - 1).astype(int)
            rows = np.flatnonzero(active)
            F[rows, at + idx[rows]] = 1.0
        return F

    def feature_index(self, k: np.ndarray) -> np.ndarray:
        """The feature column of numeric coordinates ``k`` (the gradient's chain rule)."""
        return self._offsets[k]


def _column(sub: int, name: str, d: Dimension, strategy: str) -> Column:
    if isinstance(d, Categorical):
        return _categorical(sub, name, d)
    if isinstance(d, Real):
        return Column(sub, name, d, 0, lambda u: u, d.from_unit)
    if isinstance(d, Integer):
        return Column(sub, name, d, 0, lambda u, d=d: _snap_integer(d, u), d.from_unit)
    if isinstance(d, Distribution) and hasattr(d.dist, "ppf") and hasattr(d.dist, "cdf"):
        return _distribution(sub, name, d)
    raise InputError(f"space.{name}: strategy '{strategy}' needs Real, Integer, a list of values or a "
                     f"scipy.stats distribution (with ppf and cdf), got {d!r}")


def _categorical(sub: int, name: str, d: Categorical) -> Column:
    cells = len(d.categories)

    def snap(u: np.ndarray) -> np.ndarray:
        return (np.minimum(np.floor(u * cells), cells - 1) + 0.5) / cells

    return Column(sub, name, d, cells, snap, d.from_unit)


def _distribution(sub: int, name: str, d: Distribution) -> Column:
    dist = d.dist
    discrete = hasattr(dist.dist, "pmf")  # scipy's rv_discrete

    def decode(u: float) -> object:
        value = dist.ppf(min(max(u, CDF_EDGE), 1 - CDF_EDGE))
        return int(value) if discrete else float(value)

    def snap(u: np.ndarray) -> np.ndarray:
        if not discrete:
            return u
        k = dist.ppf(np.clip(u, CDF_EDGE, 1 - CDF_EDGE))
        return np.clip(dist.cdf(k) - dist.pmf(k) / 2, 0.0, 1.0)

    return Column(sub, name, d, 0, snap, decode)


def _snap_integer(d: Integer, u: np.ndarray) -> np.ndarray:
    """Vectorised ``d.to_unit(d.from_unit(u))``."""
    if d.log:
        lo, hi = np.log(d.low), np.log(d.high + 1)
        v = np.clip(np.floor(np.exp(lo + u * (hi - lo))), d.low, d.high)
        return (np.log(v + 0.5) - lo) / (hi - lo)
    cells = d.high - d.low + 1
    v = np.minimum(d.low + np.floor(u * cells), d.high)
    return (v - d.low + 0.5) / cells


__all__ = ["UnitCube"]
