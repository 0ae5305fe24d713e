"""The node fold store: each fold's train and test parts, built once per node in shared memory.

Every rank of a node opens the same store (files ``/dev/shm/<name>-*``; the name holds
the run's token and the node's first rank, so nodes and runs never meet). A task
:meth:`NodeFoldStore.acquire`\\ s its fold: the first process of the node that needs a
fold builds it, in exactly the row order of ``X[train]`` / ``X[test]`` (so scores are
those of private copies, bit for bit), into a file of its own (:mod:`.foldfile`); every
process then maps that file read-only and fits on zero-copy views. Processes coordinate
through a small control file, under ``flock``: per fold its state, the generation of its
file, when it was last used and how many tasks of the node's ranks are waiting for it
(``pending``, counted by the ranks as tasks arrive and finish: :meth:`expect`,
:meth:`done`). No message goes to rank 0.

In use: a lease holds a shared ``flock`` on its fold's file, and a builder an exclusive
one until the fold is written, so the kernel, not a counter, says whether a fold is in
use: a fit process killed while holding a lease (a crash, ``task_timeout``) or while
building leaves no fold pinned, and a fold whose builder died is built again by the next
task that needs it.

Residency: a node holds at most ``resident_folds`` folds (RESIDENT_FOLDS unless the search says
otherwise). Building a fold while that many are resident first evicts a fold that no task of
the node waits for and none uses (tasks go out fold-major, :mod:`mpisearch.fold_queue`, so
such a fold is not needed again until the order comes round), else the least recently used
fold not in use. Below the cap nothing is evicted: a task of an old fold that comes back
(stolen, a straggler's copy) finds it still there. When every resident fold is in use, the
task waits for room (``room_waits``): it polls the folds' locks, holding none itself, and
builds as soon as a fold's last lease drops. A wait is bounded (``room_wait``, ROOM_WAIT_SECONDS
unless the worker lowers it below its ``task_timeout``): past it the fold is built over the
cap (``room_timeouts`` and ``over_cap``, with a :class:`FoldRoomWarning`). A process that
still maps a resident fold itself (a view kept past its task) does not wait for itself: it
builds over the cap at once (``over_cap``).

With ``resident_folds=None`` (fold racing's order, which is not fold-major) the node starts at
RESIDENT_FOLDS and never waits: when every resident fold is in use the new one is built all
the same (``over_cap``), and a fold evicted while tasks were still waiting for it and then
needed again makes the node keep one more fold from then on (up to the number of folds and
at most to the number of ranks attached), so such an order builds each fold at most twice
once the node has as many ranks as folds.

Files are removed when their fold is evicted, by the last rank that closes the store, and
at exit; those of a killed run by the next store opened on the node (:mod:`.stale`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import gc
import mmap
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from . import stale
from .foldfile import map_fold, write_fold
from .foldlabels import FoldLabels
from .parts import FoldParts
from .shared import trim_heap

SHM_DIR = Path("/dev/shm")  # tmpfs on Linux: where MPI's shared windows live too
PREFIX = stale.PREFIX  # every file of a fold store starts so (benchmarks find them by it)
# Folds a node keeps at most (the default of ``[data] resident_folds``): the fold its workers
# leave and the one they start, so a fold-major order never waits for a build of the fold it
# is leaving; memory X + 2 folds (1 gives the floor, X + 1 fold, with more waiting).
RESIDENT_FOLDS = 2
# How long a task waits for room before it builds its fold over the cap. Only a guard
# against the unforeseen (a lease pinned by something else than a running fit): a wait
# normally ends when the last running fit of a resident fold ends (plus a build), about
# one fit: bench_memory, 12 points x 5 folds on 15 workers, fits of 0.2 s, 600 MB folds
# built in about 1 s, 2-core machine at load 5-14: 13-23 waits per run, 0.3-0.9 s on
# average. Five minutes is far above any wait for a fit that ends; a worker with a
# task_timeout lowers it to ROOM_WAIT_SHARE of that timeout, so a wait never makes a
# task time out.
ROOM_WAIT_SECONDS = 300.0
ROOM_WAIT_SHARE = 0.5
# A waiting task polls the folds' locks, from the first to the last interval, doubling: a
# fold's build takes 0.4-1.4 s for 600 MB, so 50 ms late costs little, and 15 waiting
# processes poll a 2-core node about 300 times a second at most.
ROOM_POLL_FIRST_SECONDS = 0.001
ROOM_POLL_LAST_SECONDS = 0.05
# Fold states in the control file.
ABSENT, BUILDING, READY = 0, 1, 2
STATE, GEN, USED, BUILT, PENDING, THRASHED = range(6)  # columns of a fold's row
ATTACHED, TICK, CAP = range(3)  # columns of the last row (the store itself)
COLUMNS = 6


@dataclass
class Lease:
    """One task's hold on a fold: its parts are views of the fold's file; ``fd`` holds the
    file's shared lock (the fold is in use while it is open)."""

    fold: int
    parts: FoldParts
    fd: int = -1


@dataclass
class StoreStats:
    """What one rank did with the store (in run.json under ``workers.<rank>.fold_store``)."""

    built: int = 0  # folds this rank built (each once per node, unless evicted and needed again)
    build_s: float = 0.0
    reused: int = 0  # tasks that found their fold resident (or being built by another rank)
    over_cap: int = 0  # folds built while every resident fold was in use (see the module docstring)
    room_waits: int = 0  # tasks that waited for a resident fold's last lease to drop
    room_wait_s: float = 0.0
    room_timeouts: int = 0  # waits given up after ``room_wait`` seconds: built over the cap
    evicted: int = 0  # folds this rank removed (no task left for them, or to make room)
    wait_s: float = 0.0  # time spent waiting for another rank to finish building a fold
    failed: int = 0  # tasks that fell back to private copies (the fold could not be built)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def since(self, before: dict[str, Any]) -> dict[str, Any]:
        """What changed since ``before`` (an ``as_dict``): nonzero differences only."""
        return {k: v - before[k] for k, v in self.__dict__.items() if v != before[k]}

    def add(self, delta: dict[str, Any]) -> None:
        """Count what another process (a rank's fit process) did with the store."""
        for k, v in delta.items():
            setattr(self, k, getattr(self, k) + v)


class FoldRoomWarning(UserWarning):
    """A task waited ``room_wait`` seconds for room in its node's fold store and built its
    fold over the cap."""


class Claim(Enum):
    """What a task does about its fold, decided under the store's lock."""

    BUILD = "build"  # absent: this process builds it (room made, or over the cap)
    MAP = "map"  # resident or being built: map it (once its builder is done)
    WAIT = "wait"  # absent, and every resident fold is in use: wait for room


@dataclass
class Claimed:
    how: Claim
    gen: int = 0
    fd: int = -1  # the fold's file (BUILD: new and exclusively locked)
    over_cap: bool = False  # BUILD with every resident fold in use


@dataclass
class RoomWait:
    """One task's wait for room: when it gives up, and the next poll interval."""

    start: float
    deadline: float
    poll: float = ROOM_POLL_FIRST_SECONDS

    def expired(self) -> bool:
        return time.perf_counter() >= self.deadline

    def sleep(self) -> None:
        time.sleep(self.poll)
        self.poll = min(self.poll * 2, ROOM_POLL_LAST_SECONDS)


@dataclass
class NodeFoldStore:
    """One rank's handle on its node's fold store (see the module docstring)."""

    name: str
    X: Any
    y: np.ndarray | None
    w: np.ndarray | None
    folds: Sequence[tuple[np.ndarray, np.ndarray]]
    resident_folds: int | None = RESIDENT_FOLDS  # folds held at most; None: grow as fold racing needs
    room_wait: float = ROOM_WAIT_SECONDS  # seconds a task waits for room before building over the cap
    stats: StoreStats = field(default_factory=StoreStats)

    def __post_init__(self) -> None:
        nbytes = (len(self.folds) + 1) * COLUMNS * 8
        with stale.node_lock(SHM_DIR):
            stale.sweep(SHM_DIR)
            self._live = stale.hold(SHM_DIR / f"{self.name}.live")
            self._fd = os.open(SHM_DIR / f"{self.name}.ctl", os.O_RDWR | os.O_CREAT, 0o600)
        self._pid = os.getpid()
        with self._locked():
            if os.fstat(self._fd).st_size == 0:
                os.ftruncate(self._fd, nbytes)
            self._map = mmap.mmap(self._fd, nbytes)
            self._ctl = np.frombuffer(self._map, dtype=np.int64).reshape(-1, COLUMNS)
            self._ctl[-1, ATTACHED] += 1
            self._ctl[-1, CAP] = max(self._ctl[-1, CAP], min(self.cap, len(self.folds)))
        self._closed = False
        atexit.register(self.close)

    @property
    def cap(self) -> int:
        """The folds this node starts holding at most (a fixed ``resident_folds``, else RESIDENT_FOLDS)."""
        return RESIDENT_FOLDS if self.resident_folds is None else self.resident_folds

    def bound_wait(self, task_timeout: float) -> None:
        """Tasks time out after ``task_timeout`` seconds: wait for room at most a share of that."""
        self.room_wait = min(self.room_wait, ROOM_WAIT_SHARE * task_timeout)

    # -- tasks -------------------------------------------------------------------------
    def acquire(self, fold: int) -> Lease | None:
        """The fold's parts as read-only views (built here if no process of the node has it,
        once there is room); None when it cannot be built (no room in /dev/shm): the task
        copies privately."""
        wait: RoomWait | None = None
        while True:
            with self._locked():
                claim = self._claim(fold, over_cap=wait is not None and wait.expired())
            if claim.how is not Claim.WAIT:
                break
            if wait is None:
                wait = self._start_wait(fold)
            else:
                wait.sleep()
        if wait is not None:
            self._end_wait(wait, fold, claim.over_cap)
        if claim.how is Claim.BUILD:
            return self._build(fold, claim.gen, claim.fd)
        return self._open(fold, claim.gen, claim.fd)

    def _open(self, fold: int, gen: int, fd: int) -> Lease | None:
        """Map a fold another process built (or is building: its lock is held until it is done)."""
        start = time.perf_counter()
        fcntl.flock(fd, fcntl.LOCK_SH)  # at once when READY; else when its builder is done
        self.stats.wait_s += time.perf_counter() - start
        parts = map_fold(fd)
        if parts is None:  # its builder died mid-build: the next task builds it again
            os.close(fd)
            self._forget_broken(fold, gen)
            self.stats.failed += 1
            return None
        self.stats.reused += 1
        return Lease(fold, parts, fd)

    def _start_wait(self, fold: int) -> RoomWait:
        """A task starts waiting for room; a process that maps a fold itself would wait for
        itself: its wait ends at once (built over the cap)."""
        now = time.perf_counter()
        self.stats.room_waits += 1
        if self._maps_a_fold():
            gc.collect()  # views in reference cycles
            if self._maps_a_fold():
                return RoomWait(now, now)
        return RoomWait(now, now + self.room_wait)

    def _end_wait(self, wait: RoomWait, fold: int, over_cap: bool) -> None:
        waited = time.perf_counter() - wait.start
        self.stats.room_wait_s += waited
        if over_cap and wait.deadline > wait.start:  # not a process that maps a fold itself
            self.stats.room_timeouts += 1
            warnings.warn(f"fold {fold} waited {waited:.0f} s for room in the node's fold store "
                          f"(every resident fold in use): built over the cap", FoldRoomWarning, stacklevel=3)

    def _maps_a_fold(self) -> bool:
        """Whether this process maps a resident fold of this store (a lease, or views kept; an
        evicted fold's file, "(deleted)", holds no room)."""
        try:
            maps = Path("/proc/self/maps").read_text().splitlines()
        except OSError:
            return False
        return any(f"/{self.name}-f" in line and not line.endswith("(deleted)") for line in maps)

    def release(self, lease: Lease) -> None:
        """The task is done with its fold (its views stay valid while they live)."""
        if lease.fd >= 0:
            os.close(lease.fd)  # drops the shared lock
            lease.fd = -1

    def expect(self, fold: int) -> None:
        """A task of ``fold`` arrived at this rank (it keeps the fold resident until :meth:`done`)."""
        with self._locked():
            self._ctl[fold, PENDING] += 1

    def done(self, fold: int) -> None:
        """A task :meth:`expect`\\ ed is finished or cancelled (the next build evicts a fold
        no task of the node waits for: not at once, as a rank between two tasks of a fold
        may not have the next one yet)."""
        with self._locked():
            self._ctl[fold, PENDING] = max(self._ctl[fold, PENDING] - 1, 0)

    def close(self) -> None:
        """Detach; the last rank of the node to close removes every file of the store."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        with self._locked():
            self._ctl[-1, ATTACHED] -= 1
            if self._ctl[-1, ATTACHED] <= 0:
                for f in range(len(self.folds)):
                    if self._ctl[f, STATE] != ABSENT:
                        _unlink(self._path(f, int(self._ctl[f, GEN])))
                for suffix in (".ctl", ".live"):
                    _unlink(SHM_DIR / f"{self.name}{suffix}")
        self._ctl = None  # type: ignore[assignment]
        self._map.close()
        os.close(self._fd)
        os.close(self._live)

    def resident(self) -> list[int]:
        """Folds built (or being built) on this node now."""
        with self._locked():
            return [f for f in range(len(self.folds)) if self._ctl[f, STATE] != ABSENT]

    # -- inside the lock ---------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if os.getpid() != self._pid:  # a forked fit process: a lock of its own,
            self._pid = os.getpid()  # which the kernel drops if the process is killed holding it
            self._fd = os.open(SHM_DIR / f"{self.name}.ctl", os.O_RDWR)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _claim(self, fold: int, over_cap: bool) -> Claimed:
        """What this process does about the fold (see :class:`Claim`); ``over_cap``: build
        even if no room can be made (its wait is over)."""
        ctl = self._ctl
        ctl[-1, TICK] += 1
        row = ctl[fold]
        row[USED] = ctl[-1, TICK]
        if row[STATE] == BUILDING and not self._in_use(fold):  # its builder died
            _unlink(self._path(fold, int(row[GEN])))
            row[STATE] = ABSENT
        if row[STATE] != ABSENT:
            try:
                fd = os.open(self._path(fold, int(row[GEN])), os.O_RDONLY)
            except FileNotFoundError:  # removed from outside: build it again
                row[STATE] = ABSENT
            else:
                if row[STATE] == READY:  # held before the lock goes, so no eviction takes it from here
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return Claimed(Claim.MAP, int(row[GEN]), fd)
        if row[THRASHED] and self.resident_folds is None:  # evicted while tasks waited for it: keep one more
            ctl[-1, CAP] = min(ctl[-1, CAP] + 1, len(self.folds), max(self.cap, ctl[-1, ATTACHED]))
            row[THRASHED] = 0
        over = False
        if not self._make_room(fold):
            if self.resident_folds is not None and not over_cap:
                return Claimed(Claim.WAIT)
            self.stats.over_cap += 1
            over = True
        row[STATE], row[GEN], row[BUILT] = BUILDING, row[GEN] + 1, row[BUILT] + 1
        fd = os.open(self._path(fold, int(row[GEN])), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return Claimed(Claim.BUILD, int(row[GEN]), fd, over)

    def _make_room(self, fold: int) -> bool:
        """While ``cap`` folds are resident, evict those no task waits for first, then the least
        recently used; never one in use. Whether there is room now (else a build is over cap)."""
        ctl = self._ctl
        resident = [f for f in range(len(self.folds)) if f != fold and ctl[f, STATE] != ABSENT]
        idle = sorted((int(ctl[f, PENDING] > 0), int(ctl[f, USED]), f) for f in resident
                      if ctl[f, STATE] == READY and not self._in_use(f))
        for waited, _, f in idle:
            if len(resident) < ctl[-1, CAP]:
                break
            ctl[f, THRASHED] = waited
            self._evict(f)
            resident.remove(f)
        return len(resident) < ctl[-1, CAP]

    def _evict(self, fold: int) -> None:
        _unlink(self._path(fold, int(self._ctl[fold, GEN])))
        self._ctl[fold, STATE] = ABSENT
        self.stats.evicted += 1

    def _in_use(self, fold: int) -> bool:
        """Whether a process holds the fold's file (a lease, or its build)."""
        try:
            return stale.held(self._path(fold, int(self._ctl[fold, GEN])))
        except FileNotFoundError:
            return False

    # -- fold files --------------------------------------------------------------------
    def _path(self, fold: int, gen: int) -> Path:
        return SHM_DIR / f"{self.name}-f{fold}-g{gen}"

    def _build(self, fold: int, gen: int, fd: int) -> Lease | None:
        """Cut the fold into its new file, then hold it shared and map it."""
        start = time.perf_counter()
        ok = False
        try:
            rows = self.folds.rows(fold) if isinstance(self.folds, FoldLabels) else self.folds[fold]
            write_fold(fd, SHM_DIR, self.X, self.y, self.w, *rows)
            ok = True
        except (OSError, MemoryError, BufferError):
            pass
        trim_heap()  # the build's index blocks, freed, would stay in this process
        with self._locked():
            if ok:
                fcntl.flock(fd, fcntl.LOCK_SH)  # this task's lease (the state says BUILDING until now)
                self._ctl[fold, STATE] = READY
            else:
                self._ctl[fold, STATE] = ABSENT
                _unlink(self._path(fold, gen))
        if not ok:
            os.close(fd)
            self.stats.failed += 1
            return None
        self.stats.built += 1
        self.stats.build_s += time.perf_counter() - start
        return Lease(fold, map_fold(fd), fd)  # type: ignore[arg-type]  # complete: written here

    def _forget_broken(self, fold: int, gen: int) -> None:
        with self._locked():
            if self._ctl[fold, GEN] == gen and self._ctl[fold, STATE] == BUILDING:
                _unlink(self._path(fold, gen))
                self._ctl[fold, STATE] = ABSENT


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
