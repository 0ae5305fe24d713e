"""Successive halving: many candidates on a small resource, the best on more.

Rungs ("iterations", as scikit-learn calls them) use ``min_resources * factor**i``
of the resource; the top ``1/factor`` of a rung go on to the next. The resource
is ``n_samples`` (each fold's train part subsampled, see
:class:`mpisearch.types.Subsample`) or an integer estimator parameter such
as ``n_estimators``. Rungs and resources are computed exactly as scikit-learn's
``HalvingGridSearchCV`` computes them.

Two modes:

- ``sync``: rung by rung, as scikit-learn does (same choices on the same
  candidates, ties included); every rung waits for its slowest task.
- ``async`` (ASHA, Li et al. 2020): a point is promoted as soon as it is in the
  top ``1/factor`` of its rung's finished points, so workers never wait for a
  rung to finish. Once a rung can get no more points, its final top
  ``ceil(n/factor)`` are promoted too (those not promoted already), so every
  point the synchronous mode would promote from that rung is promoted.
  Candidates start in a seeded random order: in grid order, where quality
  often grows along the grid (max_depth 2, 4, 8, ...), almost every new point
  would enter its rung's running top third and be promoted (measured: 146
  points instead of 90 on a 60-point RandomForest grid, more compute than the
  whole grid).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InputError, did_you_mean
from ..space import Params, SearchSpace
from ..types import Subsample
from ._base import PointResult, Proposal, Strategy
from .sampling import random_draws

MODES = ("async", "sync")
OPTIONS = ("resource", "factor", "min_resources", "max_resources", "mode", "candidates", "n_candidates",
           "subsample_test", "aggressive_elimination")
# scikit-learn's min_resources="smallest" for n_samples: 2 samples per fold
# (times the number of classes for a classifier), its "magic factor".
SMALLEST_PER_SPLIT = 2


@dataclass(frozen=True)
class HalvingOptions:
    """``[search.halving]`` / ``MPISearchCV(halving=...)``; defaults as scikit-learn's."""

    resource: str = "n_samples"
    factor: float = 3
    # an integer, "smallest" or "exhaust"; None: "exhaust" for grid candidates, "smallest" for
    # random ones (the defaults of HalvingGridSearchCV and HalvingRandomSearchCV)
    min_resources: int | str | None = None
    max_resources: int | str = "auto"  # an integer, or "auto" (n_samples) for resource n_samples
    mode: str = "async"
    candidates: str | None = None  # "grid" or "random"; None: grid if the space is finite
    n_candidates: int | str = "exhaust"  # random candidates: a number, or max_resources // min_resources
    subsample_test: bool = False  # True: score on a part of each test fold too, as scikit-learn
    aggressive_elimination: bool = False

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, where: str = "search.halving") -> HalvingOptions:
        """Validated options; errors name the key (``search.halving.factor: ...``)."""
        raw = dict(raw or {})
        for key in raw:
            if key not in OPTIONS:
                raise InputError(f"{where}.{key}: unknown option{did_you_mean(key, OPTIONS)}; "
                                 f"expected one of {', '.join(OPTIONS)}")
        opts = cls(**raw)
        opts._check(where)
        return opts

    def _check(self, where: str) -> None:
        def bad(key: str, expected: str) -> InputError:
            return InputError(f"{where}.{key}: expected {expected}, got {getattr(self, key)!r}")

        if not isinstance(self.resource, str) or not self.resource:
            raise bad("resource", "\"n_samples\" or the name of an integer estimator parameter")
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) or not self.factor > 1:
            raise bad("factor", "a number > 1")
        if not (_positive_int(self.min_resources) or self.min_resources in (None, "smallest", "exhaust")):
            raise bad("min_resources", "a positive integer, \"smallest\" or \"exhaust\"")
        if not (_positive_int(self.max_resources) or self.max_resources == "auto"):
            raise bad("max_resources", "a positive integer or \"auto\"")
        if self.mode not in MODES:
            raise bad("mode", f"one of {MODES}")
        if self.candidates not in (None, "grid", "random"):
            raise bad("candidates", "\"grid\" or \"random\"")
        if not (_positive_int(self.n_candidates) or self.n_candidates == "exhaust"):
            raise bad("n_candidates", "a positive integer or \"exhaust\"")
        if self.n_candidates == "exhaust" and self.min_resources == "exhaust" and self.candidates == "random":
            raise InputError(f"{where}: n_candidates and min_resources cannot both be \"exhaust\"")
        for key in ("subsample_test", "aggressive_elimination"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "true or false")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class DataFacts:
    """What halving needs to know about the data (rank 0 only)."""

    n_samples: int
    n_splits: int
    n_classes: int | None  # for classifiers; None otherwise


def min_max_resources(opts: HalvingOptions, facts: DataFacts) -> tuple[int, int]:
    """scikit-learn's ``min_resources_`` (before "exhaust") and ``max_resources_``."""
    if opts.min_resources in ("smallest", "exhaust"):
        if opts.resource == "n_samples":
            low = facts.n_splits * SMALLEST_PER_SPLIT * (facts.n_classes or 1)
        else:
            low = 1
    else:
        low = int(opts.min_resources)
    if opts.max_resources == "auto":
        if opts.resource != "n_samples":
            raise InputError("search.halving.max_resources: give an integer when the resource is the "
                             f"parameter '{opts.resource}' (\"auto\" means n_samples)")
        high = facts.n_samples
    else:
        high = int(opts.max_resources)
    if low > high:
        raise InputError(f"search.halving.min_resources: {low} is greater than max_resources ({high})")
    return low, high


def rung_resources(n_candidates: int, opts: HalvingOptions, low: int, high: int) -> list[int]:
    """Resources of each iteration, with scikit-learn's formulas (``_run_search``)."""
    factor = opts.factor
    n_required = 1 + math.floor(math.log(n_candidates, factor))
    if opts.min_resources == "exhaust":
        low = max(low, high // factor ** (n_required - 1))
    n_possible = 1 + math.floor(math.log(high // low, factor))
    n_iterations = n_required if opts.aggressive_elimination else min(n_possible, n_required)
    resources = []
    for itr in range(n_iterations):
        power = max(0, itr - n_required + n_possible) if opts.aggressive_elimination else itr
        resources.append(min(int(factor**power * low), high))
    return resources


def top_k(candidates: Sequence[int], scores: Sequence[float], k: int) -> list[int]:
    """scikit-learn's ``_top_k``: the ``k`` best, worst first, NaN never before a number."""
    values = np.asarray(scores, dtype=float)
    order = np.roll(np.argsort(values), np.count_nonzero(np.isnan(values)))
    return [candidates[i] for i in order[-k:]] if k > 0 else []


class HalvingStrategy(Strategy):
    """Successive halving over a fixed list of candidates (sync or async)."""

    def __init__(self, space: SearchSpace, candidates: list[Params], resources: list[int], opts: HalvingOptions,
                 n_samples: int, random_state: int | None = None) -> None:
        super().__init__(space)
        if not candidates:
            raise InputError("search.halving: no candidates to evaluate")
        self.candidates = candidates
        self.resources = resources
        self.opts = opts
        self.n_samples = n_samples
        self.seed = 0 if random_state is None else int(random_state)  # every worker draws the same subsample
        n = len(resources)
        self.members: list[list[int]] = [[] for _ in range(n)]  # candidates entered in each rung, in order
        self.scores: list[dict[int, float]] = [{} for _ in range(n)]
        self.stopped: list[set[int]] = [set() for _ in range(n)]
        self.promoted: list[set[int]] = [set() for _ in range(n)]
        self._issued = [0] * n  # sync: members of each rung handed out so far
        self._next_new = 0  # async: how many candidates started at rung 0
        self._order = np.random.default_rng(self.seed).permutation(len(candidates)).tolist()
        self._rung = 0  # sync: the rung being evaluated
        if opts.mode == "sync":
            self.members[0] = list(range(len(candidates)))

    # -- the Strategy interface -----------------------------------------------------
    def ask(self, n: int) -> list[Proposal]:
        out: list[Proposal] = []
        while len(out) < n:
            nxt = self._next_sync() if self.opts.mode == "sync" else self._next_async()
            if nxt is None:
                break
            out.append(self._proposal(*nxt))
        return out

    def tell(self, results: Sequence[PointResult]) -> None:
        for r in results:
            rung, cand = r.tag
            self.scores[rung][cand] = r.score
            if r.stopped:
                self.stopped[rung].add(cand)

    @property
    def finished(self) -> bool:
        last = len(self.resources) - 1
        if self.opts.mode == "sync":
            return self._rung == last and self._issued[last] == len(self.members[last])
        if last == 0:
            return self._next_new == len(self.candidates)
        return self._closed(last - 1) and not self._final_promotions(last - 1)

    @property
    def total(self) -> int | None:
        """Points of the synchronous schedule; async may promote a few more."""
        if self.opts.mode != "sync":
            return None
        n, total = len(self.candidates), 0
        for _ in self.resources:
            total += n
            n = math.ceil(n / self.opts.factor)
        return total

    # -- what to run next -------------------------------------------------------------
    def _proposal(self, rung: int, cand: int) -> Proposal:
        res = self.resources[rung]
        params = dict(self.candidates[cand])
        subsample = None
        if self.opts.resource == "n_samples":
            subsample = Subsample(res / self.n_samples, self.seed, self.opts.subsample_test)
        else:
            params[self.opts.resource] = res
        return Proposal(params, tag=(rung, cand), columns={"iter": rung, "n_resources": res}, group=rung,
                        subsample=subsample)

    def _next_sync(self) -> tuple[int, int] | None:
        rung = self._rung
        if self._issued[rung] == len(self.members[rung]):
            if rung + 1 == len(self.resources) or len(self.scores[rung]) < len(self.members[rung]):
                return None  # done, or wait for the rung's last results
            self.members[rung + 1] = self._keep(rung)
            self._rung = rung = rung + 1
        cand = self.members[rung][self._issued[rung]]
        self._issued[rung] += 1
        return rung, cand

    def _keep(self, rung: int) -> list[int]:
        """The rung's survivors, as scikit-learn orders them; points stopped by fold
        racing are known to be worse than the rung's best and are left out."""
        members = [c for c in self.members[rung] if c not in self.stopped[rung]]
        k = min(math.ceil(len(self.members[rung]) / self.opts.factor), len(members))
        return top_k(members, [self.scores[rung][c] for c in members], k)

    def _next_async(self) -> tuple[int, int] | None:
        for rung in range(len(self.resources) - 2, -1, -1):
            for cand in self._promotable(rung):
                self.promoted[rung].add(cand)
                self.members[rung + 1].append(cand)
                return rung + 1, cand
        if self._next_new < len(self.candidates):
            cand = self._order[self._next_new]
            self._next_new += 1
            self.members[0].append(cand)
            return 0, cand
        return None

    def _promotable(self, rung: int) -> list[int]:
        """Finished points of the rung in its top 1/factor, not yet promoted (best first)."""
        if self._closed(rung):
            return self._final_promotions(rung)
        done = self._ranked(rung)
        k = math.floor(len(self.scores[rung]) / self.opts.factor)
        return [c for c in done[:k] if c not in self.promoted[rung]]

    def _ranked(self, rung: int) -> list[int]:
        """Finished, not stopped points of the rung, best first (NaN last; ties: first entered)."""
        order = {c: i for i, c in enumerate(self.members[rung])}
        done = [c for c in self.scores[rung] if c not in self.stopped[rung]]
        return sorted(done, key=lambda c: (math.isnan(self.scores[rung][c]), -_finite(self.scores[rung][c]),
                                           order[c]))

    def _final_promotions(self, rung: int) -> list[int]:
        """Once no more points can enter the rung: its final top ceil(n/factor) not yet promoted."""
        k = math.ceil(len(self.members[rung]) / self.opts.factor)
        return [c for c in self._ranked(rung)[:k] if c not in self.promoted[rung]]

    def _closed(self, rung: int) -> bool:
        """No more points will enter the rung and every point in it has finished."""
        if rung == 0:
            entered_all = self._next_new == len(self.candidates)
        else:
            entered_all = self._closed(rung - 1) and not self._final_promotions(rung - 1)
        return entered_all and len(self.scores[rung]) == len(self.members[rung])


def _finite(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def make_halving(space: SearchSpace, raw: Mapping[str, Any] | None, estimator: Any, facts: DataFacts,
                 n_iter: int | None, random_state: int | None) -> HalvingStrategy:
    """The halving strategy of a search: options checked, candidates and rungs made."""
    opts = HalvingOptions.parse(raw)
    _check_resource(opts, space, estimator)
    kind = opts.candidates or ("grid" if space.finite else "random")
    if opts.min_resources is None:
        opts = replace(opts, min_resources="exhaust" if kind == "grid" else "smallest")
    low, high = min_max_resources(opts, facts)
    if kind == "grid":
        from .grid import GridStrategy

        candidates = GridStrategy(space).ask(space.grid_size())
    else:
        n = n_iter if n_iter is not None else opts.n_candidates
        if n == "exhaust":
            n = max(high // low, 1)
        candidates = list(random_draws(space, int(n), random_state))  # as HalvingRandomSearchCV
    return HalvingStrategy(space, candidates, rung_resources(len(candidates), opts, low, high), opts,
                           facts.n_samples, random_state)


def _check_resource(opts: HalvingOptions, space: SearchSpace, estimator: Any) -> None:
    if opts.resource == "n_samples":
        return
    valid = estimator.get_params(deep=True)
    if opts.resource not in valid:
        raise InputError(f"search.halving.resource: '{opts.resource}' is not \"n_samples\" nor a parameter of "
                         f"{type(estimator).__name__}{did_you_mean(opts.resource, valid)}")
    if opts.resource in space.names:
        raise InputError(f"search.halving.resource: '{opts.resource}' is searched in [space]; the resource "
                         "cannot be a searched parameter")
