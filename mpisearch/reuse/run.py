"""Running a bundle on a worker: one TaskResult per member, as fresh fits would give.

A chain fits its first point afresh, then grows the same estimator with
``warm_start=True`` to each next point's growth value; each point's ``fit_time`` is its
own growth step. A prefix group fits the pipeline's prefix once (``fit_transform`` of
each step in turn, as ``Pipeline.fit`` does), fits each point's final step on the
transformed train part, and scores the point's pipeline made of the fitted prefix steps
and its fitted final step with the usual scorers (so the test part goes through the same
``transform`` calls as in a fresh pipeline); the first point's ``fit_time`` includes the
prefix's fit unless it came from the cache. Anything unexpected on the way (an error in
a chain step or the prefix, a sample weight with a pipeline) sends the members not yet
done to ordinary fresh fits, which report errors as usual.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ..data.dataset import Dataset
from ..data.parts import FoldParts
from ..evaluate import count_warnings, evaluate, fit_parts, score_fitted, writes_input
from ..scoring import Scorers
from ..types import Failure, TaskResult
from .bundles import Bundle, BundleKind, Member, ReuseCounts
from .prefix import FittedPrefix, PrefixCache, PrefixKey


@dataclass
class BundleOutcome:
    """A bundle's results, one per member in order, and what was reused."""

    results: list[TaskResult]
    counts: ReuseCounts = field(default_factory=ReuseCounts)


def evaluate_bundle(estimator: Any, bundle: Bundle, dataset: Dataset, fold: int, scorers: Scorers,
                    cache: PrefixCache | None = None) -> BundleOutcome:
    """Every member's result on fold ``fold``."""
    outcome = BundleOutcome([])
    first = clone(estimator).set_params(**clone(bundle.members[0].params, safe=False))
    with dataset.fold_parts(fold, bundle.subsample, first) as parts:
        if bundle.kind == BundleKind.CHAIN:
            _chain(first, estimator.get_params()[bundle.growth], bundle, parts, scorers, outcome)
        elif parts.w_train is None:
            _prefix_group(estimator, first, bundle, fold, parts, scorers, cache, outcome)
    for member in bundle.members[len(outcome.results):]:  # what the shortcuts left to fresh fits
        outcome.results.append(evaluate(estimator, member.params, dataset, fold, scorers, bundle.subsample))
    return outcome


@contextmanager
def _task(results: list[TaskResult]) -> Iterator[Callable[[TaskResult], None]]:
    """One member's result, with its start time and the warnings raised meanwhile."""
    started, got = time.time(), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield got.append
    if got:
        count_warnings(caught, got[0])
        got[0].started = started
        results.append(got[0])


def _chain(est: Any, default: int, bundle: Bundle, parts: FoldParts, scorers: Scorers,
           outcome: BundleOutcome) -> None:
    """Grow ``est`` (the first member's estimator) through the chain; stop at the first error.
    ``default``: the growth value of a member whose parameters do not set it."""
    assert bundle.growth is not None
    previous = 0
    for i, member in enumerate(bundle.members):
        value = member.params.get(bundle.growth, default)
        with _task(outcome.results) as done:
            start = time.perf_counter()
            try:
                if i:
                    est.set_params(warm_start=True, **{bundle.growth: value})
                fit_parts(est, parts)
            except Exception:
                return  # this member and the rest: fresh fits
            fit_time = time.perf_counter() - start
            done(score_fitted(est, parts, scorers, fit_time))
        if i:
            outcome.counts.chained_fits += 1
            outcome.counts.members_kept += previous
        previous = value


def _prefix_group(estimator: Any, first: Any, bundle: Bundle, fold: int, parts: FoldParts, scorers: Scorers,
                  cache: PrefixCache | None, outcome: BundleOutcome) -> None:
    assert bundle.prefix_key is not None
    key = PrefixKey(fold, bundle.subsample, bundle.prefix_key)
    prefix = None if cache is None else cache.get(key)
    charge = 0.0  # the prefix's fit time, charged to the first member
    if prefix is None:
        try:
            prefix = _fit_prefix(first, parts)
        except Exception:
            return  # every member: fresh fits (which report the error as usual)
        charge = prefix.fit_time
        if cache is not None:
            cache.put(key, prefix)
    else:
        outcome.counts.prefix_fits_reused += 1
    for i, member in enumerate(bundle.members):
        if not _final_fit(estimator, member, prefix, parts, scorers, charge if i == 0 else 0.0, outcome):
            return
        if i:
            outcome.counts.prefix_fits_reused += 1


def _fit_prefix(pipeline: Any, parts: FoldParts) -> FittedPrefix:
    start = time.perf_counter()
    prefix = Pipeline(pipeline.steps[:-1])
    Xt = prefix.fit_transform(parts.X_train) if parts.y_train is None else \
        prefix.fit_transform(parts.X_train, parts.y_train)
    if parts.shared and _views(Xt, parts.X_train):  # an identity prefix: a cached view would pin the node's fold
        Xt = Xt.copy()
    return FittedPrefix(prefix.steps, Xt, time.perf_counter() - start)


def _views(Xt: Any, X: Any) -> bool:
    """Whether ``Xt`` shares memory with ``X`` (numpy or CSR)."""
    def arrays(a: Any) -> list[Any]:
        return [a.data, a.indices, a.indptr] if sp.issparse(a) else [a]
    return any(isinstance(t, np.ndarray) and isinstance(x, np.ndarray) and np.may_share_memory(t, x)
               for t in arrays(Xt) for x in arrays(X))


def _final_fit(estimator: Any, member: Member, prefix: FittedPrefix, parts: FoldParts, scorers: Scorers,
               charge: float, outcome: BundleOutcome) -> bool:
    """Fit and score one member on the fitted prefix; False (nothing recorded) to leave it to a fresh fit."""
    pipe = clone(estimator).set_params(**clone(member.params, safe=False))
    name, final = pipe.steps[-1]
    with _task(outcome.results) as done:
        start = time.perf_counter()
        try:
            fit_parts(final, parts, X_train=prefix.X_train)
        except Exception as exc:
            if writes_input(exc):
                return False  # a fresh fit refits it on a private copy
            done(TaskResult(fit_time=charge + time.perf_counter() - start, error=traceback.format_exc(),
                            reason=Failure.FIT))
            return True
        pipe.steps = [*prefix.steps, (name, final)]
        done(score_fitted(pipe, parts, scorers, charge + time.perf_counter() - start))
    return True
