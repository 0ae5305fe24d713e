"""Run a function in a forked child so that it can be stopped after a time limit.

A fit deep inside a C extension cannot be interrupted from Python; a child
process can be killed. The child inherits the dataset copy-on-write (nothing
is copied or pickled on the way in); only the small result comes back
through a pipe. The child never calls MPI and leaves with ``os._exit``.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class TaskTimeout(Exception):
    """The function ran past its time limit and was killed."""


def call_with_timeout(fn: Callable[[], T], seconds: float) -> T:
    """``fn()`` in a forked child; raise TaskTimeout if it takes longer than ``seconds``."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        _child(fn, write_fd)
    os.close(write_fd)
    try:
        payload = _read_until(read_fd, time.monotonic() + seconds)
    finally:
        os.close(read_fd)
    if payload is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise TaskTimeout(f"task timed out after {seconds:g}s and was killed")
    os.waitpid(pid, 0)
    ok, value = pickle.loads(payload)
    if not ok:
        raise RuntimeError(value)
    return value


def _child(fn: Callable[[], Any], fd: int) -> None:
    status = 0
    try:
        try:
            payload = pickle.dumps((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
    except BaseException:  # noqa: BLE001
        status = 1
    finally:
        os._exit(status)


def _read_until(fd: int, deadline: float) -> bytes | None:
    """All bytes until EOF, or None if the deadline passes first."""
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
