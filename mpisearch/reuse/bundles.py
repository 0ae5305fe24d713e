"""Bundles: several points of one fold that a worker runs together, in one task.

Three kinds, one mechanism:

- a warm-start *chain*: points that differ only in a growth parameter (see
  :mod:`.growth`), smallest first: the worker fits the first, scores it, grows the same
  estimator to the next value with ``warm_start=True``, scores it, and so on;
- a pipeline *prefix group*: points of a :class:`~sklearn.pipeline.Pipeline` whose steps
  before the final estimator have the same parameters: the worker fits the prefix once
  (or finds it in its cache, :mod:`.prefix`) and fits each point's final step on the
  transformed train part;
- a *batch* of short tasks: points that share no work, each fitted afresh exactly as a
  single task is, sent and scheduled as one task so that rank 0's cost per message and
  per scheduling decision is paid once for several points (see
  :func:`mpisearch.batching.batch_size`, which decides how many).

Rank 0 groups each batch of new points, fold by fold (:class:`Bundler`); the scheduler
sees a bundle as one task of its first point. Points are grouped only when their
parameters are plain values (numbers, strings, booleans, None), compared with their
type (``1`` and ``1.0`` are different values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from ..space import Params
from ..spec import DEFAULT_PREFIX_CACHE_BYTES
from ..types import Subsample
from .growth import GROWTH, growth_param

# A prefix group is cut into pieces so that each worker gets at least this many units of
# work from a batch: unlike a chain, a piece costs only one more fit of the prefix (none if
# the worker's cache holds it), while few large units leave workers idle at the end (the
# quick pipeline benchmark, 9 groups of 12 points on 2 workers, ran slower than without
# reuse). Chosen, not tuned.
PREFIX_PIECES_PER_WORKER = 8
_PIPELINE_PARAMS = ("steps", "memory", "verbose", "transform_input")  # Pipeline's own parameters

Key = tuple[Any, ...]


class BundleKind(StrEnum):
    CHAIN = "chain"  # warm-start chain
    PREFIX = "prefix"  # pipeline prefix group
    BATCH = "batch"  # short tasks sharing no work, each fitted afresh (fewer messages for rank 0)


@dataclass(frozen=True)
class Member:
    """One point of a bundle."""

    point_id: int
    params: Params


@dataclass(frozen=True)
class Bundle:
    """Points of one fold run together by one worker (all with the same subsample)."""

    kind: BundleKind
    members: tuple[Member, ...]  # a chain: growth values ascending
    subsample: Subsample | None = None
    growth: str | None = None  # a chain's growth parameter
    prefix_key: Key | None = None  # a prefix group's prefix parameters (the worker's cache key, with the fold)

    @property
    def lead(self) -> int:
        """The point the scheduler knows the bundle by (its first member)."""
        return self.members[0].point_id

    def after(self, done: int) -> Bundle:
        """The bundle of the members after the first ``done`` (a chain's first of them is fitted afresh)."""
        return replace(self, members=self.members[done:])


@dataclass
class ReuseCounts:
    """What reuse saved (run.json ``reused``)."""

    chained_fits: int = 0  # fits that grew a fitted estimator instead of fitting afresh
    members_kept: int = 0  # ensemble members (trees, boosting stages) grown on instead of refitted
    prefix_fits_reused: int = 0  # pipeline prefixes (fit and transform of the train part) not refitted

    def add(self, other: ReuseCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class NewPoint:
    """A point whose task of one fold is to run: what grouping looks at."""

    point_id: int
    params: Params
    subsample: Subsample | None


@dataclass(frozen=True)
class ReuseOptions:
    """Which kinds of reuse a search may use (both exact; on by default)."""

    chains: bool = True
    prefix: bool = True
    prefix_cache_memory: int = DEFAULT_PREFIX_CACHE_BYTES


class Bundler:
    """Rank 0: groups the points of one fold into bundles (and points left alone)."""

    def __init__(self, estimator: Any, options: ReuseOptions) -> None:
        self.estimator = estimator
        self.options = options
        self._final = _final_step(estimator) if options.prefix else None

    @property
    def may_group(self) -> bool:
        """Whether any point of this estimator could be bundled (else every task runs as before)."""
        return (self.options.chains and type(self.estimator) in GROWTH) or self._final is not None

    def group(self, points: Sequence[NewPoint], n_tasks: int, n_workers: int) -> list[Bundle | int]:
        """Bundles and the ids of points run alone, in the order of each unit's first point,
        for a batch of ``n_tasks`` tasks (``points`` are one fold's). A chain holds at most
        ceil(n_tasks / n_workers) points, so that every worker gets work, and is cut into
        consecutive pieces beyond (each starts with a fresh fit); a prefix group holds at
        most ceil(n_tasks / (n_workers * PREFIX_PIECES_PER_WORKER)) points."""
        sizes = {BundleKind.CHAIN: math.ceil(n_tasks / n_workers),
                 BundleKind.PREFIX: math.ceil(n_tasks / (n_workers * PREFIX_PIECES_PER_WORKER))}
        groups: dict[Key, list[NewPoint]] = {}
        order: list[Key | int] = []
        for point in points:
            key = self._key(point)
            if key is None:
                order.append(point.point_id)
            else:
                if key not in groups:
                    order.append(key)
                groups.setdefault(key, []).append(point)
        units: list[Bundle | int] = []
        for item in order:
            if isinstance(item, tuple):
                units.extend(self._bundles(item, groups[item], max(1, sizes[item[0]])))
            else:
                units.append(item)
        return units

    def _key(self, point: NewPoint) -> Key | None:
        if self.options.chains:
            growth = growth_param(self.estimator, point.params)
            rest = _plain_items({k: v for k, v in point.params.items() if k != growth})
            if growth is not None and rest is not None:
                return (BundleKind.CHAIN, growth, rest, point.subsample)
        if self._final is not None:
            prefix = _prefix_items(point.params, self._final)
            if prefix is not None:
                return (BundleKind.PREFIX, prefix, point.subsample)
        return None

    def _bundles(self, key: Key, points: list[NewPoint], max_size: int) -> list[Bundle | int]:
        kind, subsample = key[0], key[-1]
        if kind == BundleKind.CHAIN:
            growth = key[1]
            base = self.estimator.get_params(deep=False)[growth]
            points = sorted(points, key=lambda p: p.params.get(growth, base))
        pieces = _split(points, max_size)
        out: list[Bundle | int] = []
        for piece in pieces:
            members = tuple(Member(p.point_id, p.params) for p in piece)
            if kind == BundleKind.CHAIN:
                out.append(Bundle(kind, members, subsample, growth=key[1]) if len(piece) > 1 else piece[0].point_id)
            else:  # a prefix group of one still goes as a bundle: the worker's cache may hold its prefix
                out.append(Bundle(kind, members, subsample, prefix_key=key[1]))
        return out


def batched(units: Sequence[Bundle | int], point: Callable[[int], tuple[Params, Subsample | None]],
            size: Callable[[int], int]) -> list[Bundle | int]:
    """``units`` (one fold's, in order) with consecutive single points of one subsample put
    in BATCH bundles: one starting at ``units[i]`` holds at most ``size(i)`` points (a piece
    of one stays single). ``point``: a point's parameters and subsample. Bundles already
    formed (chains, prefix groups) are left as they are."""
    out: list[Bundle | int] = []
    i = 0
    while i < len(units):
        unit = units[i]
        if not isinstance(unit, int):
            out.append(unit)
            i += 1
            continue
        params, subsample = point(unit)
        members, n, i = [Member(unit, params)], size(i), i + 1
        while len(members) < n and i < len(units) and isinstance(units[i], int):
            params, other = point(units[i])  # type: ignore[arg-type]
            if other != subsample:
                break
            members.append(Member(units[i], params))  # type: ignore[arg-type]
            i += 1
        out.append(unit if len(members) == 1 else Bundle(BundleKind.BATCH, tuple(members), subsample))
    return out


def _split(points: list[NewPoint], max_size: int) -> list[list[NewPoint]]:
    """Consecutive pieces of at most ``max_size``, as even as possible."""
    n = math.ceil(len(points) / max_size)
    size, extra = divmod(len(points), n)
    pieces, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        pieces.append(points[start:end])
        start = end
    return pieces


def _final_step(estimator: Any) -> str | None:
    """The name of a plain Pipeline's final step, if its prefix may be shared."""
    if type(estimator) is not Pipeline or estimator.memory is not None or len(estimator.steps) < 2:
        return None
    name, final = estimator.steps[-1]
    return None if final is None or final == "passthrough" else name


def _prefix_items(params: Params, final: str) -> Key | None:
    """The parameters of the steps before ``final``, as a key; None if the point cannot share one."""
    prefix = {}
    for name, value in params.items():
        if name in _PIPELINE_PARAMS:
            return None
        if name != final and not name.startswith(f"{final}__"):
            prefix[name] = value
    return _plain_items(prefix)


def _plain_items(params: Params) -> Key | None:
    """(name, type, value) of every parameter, sorted; None if a value is not a plain value."""
    items = []
    for name, value in sorted(params.items()):
        if not (value is None or isinstance(value, (bool, int, float, str, np.generic))):
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        items.append((name, type(value).__name__, value))
    return tuple(items)
