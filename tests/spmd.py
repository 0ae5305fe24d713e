"""Helpers for the SPMD tests (tests/test_mpi*.py).

Rank 0 often does extra work alone (a one-process reference search, GridSearchCV)
while the other ranks go ahead to the next collective. MPICH's blocking
collectives spin: with more ranks than cores (the oversubscribed runs) the
spinning ranks take the cores rank 0 needs, and a 1 s check took 20 s at 4 ranks
on 2 cores. So the waiting is done in a non-blocking barrier that sleeps.
"""

from __future__ import annotations

from typing import Any

from mpisearch.waiting import quiet_barrier


def quiet_allgather(comm: Any, obj: Any) -> list[Any]:
    """``comm.allgather(obj)``, waiting for the slowest rank without spinning."""
    quiet_barrier(comm)
    return comm.allgather(obj)
