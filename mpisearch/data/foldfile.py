"""The file of one fold of the node fold store: HEADER bytes (ready flag, length of the
layout, the pickled layout), then each part's arrays, ALIGN-aligned, in the row order of
``X[train]`` / ``X[test]`` (dense rows are gathered straight into the file)."""

from __future__ import annotations

import mmap
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import shared as shm
from .foldlabels import LabelRows
from .parts import FoldParts, csr_over

Rows = np.ndarray | LabelRows  # a fold's row indices, or rows decoded from labels as they are read

ALIGN = 64
HEADER = 4096  # bytes before a fold file's arrays: ready flag, length of the layout, the layout

Layout = list[tuple[str, tuple[int, ...], str, int]]  # (name, shape, dtype, offset)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _sources(X: Any, y: Any, w: Any, train: Rows, test: Rows) -> list[tuple[str, Any, Rows]]:
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


def write_fold(fd: int, where: Path, X: Any, y: Any, w: Any, train: Rows, test: Rows) -> None:
    """Cut one fold into ``fd`` (a new file in ``where``); the ready flag is written last.
    ``train`` and ``test``: index arrays, or :class:`.foldlabels.LabelRows`."""
    arrays: list[tuple[str, Any]] = []  # dense sources stay lazy: np.take writes into the file
    for name, source, rows in _sources(X, y, w, train, test):
        if sp.issparse(source):
            part = source[np.asarray(rows)]  # scipy's own row indexing: the same arrays as X[train] gives
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
        _check_pages(mem, where)
        for (_name, shape, dtype, offset), (_, a) in zip(layout, arrays, strict=True):
            out = np.frombuffer(mem, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
            if isinstance(a, tuple):
                _take(a[0], a[1], out)
            else:
                out[...] = a
            del out
        meta = pickle.dumps(layout)
        if 16 + len(meta) > HEADER:
            raise MemoryError("fold layout too long")
        mem[16 : 16 + len(meta)] = meta
        mem[8:16] = np.int64(len(meta)).tobytes()
        mem[0:8] = np.int64(1).tobytes()  # ready


def _take(source: np.ndarray, rows: Rows, out: np.ndarray) -> None:
    """``out[:] = source[rows]``, block by block for rows decoded from labels."""
    if isinstance(rows, np.ndarray):
        np.take(source, rows, axis=0, out=out, mode="clip")  # "raise" would copy via a temporary
        return
    pos = 0
    for block in rows.blocks():
        np.take(source, block, axis=0, out=out[pos : pos + len(block)], mode="clip")
        pos += len(block)


def _shape_dtype(a: Any) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(a, tuple):
        source, rows = a
        return (len(rows), *source.shape[1:]), source.dtype
    return a.shape, a.dtype


def _check_pages(mem: mmap.mmap, where: Path) -> None:
    """Allocate the file's pages now (a too small /dev/shm raises here, not SIGBUS mid-copy)."""
    raw = np.frombuffer(mem, dtype=np.uint8)
    size, problem = raw.size, None
    try:
        done = shm.prefault(raw)
    except MemoryError as exc:  # re-raised below, once no frame holds a view of ``mem``
        done, problem = True, str(exc)
    del raw
    if problem is not None:
        raise MemoryError(problem)
    if done is None:
        shm.check_room(size, str(where))


def map_fold(fd: int) -> FoldParts | None:
    """Read-only views of a fold file (an open descriptor; the file may be unlinked already);
    None when it is not complete (its builder died mid-build)."""
    try:
        mem = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except ValueError:  # empty: the builder died before sizing it
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
