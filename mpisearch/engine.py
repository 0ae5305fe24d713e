"""One search, SPMD on MPI ranks or in one process: rank 0 plans and coordinates; other ranks work.

Used by :class:`mpisearch.lifecycle.SearchRun` (the CLI and MPISearchCV). Rank 0
checks the input (mpisearch.plan), broadcasts a :class:`~mpisearch.messages.JobHeader`
and the data as raw buffers, runs the coordinator, and broadcasts the
:class:`~mpisearch.types.Outcome`; every other rank serves tasks until told to stop.
"""

from __future__ import annotations

import contextlib
import socket
import time
import warnings
from collections import Counter
from typing import Any

from . import batching
from .control import RunControl
from .coordinator import Coordinator, Limits
from .errors import SearchFailedError
from .hotpath import search_loop
from .liveness import announce, await_ranks
from .messages import JobHeader, JobRefused
from .plan import Plan, make_plan
from .racing import Racer
from .results import chosen_index
from .reuse.bundles import Bundler, ReuseOptions
from .scoring import make_scorers
from .spec import SearchSpec
from .stats import RunStats
from .transport.local import WORKER_RANK, LocalTransport
from .types import Outcome
from .worker import Worker, serve


class WorkerWarning(UserWarning):
    """Summary of a warning raised in tasks (counted on every rank, reported once)."""


def search(spec: SearchSpec, X: Any, y: Any, comm: Any = None, groups: Any = None,
           control: RunControl | None = None, sample_weight: Any = None) -> Outcome:
    """Run a search on ``comm`` (None: in this process). SPMD: call on every rank; ranks
    other than 0 ignore every argument but ``comm`` (see :func:`serve_search`)."""
    control = control or RunControl()
    if comm is None:
        return _search_local(spec, X, y, groups, sample_weight, control)
    if comm.Get_rank() == 0:
        await_ranks(comm)  # fit on rank 0 only: one line after a while, not a hang
        return _search_root(spec, X, y, comm, groups, control, sample_weight)
    return serve_search(comm)


def serve_search(comm: Any) -> Outcome:
    """A worker rank's part of a search: evaluate tasks until rank 0 says stop; its Outcome."""
    from .data.shipping import bcast_object

    announce(comm)
    header = bcast_object(None, comm)
    if isinstance(header, JobRefused):
        raise header.error
    _work(comm, header)
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
    """Rank 0 failed before the search started: every worker rank raises ``exc`` too.
    ``joined``: the worker ranks were already awaited (see mpisearch.liveness)."""
    from .data.shipping import bcast_object

    if not joined:
        with contextlib.suppress(SearchFailedError):  # the ranks that joined get exc; the others never will
            await_ranks(comm)
    bcast_object(JobRefused(exc), comm)


def _coordinator(spec: SearchSpec, plan: Plan, transport: Any, workers: list[int],
                 control: RunControl) -> Coordinator:
    racer = Racer(plan.table.n_folds, spec.racing_confidence) if spec.racing else None
    return Coordinator(plan.strategy, plan.table, plan.rank_metric, transport, workers, control=control,
                       limits=Limits(spec.max_time, spec.grace), racer=racer, bundler=_bundler(spec),
                       batching=batching.DEFAULT_POLICY if spec.batch_short_tasks else None)


def _bundler(spec: SearchSpec) -> Bundler | None:
    """Bundles of points that share work (mpisearch.reuse), unless turned off (a task_timeout
    applies to each point of a bundle: see mpisearch.isolation)."""
    if not (spec.warm_start_chains or spec.prefix_cache):
        return None
    return Bundler(spec.estimator, ReuseOptions(spec.warm_start_chains, spec.prefix_cache, spec.prefix_cache_memory))


def _search_local(spec: SearchSpec, X: Any, y: Any, groups: Any, sample_weight: Any,
                  control: RunControl) -> Outcome:
    t0 = time.perf_counter()
    plan = make_plan(spec, X, y, groups, sample_weight)
    worker = Worker(spec.estimator, plan.dataset, plan.scorers, spec.task_limits, rank=WORKER_RANK,
                    isolate=spec.isolate, prefix_cache_memory=spec.prefix_cache_memory)
    try:
        with search_loop(spec.estimator):  # cheaper clone per task, no full GC passes over the imports
            stats = _coordinator(spec, plan, LocalTransport(worker), [WORKER_RANK], control).run()
    finally:
        worker.close()  # its fit process, if any
    info = {"ranks": 1, "setup_s": time.perf_counter() - t0 - stats.search_s, "bcast_s": 0.0}
    return _outcome(plan, stats, info, spec.refit)


def _search_root(spec: SearchSpec, X: Any, y: Any, comm: Any, groups: Any, control: RunControl,
                 sample_weight: Any) -> Outcome:
    from .data.shipping import bcast_dataset, bcast_object
    from .transport.mpi import MPITransport

    t0 = time.perf_counter()
    try:
        plan = make_plan(spec, X, y, groups, sample_weight)
    except Exception as exc:
        release_workers(comm, exc, joined=True)
        raise
    t1 = time.perf_counter()
    bcast_object(JobHeader(spec.estimator, spec.scoring, spec.shared_memory, spec.task_limits,
                           train_scores=spec.return_train_score, prefix_cache_memory=spec.prefix_cache_memory), comm)
    bcast_dataset(plan.dataset, comm, shared=spec.shared_memory)
    t2 = time.perf_counter()
    transport = MPITransport(comm)
    try:
        with search_loop(coordinator=True):  # no full GC passes over the imports and data, few young ones
            stats = _coordinator(spec, plan, transport, list(range(1, comm.Get_size())), control).run()
        outcome = _outcome(plan, stats, {"ranks": comm.Get_size(), "setup_s": t1 - t0, "bcast_s": t2 - t1},
                           spec.refit)
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


def _work(comm: Any, header: JobHeader) -> None:
    from .data.shipping import bcast_dataset
    from .runtime import limit_worker_threads
    from .transport.mpi import MPITransport

    dataset = bcast_dataset(None, comm, shared=header.shared_memory)
    origin = f"rank {comm.Get_rank()} (host {socket.gethostname()})"
    transport = MPITransport(comm)
    limits = limit_worker_threads()
    try:
        scorers = make_scorers(header.scoring, header.estimator, train=header.train_scores)
        worker = Worker(header.estimator, dataset, scorers, header.task_limits, origin, rank=comm.Get_rank(),
                        isolate=True, prefix_cache_memory=header.prefix_cache_memory)
        if header.shared_memory:
            from .data.shared import window_info

            worker.shared = window_info(comm)  # in run.json: the ranks that share this rank's copy
        with search_loop(header.estimator):  # cheaper clone per task, no full GC passes over the imports
            serve(worker, transport)
    finally:
        transport.flush()
        if limits is not None:
            limits.restore_original_limits()


def _outcome(plan: Plan, stats: RunStats, info: dict[str, Any], refit: Any = None) -> Outcome:
    """The search's Outcome; ``refit``: a callable picks the best row (scikit-learn's callable refit)."""
    summarise_warnings(stats.warnings)
    plan.table.check_failures()
    cv_results = plan.table.cv_results()
    best = chosen_index(cv_results, plan.rank_metric, refit) if cv_results["params"] else None
    info.update(stats.info())
    return Outcome(cv_results, plan.table.metrics, plan.rank_metric, best, plan.table.n_folds, info)


def summarise_warnings(counts: Counter[str]) -> None:
    for text, n in counts.most_common():
        warnings.warn(f"{n} task{'s' if n > 1 else ''} warned: {text}", WorkerWarning, stacklevel=3)
