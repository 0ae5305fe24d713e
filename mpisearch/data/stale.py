"""Files a killed run left in /dev/shm, removed by the next run on the node.

A run that ends normally removes its files (:mod:`.foldstore`, :mod:`.segment`); one that
is killed (SIGKILL, a lost node) cannot. Each fold store's ``<name>.live`` file is held
with a shared ``flock`` by every process attached to the store, for as long as it lives
(the kernel drops the lock when the process dies, however it dies), so a store whose
``.live`` file can be locked exclusively has no live process: its files are stale. Rank
0's X files (``mpisearch-x-<pid>-<n>``) are stale once process ``pid`` is gone.

Attaching to a store and sweeping both happen under one node-wide lock per user
(:func:`node_lock`), so a sweep never takes a store being opened for a dead one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

PREFIX = "mpisearch-"  # every file mpisearch puts in /dev/shm starts so
X_PREFIX = f"{PREFIX}x-"  # rank 0's X (.segment): then the pid of rank 0 and a counter


@contextlib.contextmanager
def node_lock(where: Path) -> Iterator[None]:
    """This user's node-wide lock over the stores in ``where`` (a small file that stays)."""
    fd = os.open(where / f"{PREFIX}u{os.getuid()}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock


def sweep(where: Path) -> int:
    """Remove the files of dead fold stores and dead processes' X files (call under
    :func:`node_lock`); how many files went."""
    removed = 0
    for live in where.glob(f"{PREFIX}*.live"):
        if _dead(live):
            name = live.name[: -len(".live")]
            for path in [*where.glob(f"{name}-f*"), where / f"{name}.ctl", live]:
                removed += _unlink(path)
    for path in where.glob(f"{X_PREFIX}*"):
        pid = path.name[len(X_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            removed += _unlink(path)
    return removed


def hold(path: Path) -> int:
    """Open (creating) ``path`` and hold a shared lock on it; the descriptor (keep it open)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def held(path: Path) -> bool:
    """Whether some process holds a lock on ``path`` (OSError if it cannot be opened)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _dead(live: Path) -> bool:
    try:
        return not held(live)
    except OSError:  # gone, or another user's
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except OSError:  # gone already, or another user's
        return 0
    return 1
