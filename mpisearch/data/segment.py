"""Arrays in named shared-memory files, which other processes of the node can map by name.

Rank 0 reads X from HDF5 straight into one (:func:`empty`), so that the ranks of its
node map rank 0's own copy when the data is shipped instead of a second copy in a
window: rank 0's node holds X once. The file is removed when the array (every view of
it) is gone, or at exit.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import weakref
from pathlib import Path

import numpy as np

from . import stale

SHM_DIR = Path("/dev/shm")
PREFIX = stale.X_PREFIX

_NAMES: dict[int, tuple[str, int]] = {}  # address of a live segment -> (file name, bytes)
_COUNTER = itertools.count()


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A writable C-ordered array in a new file of SHM_DIR; MemoryError if the room is not there."""
    from .shared import check_room, prefault

    dtype = np.dtype(dtype)
    nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
    with stale.node_lock(SHM_DIR):  # a killed run's files first: their room is needed
        stale.sweep(SHM_DIR)
    path = SHM_DIR / f"{PREFIX}{os.getpid()}-{next(_COUNTER)}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, nbytes)
        mem = mmap.mmap(fd, nbytes)
    except OSError as exc:
        path.unlink()
        raise MemoryError(str(exc)) from None
    finally:
        os.close(fd)
    flat = np.frombuffer(mem, dtype=np.uint8)
    remove = weakref.finalize(mem, _forget, flat.ctypes.data, path)  # also called at exit
    _NAMES[flat.ctypes.data] = (path.name, nbytes)
    try:
        if prefault(flat) is None:
            check_room(nbytes, str(SHM_DIR))
    except MemoryError:
        del flat
        remove()
        raise
    return flat[: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)


def name_of(arr: np.ndarray) -> str | None:
    """The file name of a whole array made by :func:`empty` (None for anything else)."""
    name, nbytes = _NAMES.get(arr.ctypes.data, (None, 0))
    if name is None or not arr.flags.c_contiguous or arr.nbytes != nbytes:
        return None
    return name


def open_readonly(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Another process's segment, mapped read-only (numpy refuses to make it writable)."""
    with open(SHM_DIR / name, "rb") as fh:
        mem = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    count = int(np.prod(shape))
    return np.frombuffer(memoryview(mem), dtype=dtype, count=count).reshape(shape)


def _forget(key: int, path: Path) -> None:
    _NAMES.pop(key, None)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
