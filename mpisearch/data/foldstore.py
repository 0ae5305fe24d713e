"""The node fold store: each fold's train and test parts, built once per node in shared memory.

Every rank of a node opens the same store (files ``/dev/shm/<name>-*``; the name holds
the run's token and the node's first rank, so nodes and runs never meet). A task
:meth:`NodeFoldStore.acquire`\\ s its fold: the first rank of the node that needs a fold
builds it, in exactly the row order of ``X[train]`` / ``X[test]`` (so scores are those of
private copies, bit for bit), into a file of its own; every rank then maps that file
read-only and fits on zero-copy views. Ranks coordinate through a small control file,
under ``flock``: per fold its state, how many running tasks use it (``refs``), the
generation of its file and when it was last used. No message goes to rank 0.

Residency: at most ``cap`` folds are resident on a node (RESIDENT_FOLDS). A fold that
must be built when the store is full evicts the least recently used fold that no
running task uses (its file is unlinked; its pages go when the last view of it dies).
When every resident fold is in use the new one is built all the same (``over_cap`` in
the stats): a task never waits for another rank's fit. A fold evicted and then needed
again (the tasks' order went back to it) makes the node keep one more fold from then
on (``cap`` grows, up to the number of folds and at most to the number of ranks using
the store), so an order that cycles through the folds builds each at most twice once
the node has as many ranks as folds, and a node with fewer ranks never holds more than
X plus one fold per rank: less than private copies per task (X, rank 0's copy, plus one
fold per rank), and a rebuild costs what one task's private copy costs.

Files are removed by the last rank that closes the store, and at exit. A task killed
for its time limit (it runs in a forked child, :mod:`mpisearch.limits`) never releases its
fold, which then stays resident (the node may keep one more fold); one killed while
building its fold leaves it to the next task that needs it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import mmap
import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .parts import FoldParts, csr_over

SHM_DIR = Path("/dev/shm")  # tmpfs on Linux: where MPI's shared windows live too
PREFIX = "mpisearch-"  # every file of a fold store starts so (benchmarks find them by it)
# Folds a node keeps at first: the floor of the memory (X plus one fold) plus the next
# fold, so that a fold-major order of tasks never waits for a build of the fold it is
# leaving (see the module docstring for what makes the node keep more).
RESIDENT_FOLDS = 2
ALIGN = 64
HEADER = 4096  # bytes before a fold file's arrays: ready flag, length of the layout, the layout
# Fold states in the control file.
ABSENT, BUILDING, READY = 0, 1, 2
STATE, REFS, GEN, USED, BUILT = range(5)  # columns of a fold's row
ATTACHED, TICK, CAP = range(3)  # columns of the last row (the store itself)
COLUMNS = 5


@dataclass
class Lease:
    """One task's hold on a fold: its parts are views of the fold's file."""

    fold: int
    parts: FoldParts


@dataclass
class StoreStats:
    """What one rank did with the store (in run.json under ``workers.<rank>.fold_store``)."""

    built: int = 0  # folds this rank built (each once per node, unless evicted and needed again)
    build_s: float = 0.0
    reused: int = 0  # tasks that found their fold resident (or being built by another rank)
    over_cap: int = 0  # folds built while every resident fold was in use
    evicted: int = 0  # folds this rank evicted to make room
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


@dataclass
class NodeFoldStore:
    """One rank's handle on its node's fold store (see the module docstring)."""

    name: str
    X: Any
    y: np.ndarray | None
    w: np.ndarray | None
    folds: list[tuple[np.ndarray, np.ndarray]]
    cap: int = RESIDENT_FOLDS
    stats: StoreStats = field(default_factory=StoreStats)

    def __post_init__(self) -> None:
        path = SHM_DIR / f"{self.name}.ctl"
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._pid = os.getpid()
        nbytes = (len(self.folds) + 1) * COLUMNS * 8
        with self._locked():
            if os.fstat(self._fd).st_size == 0:
                os.ftruncate(self._fd, nbytes)
            self._map = mmap.mmap(self._fd, nbytes)
            self._ctl = np.frombuffer(self._map, dtype=np.int64).reshape(-1, COLUMNS)
            self._ctl[-1, ATTACHED] += 1
            self._ctl[-1, CAP] = max(self._ctl[-1, CAP], min(self.cap, len(self.folds)))
        self._closed = False
        atexit.register(self.close)

    # -- tasks -------------------------------------------------------------------------
    def acquire(self, fold: int) -> Lease | None:
        """The fold's parts as read-only views (built here if no rank of the node has it);
        None when it cannot be built (no room in /dev/shm): the task copies privately."""
        with self._locked():
            build, gen = self._claim(fold)
            fd = self._create(fold, gen) if build else None
        if fd is not None:
            return self._build(fold, gen, fd)
        parts = self._open(fold, gen)
        if parts is None:
            self.release(Lease(fold, FoldParts(None, None, None, None, None)))
            self.stats.failed += 1
            return None
        self.stats.reused += 1
        return Lease(fold, parts)

    def release(self, lease: Lease) -> None:
        with self._locked():
            self._ctl[lease.fold, REFS] -= 1

    def close(self) -> None:
        """Detach; the last rank of the node to close removes every file of the store."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        with self._locked():
            self._ctl[-1, ATTACHED] -= 1
            last = self._ctl[-1, ATTACHED] <= 0
            if last:
                for f in range(len(self.folds)):
                    if self._ctl[f, STATE] != ABSENT:
                        _unlink(self._path(f, int(self._ctl[f, GEN])))
                _unlink(SHM_DIR / f"{self.name}.ctl")
        self._ctl = None  # type: ignore[assignment]
        self._map.close()
        os.close(self._fd)

    def resident(self) -> list[int]:
        """Folds built (or being built) on this node now."""
        with self._locked():
            return [f for f in range(len(self.folds)) if self._ctl[f, STATE] != ABSENT]

    # -- inside the lock ---------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if os.getpid() != self._pid:  # a forked child (a task with a time limit): a lock of its own,
            self._pid = os.getpid()  # which the kernel drops if the child is killed holding it
            self._fd = os.open(SHM_DIR / f"{self.name}.ctl", os.O_RDWR)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _claim(self, fold: int) -> tuple[bool, int]:
        """Count this task on the fold; whether this rank must build it, and its generation."""
        ctl = self._ctl
        ctl[-1, TICK] += 1
        row = ctl[fold]
        row[REFS] += 1
        row[USED] = ctl[-1, TICK]
        if row[STATE] != ABSENT:
            return False, int(row[GEN])
        if row[BUILT] > 0:  # evicted before and needed again: keep one more fold from now on
            ctl[-1, CAP] = min(ctl[-1, CAP] + 1, len(self.folds), max(self.cap, ctl[-1, ATTACHED]))
        self._make_room(fold)
        row[STATE], row[GEN], row[BUILT] = BUILDING, row[GEN] + 1, row[BUILT] + 1
        return True, int(row[GEN])

    def _make_room(self, fold: int) -> None:
        ctl = self._ctl
        resident = [f for f in range(len(self.folds)) if f != fold and ctl[f, STATE] != ABSENT]
        idle = sorted((int(ctl[f, USED]), f) for f in resident if ctl[f, STATE] == READY and ctl[f, REFS] == 0)
        while len(resident) >= ctl[-1, CAP] and idle:
            f = idle.pop(0)[1]
            _unlink(self._path(f, int(ctl[f, GEN])))
            ctl[f, STATE] = ABSENT
            resident.remove(f)
            self.stats.evicted += 1
        if len(resident) >= ctl[-1, CAP]:
            self.stats.over_cap += 1

    # -- fold files --------------------------------------------------------------------
    def _path(self, fold: int, gen: int) -> Path:
        return SHM_DIR / f"{self.name}-f{fold}-g{gen}"

    def _create(self, fold: int, gen: int) -> int:
        """The fold's new file, exclusively locked until it is written (inside the control lock,
        so no rank sees the fold being built before its builder holds that lock)."""
        fd = os.open(self._path(fold, gen), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _build(self, fold: int, gen: int, fd: int) -> Lease | None:
        """Cut the fold into its new file, then map it."""
        start = time.perf_counter()
        path = self._path(fold, gen)
        ok = False
        try:
            _write_fold(fd, self.X, self.y, self.w, *self.folds[fold])
            ok = True
        except (OSError, MemoryError, BufferError):
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        with self._locked():
            self._ctl[fold, STATE] = READY if ok else ABSENT
            if not ok:
                self._ctl[fold, REFS] -= 1
                _unlink(path)
        if not ok:
            self.stats.failed += 1
            return None
        self.stats.built += 1
        self.stats.build_s += time.perf_counter() - start
        parts = _map_fold(path)
        if parts is None:  # evicted already: cannot happen while this task holds it
            self.release(Lease(fold, FoldParts(None, None, None, None, None)))
            return None
        return Lease(fold, parts)

    def _open(self, fold: int, gen: int) -> FoldParts | None:
        """Another rank's fold: wait for its builder (a shared lock), then map it."""
        try:
            fd = os.open(self._path(fold, gen), os.O_RDONLY)
        except FileNotFoundError:  # its build failed and was removed
            return None
        start = time.perf_counter()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        self.stats.wait_s += time.perf_counter() - start
        parts = _map_fold(self._path(fold, gen))
        if parts is None:  # its builder died mid-build (a killed task): the next task builds it again
            with self._locked():
                if self._ctl[fold, GEN] == gen and self._ctl[fold, STATE] == BUILDING:
                    _unlink(self._path(fold, gen))
                    self._ctl[fold, STATE] = ABSENT
        return parts


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# -- the layout of a fold file: HEADER bytes (ready flag, layout length, pickled layout), arrays

Layout = list[tuple[str, tuple[int, ...], str, int]]  # (name, shape, dtype, offset)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _sources(X: Any, y: Any, w: Any, train: np.ndarray, test: np.ndarray) -> list[tuple[str, Any, np.ndarray]]:
    """(name, array to take rows from, rows) for every array of a fold's parts."""
    out = []
    for side, rows in (("train", train), ("test", test)):
        out.append((f"X_{side}", X, rows))
        if y is not None:
            out.append((f"y_{side}", y, rows))
    if w is not None:
        out.append(("w_train", w, train))
        out.append(("w_test", w, test))  # the test scores are weighted too (scikit-learn 1.9)
    return out


def _write_fold(fd: int, X: Any, y: Any, w: Any, train: np.ndarray, test: np.ndarray) -> None:
    arrays: list[tuple[str, Any]] = []  # dense sources stay lazy: np.take writes into the file
    for name, source, rows in _sources(X, y, w, train, test):
        if sp.issparse(source):
            part = source[rows]  # scipy's own row indexing: the same arrays as X[train] gives
            arrays += [(f"{name}.data", part.data), (f"{name}.indices", part.indices),
                       (f"{name}.indptr", part.indptr), (f"{name}.shape", np.array(part.shape, np.int64))]
        else:
            arrays.append((name, (source, rows)))
    layout: Layout = []
    end = HEADER
    for name, a in arrays:
        shape, dtype = _shape_dtype(a)
        layout.append((name, shape, dtype.str, end))
        end = _aligned(end + int(np.prod(shape)) * dtype.itemsize)
    os.ftruncate(fd, max(end, HEADER))
    with mmap.mmap(fd, max(end, HEADER)) as mem:
        _check_pages(mem)
        for (_name, shape, dtype, offset), (_, a) in zip(layout, arrays, strict=True):
            out = np.frombuffer(mem, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
            if isinstance(a, tuple):
                np.take(a[0], a[1], axis=0, out=out, mode="clip")  # "raise" would copy via a temporary
            else:
                out[...] = a
            del out
        meta = pickle.dumps(layout)
        if 16 + len(meta) > HEADER:
            raise MemoryError("fold layout too long")
        mem[16 : 16 + len(meta)] = meta
        mem[8:16] = np.int64(len(meta)).tobytes()
        mem[0:8] = np.int64(1).tobytes()  # ready


def _shape_dtype(a: Any) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(a, tuple):
        source, rows = a
        return (len(rows), *source.shape[1:]), source.dtype
    return a.shape, a.dtype


def _check_pages(mem: mmap.mmap) -> None:
    """Allocate the file's pages now (a too small /dev/shm raises here, not SIGBUS mid-copy)."""
    from .shared import check_room, prefault

    raw = np.frombuffer(mem, dtype=np.uint8)
    size, problem = raw.size, None
    try:
        done = prefault(raw)
    except MemoryError as exc:  # re-raised below, once no frame holds a view of ``mem``
        done, problem = True, str(exc)
    del raw
    if problem is not None:
        raise MemoryError(problem)
    if done is None:
        check_room(size, str(SHM_DIR))


def _map_fold(path: Path) -> FoldParts | None:
    """Read-only views of a ready fold file (None: gone or not complete)."""
    try:
        with open(path, "rb") as fh:
            mem = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (FileNotFoundError, ValueError):
        return None
    if int(np.frombuffer(mem, np.int64, 1, 0)[0]) != 1:
        mem.close()
        return None
    n = int(np.frombuffer(mem, np.int64, 1, 8)[0])
    layout: Layout = pickle.loads(mem[16 : 16 + n])
    buf = memoryview(mem)
    views = {name: np.frombuffer(buf, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
             for name, shape, dtype, offset in layout}
    return FoldParts(_part(views, "X_train"), views.get("y_train"), _part(views, "X_test"), views.get("y_test"),
                     views.get("w_train"), views.get("w_test"), shared=True)


def _part(views: dict[str, np.ndarray], name: str) -> Any:
    if name in views:
        return views[name]

    shape = tuple(int(s) for s in views[f"{name}.shape"])
    return csr_over(views[f"{name}.data"], views[f"{name}.indices"], views[f"{name}.indptr"], shape)
