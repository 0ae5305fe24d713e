"""No hang: ranks that never join a search, and ranks that stop answering.

- Joining: every worker rank sends a small "joined" message to rank 0 when it
  enters a search; rank 0 waits for all of them (sleeping, no collective pending)
  for at most JOIN_SECONDS, else it raises one line naming the missing ranks (the
  usual cause: ``fit`` called on rank 0 only).
- Heartbeats: a worker rank that has sent nothing for HEARTBEAT_SECONDS sends a
  :class:`Heartbeat` (idle, or while its fit process works on a long task). Rank
  0 notes when it last heard from each worker; one silent for SILENT_SECONDS
  (stopped, deadlocked, its host cut off) ends the job: one line naming the rank
  and what it was doing, then MPI_Abort, since a silent rank cannot be shut down
  otherwise. Every finished task is in the journal already (rerun with --resume).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .errors import ExitCode, SearchFailedError
from .messages import Heartbeat

# How long rank 0 waits for the other ranks to enter a search. They normally wait
# for rank 0 (which reads the data first), so this only bounds the error case; it
# must cover a worker rank's own work before it calls fit (kept generous).
JOIN_SECONDS = 60.0
JOIN_TAG = 29  # MPI tag of "joined" messages (the transport's messages use 17)
# A worker sends a heartbeat after this long without sending anything: at most
# one small message per worker every 5 s (a 64-worker job: ~13 messages/s at rank 0).
HEARTBEAT_SECONDS = 5.0
# Silence after which rank 0 gives a worker up: twelve missed heartbeats, so a rank
# descheduled for a while on an oversubscribed node is not mistaken for a lost one.
SILENT_SECONDS = 60.0
# How often rank 0 looks for silent workers (only while no message is waiting).
CHECK_SECONDS = 1.0
# Between printing the error and MPI_Abort: lets the launcher forward the line
# (as mpisearch.cli.ABORT_DELAY_SECONDS).
ABORT_DELAY_SECONDS = 0.5


class Pulse:
    """A worker rank's side: ``beat()`` often; it sends a Heartbeat when due."""

    def __init__(self, send: Callable[[Any], None], every: float | None = None) -> None:
        self.send = send
        self.every = HEARTBEAT_SECONDS if every is None else every
        self.last = time.monotonic()

    def sent(self) -> None:
        """Something else was sent just now."""
        self.last = time.monotonic()

    def beat(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.send(Heartbeat())
            self.last = now


class Watch:
    """Rank 0's side: when each worker was last heard from; ``check`` ends the job
    through ``lost`` when one has been silent for ``SILENT_SECONDS``."""

    def __init__(self, workers: Sequence[int], now: float, lost: Callable[[str], Any]) -> None:
        self.heard_at = dict.fromkeys(workers, now)
        self.lost = lost
        self.next_check = now + CHECK_SECONDS

    def heard(self, rank: int, now: float) -> None:
        self.heard_at[rank] = now

    def check(self, now: float, doing: Callable[[int], str]) -> None:
        if now < self.next_check:
            return
        self.next_check = now + CHECK_SECONDS
        rank, last = min(self.heard_at.items(), key=lambda item: item[1])
        if now - last >= SILENT_SECONDS:
            self.lost(f"rank {rank} has not answered for {now - last:.0f} s ({doing(rank)}); ending the job, "
                      f"finished tasks are in the journal (rerun with --resume)")


def on_lost(transport: Any) -> Callable[[str], NoReturn]:
    """What rank 0 does with a lost worker: under MPI (a transport with a ``comm``) one
    line, then MPI_Abort; otherwise raise SearchFailedError."""
    comm = getattr(transport, "comm", None)
    if comm is None:
        return raise_lost

    def lost(message: str) -> NoReturn:
        print(f"mpisearch: error: {message}", file=sys.stderr, flush=True)
        time.sleep(ABORT_DELAY_SECONDS)
        comm.Abort(ExitCode.FAILED)
        raise SystemExit(ExitCode.FAILED)  # not reached

    return lost


def raise_lost(message: str) -> NoReturn:
    """What rank 0 does with a lost worker without MPI (cannot happen in one process)."""
    raise SearchFailedError(message)


def announce(comm: Any) -> None:
    """A worker rank entered the search (before any collective)."""
    import numpy as np
    from mpi4py import MPI

    comm.Send([np.zeros(1, dtype=np.uint8), 1, MPI.BYTE], dest=0, tag=JOIN_TAG)


def await_ranks(comm: Any, timeout: float | None = None) -> None:
    """Rank 0: wait until every other rank entered the search, without spinning; raise
    SearchFailedError naming the missing ranks after ``timeout`` (JOIN_SECONDS)."""
    import numpy as np
    from mpi4py import MPI

    from .transport.mpi import Backoff

    missing = set(range(1, comm.Get_size()))
    limit = JOIN_SECONDS if timeout is None else timeout
    deadline = time.perf_counter() + limit  # the clock of Backoff.wait
    status, backoff, buf = MPI.Status(), Backoff(), np.zeros(1, dtype=np.uint8)
    while missing:
        if comm.Iprobe(MPI.ANY_SOURCE, JOIN_TAG, status):
            comm.Recv([buf, 1, MPI.BYTE], source=status.Get_source(), tag=JOIN_TAG)
            missing.discard(status.Get_source())
            continue
        if time.perf_counter() >= deadline:
            ranks = ", ".join(str(r) for r in sorted(missing))
            raise SearchFailedError(
                f"rank{'s' if len(missing) > 1 else ''} {ranks} did not join the search within "
                f"{limit:g} s: under MPI every rank must call fit "
                "(ranks other than 0 may pass X=None, y=None)")
        backoff.wait(0.01, deadline)
