"""Data shipping under MPI: formats, node-shared windows, >2 GiB, end to end.

Run as ``mpiexec -n K python -m mpi4py -m pytest --with-mpi tests/test_mpi_data.py``
(K = 1, 2, 3, 5; ``-m "not slow"`` skips the >2 GiB test). One machine is one
node; the ``pairs`` and ``root-alone`` topologies pretend it is several (node
communicators made with ``Split``), so that leaders receive the cross-node
broadcast into their windows as they would on a cluster.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from parity import assert_bitwise_equal
from sklearn.linear_model import LogisticRegression
from spmd import quiet_allgather

from mpisearch.waiting import quiet_barrier

pytestmark = pytest.mark.mpi(min_size=1)

MPI = pytest.importorskip("mpi4py.MPI")
COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()
ROOT = RANK == 0

TOPOLOGIES = {
    "node": None,  # the real one: every rank on this machine
    "pairs": lambda rank: rank // 2,  # nodes {0, 1}, {2, 3}, {4}: the root shares its node
    "root-alone": lambda rank: 0 if rank == 0 else 1 + (rank - 1) // 2,  # {0}, {1, 2}, {3, 4}
}


@pytest.fixture(params=list(TOPOLOGIES))
def topology(request, monkeypatch):
    from mpisearch.data import shared

    color = TOPOLOGIES[request.param]
    if color is not None:
        monkeypatch.setattr(shared, "node_comm", lambda comm, key: comm.Split(color(comm.Get_rank()), key))
    return request.param


def make_dataset(kind: str, seed: int = 0):
    """The same dataset on every rank (seeded), so each rank can check what it got."""
    from mpisearch.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    n = 60
    dense = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "int8": np.int8,
             "uint16": np.uint16, "int64": np.int64, "bool": np.bool_}
    y: np.ndarray | None = rng.integers(0, 3, n)
    w = None
    if kind in dense:
        X = (rng.random((n, 7)) * 100).astype(dense[kind])
    elif kind == "fortran-float32":
        X = np.asfortranarray(rng.random((n, 7)).astype(np.float32))
    elif kind.startswith("csr"):
        X = sp.random(n, 40, density=0.1, format="csr", random_state=seed, dtype=np.float32)
        if kind == "csr-int64":
            X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    if kind == "strings":
        X, y = rng.random((n, 3)), np.array(["cat", "dog", "wolverine"])[y]
    if kind == "float-y-weights":
        X, y, w = rng.random((n, 3)), rng.random(n), rng.random(n) + 0.5
    if kind == "no-y":
        X, y = rng.random((n, 3)), None
    folds = [(np.arange(0, 40), np.arange(40, n)), (np.arange(20, n), np.arange(0, 20)),
             (np.arange(0, 0), np.arange(0, n))]
    return Dataset(X, y, folds, w)


KINDS = ["float64", "float32", "float16", "int8", "uint16", "int64", "bool", "fortran-float32", "csr",
         "csr-int64", "strings", "float-y-weights", "no-y"]


def arrays_of(ds) -> list[np.ndarray]:
    X = [ds.X.data, ds.X.indices, ds.X.indptr] if sp.issparse(ds.X) else [ds.X]
    rest = [a for a in (ds.y, ds.sample_weight) if a is not None]
    return X + rest + [i for fold in ds.folds for i in fold]


def assert_same_dataset(got, want) -> None:
    assert sp.issparse(got.X) == sp.issparse(want.X)
    for a, b in zip(arrays_of(got), arrays_of(want), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    if not sp.issparse(want.X):
        assert got.X.flags.f_contiguous == want.X.flags.f_contiguous
    assert (got.y is None) == (want.y is None) and (got.sample_weight is None) == (want.sample_weight is None)


def ship(ds, shared: bool):
    from mpisearch.data.shipping import bcast_dataset

    return bcast_dataset(ds if ROOT else None, COMM, shared=shared)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "private"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_format_arrives_intact_and_read_only(kind, shared, topology):
    from mpisearch.data import shared as shm

    want = make_dataset(kind)
    got = ship(want, shared)
    if ROOT:
        assert got is want  # the root keeps its own arrays (it refits on them)
        return
    assert_same_dataset(got, want)
    for arr in arrays_of(got):
        assert not arr.flags.writeable
        if shared:  # the base is read-only too, so nobody can turn writing back on
            with pytest.raises(ValueError):
                arr.flags.writeable = True
    blocks = {id(b) for b in (shm.block_of(a) for a in arrays_of(got) if a.size) if b is not None}
    assert len(blocks) == (1 if shared else 0)
    if shared:
        assert shm.block_of(got.X.data if sp.issparse(got.X) else got.X) is not None
        assert all(a.ctypes.data % shm.ALIGN == 0 for a in arrays_of(got)[:-6])  # folds are slices


def test_sparse_int64_indices_stay_in_the_window():
    from mpisearch.data import shared as shm

    got = ship(make_dataset("csr-int64"), True)
    if not ROOT:
        assert got.X.indices.dtype == np.int64 and got.X.indptr.dtype == np.int64
        assert shm.block_of(got.X.indices) is not None and shm.block_of(got.X.indptr) is not None


H5_KINDS = ["float32", "int8", "csr", "vlen-strings", "fixed-ascii", "fixed-utf8"]


def h5_expected(kind: str):
    """What reading the file of ``kind`` must give: (X, y, sample weights), the same on every rank."""
    rng = np.random.default_rng(5)
    n = 40
    X = rng.normal(size=(n, 6)).astype(np.float32)
    if kind == "int8":
        X = rng.integers(-100, 100, (n, 6)).astype(np.int8)
    if kind == "csr":
        X = sp.random(n, 30, density=0.2, format="csr", random_state=5, dtype=np.float64)
    labels = np.array(["ant", "bée", "cat"] if kind in ("vlen-strings", "fixed-utf8") else ["ant", "bee", "cat"])
    y = labels[rng.integers(0, 3, n)] if kind in ("vlen-strings", "fixed-ascii", "fixed-utf8") else rng.random(n)
    return X, y, rng.random(n) + 0.5


def write_h5(path, kind: str) -> None:
    import h5py

    from mpisearch.data import hdf5

    X, y, w = h5_expected(kind)
    hdf5.write(path, X, y if kind in ("vlen-strings", "float32", "int8", "csr") else None)
    with h5py.File(path, "a") as fh:
        fh["w"] = w
        if kind == "fixed-ascii":
            fh["y"] = y.astype("S")
        if kind == "fixed-utf8":
            encoded = np.char.encode(y, "utf-8")
            fh["y"] = encoded.astype(h5py.string_dtype("utf-8", encoded.dtype.itemsize))


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "private"])
@pytest.mark.parametrize("kind", H5_KINDS)
def test_hdf5_formats_ship_as_read(kind, shared):
    """Read on rank 0 (mpisearch.data.hdf5), shipped, equal on every rank to what was written."""
    from mpisearch.data import hdf5
    from mpisearch.data.dataset import Dataset

    X, y, w = h5_expected(kind)
    folds = [(np.arange(0, 30), np.arange(30, 40))]
    ds = None
    if ROOT:  # a plain temp dir: pytest's tmp_path on every rank races over cleaning old ones
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "d.h5"
            write_h5(path, kind)
            Xr, yr = hdf5.read(path)
            ds = Dataset(Xr, yr, folds, hdf5.read_sample_weight(path, "w", Xr.shape[0]))
    got = ship(ds, shared)
    assert_same_dataset(got, Dataset(X, y, folds, w))
    assert got.y.dtype.kind == ("U" if y.dtype.kind == "U" else "f")


def node_of_this_rank():
    from mpisearch.data import shared as shm

    node = shm.node_comm(COMM, 0 if ROOT else RANK + 1)
    info = node.Get_rank(), node.Get_size()
    node.Free()
    return info


def test_ranks_of_a_node_see_one_copy(topology):
    """Node rank 0 writes a marker into the window; every other rank of the node sees it in its X."""
    from mpisearch.data import shared as shm

    want = make_dataset("float64")
    got = ship(want, True)
    node_rank, node_size = node_of_this_rank()
    if ROOT and node_size == 1:
        block = None  # alone on its node: no window there
    else:
        block = shm.live_blocks()[-1] if ROOT else shm.block_of(got.X)
        assert block is not None and block.node.Get_size() == node_size
        if not ROOT:
            assert np.shares_memory(got.X, block.memory())
    marker = -12345.5
    if block is not None and node_rank == 0:
        block.memory()[:8].view(np.float64)[0] = marker  # X is the first array of the window
    if block is not None:
        quiet_barrier(block.node)
        if not ROOT:
            assert got.X[0, 0] == marker
        quiet_barrier(block.node)
    if ROOT:
        assert want.X[0, 0] != marker  # the root's own copy is separate


def test_window_info_names_the_ranks_sharing_the_copy(topology):
    """What workers report in run.json (``workers.<rank>.shared``): the ranks of their node."""
    from mpisearch.data import shared as shm

    want = make_dataset("float64")
    got = ship(want, True)
    color = TOPOLOGIES[topology] or (lambda rank: 0)
    node = [r for r in range(SIZE) if color(r) == color(RANK)]
    info = shm.window_info(COMM)
    if ROOT and node == [0]:
        assert info is None  # alone on its node: no window
    else:
        block = shm.live_blocks()[-1]  # on rank 0's node, what rank 0's files hold is shared too (mapped)
        assert info == {"ranks": node, "bytes": block.nbytes + block.mapped_bytes}
        assert info["bytes"] >= want.X.nbytes + want.y.nbytes
    del got
    shm.release(COMM)


def pss_kib() -> int:
    with open("/proc/self/smaps_rollup") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))


@pytest.mark.skipif(SIZE == 1, reason="nothing is shipped to a single rank")
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "private"])
def test_sum_of_pss_shows_one_copy_per_node(shared):
    """Sum over ranks of the proportional set size grows by one dataset with sharing, by SIZE-1 without."""
    from mpisearch.data import shared as shm
    from mpisearch.data.dataset import Dataset

    size_mib = 64
    X = np.random.default_rng(1).random((size_mib * 2**20 // 8 // 64, 64)) if ROOT else None
    shm.release(COMM)
    gc.collect()
    quiet_barrier(COMM)
    before = pss_kib()
    got = ship(Dataset(X, None, [(np.arange(2), np.arange(2, 4))]) if ROOT else None, shared)
    if not ROOT:
        assert float(got.X[:, 0].sum()) > 0  # touch every page, as a worker reading the data does
    quiet_barrier(COMM)
    grown = COMM.allreduce(pss_kib() - before) / 1024
    copies = grown / size_mib
    if shared:
        assert 0.8 < copies < 1.3, f"{grown:.0f} MiB over all ranks for a {size_mib} MiB dataset"
    else:
        assert copies > 0.8 * (SIZE - 1), f"{grown:.0f} MiB over all ranks for a {size_mib} MiB dataset"


def test_a_window_lives_while_any_rank_of_its_node_uses_it():
    from mpisearch.data import shared as shm

    if SIZE == 1:
        pytest.skip("nothing is shipped to a single rank")
    want = make_dataset("float32")
    got = ship(want, True)
    block = shm.live_blocks()[-1]  # every rank is on this machine's node, the root too
    keeper = RANK == SIZE - 1
    if not keeper:
        del got
    shm.release(COMM)
    assert block in shm.live_blocks()  # the keeper still reads it: kept for the whole node
    if keeper:
        assert_same_dataset(got, want)
        del got
    assert shm.release(COMM) >= 1
    assert block not in shm.live_blocks()
    assert not [b for b in shm.live_blocks() if b.parent == COMM]


def test_bad_dtype_raises_on_every_rank_and_nobody_hangs():
    from mpisearch.data.dataset import Dataset
    from mpisearch.data.shipping import bcast_dataset

    if SIZE == 1:
        pytest.skip("nothing is shipped to a single rank")
    ds = Dataset(np.array([[1, "a"]], dtype=object), None, []) if ROOT else None
    with pytest.raises(TypeError, match="X has dtype object"):
        bcast_dataset(ds, COMM, shared=True)
    got = ship(make_dataset("float32"), True)  # still in step afterwards
    assert got.X.dtype == np.float32


def test_no_room_for_the_window_is_one_clear_error_on_every_rank(monkeypatch):
    """A /dev/shm too small for the window (Docker's 64 MB) would end in SIGBUS mid-copy:
    instead every rank raises the same InputError, and all stay in step."""
    from mpisearch.data import shared as shm
    from mpisearch.errors import InputError

    if SIZE == 1:
        pytest.skip("nothing is shipped to a single rank")

    def full(arr):
        raise MemoryError("/dev/shm has 0.01 GB free of 0.067 GB, the window needs 1 GB")

    monkeypatch.setattr(shm, "prefault", full)
    with pytest.raises(InputError, match=r"data.shared_memory: .*/dev/shm has 0.01 GB free.*shared_memory = false"):
        ship(make_dataset("float64"), True)
    monkeypatch.undo()
    got = ship(make_dataset("float32"), True)  # still in step afterwards
    assert got.X.dtype == np.float32


@pytest.mark.slow
@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("topology", ["root-alone"], indirect=True)
def test_more_than_2_gib_crosses_nodes_in_chunks(topology):
    """2.2 GB (> 2**31 bytes): the root alone on its node, so every byte travels by chunked
    Ibcast into the other nodes' windows. Checked on every rank against the seeded pattern."""
    from mpisearch.data import shared as shm
    from mpisearch.data.dataset import Dataset
    from mpisearch.data.shipping import CHUNK_BYTES, bcast_dataset

    period = 1_000_003  # prime: a misplaced chunk (256 MiB) cannot line up with the pattern
    pattern = np.random.default_rng(7).integers(0, 256, period, dtype=np.uint8)
    rows, cols = 2_200_000, 1000
    n = rows * cols
    assert n > 2**31
    X = np.resize(pattern, n).reshape(rows, cols) if ROOT else None
    start = time.perf_counter()
    got = bcast_dataset(Dataset(X, None, [(np.arange(2), np.arange(2, 4))]) if ROOT else None, COMM, shared=True)
    seconds = COMM.allreduce(time.perf_counter() - start, op=MPI.MAX)
    flat = got.X.reshape(-1)
    edges = np.array([k * CHUNK_BYTES + d for k in range(1, n // CHUNK_BYTES + 1) for d in (-1, 0, 1)])
    where = np.concatenate([np.arange(0, n, 4099), edges[edges < n], [n - 1]])
    np.testing.assert_array_equal(flat[where], pattern[where % period])
    checksums = quiet_allgather(COMM, int(flat[where].astype(np.int64).sum()))
    assert len(set(checksums)) == 1
    if not ROOT:
        assert shm.block_of(got.X) is not None and not got.X.flags.writeable
    print(f"\n{n / 1e9:.2f} GB shipped to {SIZE} ranks in {seconds:.1f} s")
    del got, flat, X
    shm.release(COMM)


class Float32LogisticRegression(LogisticRegression):
    """Fails unless it is given float32 X (so a silent upcast on the way would show)."""

    def fit(self, X, y, sample_weight=None):
        if X.dtype != np.float32:
            raise TypeError(f"expected float32 X, got {X.dtype}")
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "private"])
def test_search_on_float32_and_strings_equals_one_process(shared):
    from mpisearch.engine import search
    from mpisearch.space import SearchSpace
    from mpisearch.spec import SearchSpec

    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 5)).astype(np.float32)
    y = np.array(["setosa", "versicolor", "virginica"])[(X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
                                                       + (X[:, 2] > 0.8).astype(int)]
    w = rng.random(150) * 3 + 0.1
    spec = SearchSpec(Float32LogisticRegression(max_iter=500), SearchSpace({"C": [0.01, 0.1, 1.0, 10.0]}),
                      cv=3, error_score="raise", shared_memory=shared)
    data = (X, y, w) if ROOT else (None, None, None)
    outcome = search(spec, data[0], data[1], COMM if SIZE > 1 else None, sample_weight=data[2])
    if ROOT:
        local = search(spec, X, y, None, sample_weight=w)
        assert_bitwise_equal(outcome.cv_results, local.cv_results)
        assert not np.isnan(outcome.cv_results["mean_test_score"]).any()
    scores = quiet_allgather(COMM, outcome.cv_results["mean_test_score"].tobytes())
    assert len(set(scores)) == 1
    from mpisearch.data import shared as shm

    assert not [b for b in shm.live_blocks() if b.parent == COMM]  # windows freed when the search ended


# -- the node fold store: each fold's parts built once per node, every fit on zero-copy views

def strategy_search(name: str, shared_folds: bool, comm):
    from sklearn.linear_model import LogisticRegression as LR

    from mpisearch import MPISearchCV, Real

    grid = {"C": [0.01, 0.1, 1.0, 10.0], "fit_intercept": [True, False]}
    space = {"C": Real(1e-3, 1e2, log=True)}
    est = LR(max_iter=300)
    options = {
        "grid": dict(space=grid),
        "random": dict(space=space, strategy="random", n_iter=6, random_state=3),
        "bayes": dict(space=space, strategy="bayes", n_iter=6, random_state=3),
        "halving": dict(space=grid, strategy="halving", random_state=0, halving={"mode": "sync", "factor": 2}),
        "racing": dict(space=grid, racing=True),
    }[name]
    return MPISearchCV(est, cv=4, shared_folds=shared_folds, comm=comm, refit=False, **options)


def float32_problem():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(240, 5)).astype(np.float32)
    y = np.array(["a", "bb", "ccc"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)]
    return X, y, rng.random(240) + 0.5


@pytest.mark.parametrize("strategy", ["grid", "random", "bayes", "halving", "racing"])
def test_every_strategy_scores_the_same_with_shared_folds_on_and_off(strategy):
    """Bit for bit with the one-process run (for racing: each fold that ran, against the
    grid's; which folds run depends on arrival order; for bayes, whose points depend on the
    number of workers: on against off), shared folds on and off."""
    X, y, w = float32_problem()
    runs = {}
    for flag in (True, False):
        search = strategy_search(strategy, flag, COMM)
        search.fit(X if ROOT else None, y if ROOT else None, sample_weight=w if ROOT else None)
        runs[flag] = search.cv_results_
        stores = [s.get("fold_store") for s in search.run_info_["workers"].values()] if ROOT else []
        if ROOT and SIZE > 1:
            assert all((s is not None) == flag for s in stores)
    if not ROOT:
        return
    if strategy == "bayes":
        assert_bitwise_equal(runs[True], runs[False])
        return
    local = strategy_search("grid" if strategy == "racing" else strategy, True, MPI.COMM_SELF)
    local.fit(X, y, sample_weight=w)
    for flag, got in runs.items():
        if strategy != "racing":
            assert_bitwise_equal(got, local.cv_results_)
            continue
        for key in [k for k in got if k.startswith("split") and k.endswith("_test_score")]:
            ran = ~np.isnan(got[key])
            np.testing.assert_array_equal(got[key][ran], local.cv_results_[key][ran], err_msg=f"{key} {flag}")


def stores_by_node(search, topology: str) -> dict[int, list[dict]]:
    """Rank 0: each node's workers' fold store counts (with their task counts), from run_info_."""
    color = TOPOLOGIES[topology] or (lambda rank: 0)
    nodes: dict[int, list[dict]] = {}
    for rank, stats in search.run_info_["workers"].items():
        nodes.setdefault(color(int(rank)), []).append({**stats["fold_store"], "tasks": stats["tasks"]})
    return nodes


@pytest.mark.mpi(min_size=2)
def test_each_fold_is_built_once_per_node_and_the_files_go_at_the_end(topology):
    """Two folds (what a node keeps at first): each node builds each fold once, its other
    ranks reuse it, and the node's last rank removes the files."""
    import glob

    from mpisearch import MPISearchCV
    from mpisearch.data.foldstore import PREFIX, SHM_DIR
    from mpisearch.testing import NoopClassifier

    X, y, _ = float32_problem()
    search = MPISearchCV(NoopClassifier(), {"tag": list(range(30))}, cv=2, comm=COMM, refit=False)
    search.fit(X if ROOT else None, y if ROOT else None)
    problem = None
    if ROOT:
        for node, stores in stores_by_node(search, topology).items():
            built, reused = sum(s["built"] for s in stores), sum(s["reused"] for s in stores)
            if built != 2 or built + reused != sum(s["tasks"] for s in stores) or any(s["failed"] for s in stores):
                problem = f"node {node}: {stores}"
    assert quiet_allgather(COMM, problem) == [None] * SIZE
    root_pid = quiet_allgather(COMM, os.getpid())[0]  # the stores of this run are named after it
    assert not glob.glob(str(SHM_DIR / f"{PREFIX}{root_pid}-*"))  # removed at the end


@pytest.mark.mpi(min_size=2)
def test_in_fold_major_order_each_node_builds_each_fold_once_and_holds_at_most_two(topology):
    """Three folds, more than a node keeps: tasks go out fold by fold, so each node builds
    each fold once (none evicted and built again) and never needs a third one at once."""
    from mpisearch import MPISearchCV
    from mpisearch.testing import SleepClassifier

    X, y, _ = float32_problem()
    search = MPISearchCV(SleepClassifier(), {"duration": [0.01], "tag": list(range(24))}, cv=3, comm=COMM,
                         refit=False)
    search.fit(X if ROOT else None, y if ROOT else None)
    problem = None
    if ROOT:
        for node, stores in stores_by_node(search, topology).items():
            built, over = sum(s["built"] for s in stores), sum(s["over_cap"] for s in stores)
            if built != 3 or over or any(s["failed"] for s in stores):
                problem = f"node {node}: {stores}"
    assert quiet_allgather(COMM, problem) == [None] * SIZE


@pytest.mark.mpi(min_size=2)
def test_with_one_resident_fold_tasks_wait_for_room_and_score_the_same(topology):
    """``resident_folds=1``: a node holds one fold at a time (a task of the next fold waits
    for the last lease of the previous one; none is built over the cap), bit for bit with
    the one-process run."""
    from mpisearch import MPISearchCV

    X, y, w = float32_problem()
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "fit_intercept": [True, False]}
    search = MPISearchCV(LogisticRegression(max_iter=300), grid, cv=4, comm=COMM, refit=False, resident_folds=1)
    search.fit(X if ROOT else None, y if ROOT else None, sample_weight=w if ROOT else None)
    problem = None
    if ROOT:
        local = MPISearchCV(LogisticRegression(max_iter=300), grid, cv=4, comm=MPI.COMM_SELF, refit=False)
        local.fit(X, y, sample_weight=w)
        assert_bitwise_equal(search.cv_results_, local.cv_results_)
        for node, stores in stores_by_node(search, topology).items():
            if any(s["over_cap"] or s["room_timeouts"] or s["failed"] for s in stores):
                problem = f"node {node}: {stores}"
    assert quiet_allgather(COMM, problem) == [None] * SIZE


class ScalingInPlace(LogisticRegression):
    """Writes into its input, as some third-party estimators do (scikit-learn's never)."""

    def fit(self, X, y, sample_weight=None):
        X *= 1.0
        return super().fit(X, y, sample_weight=sample_weight)


def test_a_fit_that_writes_into_its_input_gets_a_private_copy_and_a_counted_warning():
    from mpisearch.engine import SearchSpec, search
    from mpisearch.space import SearchSpace

    X, y, _ = float32_problem()
    X = X.astype(np.float64)
    spec = SearchSpec(ScalingInPlace(max_iter=300), SearchSpace({"C": [0.1, 1.0]}), cv=3, error_score="raise")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = search(spec, X if ROOT else None, y if ROOT else None, COMM if SIZE > 1 else None)
    if ROOT:
        local = search(SearchSpec(LogisticRegression(max_iter=300), spec.space, cv=3), X, y, None)
        assert_bitwise_equal(outcome.cv_results, local.cv_results)
        counted = {k: v for k, v in outcome.info["warnings"].items() if k.startswith("ReadOnlyInputWarning")}
        assert sum(counted.values()) == (6 if SIZE > 1 else 0), outcome.info["warnings"]
        assert any("ReadOnlyInputWarning" in str(w.message) for w in caught) == (SIZE > 1)


@pytest.mark.skipif(SIZE == 1, reason="nothing is shipped to a single rank")
def test_x_read_by_rank_0_is_the_copy_its_node_maps(topology):
    """hdf5.read puts X in a node-shareable file: the other ranks of rank 0's node map that
    very copy (rank 0 writes a marker, they see it); other nodes get their own window."""
    from mpisearch.data import hdf5, segment
    from mpisearch.data.dataset import Dataset

    ds = None
    if ROOT:
        with tempfile.TemporaryDirectory() as tmp:
            hdf5.write(Path(tmp) / "d.h5", np.arange(60.0).reshape(20, 3), np.arange(20) % 2)
            X, y = hdf5.read(Path(tmp) / "d.h5")
        assert segment.name_of(X) is not None
        ds = Dataset(X, y, [(np.arange(10), np.arange(10, 20))])
    got = ship(ds, True)
    color = TOPOLOGIES[topology] or (lambda rank: 0)
    COMM.barrier()
    if ROOT:
        got.X[0, 0] = -7.0
    COMM.barrier()
    if not ROOT:
        assert got.X[0, 0] == (-7.0 if color(RANK) == color(0) else 0.0)
        assert not got.X.flags.writeable
        np.testing.assert_array_equal(got.X[1:], np.arange(60.0).reshape(20, 3)[1:])
    COMM.barrier()
    del got, ds
    from mpisearch.data import shared as shm

    shm.release(COMM)
