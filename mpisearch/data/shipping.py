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
  quiet barrier. The root keeps its own arrays (it refits on them); a dense X
  that the root read into a shared file (:mod:`.segment`) is mapped by its
  node's ranks instead of copied, so the root's node holds X once, whatever
  the number of ranks (y, weights and fold indices twice).
* ``shared=False``: every rank receives a private copy.
"""

from __future__ import annotations

import os
import pickle
import secrets
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from ..errors import InputError
from ..waiting import wait_quietly
from . import segment
from . import shared as shm
from .buffers import Packer, Unpacker, is_frame
from .dataset import Dataset, Fold
from .foldlabels import FoldLabels, encode
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
        arrays = _ship_shared(specs, wire, comm, root, header["segments"])
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
    store = NodeFoldStore(f"{PREFIX}{token}-n{first}", dataset.X, dataset.y, dataset.sample_weight, dataset.folds,
                          resident_folds=dataset.resident_folds)
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
    folds, as_labels = _shipped_folds(dataset, lengths, X.shape[0])
    named.append(("folds", folds))
    wire = [_wire(name, a) for name, a in named]
    header = {"X": x_meta, "has_y": y is not None, "has_w": dataset.sample_weight is not None, "folds": lengths,
              "arrays": [(w.shape, w.dtype, t) for w, t in wire], "shared_folds": dataset.shared_folds,
              "resident_folds": dataset.resident_folds,
              "segments": _segments(wire), "fold_labels": as_labels,
              "token": f"{os.getpid()}-{secrets.token_hex(4)}"}
    return header, [w for w, _ in wire]


def _shipped_folds(dataset: Dataset, lengths: list[tuple[int, int]], n_rows: int) -> tuple[np.ndarray, bool]:
    """What carries the folds: one label per row where that says the same (:mod:`.foldlabels`),
    else every fold's train and test indices one after the other (int64); True for labels. It
    is in a shared file when there is room (rank 0's node maps it instead of copying it), and
    the root's folds become read-only views of it, so the root's node holds them once."""
    labels = encode(dataset.folds, n_rows)
    if labels is not None:
        shipped = _in_segment(labels.dtype, len(labels), [labels])
        dataset.folds = FoldLabels(shipped, len(lengths))
        return shipped, True
    parts = [np.asarray(i, dtype=np.int64) for fold in dataset.folds for i in fold]
    shipped = _in_segment(np.dtype(np.int64), sum(len(p) for p in parts), parts)
    dataset.folds = _split_folds({"folds": lengths}, shipped)
    return shipped, False


def _in_segment(dtype: np.dtype, n: int, parts: list[np.ndarray]) -> np.ndarray:
    """``parts`` one after the other, read-only, in a shared file if there is room."""
    try:
        out = segment.empty((n,), dtype) if n else np.empty(0, dtype)
    except MemoryError:
        out = np.empty(n, dtype)
    if parts:
        np.concatenate(parts, out=out)
    out.flags.writeable = False
    return out


def _segments(wire: list[tuple[np.ndarray, bool]]) -> dict[int, str]:
    """The arrays (by position on the wire) that the root holds in shared files (X and y read
    from HDF5, the folds), by file name."""
    named = {i: segment.name_of(a) for i, (a, _) in enumerate(wire)}
    return {i: name for i, name in named.items() if name is not None}


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


@dataclass(frozen=True)
class _NodePlan:
    """How this rank's node holds the shipped arrays."""

    node: MPI.Comm  # the ranks of this node, the root (or the node's leader) first
    leaders: MPI.Comm  # the root and one rank per other node (COMM_NULL elsewhere)
    mapped: dict[int, str]  # arrays in the root's shared files, which the root's node maps: not in the window
    local: list[Spec]  # the arrays as laid out in the window (X empty when mapped)
    offsets: list[int]
    total: int


def _ship_shared(specs: list[Spec], wire: list[np.ndarray], comm: MPI.Comm, root: int,
                 segments: dict[int, str] | None = None) -> list[np.ndarray]:
    """One copy per node in a shared window, filled by the node's leader; the root keeps its own.
    ``segments``: arrays (by position) that the root holds in these shared files, which its
    node's ranks map instead (X, the fold indices)."""
    is_root = comm.Get_rank() == root
    plan = _node_plan(specs, comm, root, segments or {})
    block, targets = _window(plan, comm, is_root)
    if plan.leaders != MPI.COMM_NULL:  # node rank 0: the root, or the leader of another node
        _leader_fill(plan.leaders, wire if is_root else None, targets)
        plan.leaders.Free()
    if block is None:
        plan.node.Free()
        return wire
    # rank 0's files are mapped before the node's barrier (in publish), so rank 0 keeps them until then
    mapped = {} if is_root else {i: segment.open_readonly(name, *specs[i][:2]) for i, name in plan.mapped.items()}
    block.publish()
    if plan.mapped:  # what the node shares, as a window holding everything would count it
        block.mapped_bytes = shm.layout([int(np.prod(shape)) * dtype.itemsize for shape, dtype, _ in specs])[1] \
            - plan.total
    shm.register(block)
    if is_root:
        return wire
    arrays = block.views(plan.offsets, [(shape, dtype) for shape, dtype, _ in plan.local])
    for i, arr in mapped.items():
        arrays[i] = arr
    return _finish(arrays, specs)


def _node_plan(specs: list[Spec], comm: MPI.Comm, root: int, segments: dict[int, str]) -> _NodePlan:
    key = 0 if comm.Get_rank() == root else comm.Get_rank() + 1  # the root is rank 0 of its node and of the leaders
    node = shm.node_comm(comm, key)
    leaders = comm.Split(0 if node.Get_rank() == 0 else MPI.UNDEFINED, key)
    mapped = segments if shm.first_rank(node, comm) == root else {}
    local = [((0,), s[1], s[2]) if i in mapped else s for i, s in enumerate(specs)]
    offsets, total = shm.layout([int(np.prod(shape)) * dtype.itemsize for shape, dtype, _ in local])
    return _NodePlan(node, leaders, mapped, local, offsets, total)


def _window(plan: _NodePlan, comm: MPI.Comm, is_root: bool) -> tuple[shm.SharedBlock | None, list[Any] | None]:
    """The node's window (None when the root is alone on its node) and, on a node's leader, the
    views to fill; no room on any rank raises InputError on every rank."""
    block, targets, problem = None, None, None
    try:
        if plan.node.Get_size() > 1 or not is_root:  # some rank here needs the data: a window
            block = shm.SharedBlock(comm, plan.node, plan.total)
        if block is not None and plan.leaders != MPI.COMM_NULL:
            targets = _views(block.fill_target(), plan.offsets, plan.local)
            for i in plan.mapped:
                targets[i] = None  # sent on, not copied here
    except (MPI.Exception, MemoryError) as exc:
        problem = shm.no_room_message(plan.total, exc)
    problem = _first_problem(comm, problem)
    if problem is not None:  # every rank raises (the failed window is left to the exit)
        raise InputError(problem)
    return block, targets


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
    shipped = next(it)
    folds = FoldLabels(shipped, len(header["folds"])) if header["fold_labels"] else _split_folds(header, shipped)
    return Dataset(X, y, folds, w, resident_folds=header["resident_folds"])


def _split_folds(header: dict[str, Any], flat: np.ndarray) -> list[Fold]:
    """Each fold's (train, test) indices: views of the shipped concatenation."""
    folds, pos = [], 0
    for n_train, n_test in header["folds"]:
        folds.append((flat[pos : pos + n_train], flat[pos + n_train : pos + n_train + n_test]))
        pos += n_train + n_test
    return folds
