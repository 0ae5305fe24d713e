"""Crash isolation: a worker's fits run in a long-lived forked *fit process*.

A fit that segfaults, is killed (the kernel's OOM killer sends SIGKILL), calls
``os._exit`` or ``sys.exit``, or raises any BaseException takes down at most the
fit process, never the rank: the task comes back as failed with the reason
("killed by signal 11 (SIGSEGV)", "killed by SIGKILL: out of memory?", "exited
with status 4") and the next task starts a fresh fit process. A bundle of points
(:mod:`mpisearch.reuse`) reports each point as it is scored: a crash, or a point
past the time limit (which applies to each point of a bundle), fails that point
only, and a fresh fit process runs the points after it.

Mechanism, chosen by measurement (``benchmarks/bench_isolation.py``, no-op tasks on
a loaded 2-core machine): forking a child per task cost 16 ms per task; one fit
process per rank, forked once (and again after a crash) and fed through a socket
pair, costs tens of microseconds per task. The fit process is forked from the
rank after the data arrived, so it shares the data (copy-on-write, and the
node-shared window stays shared); only the task (parameters, fold) and its
result travel, pickled. It never calls MPI, ignores SIGINT (rank 0 decides how
a search stops), dies with its rank (``PR_SET_PDEATHSIG``) and always leaves with
``os._exit``.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, Pipe
from typing import Any

from .data.dataset import Dataset
from .evaluate import evaluate
from .limits import cap_address_space
from .reuse.bundles import Bundle
from .reuse.prefix import PrefixCache
from .reuse.run import BundleOutcome, MemberDone, evaluate_bundle
from .scoring import Scorers
from .space import Params
from .types import Failure, Subsample, TaskResult

# Longest wait for a result before ``tick`` is called again (the rank's heartbeat,
# see mpisearch.liveness); a result ends the wait at once.
TICK_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
CRASH = Failure.CRASH  # TaskResult.reason of a task whose fit process died


@dataclass(frozen=True)
class FitRequest:
    """One task for the fit process."""

    params: Params
    fold: int
    subsample: Subsample | None = None
    bundle: Bundle | None = None  # several points run together (then params is empty)
    skip: int = 0  # members of the bundle already done (by a fit process that died): run the others


def death_reason(status: int) -> str:
    """How a process ended, from its ``waitpid`` status, in words."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGKILL:
            return "killed by SIGKILL: out of memory?"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {sig} ({name})"
    return f"exited with status {os.WEXITSTATUS(status)}"


class FitProcess:
    """Runs :func:`mpisearch.evaluate.evaluate` in a forked process, started on first use
    and again after it died. ``memory``: bytes a task may allocate (see TaskLimits).

    Tasks may be submitted ahead (``submit``); the process runs them in order and
    ``result`` returns their results in that order, so tiny tasks do not wait for
    a round trip each. If the process dies, the task it was running fails and
    those submitted after it go to a fresh process."""

    def __init__(self, estimator: Any, dataset: Dataset, scorers: Scorers, memory: int | None = None,
                 prefix_cache_memory: int = 0) -> None:
        self.estimator = estimator
        self.dataset = dataset
        self.scorers = scorers
        self.memory = memory
        self.prefix_cache_memory = prefix_cache_memory  # the fit process's PrefixCache budget
        self.pid: int | None = None
        self.starts = 0  # fit processes started: 1 + one per crash or timeout
        self._conn: Connection | None = None
        self._inflight: deque[FitRequest] = deque()  # submitted, result not read yet, in order
        self._head_since = 0.0  # when the first of them started running (time.monotonic)
        self._member_since = 0.0  # when its running part started: the task, or its bundle's next member
        self.last_duration = 0.0  # seconds the fit process spent on the last result read (as seen from here)

    def run(self, request: FitRequest, timeout: float | None = None,
            tick: Callable[[], None] | None = None) -> TaskResult | BundleOutcome:
        """The task's result; a failed one if the process died or ran past ``timeout`` (then killed)."""
        self.submit(request)
        return self.result(timeout, tick)

    @property
    def pending(self) -> int:
        """Tasks submitted whose result was not read yet."""
        return len(self._inflight)

    def submit(self, request: FitRequest) -> None:
        """Queue a task in the fit process (it runs after those submitted before)."""
        if not self._inflight:
            self._head_since = self._member_since = time.monotonic()
        self._inflight.append(request)
        try:
            self._send(request)
        except OSError:  # died while idle (killed from outside): a fresh one takes the tasks
            self._reap()
            self._head_since = self._member_since = time.monotonic()
            self._resubmit()

    def result(self, timeout: float | None = None,
               tick: Callable[[], None] | None = None) -> TaskResult | BundleOutcome:
        """The result of the first submitted task (a failed TaskResult if its process died, or
        if it ran past ``timeout``, counted from when it started). A bundle's members come one
        by one and ``timeout`` applies to each (from when the one before was scored): a member
        whose process dies or that runs past it fails alone, and a fresh process runs the rest."""
        assert self._inflight and self._conn is not None, "result() without a submitted task"
        done: list[MemberDone] = []
        while True:
            got = self._receive(timeout, tick)
            head = self._inflight[0]
            if head.bundle is None:
                assert isinstance(got, TaskResult)
                return self._finish(got)
            done.append(got if isinstance(got, MemberDone) else MemberDone(got))
            if len(done) == len(head.bundle.members):
                return self._finish(BundleOutcome.of(done))
            self._member_since = time.monotonic()
            if self._conn is None:  # the member failed with its process
                self._inflight[0] = replace(head, skip=len(done))
                self._resubmit()
            if tick is not None:  # members arriving more often than TICK_SECONDS hold no tick back
                tick()

    def _receive(self, timeout: float | None, tick: Callable[[], None] | None) -> TaskResult | MemberDone:
        """The fit process's next message, or a failed TaskResult if it died or what it runs
        passed ``timeout`` (killed): then no fit process is left (``_conn`` is None)."""
        assert self._conn is not None
        deadline = math.inf if timeout is None else self._member_since + timeout
        while True:
            wait = min(deadline - time.monotonic(), TICK_SECONDS)
            if select.select([self._conn.fileno()], [], [], max(wait, 0.0))[0]:
                try:
                    message, store_delta = pickle.loads(self._conn.recv_bytes())
                except (EOFError, OSError):  # OSError: reset, when it died with tasks unread
                    return self._failed(self._reap(), CRASH)
                if store_delta:  # the fold store's counts live in this rank's run.json stats
                    self.dataset.store.stats.add(store_delta)
                return message
            if time.monotonic() >= deadline:
                self._kill()
                return self._failed(f"TaskTimeout: task timed out after {timeout:g}s and was killed", Failure.TIMEOUT)
            if tick is not None:
                tick()

    def _failed(self, error: str, reason: str) -> TaskResult:
        elapsed = time.monotonic() - self._member_since
        return TaskResult(fit_time=elapsed, error=error + "\n", reason=reason, started=time.time() - elapsed)

    def _finish(self, result: TaskResult | BundleOutcome) -> TaskResult | BundleOutcome:
        """The head task is done; if its process died, the tasks after it go to a fresh one."""
        self._inflight.popleft()
        now = time.monotonic()
        self.last_duration, self._head_since, self._member_since = now - self._head_since, now, now
        if self._conn is None:
            self._resubmit()
        return result

    def _resubmit(self) -> None:
        """Send the tasks not read yet to a fresh fit process (the caller sets when the head started)."""
        for request in self._inflight:
            self._send(request)

    def _send(self, request: FitRequest) -> None:
        if self._conn is None:
            self._start()
        assert self._conn is not None
        self._conn.send_bytes(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        """Stop the fit process (if one runs); results not read yet are dropped."""
        self._inflight.clear()
        if self.pid is not None:
            self._kill()

    def _start(self) -> None:
        parent_end, child_end = Pipe(duplex=True)
        parent_pid = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the fit process: never returns
            parent_end.close()
            _serve(child_end, parent_pid, self.estimator, self.dataset, self.scorers, self.memory,
                   PrefixCache(self.prefix_cache_memory))
        child_end.close()
        self.starts += 1
        self.pid, self._conn = pid, parent_end

    def _kill(self) -> None:
        assert self.pid is not None
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._reap()

    def _reap(self) -> str:
        """Wait for the (dead or dying) fit process; how it ended, in words."""
        assert self.pid is not None and self._conn is not None
        self._conn.close()
        _, status = os.waitpid(self.pid, 0)
        self.pid, self._conn = None, None
        return death_reason(status)


def _serve(conn: Connection, parent_pid: int, estimator: Any, dataset: Dataset, scorers: Scorers,
           memory: int | None, cache: PrefixCache) -> None:
    """The fit process's loop: a request in, a result out, until the rank closes the pipe."""
    status = 0
    try:
        _die_with(parent_pid)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            try:
                request: FitRequest = pickle.loads(conn.recv_bytes())
            except EOFError:
                break
            if memory is not None:
                cap_address_space(memory)
            send = _Sender(conn, dataset)
            if request.bundle is None:
                send(_run_task(estimator, request, dataset, scorers))
            else:
                _run_bundle(estimator, request, dataset, scorers, cache, send)
    except BaseException:  # noqa: BLE001 - the rank sees the pipe close and reports the exit status
        traceback.print_exc()
        status = 1
    finally:
        _flush_output()
        os._exit(status)


class _Sender:
    """Sends a result to the rank, with the fold store's counts since the last one sent."""

    def __init__(self, conn: Connection, dataset: Dataset) -> None:
        self.conn, self.store = conn, dataset.store
        self.before = None if self.store is None else self.store.stats.as_dict()

    def __call__(self, message: TaskResult | MemberDone) -> None:
        _flush_output()
        delta = None
        if self.store is not None:
            delta, self.before = self.store.stats.since(self.before), self.store.stats.as_dict()
        self.conn.send_bytes(pickle.dumps((message, delta), protocol=pickle.HIGHEST_PROTOCOL))


def _run_task(estimator: Any, request: FitRequest, dataset: Dataset, scorers: Scorers) -> TaskResult:
    try:
        return evaluate(estimator, request.params, dataset, request.fold, scorers, request.subsample)
    except BaseException:  # noqa: BLE001 - SystemExit, KeyboardInterrupt...: this task failed
        return TaskResult(error=traceback.format_exc(), reason=Failure.FIT, started=time.time())


def _run_bundle(estimator: Any, request: FitRequest, dataset: Dataset, scorers: Scorers, cache: PrefixCache,
                send: Callable[[MemberDone], None]) -> None:
    """Send each member's result as soon as it is scored (from member ``request.skip`` on). A
    member whose fit raises a BaseException (SystemExit...) fails alone, as a single task
    would, and the members after it run as a bundle of their own."""
    assert request.bundle is not None
    done = request.skip

    def report(member: MemberDone) -> None:
        nonlocal done
        send(member)
        done += 1

    while done < len(request.bundle.members):
        try:
            evaluate_bundle(estimator, request.bundle.after(done), dataset, request.fold, scorers, cache, report)
        except BaseException:  # noqa: BLE001 - as _run_task
            report(MemberDone(TaskResult(error=traceback.format_exc(), reason=Failure.FIT, started=time.time())))


def _die_with(parent_pid: int) -> None:
    """SIGKILL this process when its rank dies (Linux); leave at once if it already has."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(0)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
