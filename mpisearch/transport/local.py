"""In-process transport: the coordinator and one worker in the same process.

A first-class implementation of the transport interface (as joblib's
sequential backend is): ``send`` hands the message to the worker object,
``poll`` lets it run one task and returns its result.
"""

from __future__ import annotations

from typing import Any

from ..messages import Bye, Result
from ..worker import Worker

WORKER_RANK = 1


class LocalTransport:
    rank = 0
    size = 2  # the coordinator and one in-process worker

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._bye_sent = False

    def send(self, msg: Any, dest: int) -> None:
        if dest != WORKER_RANK:
            raise ValueError(f"local transport has only worker {WORKER_RANK}, not {dest}")
        self.worker.receive(msg)

    def poll(self, timeout: float, max_sleep: float = 0.0) -> tuple[int, Result | Bye] | None:
        if self.worker.busy:
            return WORKER_RANK, self.worker.run_next()
        if self.worker.stopped and not self._bye_sent:
            self._bye_sent = True
            return WORKER_RANK, Bye(self.worker.stats())
        return None
