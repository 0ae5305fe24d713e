"""One search, SPMD: rank 0 validates, ships data and coordinates; other ranks work.

Used by both :class:`mpisearch.MPISearchCV` and ``mpisearch run``.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_classifier

from .coordinator import DEFAULT_GRACE_SECONDS, Coordinator, JournalLike, StopRequest
from .cv import make_folds
from .data.dataset import Dataset, weight_problem
from .errors import InputError, SearchFailedError, did_you_mean
from .hotpath import search_loop
from .limits import TaskLimits
from .liveness import announce, await_ranks
from .progress import Progress
from .racing import DEFAULT_CONFIDENCE, Racer
from .results import ResultTable, best_index
from .scoring import make_scorers, refit_metric
from .space import SearchSpace
from .strategies import DataFacts, make_strategy
from .transport.local import WORKER_RANK, LocalTransport
from .worker import Worker, serve


@dataclass
class SearchSpec:
    """Everything that defines a search, apart from the data."""

    estimator: Any
    space: SearchSpace
    strategy: str = "grid"
    n_iter: int | None = None
    random_state: int | None = None
    scoring: Any = None
    refit: bool | str = True
    error_score: Any = np.nan
    max_time: float | None = None
    cv: Any = 5
    grace: float = DEFAULT_GRACE_SECONDS
    shared_memory: bool = True  # one read-only copy of the data per node (MPI-3 shared window)
    task_timeout: float | None = None  # seconds; a longer fit is killed and recorded as failed
    task_memory: int | None = None  # bytes a task may allocate in its fit process (mpisearch.limits)
    isolate: bool = False  # without MPI too, fits run in a fit process (mpisearch.isolation); MPI workers always
    halving: Mapping[str, Any] | None = None  # options of strategy "halving" (see HalvingOptions)
    racing: bool = False  # stop a point between folds once it cannot beat the best (mpisearch.racing)
    racing_confidence: float = DEFAULT_CONFIDENCE

    def identity(self) -> dict[str, Any]:
        """What makes journal entries of two runs comparable (hashed into run.json)."""
        parts = {"estimator": self.estimator, "space": self.space, "cv": self.cv, "scoring": self.scoring}
        if self.strategy == "halving":  # subsamples depend on these
            parts["halving"] = {**dict(self.halving or {}), "random_state": self.random_state}
        return parts


@dataclass
class RunControl:
    """How the caller follows and steers a run (used on rank 0 only)."""

    journal: JournalLike | None = None  # records each finished task; flushed before more work goes out
    prior: Mapping[tuple[str, int], Any] | None = None  # results of an earlier run, by (point key, fold)
    stop: StopRequest | None = None  # set by a signal handler to stop gracefully
    progress: Progress | None = None  # live display on rank 0


@dataclass
class Outcome:
    """What every rank knows after a search."""

    cv_results: dict[str, Any]
    metrics: list[str]
    rank_metric: str
    best_index: int | None
    n_splits: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def best_params(self) -> dict[str, Any] | None:
        return None if self.best_index is None else self.cv_results["params"][self.best_index]

    @property
    def best_score(self) -> float | None:
        if self.best_index is None:
            return None
        return float(self.cv_results[f"mean_test_{self.rank_metric}"][self.best_index])


def prepare_data(X: Any, y: Any) -> tuple[Any, np.ndarray | None]:
    """Arrays as every rank will hold them (numpy or CSR; strings as fixed width)."""
    if X is None:
        raise InputError("X is None on rank 0; rank 0 must pass the data")
    X = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"X must be 2-D, got shape {X.shape}")
    if y is None:
        return X, None
    y = np.asarray(y)
    if y.dtype == object:
        y = y.astype(str)
    if len(y) != X.shape[0]:
        raise InputError(f"X and y have different lengths: X has {X.shape[0]} rows, y has {len(y)}")
    return X, y


def check_params(estimator: Any, space: SearchSpace) -> None:
    """Every searched name must be a parameter of the estimator."""
    valid = estimator.get_params(deep=True)
    for name in space.names:
        if name not in valid:
            hint = did_you_mean(name, valid)
            raise InputError(
                f"space.{name}: '{name}' is not a parameter of {type(estimator).__name__}{hint}; "
                f"valid parameters: {', '.join(sorted(valid))}"
            )


def plan(spec: SearchSpec, X: Any, y: Any, groups: Any = None,
         sample_weight: Any = None) -> tuple[Dataset, ResultTable, Any, str]:
    """Rank 0's validation and set-up; raises InputError on bad input."""
    X, y = prepare_data(X, y)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (X.shape[0],):
            raise InputError(f"sample_weight must have one value per row of X ({X.shape[0]}), "
                             f"got shape {sample_weight.shape}")
        problem = weight_problem(sample_weight)
        if problem:
            raise InputError(f"sample_weight {problem}")
    check_params(spec.estimator, spec.space)
    if spec.racing and not 0.5 < spec.racing_confidence < 1:
        raise InputError(f"search.racing_confidence: expected a number between 0.5 and 1, "
                         f"got {spec.racing_confidence!r}")
    scorers = make_scorers(spec.scoring, spec.estimator)
    metric = refit_metric(scorers, spec.refit)
    if spec.strategy != "halving":
        strategy = make_strategy(spec.strategy, spec.space, spec.n_iter, spec.random_state, racing=spec.racing)
    try:
        folds = make_folds(spec.cv, spec.estimator, X, y, groups)
    except ValueError as exc:
        raise InputError(f"cv: {exc}") from None
    if spec.strategy == "halving":
        n_classes = len(np.unique(y)) if y is not None and is_classifier(spec.estimator) else None
        facts = DataFacts(X.shape[0], len(folds), n_classes)
        strategy = make_strategy(spec.strategy, spec.space, spec.n_iter, spec.random_state, spec.halving,
                                 spec.estimator, facts)
    table = ResultTable(list(scorers), len(folds), spec.error_score)
    return Dataset(X, y, folds, sample_weight), table, strategy, metric


def search(spec: SearchSpec, X: Any, y: Any, comm: Any = None, groups: Any = None,
           control: RunControl | None = None, sample_weight: Any = None) -> Outcome:
    """Run a search on ``comm`` (None: in this process). SPMD: call on every rank."""
    control = control or RunControl()
    if comm is None:
        return _search_local(spec, X, y, groups, sample_weight, control)
    from .data.shipping import bcast_object

    if comm.Get_rank() == 0:
        await_ranks(comm)  # fit on rank 0 only: one line after a while, not a hang
        return _search_root(spec, X, y, comm, groups, control, sample_weight)
    announce(comm)
    header = bcast_object(None, comm)
    if header[0] == "error":
        raise header[1]
    _work(comm, header[1])
    outcome = bcast_object(None, comm)
    release_shared(comm)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def release_shared(comm: Any) -> None:
    """Free the node-shared windows of this search's data (every rank, after the outcome)."""
    from .data.shared import release

    release(comm)


def release_workers(comm: Any, exc: BaseException, joined: bool = False) -> None:
    """Rank 0 failed before the search started: every worker rank raises ``exc`` too."""
    from .data.shipping import bcast_object

    if not joined:
        with contextlib.suppress(SearchFailedError):  # the ranks that joined get exc; the others never will
            await_ranks(comm)
    bcast_object(("error", exc), comm)


def _coordinator(spec: SearchSpec, planned: tuple[Any, ...], transport: Any, workers: list[int],
                 control: RunControl) -> Coordinator:
    _, table, strategy, metric = planned
    racer = Racer(table.n_folds, spec.racing_confidence) if spec.racing else None
    return Coordinator(strategy, table, transport, workers, metric, spec.max_time, journal=control.journal,
                       prior=control.prior, stop=control.stop, grace=spec.grace, progress=control.progress,
                       racer=racer)


def _search_local(spec: SearchSpec, X: Any, y: Any, groups: Any, sample_weight: Any,
                  control: RunControl) -> Outcome:
    t0 = time.perf_counter()
    planned = plan(spec, X, y, groups, sample_weight)
    dataset, table, _, metric = planned
    worker = Worker(spec.estimator, dataset, make_scorers(spec.scoring, spec.estimator),
                    TaskLimits(spec.task_timeout, spec.task_memory), isolate=spec.isolate)
    with search_loop(spec.estimator):  # cheaper clone per task, no full GC passes over the imports
        stats = _coordinator(spec, planned, LocalTransport(worker), [WORKER_RANK], control).run()
    info = {"ranks": 1, "setup_s": time.perf_counter() - t0 - stats.search_s, "bcast_s": 0.0}
    return _outcome(table, metric, stats, info)


def _search_root(spec: SearchSpec, X: Any, y: Any, comm: Any, groups: Any, control: RunControl,
                 sample_weight: Any) -> Outcome:
    from .data.shipping import bcast_dataset, bcast_object
    from .transport.mpi import MPITransport

    t0 = time.perf_counter()
    try:
        planned = plan(spec, X, y, groups, sample_weight)
        dataset, table, _, metric = planned
    except Exception as exc:
        release_workers(comm, exc, joined=True)
        raise
    t1 = time.perf_counter()
    bcast_object(("ok", (spec.estimator, spec.scoring, spec.shared_memory,
                         TaskLimits(spec.task_timeout, spec.task_memory))), comm)
    dataset = bcast_dataset(dataset, comm, shared=spec.shared_memory)
    t2 = time.perf_counter()
    transport = MPITransport(comm)
    workers = list(range(1, comm.Get_size()))
    try:
        with search_loop():  # no full GC passes over the imports and data
            stats = _coordinator(spec, planned, transport, workers, control).run()
        info = {"ranks": comm.Get_size(), "setup_s": t1 - t0, "bcast_s": t2 - t1}
        outcome = _outcome(table, metric, stats, info)
    except BaseException as exc:
        transport.flush()
        bcast_object(exc, comm)
        release_shared(comm)
        raise
    if not stats.abandoned:  # else workers are still inside fits: the caller aborts them
        transport.flush()
        bcast_object(outcome, comm)
        release_shared(comm)
    return outcome


def _work(comm: Any, job: tuple[Any, Any]) -> None:
    from .data.shipping import bcast_dataset
    from .runtime import limit_worker_threads
    from .transport.mpi import MPITransport

    estimator, scoring, shared, task_limits = job
    dataset = bcast_dataset(None, comm, shared=shared)
    origin = f"rank {comm.Get_rank()} (host {socket.gethostname()})"
    transport = MPITransport(comm)
    limits = limit_worker_threads()
    try:
        worker = Worker(estimator, dataset, make_scorers(scoring, estimator), task_limits, origin, isolate=True)
        if shared:
            from .data.shared import window_info

            worker.shared = window_info(comm)  # in run.json: the ranks that share this rank's copy
        with search_loop(estimator):  # cheaper clone per task, no full GC passes over the imports
            serve(worker, transport)
    finally:
        transport.flush()
        if limits is not None:
            limits.restore_original_limits()


def _outcome(table: ResultTable, metric: str, stats: Any, info: dict[str, Any]) -> Outcome:
    summarise_warnings(stats.warnings)
    table.check_failures()
    cv_results = table.cv_results()
    best = best_index(cv_results, metric) if cv_results["params"] else None
    info.update(_stats_info(stats))
    return Outcome(cv_results, table.metrics, metric, best, table.n_folds, info)


def _stats_info(stats: Any) -> dict[str, Any]:
    workers = {str(r): s for r, s in sorted(stats.workers.items())}
    busy = sum(s.get("busy_s", 0.0) for s in workers.values())
    n = max(len(workers), 1)
    host = socket.gethostname()
    return {
        "coordinator_host": host,
        "hosts": sorted({host, *(s.get("host", host) for s in workers.values())}),
        "busy_s": busy,
        "idle_s": sum(s.get("idle_s", 0.0) for s in workers.values()),
        "search_s": stats.search_s,
        "coordinator_cpu_s": stats.cpu_s,
        "tasks": stats.n_tasks,
        "duplicate_results": stats.n_duplicates,
        "duplicate_s": stats.duplicate_s,
        "stolen_tasks": stats.n_stolen,
        "raced_points": stats.n_raced,
        "raced_tasks": stats.n_raced_tasks,
        "late_results": stats.n_late,
        "late_s": stats.late_s,
        "timed_out": stats.timed_out,
        "stopped": stats.stopped,
        "abandoned": stats.abandoned,
        "resumed_tasks": stats.n_resumed,
        "warnings": dict(stats.warnings.most_common()),
        "workers": workers,
        "utilisation": busy / (n * stats.search_s) if stats.search_s > 0 else math.nan,
        # without the work that was thrown away: straggler copies that lost, results of raced-out points
        "useful_utilisation": (busy - stats.duplicate_s - stats.late_s) / (n * stats.search_s)
        if stats.search_s > 0 else math.nan,
    }


class WorkerWarning(UserWarning):
    """Summary of a warning raised in tasks (counted on every rank, reported once)."""


def summarise_warnings(counts: Counter[str]) -> None:
    for text, n in counts.most_common():
        warnings.warn(f"{n} task{'s' if n > 1 else ''} warned: {text}", WorkerWarning, stacklevel=3)


def refit(spec: SearchSpec, outcome: Outcome, X: Any, y: Any, sample_weight: Any = None) -> tuple[Any, float]:
    """Fit the best point on all the data (rank 0 only); returns (estimator, seconds)."""
    est = clone(spec.estimator).set_params(**clone(outcome.best_params, safe=False))
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    spread = idle_core_params(est, spec.space.names)
    start = time.perf_counter()
    est.set_params(**spread)
    with warnings.catch_warnings():
        if spread:  # our n_jobs, not the user's: hide "n_jobs has no effect" deprecations
            warnings.filterwarnings("ignore", message=".*n_jobs.*", category=FutureWarning)
        est.fit(X, **fit_params) if y is None else est.fit(X, y, **fit_params)
    est.set_params(**dict.fromkeys(spread))  # back to the user's n_jobs=None
    return est, time.perf_counter() - start


def idle_core_params(estimator: Any, searched: list[str]) -> dict[str, int]:
    """``n_jobs`` parameters left at None and not searched, set to this node's cores.

    By the time of the refit every worker is idle, so the refit may use the
    whole node; the fitted model is the same (scikit-learn's parallel fits are
    deterministic) and n_jobs is put back to None afterwards."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2:
        return {}
    params = estimator.get_params(deep=True)
    return {k: cores for k, v in params.items()
            if (k == "n_jobs" or k.endswith("__n_jobs")) and v is None and k not in searched}
