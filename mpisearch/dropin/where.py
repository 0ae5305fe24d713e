"""Where a drop-in search's fit runs: the communicator of this block, else MPI_COMM_WORLD under a launcher."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..runtime import resolve_comm

_comm: ContextVar[Any] = ContextVar("mpisearch_dropin_comm", default=None)


@contextmanager
def use_comm(comm: Any) -> Iterator[None]:
    """Run the drop-in searches fitted in this block on ``comm`` (``MPI.COMM_SELF``: in this process).

    mpisearch itself runs every search fitted inside a fit's tasks or refit (a
    search nested in an estimator, or in a callable ``refit``) on ``COMM_SELF``:
    the ranks are busy with the outer search."""
    token = _comm.set(comm)
    try:
        yield
    finally:
        _comm.reset(token)


def current_comm() -> Any:
    """The communicator for a fit starting now, or None for this process alone."""
    return resolve_comm(_comm.get())
