"""scikit-learn's ``_fit_and_score`` tasks on MPI ranks: rank 0 hands out, the others fit.

One search ``fit`` is a sequence of rounds (one per ``Parallel`` call of the
search: one for GridSearchCV, one per iteration of successive halving), then an
end. Per round, rank 0 broadcasts one header (the task function with
scikit-learn's configuration, the estimator once, each candidate's parameters
once, each task as references) and the data as raw buffers
(:mod:`mpisearch.data.buffers`): X, y, fit and score parameters and the CV
splits; what an earlier round of the same fit shipped is referred to, not sent
again. Then tasks go out by index, a few queued per worker, and each worker
runs ``_fit_and_score`` exactly as joblib would, returning its result dict, the
warnings it raised (re-issued on rank 0) and what it printed (printed on rank 0:
scikit-learn's verbose lines), or its exception. At the end rank 0
broadcasts the fitted attributes (or the exception that ended the fit), so
every rank returns the same search object, or raises the same error.

Callbacks (scikit-learn 1.9's ``set_callbacks``): each task's callback context
goes with the task, as joblib's process workers get it, so the callbacks' copies
on a worker send their events to rank 0 through scikit-learn's own callback
transport (a local socket: workers on rank 0's host only; elsewhere the task runs
without its context). The search object (``caller``) stays on rank 0: a worker
gets a :class:`CallerRef`, which comes back to rank 0 as the search itself.
"""

from __future__ import annotations

import io
import itertools
import pickle
import socket
import sys
import traceback
import warnings
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mpi4py import MPI
from sklearn.base import clone
from sklearn.model_selection._validation import _fit_and_score

from ..data.buffers import Packer, Unpacker
from ..data.shipping import bcast_array, bcast_object
from ..runtime import limit_worker_threads
from ..transport.mpi import MPITransport
from .collect import Call, Outcome
from .runners import LocalRunner
from .where import use_comm

# Tasks queued on each worker: one running, one waiting, so a worker never waits
# for rank 0 between two tasks (rank 0 refills as each result comes back).
QUEUED_PER_WORKER = 2
# How long one poll waits before rank 0 polls again (a message ends it at once).
POLL_SECONDS = 0.05
# The keyword argument naming the search object: a CallerRef goes in its place.
CALLER = "caller"
# The keyword argument holding a task's callback context (None when no callback is set).
CALLBACK_CTX = "callback_ctx"

_round_ids = itertools.count(1)
# Rank 0's search objects by CallerRef key, while they are alive.
_callers: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


class CallerRef:
    """Rank 0's search object in a task shipped to another rank: unpickled on rank 0 (a
    callback event sent back) it is the search itself; anywhere else it stays a CallerRef."""

    def __init__(self, key: int) -> None:
        self.key = key

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return _caller, (self.key,)

    def __repr__(self) -> str:
        return "<the search object, on rank 0>"


def _caller(key: int) -> Any:
    found = _callers.get(key)
    return found if found is not None else CallerRef(key)


def _shippable_contexts(calls: list[Call]) -> bool:
    """Whether the round's callback contexts (one tree, with the callbacks) can be pickled;
    if not, the tasks run without them and the callbacks see no per-task event (warned)."""
    ctx = calls[0].kwargs.get(CALLBACK_CTX)
    if ctx is None:
        return True
    try:
        dumps(ctx)
    except Exception as exc:
        warnings.warn(f"the callbacks cannot be pickled to the ranks that fit ({type(exc).__name__}: {exc}); "
                      "they see the search's fit and refit but no event of its tasks", UserWarning, stacklevel=2)
        return False
    return True


def _caller_ref(caller: Any) -> CallerRef:
    _callers[id(caller)] = caller
    return CallerRef(id(caller))


def dumps(obj: Any) -> bytes:
    """Pickle by value what plain pickle cannot (lambdas, classes of a test module), when cloudpickle is there."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle is a dependency
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True)
class RoundStart:
    """A new round: a header and its buffers follow as broadcasts."""

    round_id: int


@dataclass(frozen=True)
class RunTask:
    round_id: int
    index: int


@dataclass(frozen=True)
class TaskDone:
    round_id: int
    index: int
    payload: bytes  # dumps(TaskReport)


@dataclass(frozen=True)
class FitEnd:
    """The fit is over: the fitted attributes (or an error) follow as a broadcast."""


@dataclass
class TaskReport:
    value: Any = None
    error: BaseException | None = None
    warnings: list[tuple[Any, str, str, int]] = field(default_factory=list)  # as Warned
    printed: str = ""  # the task's standard output (scikit-learn's verbose lines), printed on rank 0


@dataclass
class RoundHeader:
    func: Any  # scikit-learn's wrapped _fit_and_score (carries the caller's config and warning filters)
    estimator: Any  # cloned for each task
    tasks: list[tuple[Any, Any]]  # packed (args after the estimator, kwargs) of each task
    slots: list[Any]  # shared objects first packed in this round
    buffers: list[tuple[tuple[int, ...], np.dtype]]  # shape and dtype of each new buffer
    host: str = ""  # rank 0's host: callback contexts are used on ranks of this host only


def _is_fit_and_score(call: Call) -> bool:
    return getattr(call.func, "function", None) is _fit_and_score


class MPIRunner:
    """Rank 0's side: ships each round and farms its tasks out to ranks 1..N-1."""

    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm
        self.transport = MPITransport(comm)
        self.workers = list(range(1, comm.Get_size()))
        self.packer = Packer()
        self.sent = (0, 0)  # slots and buffers the workers already hold

    def __call__(self, calls: list[Call]) -> list[Outcome]:
        if not calls or not all(_is_fit_and_score(c) for c in calls):
            return LocalRunner()(calls)  # not a search's evaluation: run it here
        round_id, header = next(_round_ids), dumps(self._header(calls))
        for w in self.workers:
            self.transport.send(RoundStart(round_id), w)
        bcast_object(header, self.comm)
        for buf in self.packer.buffers[self.sent[1]:]:
            bcast_array(buf, self.comm)
        self.sent = (len(self.packer.slots), len(self.packer.buffers))
        return self._farm(round_id, len(calls))

    def _header(self, calls: list[Call]) -> RoundHeader:
        """Packs everything first, so bad data raises before any rank is told of the round."""
        pack, shipped = self.packer.pack, _shippable_contexts(calls)
        tasks = [(tuple(pack(a, name) for a, name in zip(c.args[1:], ("X", "y"), strict=False)),
                  {k: _caller_ref(v) if k == CALLER and v is not None else
                   None if k == CALLBACK_CTX and not shipped else pack(v, k) for k, v in c.kwargs.items()})
                 for c in calls]
        slots, buffers = self.sent
        return RoundHeader(calls[0].func, calls[0].args[0], tasks, self.packer.slots[slots:],
                           [(b.shape, b.dtype) for b in self.packer.buffers[buffers:]], socket.gethostname())

    def _farm(self, round_id: int, n: int) -> list[Outcome]:
        todo, outcomes = deque(range(n)), [None] * n
        queued = dict.fromkeys(self.workers, 0)
        for w in self.workers:
            self._refill(round_id, todo, queued, w)
        while any(queued.values()):
            got = self.transport.poll(POLL_SECONDS)
            if got is None or not isinstance(got[1], TaskDone) or got[1].round_id != round_id:
                continue  # nothing yet, or a late answer from a round that ended in an error
            source, done = got
            queued[source] -= 1
            outcomes[done.index] = _outcome(pickle.loads(done.payload))
            if outcomes[done.index].error is not None:
                todo.clear()  # as joblib: no new task after an error ("raise")
            self._refill(round_id, todo, queued, source)
        first_error = next((o for o in outcomes if o is not None and o.error is not None), None)
        return [o if o is not None else first_error for o in outcomes]

    def _refill(self, round_id: int, todo: deque[int], queued: dict[int, int], worker: int) -> None:
        while todo and queued[worker] < QUEUED_PER_WORKER:
            self.transport.send(RunTask(round_id, todo.popleft()), worker)
            queued[worker] += 1

    def finish(self, state: dict[str, Any] | None = None, error: BaseException | None = None,
               warned: list[warnings.WarningMessage] | None = None) -> None:
        """End the fit on every rank: they get ``state`` (fitted attributes) or raise ``error``,
        after issuing the warnings rank 0 got during the fit (``warned``)."""
        for w in self.workers:
            self.transport.send(FitEnd(), w)
        self.transport.flush()
        bcast_object(_end_payload(state, error, _as_tuples(warned or [])), self.comm)


@contextmanager
def shared_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Records the block's warnings (to send them to the other ranks) and issues them again at its end."""
    records: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            records = caught
            yield caught
    finally:
        _warn(_as_tuples(records))


Warned = list[tuple[Any, str, str, int]]  # category, message, file, line


def _as_tuples(caught: list[warnings.WarningMessage]) -> Warned:
    return [(w.category, str(w.message), w.filename, w.lineno) for w in caught]


def _warn(warned: Warned) -> None:
    for category, message, filename, lineno in warned:
        warnings.warn_explicit(message, category, filename, lineno)


def _outcome(report: TaskReport) -> Outcome:
    _warn(report.warnings)
    if report.printed:
        sys.stdout.write(report.printed)
    return Outcome(report.value, report.error)


def _end_payload(state: dict[str, Any] | None, error: BaseException | None, warned: Warned) -> bytes:
    if error is not None:
        return _dumps_error(error, warned)
    try:
        return dumps({"state": state, "warned": warned})
    except Exception:  # an unpicklable fitted model: the other ranks get the rest
        rest = {k: v for k, v in (state or {}).items() if k != "best_estimator_"}
        return dumps({"state": rest, "warned": warned})


def _dumps_error(error: BaseException, warned: Warned) -> bytes:
    try:
        return dumps({"error": error, "warned": warned})
    except Exception:
        text = "".join(traceback.format_exception(error)).strip()
        return dumps({"error": RuntimeError(text), "warned": warned})


def serve(comm: MPI.Comm) -> dict[str, Any]:
    """A worker rank's part of one fit; returns rank 0's fitted attributes, or raises its error."""
    transport = MPITransport(comm)
    unpacker, header, round_id = Unpacker(), None, None
    origin = f"rank {comm.Get_rank()} (host {socket.gethostname()})"
    limits = limit_worker_threads()
    try:
        while True:
            got = transport.poll(POLL_SECONDS)
            msg = got[1] if got is not None else None
            if isinstance(msg, RoundStart):
                round_id, header = msg.round_id, _receive_round(comm, unpacker)
            elif isinstance(msg, RunTask) and msg.round_id == round_id:
                report = _run(header, unpacker, msg.index, origin)
                transport.send(TaskDone(round_id, msg.index, _dumps_report(report)), 0)
            elif isinstance(msg, FitEnd):
                transport.flush()
                end = pickle.loads(bcast_object(None, comm))
                _warn(end["warned"])
                if "error" in end:
                    raise end["error"]
                return end["state"]
    finally:
        if limits is not None:
            limits.restore_original_limits()


def _receive_round(comm: MPI.Comm, unpacker: Unpacker) -> RoundHeader:
    header: RoundHeader = pickle.loads(bcast_object(None, comm))
    buffers = [np.empty(shape, dtype=dtype) for shape, dtype in header.buffers]
    for buf in buffers:
        bcast_array(buf, comm)  # a private, writeable copy: fits may change their inputs, as in one process
    unpacker.add(header.slots, buffers)
    return header


def _run(header: RoundHeader, unpacker: Unpacker, index: int, origin: str) -> TaskReport:
    args, kwargs = header.tasks[index]
    if kwargs.get(CALLBACK_CTX) is not None and header.host != socket.gethostname():
        kwargs = {**kwargs, CALLBACK_CTX: None}  # its events could not reach rank 0's callbacks
    report, printed = TaskReport(), io.StringIO()
    with (warnings.catch_warnings(record=True) as caught, use_comm(MPI.COMM_SELF),  # nested searches: here
          redirect_stdout(printed)):
        warnings.simplefilter("always")
        try:
            report.value = header.func(clone(header.estimator), *unpacker.get(args), **unpacker.get(kwargs))
        except Exception as exc:
            exc.add_note(f"(raised on {origin})")
            report.error = exc
    report.warnings, report.printed = _as_tuples(caught), printed.getvalue()
    return report


def _dumps_report(report: TaskReport) -> bytes:
    try:
        return dumps(report)
    except Exception:
        text = "".join(traceback.format_exception(report.error)) if report.error else "unpicklable task result"
        return dumps(TaskReport(error=RuntimeError(text.strip())))
