"""Search spaces: dimensions, grid expansion and unit-cube coordinates (random draws: strategies.sampling).

No MPI and no scikit-learn here. A space is a list of *subspaces* (as in
scikit-learn's ``param_grid`` given as a list of dicts); each subspace maps a
parameter name to a dimension.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Params = dict[str, Any]


class Dimension:
    """One searched parameter. Finite dimensions can be enumerated."""

    finite: bool = False

    def values(self) -> list[Any]:
        raise TypeError(f"{self!r} is an interval and cannot be enumerated")

    def to_unit(self, value: Any) -> float:
        """Map a value to [0, 1] (used by model-based strategies)."""
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Dimension):
    """``[low, high]``, uniform or (``log``) log-uniform; checked on creation."""

    low: Any
    high: Any
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.low, self.high, self.log, type(self).__name__)


@dataclass(frozen=True)
class Real(Interval):
    """A real interval ``[low, high]``, uniform or log-uniform."""

    low: float
    high: float

    def to_unit(self, value: Any) -> float:
        lo, hi, v = _scaled(self.low, self.high, float(value), self.log)
        return (v - lo) / (hi - lo) if hi > lo else 0.0

    def from_unit(self, u: float) -> float:
        lo, hi, _ = _scaled(self.low, self.high, self.low, self.log)
        v = lo + min(max(u, 0.0), 1.0) * (hi - lo)
        v = math.exp(v) if self.log else v
        return float(min(max(v, self.low), self.high))


@dataclass(frozen=True)
class Integer(Interval):
    """An integer interval ``[low, high]`` (both included), optionally log-scaled."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if int(self.low) != self.low or int(self.high) != self.high:
            raise ValueError(f"Integer bounds must be integers, got low={self.low!r}, high={self.high!r}")
        super().__post_init__()

    def to_unit(self, value: Any) -> float:
        if self.log:  # inverse of from_unit: cell [k, k+1) in log space
            lo, hi, v = _scaled(self.low, self.high + 1, float(value) + 0.5, True)
        else:
            lo, hi, v = self.low - 0.5, self.high + 0.5, float(value)
        return (v - lo) / (hi - lo)

    def from_unit(self, u: float) -> int:
        u = min(max(u, 0.0), 1.0)
        if self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high + 1) - math.log(self.low)))
            return int(min(max(math.floor(v), self.low), self.high))
        return int(min(self.low + math.floor(u * (self.high - self.low + 1)), self.high))


@dataclass(frozen=True)
class Categorical(Dimension):
    """A finite set of values, in the order given."""

    categories: tuple[Any, ...]

    finite = True

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"Categorical needs a list of values, got {values!r}")
        if len(values) == 0:
            raise ValueError("Categorical needs at least one value")
        object.__setattr__(self, "categories", tuple(values))

    def values(self) -> list[Any]:
        return list(self.categories)

    def to_unit(self, value: Any) -> float:
        return (self.categories.index(value) + 0.5) / len(self.categories)

    def from_unit(self, u: float) -> Any:
        k = min(int(min(max(u, 0.0), 1.0) * len(self.categories)), len(self.categories) - 1)
        return self.categories[k]


class Distribution(Dimension):
    """A scipy.stats frozen distribution (anything with ``rvs``)."""

    def __init__(self, dist: Any) -> None:
        self.dist = dist

    def __repr__(self) -> str:
        return f"Distribution({self.dist!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distribution) and other.dist is self.dist

    __hash__ = object.__hash__


def _check_bounds(low: float, high: float, log: bool, kind: str) -> None:
    if not low <= high:
        raise ValueError(f"{kind} needs low <= high, got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise ValueError(f"{kind} with log=True needs low > 0, got low={low!r}")


def _scaled(low: float, high: float, value: float, log: bool) -> tuple[float, float, float]:
    if log:
        return math.log(low), math.log(high), math.log(value)
    return low, high, value


def as_dimension(value: Any) -> Dimension:
    """Turn what scikit-learn accepts (a list, a scipy distribution) into a Dimension."""
    if isinstance(value, Dimension):
        return value
    if hasattr(value, "rvs"):
        return Distribution(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"expected a list of values, a scipy.stats distribution, or Real/Integer/Categorical; got {value!r}"
        )
    if len(value) == 0:
        raise ValueError("a list of values must not be empty")
    return Categorical(value)


class SearchSpace:
    """A union of subspaces, like scikit-learn's ``param_grid`` list of dicts."""

    def __init__(self, space: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        subspaces = [space] if isinstance(space, Mapping) else list(space)
        if not subspaces:
            raise ValueError("the search space is empty")
        self.subspaces: list[dict[str, Dimension]] = [_subspace(s) for s in subspaces]

    @property
    def names(self) -> list[str]:
        """Parameter names in first-seen order (sorted within each subspace)."""
        seen: dict[str, None] = {}
        for sub in self.subspaces:
            seen.update(dict.fromkeys(sorted(sub)))
        return list(seen)

    @property
    def finite(self) -> bool:
        return all(d.finite for sub in self.subspaces for d in sub.values())

    def intervals(self) -> list[str]:
        """Names of the parameters that cannot be enumerated."""
        return [n for sub in self.subspaces for n, d in sub.items() if not d.finite]

    def grid(self) -> list[Params]:
        """All points, in scikit-learn's ParameterGrid order."""
        return [p for sub in self.subspaces for p in _expand(sub)]

    def grid_size(self) -> int:
        return sum(math.prod(len(d.values()) for d in sub.values()) for sub in self.subspaces)


def _subspace(space: Mapping[str, Any]) -> dict[str, Dimension]:
    if not isinstance(space, Mapping):
        raise TypeError(f"a search space must be a dict or a list of dicts, got {space!r}")
    out = {}
    for name, value in space.items():
        try:
            out[str(name)] = as_dimension(value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"parameter '{name}': {exc}") from None
    return out


def _expand(sub: Mapping[str, Dimension]) -> list[Params]:
    names = sorted(sub)
    if not names:
        return [{}]
    values = [sub[n].values() for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


# Key of a point's resource (successive halving) in point_key: a space makes it
# differ from every estimator parameter name.
RESOURCE_KEY = " n_resources"


def point_key(params: Mapping[str, Any], n_resources: int | None = None) -> str:
    """A deterministic text key for a point (used by the journal and dedup);
    with halving, the same parameters at another resource are another point."""
    key = {k: jsonable(v) for k, v in sorted(params.items())}
    if n_resources is not None:
        key[RESOURCE_KEY] = int(n_resources)
    return json.dumps(key, sort_keys=True)


def jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)
