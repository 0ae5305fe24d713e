"""Node-shared memory: one MPI-3 shared window per node, holding a dataset once.

Node rank 0 allocates the window (``Win.Allocate_shared``); every rank of the
node maps the same pages (``Shared_query(0)``) and reads them through numpy
views. A window is in use as long as one of the arrays made over it (or a
view of one) is alive: each is tracked by a weak reference.

Freeing a window is collective over its node (``Win.Free``), so it is never
left to garbage collection: :func:`release` frees, at a point every rank of the
communicator reaches, the windows that no rank of their node still uses.
Windows left at exit are not freed: the MPI libraries tested (MPICH 5, Open
MPI 5) finalize with live windows, and the kernel reclaims the pages.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import mmap
import os
import socket
import sys
import weakref
from typing import Any

import numpy as np
from mpi4py import MPI

from ..waiting import quiet_barrier, wait_quietly

# Offsets of the arrays inside a window are multiples of this: a cache line,
# and the widest alignment numpy or a SIMD kernel asks for.
ALIGN = 64

HEADER = ALIGN  # bytes before the data in a window; the first 8 say where the data starts
PAGE = mmap.PAGESIZE
MADV_POPULATE_WRITE = 23  # <linux/mman.h>, Linux 5.14+
SHM_DIR = "/dev/shm"  # where MPICH and Open MPI put the files behind shared windows on Linux

_BLOCKS: list[SharedBlock] = []  # live windows of this process, in creation order (same order on every rank)


def node_comm(comm: MPI.Comm, key: int) -> MPI.Comm:
    """The ranks of ``comm`` that share memory with this one (its node), ordered by ``key``.

    Tests replace this to pretend that one machine is several nodes."""
    return comm.Split_type(MPI.COMM_TYPE_SHARED, key=key)


def aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


def layout(nbytes: list[int]) -> tuple[list[int], int]:
    """Aligned offsets of consecutive arrays of these sizes, and the total size."""
    offsets, end = [], 0
    for n in nbytes:
        offsets.append(aligned(end))
        end = offsets[-1] + n
    return offsets, max(aligned(end), ALIGN)


class SharedBlock:
    """One window on one node: node rank 0 owns the pages, every rank of the node maps them.

    Layout: an 8-byte header holding where the data starts (chosen by node rank 0
    so that the data is ALIGN-aligned in memory: MPICH puts the window 16 bytes
    past a page boundary), then the data, ``nbytes`` long."""

    def __init__(self, parent: MPI.Comm, node: MPI.Comm, nbytes: int) -> None:
        self.parent = parent  # the communicator the data was shipped on (release() matches it)
        self.node = node
        self.nbytes = nbytes
        self.mapped_bytes = 0  # data the node's ranks share outside the window (rank 0's own X)
        size = HEADER + ALIGN + nbytes
        self.win = MPI.Win.Allocate_shared(size if node.Get_rank() == 0 else 0, 1, comm=node)
        self._refs: list[weakref.ref[np.ndarray]] = []  # the arrays views() handed out

    def _raw(self) -> np.ndarray:
        buf, _ = self.win.Shared_query(0)
        return np.frombuffer(buf, dtype=np.uint8, count=HEADER + ALIGN + self.nbytes)

    def fill_target(self) -> np.ndarray:
        """Node rank 0, before :meth:`publish`: the data bytes to fill, pages already allocated.

        Raises MemoryError when the pages cannot be had: a window lives in a file on
        /dev/shm, which MPI creates sparse, so a too small /dev/shm (64 MB by default in
        Docker and Kubernetes) would otherwise kill the process with SIGBUS mid-copy."""
        raw = self._raw()
        start = HEADER + (-(raw.ctypes.data + HEADER)) % ALIGN
        if prefault(raw) is None:  # no MADV_POPULATE_WRITE here: check the free space instead
            check_room(raw.size)
        raw[:8].view(np.int64)[0] = start
        return raw[start : start + self.nbytes]

    def memory(self) -> np.ndarray:
        """Any rank, after :meth:`publish`: the data bytes (writable: for tests and tools)."""
        raw = self._raw()
        start = int(raw[:8].view(np.int64)[0])
        return raw[start : start + self.nbytes]

    def views(self, offsets: list[int], specs: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
        """After :meth:`publish`: read-only arrays over the data, one per (shape, dtype) at these
        offsets, tracked for :attr:`in_use`.

        Each array gets its own buffer (a slice of a read-only memoryview), not a
        slice of one big array: numpy then refuses to make it writable again, and
        scipy's ``_prune_array`` (which copies a view of a much larger base) keeps it."""
        raw = self._raw()
        start = int(raw[:8].view(np.int64)[0])
        buf, _ = self.win.Shared_query(0)
        data = memoryview(buf).toreadonly()[start : start + self.nbytes]
        arrays = [_array(data, offset, shape, dtype) for offset, (shape, dtype) in zip(offsets, specs, strict=True)]
        self._refs = [weakref.ref(a.base if a.base is not None else a) for a in arrays]
        return arrays

    @property
    def in_use(self) -> bool:
        """Some array over this window is still alive in this process."""
        return any(ref() is not None for ref in self._refs)

    def holds(self, arr: np.ndarray) -> bool:
        return any(a is not None and np.shares_memory(arr, a) for a in (ref() for ref in self._refs))

    def publish(self) -> None:
        """Make node rank 0's writes visible to every rank of the node (memory sync + quiet barrier)."""
        self.win.Lock_all(MPI.MODE_NOCHECK)
        self.win.Sync()
        quiet_barrier(self.node)
        self.win.Sync()
        self.win.Unlock_all()

    def free(self) -> None:
        """Collective over the node: only call when no rank of the node uses the window."""
        self.win.Free()
        self.node.Free()


def prefault(arr: np.ndarray) -> bool | None:
    """Allocate the pages under ``arr`` in one call (Linux 5.14+ MADV_POPULATE_WRITE) instead
    of one fault per 4 KiB page (shared memory gets no transparent huge pages): measured on
    2 cores, filling 1 GiB of a fresh window took 0.36 s instead of 0.60 s.

    True: done; None: not supported here (nothing done); raises MemoryError when the
    kernel says the pages cannot be had (EFAULT: a touch would raise SIGBUS; ENOMEM)."""
    if _madvise is None:
        return None
    first = -(-arr.ctypes.data // PAGE) * PAGE
    length = arr.ctypes.data + arr.size - first
    if length <= 0:
        return True
    if _madvise(first, length, MADV_POPULATE_WRITE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EFAULT, errno.ENOMEM, errno.EIO):
        raise MemoryError(f"{_free_text()}, the window needs {arr.size / 1e9:.3g} GB ({os.strerror(err)})")
    return None  # EINVAL: kernel older than 5.14


def check_room(nbytes: int, where: str = SHM_DIR) -> None:
    """MemoryError if the tmpfs that holds MPI's shared windows has less than ``nbytes`` free."""
    try:
        st = os.statvfs(where)
    except OSError:
        return
    if st.f_bavail * st.f_frsize < nbytes:
        raise MemoryError(f"{_free_text(where)}, the window needs {nbytes / 1e9:.3g} GB")


def _free_text(where: str = SHM_DIR) -> str:
    try:
        st = os.statvfs(where)
    except OSError:
        return f"{where}: no room"
    return f"{where} has {st.f_bavail * st.f_frsize / 1e9:.3g} GB free of {st.f_blocks * st.f_frsize / 1e9:.3g} GB"


def no_room_message(nbytes: int, exc: BaseException) -> str:
    return (f"data.shared_memory: cannot hold the {nbytes / 1e9:.3g} GB dataset in node-shared memory "
            f"on host {socket.gethostname()} ({exc}); give {SHM_DIR} more room (docker run --shm-size, "
            f"or a Kubernetes emptyDir with medium: Memory mounted on {SHM_DIR}) or set "
            f"data.shared_memory = false")


def _libc_madvise() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return fn


_madvise = _libc_madvise()


def _libc_malloc_trim() -> Any:
    try:
        fn = ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


_malloc_trim = _libc_malloc_trim()


def trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc keeps freed blocks of a few
    hundred KiB, such as a fold build's index blocks, in the process: measured about 1 MB
    per fit process that built a fold, 0.008x of a 606 MB dataset over 5 workers)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def register(block: SharedBlock) -> None:
    _BLOCKS.append(block)


def live_blocks() -> list[SharedBlock]:
    return list(_BLOCKS)


def first_rank(node: MPI.Comm, comm: MPI.Comm) -> int:
    """The rank in ``comm`` of rank 0 of ``node`` (a node communicator split from ``comm``)."""
    node_group, group = node.Get_group(), comm.Get_group()
    try:
        return int(MPI.Group.Translate_ranks(node_group, [0], group)[0])
    finally:
        node_group.Free()
        group.Free()


def window_info(comm: MPI.Comm) -> dict[str, Any] | None:
    """The newest window shipped on ``comm``, as this rank sees it: ``ranks``, the ranks of
    ``comm`` that map it (this rank's node), and ``bytes``, the data they share (the window's,
    and on rank 0's node rank 0's X, which they map beside it). None: no window."""
    block = next((b for b in reversed(_BLOCKS) if _same(b.parent, comm)), None)
    if block is None:
        return None
    node_group, group = block.node.Get_group(), comm.Get_group()
    try:
        ranks = MPI.Group.Translate_ranks(node_group, list(range(node_group.Get_size())), group)
    finally:
        node_group.Free()
        group.Free()
    return {"ranks": sorted(int(r) for r in ranks), "bytes": int(block.nbytes + block.mapped_bytes)}


def block_of(arr: np.ndarray) -> SharedBlock | None:
    """The window whose memory ``arr`` views, if any (this process's windows only)."""
    return next((b for b in _BLOCKS if b.holds(arr)), None)


def release(comm: MPI.Comm) -> int:
    """Free the windows shipped on ``comm`` that no rank of their node still uses.

    Collective over ``comm``: call it on every rank, at a point every rank
    reaches (the start of the next broadcast, the end of a search). Each window
    is freed only if an all-reduce over its node says that no rank there still
    holds an array viewing it, so a rank that keeps its dataset keeps the
    window valid for the whole node. Returns how many windows were freed."""
    mine = [b for b in _BLOCKS if _same(b.parent, comm)]
    if any(b.in_use for b in mine):
        gc.collect()  # arrays kept alive only by reference cycles
    freed = 0
    for block in mine:
        if _any_rank(block.node, block.in_use):
            continue
        block.free()
        _BLOCKS.remove(block)
        freed += 1
    return freed


def _array(memory: memoryview, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    count = int(np.prod(shape))
    flat = np.frombuffer(memory[offset : offset + count * dtype.itemsize], dtype=dtype, count=count)
    return flat.reshape(shape)  # its base is ``flat``, which every further view keeps alive


def _any_rank(comm: MPI.Comm, flag: bool) -> bool:
    send = np.array([int(flag)], dtype=np.int32)
    recv = np.zeros(1, dtype=np.int32)
    wait_quietly(comm.Iallreduce([send, MPI.INT32_T], [recv, MPI.INT32_T], op=MPI.MAX))
    return bool(recv[0])


def _same(a: Any, b: Any) -> bool:
    try:
        return a != MPI.COMM_NULL and a == b
    except Exception:  # noqa: BLE001 - a freed or foreign object is simply not the same communicator
        return False
