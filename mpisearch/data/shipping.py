"""Ship a Dataset from rank 0 to every rank: a small header, then raw buffers.

Arrays are never pickled: the header (shapes, dtypes, fold lengths) is a small
pickled object, then each array's bytes go out with ``Ibcast`` in chunks
(below 2**31 bytes, so MPI libraries without MPI-4 large counts work, such as
Open MPI 5), waited on without spinning.

Two ways to hold the data on the receiving ranks:

* ``shared=True`` (default): one read-only copy per node, in an MPI-3 shared
  window (:mod:`.shared`). The root and one leader per other node form a
  communicator; leaders receive straight into their node's window, the root
  copies its arrays into its own node's window, then each node meets at a
  quiet barrier. The root keeps its own arrays (it refits on them), so a node
  holds the root's copy plus one shared copy, whatever the number of ranks.
* ``shared=False``: every rank receives a private copy.
"""

from __future__ import annotations

import os
import pickle
import secrets
import weakref
from typing import Any

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from ..errors import InputError
from ..waiting import wait_quietly
from . import segment
from . import shared as shm
from .buffers import Packer, Unpacker, is_frame
from .dataset import Dataset
from .parts import csr_over

# 256 MiB per Ibcast: far below the 2 GiB count limit of MPI-3 libraries and
# large enough that per-call latency is negligible (measured: 1 GiB in 4 chunks
# broadcasts at the same speed as in one call on the MPICH wheel).
CHUNK_BYTES = 256 * 1024 * 1024
assert CHUNK_BYTES < 2**31

Spec = tuple[tuple[int, ...], np.dtype, bool]  # wire shape, dtype, transposed (Fortran order on the root)


def bcast_object(obj: Any, comm: MPI.Comm, root: int = 0) -> Any:
    """Broadcast a small picklable object, waiting quietly (no busy spin)."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL) if comm.Get_rank() == root else b""
    size = np.array([len(payload)], dtype=np.int64)
    wait_quietly(comm.Ibcast([size, MPI.INT64_T], root=root))
    buf = np.frombuffer(payload, dtype=np.uint8).copy() if comm.Get_rank() == root else np.empty(int(size[0]), np.uint8)
    bcast_array(buf, comm, root)
    return obj if comm.Get_rank() == root else pickle.loads(buf)


def bcast_array(arr: np.ndarray, comm: MPI.Comm, root: int = 0) -> None:
    """Broadcast a contiguous array's bytes in place, chunk by chunk."""
    raw = _bytes(arr)
    for start in range(0, raw.size, CHUNK_BYTES):
        wait_quietly(comm.Ibcast([raw[start : start + CHUNK_BYTES], MPI.BYTE], root=root))


def bcast_dataset(dataset: Dataset | None, comm: MPI.Comm, root: int = 0, shared: bool = True) -> Dataset:
    """Every rank gets the root's dataset; the root gets its own back, the others read-only arrays.

    Collective over ``comm``; ``shared`` must be the same on every rank. It also
    frees the shared windows of earlier datasets shipped on ``comm`` that no
    rank uses any more (see :func:`.shared.release`)."""
    is_root = comm.Get_rank() == root
    if comm.Get_size() == 1:
        return dataset  # type: ignore[return-value]
    shm.release(comm)
    header, wire = _root_parts(dataset, comm, root) if is_root else (None, [])
    header = bcast_object(header, comm, root)
    if "error" in header:
        raise header["error"]
    specs = header["arrays"]
    if shared:
        arrays = _ship_shared(specs, wire, comm, root, header["x_segment"])
    else:
        arrays = _ship_private(specs, wire, comm, root)
    if is_root:
        return dataset  # type: ignore[return-value]
    dataset = _assemble(header, arrays)
    if shared and header["shared_folds"] and dataset.folds:
        dataset.store = _open_store(dataset, header["token"], comm)
    return dataset


def _open_store(dataset: Dataset, token: str, comm: MPI.Comm) -> Any:
    """This rank's handle on its node's fold store, named after the run and the node's first
    rank; closed when the dataset goes (the node's last rank to close removes its files)."""
    from .foldstore import PREFIX, NodeFoldStore

    node = shm.window_info(comm)
    first = min(node["ranks"]) if node else comm.Get_rank()
    store = NodeFoldStore(f"{PREFIX}{token}-n{first}", dataset.X, dataset.y, dataset.sample_weight, dataset.folds)
    weakref.finalize(dataset, store.close)
    return store


def _root_parts(dataset: Dataset | None, comm: MPI.Comm, root: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The header and wire arrays; an error goes to every rank in the header, then raises here."""
    try:
        if dataset is None:
            raise ValueError(f"bcast_dataset: the root (rank {root}) must pass a Dataset, got None")
        return _parts(dataset)
    except Exception as exc:
        bcast_object({"error": exc}, comm, root)
        raise


def _parts(dataset: Dataset) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Header and the flat list of C-contiguous arrays whose bytes carry a dataset."""
    X, y = dataset.X, dataset.y
    named: list[tuple[str, np.ndarray]] = []
    if is_frame(X):  # a table: one buffer per column (data.buffers), names and dtypes in the header
        packer = Packer()
        x_meta = {"sparse": False, "frame": packer.pack(X, "X"), "slots": packer.slots,
                  "buffers": len(packer.buffers)}
        named += [(f"X column {i}", b) for i, b in enumerate(packer.buffers)]
    elif sp.issparse(X):
        X = sp.csr_matrix(X)
        named += [("X.data", X.data), ("X.indices", X.indices), ("X.indptr", X.indptr)]
        x_meta = {"sparse": True, "shape": X.shape}
    else:
        named.append(("X", np.asarray(X)))
        x_meta = {"sparse": False}
    if y is not None:
        named.append(("y", np.asarray(y)))
    if dataset.sample_weight is not None:
        named.append(("sample_weight", np.asarray(dataset.sample_weight)))
    lengths = [(len(tr), len(te)) for tr, te in dataset.folds]
    flat = [np.asarray(i, dtype=np.int64) for fold in dataset.folds for i in fold]
    named.append(("folds", np.concatenate(flat) if flat else np.empty(0, np.int64)))
    wire = [_wire(name, a) for name, a in named]
    header = {"X": x_meta, "has_y": y is not None, "has_w": dataset.sample_weight is not None, "folds": lengths,
              "arrays": [(w.shape, w.dtype, t) for w, t in wire], "shared_folds": dataset.shared_folds,
              "x_segment": None if x_meta["sparse"] or "frame" in x_meta else segment.name_of(wire[0][0]),
              "token": f"{os.getpid()}-{secrets.token_hex(4)}"}
    return header, [w for w, _ in wire]


def _wire(name: str, a: np.ndarray) -> tuple[np.ndarray, bool]:
    """A C-contiguous array to send (a Fortran-ordered one goes as its transpose, uncopied)."""
    if a.dtype.hasobject:
        raise TypeError(f"{name} has dtype object, which cannot be shipped as a raw buffer; "
                        f"convert it to a numeric (or, for y, fixed-width string) dtype")
    if a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous:
        return a.T, True
    return np.ascontiguousarray(a), False


def _bytes(arr: np.ndarray) -> np.ndarray:
    return arr.reshape(-1).view(np.uint8)


def _ship_private(specs: list[Spec], wire: list[np.ndarray], comm: MPI.Comm, root: int) -> list[np.ndarray]:
    """Every rank receives its own copy."""
    if comm.Get_rank() != root:
        wire = [np.empty(shape, dtype=dtype) for shape, dtype, _ in specs]
    for arr in wire:
        bcast_array(arr, comm, root)
    return _finish(wire, specs)


def _ship_shared(specs: list[Spec], wire: list[np.ndarray], comm: MPI.Comm, root: int,
                 x_segment: str | None = None) -> list[np.ndarray]:
    """One copy per node in a shared window, filled by the node's leader; the root keeps its own.
    ``x_segment``: the root's X is in this shared file, which its node's ranks map instead."""
    is_root = comm.Get_rank() == root
    key = 0 if is_root else comm.Get_rank() + 1  # the root is rank 0 of its node and of the leaders
    node = shm.node_comm(comm, key)
    leaders = comm.Split(0 if node.Get_rank() == 0 else MPI.UNDEFINED, key)
    mapped = x_segment is not None and shm.first_rank(node, comm) == root
    local = [((0,), s[1], s[2]) if mapped and i == 0 else s for i, s in enumerate(specs)]
    offsets, total = shm.layout([int(np.prod(shape)) * dtype.itemsize for shape, dtype, _ in local])
    block, targets, problem = None, None, None
    try:
        if node.Get_size() > 1 or not is_root:  # some rank here needs the data: a window
            block = shm.SharedBlock(comm, node, total)
        if block is not None and leaders != MPI.COMM_NULL:
            targets = _views(block.fill_target(), offsets, local)
            if mapped:
                targets[0] = None  # type: ignore[call-overload]  # X: sent on, not copied here
    except (MPI.Exception, MemoryError) as exc:
        problem = shm.no_room_message(total, exc)
    problem = _first_problem(comm, problem)
    if problem is not None:  # every rank raises (the failed window is left to the exit)
        raise InputError(problem)
    if leaders != MPI.COMM_NULL:  # node rank 0: the root, or the leader of another node
        _leader_fill(leaders, wire if is_root else None, targets)
        leaders.Free()
    if block is None:
        node.Free()
        return wire
    # rank 0's X is mapped before the node's barrier (in publish), so rank 0 keeps it until then
    x = segment.open_readonly(x_segment, *specs[0][:2]) if mapped and not is_root else None  # type: ignore[arg-type]
    block.publish()
    block.mapped_bytes = int(np.prod(specs[0][0])) * specs[0][1].itemsize if mapped else 0
    shm.register(block)
    if is_root:
        return wire
    arrays = block.views(offsets, [(shape, dtype) for shape, dtype, _ in local])
    if x is not None:
        arrays[0] = x
    return _finish(arrays, specs)


def _first_problem(comm: MPI.Comm, problem: str | None) -> str | None:
    """A problem on any rank becomes every rank's (one quiet all-reduce when there is none)."""
    flag = np.array([int(problem is not None)], dtype=np.int32)
    anywhere = np.zeros(1, dtype=np.int32)
    wait_quietly(comm.Iallreduce([flag, MPI.INT32_T], [anywhere, MPI.INT32_T], op=MPI.MAX))
    if not anywhere[0]:
        return None
    return next(p for p in comm.allgather(problem) if p is not None)


def _views(base: np.ndarray, offsets: list[int], specs: list[Spec]) -> list[np.ndarray]:
    return [_view(base, offset, spec) for offset, spec in zip(offsets, specs, strict=True)]


def _view(base: np.ndarray, offset: int, spec: Spec) -> np.ndarray:
    shape, dtype, _ = spec
    nbytes = int(np.prod(shape)) * dtype.itemsize
    return base[offset : offset + nbytes].view(dtype).reshape(shape)


def _leader_fill(leaders: MPI.Comm, sources: list[np.ndarray] | None,
                 targets: list[np.ndarray | None] | None) -> None:
    """Root (``sources``): send each array to the other leaders and copy it into its node's
    window (``targets``, None when it is alone on its node). Other leaders: receive each
    array straight into their window."""
    send = leaders.Get_size() > 1
    for i in range(len(sources if sources is not None else targets)):  # type: ignore[arg-type]
        src = _bytes(sources[i]) if sources is not None else None
        target = targets[i] if targets is not None else None
        out = _bytes(target) if target is not None else None
        _fill_one(leaders, src, out, send)


def _fill_one(leaders: MPI.Comm, src: np.ndarray | None, out: np.ndarray | None, send: bool) -> None:
    raw = src if src is not None else out
    for start in range(0, raw.size, CHUNK_BYTES):  # type: ignore[union-attr]
        part = slice(start, start + CHUNK_BYTES)
        request = leaders.Ibcast([raw[part], MPI.BYTE], root=0) if send else None  # type: ignore[index]
        if src is not None and out is not None:
            out[part] = src[part]  # the root's node: a local copy while the chunk travels
        if request is not None:
            wait_quietly(request)


def _frame(meta: dict[str, Any], arrays: Any) -> Any:
    """The DataFrame X from its column buffers (read-only: the frame's columns are views)."""
    unpacker = Unpacker()
    unpacker.add(meta["slots"], [next(arrays) for _ in range(meta["buffers"])])
    return unpacker.get(meta["frame"])


def _finish(arrays: list[np.ndarray], specs: list[Spec]) -> list[np.ndarray]:
    """Back to the root's layout (transposed where it was Fortran-ordered)."""
    return [a.T if transposed else a for a, (_, _, transposed) in zip(arrays, specs, strict=True)]


def _assemble(header: dict[str, Any], arrays: list[np.ndarray]) -> Dataset:
    for arr in arrays:
        arr.flags.writeable = False
    it = iter(arrays)
    X = csr_over(next(it), next(it), next(it), header["X"]["shape"]) if header["X"]["sparse"] else \
        _frame(header["X"], it) if "frame" in header["X"] else next(it)
    y = next(it) if header["has_y"] else None
    w = next(it) if header["has_w"] else None
    flat, folds, pos = next(it), [], 0
    for n_train, n_test in header["folds"]:
        folds.append((flat[pos : pos + n_train], flat[pos + n_train : pos + n_train + n_test]))
        pos += n_train + n_test
    return Dataset(X, y, folds, w)
