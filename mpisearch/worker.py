"""A worker: keeps a local queue of tasks, evaluates them, reports results.

Transport-independent: :class:`Worker` only reacts to messages and runs tasks;
:func:`serve` is the loop that connects it to a transport (MPI ranks 1..N-1).
With ``isolate`` (MPI worker ranks) or task limits, fits run in a fit process
(:mod:`mpisearch.isolation`), so a crashing fit costs only its task; otherwise
(one process, no limits) in this process, as scikit-learn runs them.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .data.dataset import Dataset
from .data.demand import RankDemand
from .evaluate import evaluate
from .isolation import FitProcess, FitRequest
from .limits import TaskLimits
from .liveness import Pulse
from .messages import COORDINATOR, BundleResult, Bye, CancelTask, MemberResult, Result, RunTask, Stop
from .reuse.prefix import PrefixCache
from .reuse.run import BundleOutcome, evaluate_bundle
from .scoring import Scorers
from .space import Params
from .types import Subsample, TaskResult

if TYPE_CHECKING:
    from .transport import Transport

# How long an idle worker waits in one poll; the transport sleeps inside, so
# this only bounds how late a worker notices a message (it never spins).
IDLE_POLL_SECONDS = 1.0
# Results are held back at most this long to share one message: at ~50 us of
# overhead per message this lets tiny tasks pass rank 0 in batches, while a
# task longer than this is always reported on its own, at once.
RESULT_BATCH_SECONDS = 0.002
# While tasks take less than this, the next ones are handed to the fit process
# before the current result is read (up to about this much work, at most
# PIPELINE_MAX tasks), so the fit process never waits for its rank between tiny
# tasks: it then sleeps voluntarily about once per 100 tasks instead of once per
# task. Measured with no-op tasks at 2 workers on a 2-core machine at load 15:
# 2,900-3,900 tasks/s against 2,800-3,300 one task at a time (the machine's load
# decides more than this; on free cores it saves two wake-ups per task).
PIPELINE_SECONDS = 0.002
PIPELINE_MAX = 64


class Worker:
    def __init__(self, estimator: Any, dataset: Dataset, scorers: Scorers, limits: TaskLimits | None = None,
                 origin: str | None = None, rank: int | None = None, isolate: bool = False,
                 prefix_cache_memory: int = 0) -> None:
        self.estimator = estimator
        self.dataset = dataset
        self.scorers = scorers
        self.limits = limits or TaskLimits()
        if dataset.store is not None and self.limits.timeout is not None:
            dataset.store.bound_wait(self.limits.timeout)  # waiting for room never times a task out
        self.origin = origin  # "rank R (host H)", attached to failures
        self.rank = rank  # this worker's rank, in every result (the journal's and the report's lanes)
        self.fits = FitProcess(estimator, dataset, scorers, self.limits.memory, prefix_cache_memory) \
            if isolate or self.limits.any else None
        self.cache = PrefixCache(prefix_cache_memory)  # fitted pipeline prefixes, when fits run here
        self.queue: deque[RunTask] = deque()  # received, not started
        self.inflight: deque[RunTask] = deque()  # handed to the fit process, in order
        self._last_task_s = math.inf  # fit + score seconds of the last task
        self.params: dict[int, Params] = {}
        self.subsample: dict[int, Subsample] = {}
        self.stopped = False
        self.n_tasks = 0
        self.busy_seconds = 0.0
        self.started = time.perf_counter()
        self.shared: dict[str, Any] | None = None  # the node-shared window holding the data, if any
        self.demand = RankDemand(dataset.store)  # this rank's tasks, counted by its node's fold store

    def receive(self, msg: Any) -> None:
        if isinstance(msg, list):
            for m in msg:
                self.receive(m)
        elif isinstance(msg, RunTask):
            if msg.params is not None:
                self.params[msg.point_id] = msg.params
                if msg.subsample is not None:
                    self.subsample[msg.point_id] = msg.subsample
            self.queue.append(msg)
            self.demand.arrived(msg.fold)  # the node keeps the fold until the task is done
        elif isinstance(msg, CancelTask):  # one in flight runs all the same (the first result wins)
            kept = deque(t for t in self.queue if t.task_id != msg.task_id)
            self.demand.dropped(t.fold for t in self.queue if t.task_id == msg.task_id)
            self.queue = kept
        elif isinstance(msg, Stop):
            self.demand.dropped(t.fold for t in self.queue)
            self.queue.clear()
            self.stopped = True
            self.close()
        else:
            raise TypeError(f"worker got an unexpected message {msg!r}")

    @property
    def busy(self) -> bool:
        """Tasks are waiting or running."""
        return bool(self.queue or self.inflight)

    def run_next(self, tick: Callable[[], None] | None = None) -> Result | BundleResult:
        """Finish the next task; ``tick`` is called about every second while a fit process works."""
        if self.fits is None:
            task = self.queue.popleft()
            start = time.perf_counter()
            result = evaluate_bundle(self.estimator, task.bundle, self.dataset, task.fold, self.scorers, self.cache) \
                if task.bundle is not None else \
                evaluate(self.estimator, self.params[task.point_id], self.dataset, task.fold, self.scorers,
                         self.subsample.get(task.point_id))
            self.busy_seconds += time.perf_counter() - start
        else:
            self._submit_ahead()
            task = self.inflight.popleft()
            result = self.fits.result(self.limits.timeout, tick)
            self.busy_seconds += self.fits.last_duration
        self.n_tasks += 1
        self.demand.finished(task.fold, more=self.busy)
        if task.bundle is None:
            assert isinstance(result, TaskResult)
            self._last_task_s = result.fit_time + result.score_time
            return Result(task.task_id, task.point_id, task.fold, self._mark(result))
        assert isinstance(result, BundleOutcome)  # a member that crashed or timed out failed alone
        self._last_task_s = sum(r.fit_time + r.score_time for r in result.results)
        members = tuple(MemberResult(m.point_id, self._mark(r))
                        for m, r in zip(task.bundle.members, result.results, strict=True))
        return BundleResult(task.task_id, task.fold, members, result.counts)

    def _mark(self, result: TaskResult) -> TaskResult:
        result.rank = self.rank
        if result.error is not None:
            result.origin = self.origin
        return result

    def _submit_ahead(self) -> None:
        """Hand queued tasks to the fit process: one at a time, several when they are tiny."""
        assert self.fits is not None
        depth = max(1, min(PIPELINE_MAX, int(PIPELINE_SECONDS / max(self._last_task_s, 1e-9))))
        while self.queue and len(self.inflight) < depth:
            task = self.queue.popleft()
            self.inflight.append(task)
            if task.bundle is not None:
                self.fits.submit(FitRequest({}, task.fold, bundle=task.bundle))
            else:
                self.fits.submit(FitRequest(self.params[task.point_id], task.fold, self.subsample.get(task.point_id)))

    def close(self) -> None:
        """Stop the fit process, if any, dropping the tasks in it (a later task starts a new one)."""
        self.demand.dropped(t.fold for t in self.inflight)
        self.demand.close()
        self.inflight.clear()
        if self.fits is not None:
            self.fits.close()

    def stats(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.started
        stats = {"host": socket.gethostname(), "pid": os.getpid(), "tasks": self.n_tasks,
                 "busy_s": self.busy_seconds, "idle_s": max(wall - self.busy_seconds, 0.0)}
        if self.fits is not None:
            stats["fit_processes"] = self.fits.starts
        if self.shared is not None:
            stats["shared"] = self.shared
        if self.dataset.store is not None:
            stats["fold_store"] = self.dataset.store.stats.as_dict()
        return stats


def serve(worker: Worker, transport: Transport) -> None:
    """Worker-rank loop: drain messages, run the next task, until told to stop.

    Results of short tasks travel in batches (one message per RESULT_BATCH_SECONDS
    of work at most); a batch always leaves before the worker would wait. A
    heartbeat goes to rank 0 whenever nothing else was sent for a while (idle, or
    during a long fit; see mpisearch.liveness).
    """
    outbox: list[Result | BundleResult] = []
    last_sent = time.perf_counter()
    pulse = Pulse(lambda msg: transport.send(msg, COORDINATOR))
    try:
        while True:
            if outbox and (not worker.busy or time.perf_counter() - last_sent >= RESULT_BATCH_SECONDS):
                transport.send(outbox if len(outbox) > 1 else outbox[0], COORDINATOR)
                outbox, last_sent = [], time.perf_counter()
                pulse.sent()
            got = transport.poll(0.0 if worker.busy else IDLE_POLL_SECONDS)
            while got is not None:
                worker.receive(got[1])
                got = transport.poll(0.0)
            if worker.busy:
                outbox.append(worker.run_next(pulse.beat))
            elif worker.stopped:
                transport.send(Bye(worker.stats()), COORDINATOR)
                return
            else:
                pulse.beat()
    finally:
        worker.close()
