"""A joblib backend that gathers every task of one ``Parallel`` call, then runs them all at once.

scikit-learn's ``BaseSearchCV.fit`` evaluates candidates with
``Parallel(...)(delayed(_fit_and_score)(...) for each (candidate, split))``.
Given this backend, that call hands its tasks over instead of running them:
the first time joblib asks for a result, the backend lets joblib dispatch the
rest of the tasks (by calling their completion callbacks, which is how joblib
refills a backend), gives the whole list to a :data:`Runner` (in this process,
or on MPI ranks: :mod:`mpisearch.dropin.farm`), and then returns the results
in order. A task that raised re-raises when joblib collects it, so the error
reaches the caller as it would with joblib's own backends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joblib.parallel import ParallelBackendBase

# Workers this backend claims to have. Anything above 1 keeps joblib from its
# sequential shortcut (which would call the tasks itself); the value only sizes
# joblib's batches, which are flattened again here.
CLAIMED_WORKERS = 2


@dataclass(frozen=True)
class Call:
    """One task as joblib holds it: ``func(*args, **kwargs)``."""

    func: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class Outcome:
    """What a task returned, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


Runner = Callable[[list[Call]], list[Outcome]]


class _Batch:
    """joblib's unit of dispatch: a few tasks, and their results once run."""

    def __init__(self, calls: list[Call]) -> None:
        self.calls = calls
        self.outcomes: list[Outcome] | None = None


class CollectingBackend(ParallelBackendBase):
    """Runs each ``Parallel`` call's tasks in one go through ``runner``."""

    supports_retrieve_callback = False
    supports_sharedmem = False

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self._waiting: list[_Batch] = []  # dispatched, not yet run
        self._callbacks: deque[Callable[..., Any]] = deque()

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        return CLAIMED_WORKERS

    def submit(self, func: Any, callback: Callable[..., Any] | None = None) -> _Batch:
        batch = _Batch([Call(f, tuple(a), dict(k)) for f, a, k in func.items])
        self._waiting.append(batch)
        if callback is not None:
            self._callbacks.append(callback)
        return batch

    def retrieve_result(self, out: _Batch, timeout: float | None = None) -> list[Any]:
        if out.outcomes is None:
            self._run_waiting()
        assert out.outcomes is not None
        for outcome in out.outcomes:
            if outcome.error is not None:
                raise outcome.error
        return [o.value for o in out.outcomes]

    def _run_waiting(self) -> None:
        while self._callbacks:  # joblib dispatches its next batch from each callback
            self._callbacks.popleft()(None)
        batches, self._waiting = self._waiting, []
        outcomes = self.runner([c for b in batches for c in b.calls])
        start = 0
        for b in batches:
            b.outcomes = outcomes[start : start + len(b.calls)]
            start += len(b.calls)

    def abort_everything(self, ensure_ready: bool = True) -> None:
        self._waiting.clear()
        self._callbacks.clear()
