"""Running a bundle on a worker: one TaskResult per member, as fresh fits would give.

A chain fits its first point afresh, then grows the same estimator with
``warm_start=True`` to each next point's growth value; each point's ``fit_time`` is its
own growth step. A prefix group fits the pipeline's prefix once (``fit_transform`` of
each step in turn, as ``Pipeline.fit`` does), fits each point's final step on the
transformed train part, and scores the point's pipeline made of the fitted prefix steps
and its fitted final step with the usual scorers (so the test part goes through the same
``transform`` calls as in a fresh pipeline); the first point's ``fit_time`` includes the
prefix's fit unless it came from the cache. A member whose chain step raises (or whose
final step writes into its input) is fitted afresh, which reports an error as usual, and
the members after it go on as a bundle of their own (a chain starts afresh). An error in
the prefix, or a sample weight with a pipeline, sends every member left to fresh fits. A
batch (short tasks that share no work) is only fresh fits, one after the other, each
exactly as a single task's.

Each result is passed to ``report`` as soon as it is scored: a fit process sends it to
its rank at once, so a member that crashes the process costs that member only
(:mod:`mpisearch.isolation`).
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


@dataclass(frozen=True)
class MemberDone:
    """One member's result, with what its bundle saved for it (a fit process sends each at once)."""

    result: TaskResult
    saved: ReuseCounts = field(default_factory=ReuseCounts)


@dataclass
class BundleOutcome:
    """A bundle's results, one per member in order, and what was reused."""

    results: list[TaskResult]
    counts: ReuseCounts = field(default_factory=ReuseCounts)

    @classmethod
    def of(cls, done: list[MemberDone]) -> BundleOutcome:
        outcome = cls([])
        for member in done:
            outcome.results.append(member.result)
            outcome.counts.add(member.saved)
        return outcome


Report = Callable[[MemberDone], None]


class _Recorder:
    """Collects a bundle's results in member order, passing each on to ``report`` as it comes."""

    def __init__(self, report: Report | None) -> None:
        self.done: list[MemberDone] = []
        self.report = report

    def __len__(self) -> int:
        return len(self.done)

    def add(self, result: TaskResult, saved: ReuseCounts | None = None) -> None:
        member = MemberDone(result, saved or ReuseCounts())
        self.done.append(member)
        if self.report is not None:
            self.report(member)


def evaluate_bundle(estimator: Any, bundle: Bundle, dataset: Dataset, fold: int, scorers: Scorers,
                    cache: PrefixCache | None = None, report: Report | None = None) -> BundleOutcome:
    """Every member's result on fold ``fold``; ``report`` is called with each as soon as it is scored."""
    record = _Recorder(report)
    while len(record) < len(bundle.members):
        rest = bundle.after(len(record))
        if _shared(estimator, rest, dataset, fold, scorers, cache, record) and len(record) < len(bundle.members):
            member = bundle.members[len(record)]  # where the shortcut stopped: a fresh fit, then on with the rest
            record.add(evaluate(estimator, member.params, dataset, fold, scorers, bundle.subsample))
        else:
            break
    for member in bundle.members[len(record):]:  # what the shortcuts left to fresh fits
        record.add(evaluate(estimator, member.params, dataset, fold, scorers, bundle.subsample))
    return BundleOutcome.of(record.done)


def _shared(estimator: Any, bundle: Bundle, dataset: Dataset, fold: int, scorers: Scorers,
            cache: PrefixCache | None, record: _Recorder) -> bool:
    """Run the bundle's members sharing work until one cannot be (or none is left); False if
    the members after that one cannot share work either (a prefix that fails, sample weights
    with a pipeline; always for a batch, whose members share nothing)."""
    if bundle.kind == BundleKind.BATCH:
        return False
    first = clone(estimator).set_params(**clone(bundle.members[0].params, safe=False))
    with dataset.fold_parts(fold, bundle.subsample, first) as parts:
        if bundle.kind == BundleKind.CHAIN:
            _chain(first, estimator.get_params()[bundle.growth], bundle, parts, scorers, record)
            return True
        if parts.w_train is None:
            return _prefix_group(estimator, first, bundle, fold, parts, scorers, cache, record)
    return False


@contextmanager
def _task(record: _Recorder) -> Iterator[Callable[[TaskResult, ReuseCounts], None]]:
    """One member's result, with its start time and the warnings raised meanwhile."""
    started, got = time.time(), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield lambda result, saved: got.append((result, saved))
    if got:
        result, saved = got[0]
        count_warnings(caught, result)
        result.started = started
        record.add(result, saved)


def _chain(est: Any, default: int, bundle: Bundle, parts: FoldParts, scorers: Scorers, record: _Recorder) -> None:
    """Grow ``est`` (the first member's estimator) through the chain; stop at the first error.
    ``default``: the growth value of a member whose parameters do not set it."""
    assert bundle.growth is not None
    previous = 0
    for i, member in enumerate(bundle.members):
        value = member.params.get(bundle.growth, default)
        with _task(record) as done:
            start = time.perf_counter()
            try:
                if i:
                    est.set_params(warm_start=True, **{bundle.growth: value})
                fit_parts(est, parts)
            except Exception:
                return  # this member: a fresh fit (which reports the error as usual); the rest: a new chain
            fit_time = time.perf_counter() - start
            done(score_fitted(est, parts, scorers, fit_time),
                 ReuseCounts(chained_fits=1, members_kept=previous) if i else ReuseCounts())
        previous = value


def _prefix_group(estimator: Any, first: Any, bundle: Bundle, fold: int, parts: FoldParts, scorers: Scorers,
                  cache: PrefixCache | None, record: _Recorder) -> bool:
    assert bundle.prefix_key is not None
    key = PrefixKey(fold, bundle.subsample, bundle.prefix_key)
    prefix = None if cache is None else cache.get(key)
    cached = prefix is not None
    charge = 0.0  # the prefix's fit time, charged to the first member
    if prefix is None:
        try:
            prefix = _fit_prefix(first, parts)
        except Exception:
            return False  # every member: fresh fits (which report the error as usual)
        charge = prefix.fit_time
        if cache is not None:
            cache.put(key, prefix)
    for i, member in enumerate(bundle.members):
        saved = ReuseCounts(prefix_fits_reused=1 if i or cached else 0)
        if not _final_fit(estimator, member, prefix, parts, scorers, charge if i == 0 else 0.0, saved, record):
            return True  # this member: a fresh fit; the rest: the prefix again (from the cache)
    return True


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
               charge: float, saved: ReuseCounts, record: _Recorder) -> bool:
    """Fit and score one member on the fitted prefix; False (nothing recorded) to leave it to a fresh fit."""
    pipe = clone(estimator).set_params(**clone(member.params, safe=False))
    name, final = pipe.steps[-1]
    with _task(record) as done:
        start = time.perf_counter()
        try:
            fit_parts(final, parts, X_train=prefix.X_train)
        except Exception as exc:
            if writes_input(exc):
                return False  # a fresh fit refits it on a private copy
            done(TaskResult(fit_time=charge + time.perf_counter() - start, error=traceback.format_exc(),
                            reason=Failure.FIT), saved)
            return True
        pipe.steps = [*prefix.steps, (name, final)]
        done(score_fitted(pipe, parts, scorers, charge + time.perf_counter() - start), saved)
    return True
