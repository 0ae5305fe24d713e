"""MPI transport (mpi4py): non-blocking sends, matched probes, and no busy spin
(every wait backs off as mpisearch.waiting describes)."""

from __future__ import annotations

import pickle
import time
from typing import Any

import numpy as np
from mpi4py import MPI

from ..waiting import MAX_SLEEP, MIN_SLEEP, Backoff, wait_quietly
from . import wire

TAG = 17  # all control messages share one tag: MPI keeps them in order per pair


class MPITransport:
    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._pending: list[tuple[MPI.Request, Any]] = []
        self._status = MPI.Status()
        self._backoff: Backoff | None = None  # of the current wait, kept across polls

    def send(self, msg: Any, dest: int) -> None:
        data = np.frombuffer(pickle.dumps(wire.encode(msg), protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8)
        request = self.comm.Isend([data, MPI.BYTE], dest=dest, tag=TAG)
        self._pending.append((request, data))  # keep the buffer alive until sent
        self._reap()

    def poll(self, timeout: float, max_sleep: float = MAX_SLEEP) -> tuple[int, Any] | None:
        """The next message, waiting up to ``timeout``; sleeps grow up to ``max_sleep``.
        The back-off carries over to the next call until a message arrives, so a rank
        polling in a loop of short timeouts stays at its longest sleep while idle."""
        deadline = time.perf_counter() + timeout
        max_sleep = max(max_sleep, MIN_SLEEP)  # never a busy spin
        while True:
            got = self._receive()
            if got is not None:
                self._backoff = None
                return got
            self._reap()
            if time.perf_counter() >= deadline:
                return None
            self._backoff = self._backoff or Backoff()  # made only when there is something to wait for
            self._backoff.wait(max_sleep, deadline)

    def _receive(self) -> tuple[int, Any] | None:
        status = self._status
        message = self.comm.Improbe(MPI.ANY_SOURCE, TAG, status)
        if message is None:
            return None
        buf = np.empty(status.Get_count(MPI.BYTE), dtype=np.uint8)
        message.Recv([buf, MPI.BYTE])
        return status.Get_source(), wire.decode(pickle.loads(buf))

    def flush(self) -> None:
        """Wait until every message sent so far has left this rank."""
        for request, _ in self._pending:
            wait_quietly(request)
        self._pending.clear()

    def _reap(self) -> None:
        if self._pending:
            self._pending = [(r, d) for r, d in self._pending if not r.Test()]
