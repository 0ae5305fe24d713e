"""The node fold store in one process: two handles on one store stand for two ranks of a node."""

from __future__ import annotations

import glob
import uuid

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from mpisearch.data import foldstore
from mpisearch.data.dataset import Dataset
from mpisearch.data.foldstore import PREFIX, SHM_DIR, NodeFoldStore
from mpisearch.evaluate import Subsample, evaluate
from mpisearch.scoring import make_scorers


def data(kind: str):
    rng = np.random.default_rng(4)
    n = 90
    X = rng.random((n, 6))
    y = rng.integers(0, 3, n)
    if kind == "float32-fortran":
        X = np.asfortranarray(X.astype(np.float32))
    if kind == "csr":
        X = sp.random(n, 30, density=0.2, format="csr", random_state=4)
    if kind == "csr-int64":
        X = sp.random(n, 30, density=0.2, format="csr", random_state=4)
        X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    if kind == "strings":
        y = np.array(["ant", "bee", "wolverine"])[y]
    perm = rng.permutation(n)  # folds in no particular order, as a custom cv gives
    folds = [(perm[30:], perm[:30]), (np.sort(perm[:60]), perm[60:]), (perm[::2], perm[1::2])]
    return X, y, rng.random(n) + 0.5, folds


def open_store(X, y, w, folds, name=None, resident_folds=foldstore.RESIDENT_FOLDS,
               room_wait=foldstore.ROOM_WAIT_SECONDS):
    return NodeFoldStore(name or f"{PREFIX}test-{uuid.uuid4().hex[:8]}", X, y, w, folds, resident_folds=resident_folds,
                         room_wait=room_wait)


def as_dense(a):
    return a.toarray() if sp.issparse(a) else a


@pytest.fixture(autouse=True)
def no_files_left():
    before = set(glob.glob(str(SHM_DIR / f"{PREFIX}test-*")))
    yield
    assert set(glob.glob(str(SHM_DIR / f"{PREFIX}test-*"))) <= before  # this test's stores only


@pytest.mark.parametrize("kind", ["float64", "float32-fortran", "csr", "csr-int64", "strings"])
def test_parts_are_the_rows_of_x_train_bit_for_bit_and_read_only(kind):
    X, y, w, folds = data(kind)
    store = open_store(X, y, w, folds)
    for fold, (train, test) in enumerate(folds):
        lease = store.acquire(fold)
        parts = lease.parts
        for got, want in ((parts.X_train, X[train]), (parts.X_test, X[test]), (parts.y_train, y[train]),
                          (parts.y_test, y[test]), (parts.w_train, w[train])):
            assert type(got) is type(want) and got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(as_dense(got), as_dense(want))
            arrays = [got.data, got.indices, got.indptr] if sp.issparse(got) else [got]
            for a in arrays:
                assert not a.flags.writeable
                with pytest.raises(ValueError):
                    a.flags.writeable = True
            if sp.issparse(want):
                assert got.indices.dtype == want.indices.dtype and got.indptr.dtype == want.indptr.dtype
            else:
                assert got.flags.c_contiguous == want.flags.c_contiguous
        store.release(lease)
    store.close()


def test_a_fold_is_built_once_for_the_node_and_shared():
    X, y, w, folds = data("float64")
    a = open_store(X, y, w, folds)
    b = open_store(X, y, w, folds, name=a.name)
    la, lb = a.acquire(0), b.acquire(0)
    assert (a.stats.built, b.stats.built, b.stats.reused) == (1, 0, 1)
    assert len(glob.glob(str(SHM_DIR / f"{a.name}-f0-*"))) == 1
    np.testing.assert_array_equal(la.parts.X_train, lb.parts.X_train)
    a.release(la)
    b.release(lb)
    a.close()
    assert glob.glob(str(SHM_DIR / f"{a.name}*"))  # b is still attached
    b.close()
    assert not glob.glob(str(SHM_DIR / f"{a.name}*"))


def run_task(store, fold):
    """One task of ``fold`` as a worker rank runs it: it arrives, leases its fold, ends."""
    store.expect(fold)
    store.release(store.acquire(fold))
    store.done(fold)


def test_in_fold_major_order_a_fold_no_task_waits_for_goes_when_room_is_needed():
    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds, resident_folds=2)
    for fold in (0, 0, 1):
        run_task(store, fold)
    assert store.resident() == [0, 1]  # below cap nothing goes: a stolen task of fold 0 finds it
    for fold in (1, 2):
        run_task(store, fold)
    assert store.resident() == [1, 2]  # fold 2 needed room: fold 0, which no task waits for, went
    assert (store.stats.built, store.stats.evicted, store.stats.reused) == (3, 1, 2)
    store.expect(0)  # a task of fold 0 waits on this rank: fold 0 stays while fold 1 is built
    store.release(store.acquire(0))
    run_task(store, 1)
    assert store.resident() == [0, 1]
    store.done(0)
    store.close()


@pytest.mark.parametrize("ranks", [1, 3])
def test_folds_tasks_wait_for_stay_up_to_cap_and_an_order_coming_back_keeps_one_more(ranks):
    """Tasks of every fold waiting (fold racing's order, resident_folds=None): two folds at first; a
    fold evicted while tasks waited for it and needed again makes the node keep one more, as
    long as that keeps it below one fold per rank (else a rebuild costs what a private copy costs)."""
    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds, resident_folds=None)
    others = [open_store(X, y, w, folds, name=store.name, resident_folds=None) for _ in range(ranks - 1)]
    for fold in (0, 1, 2):
        store.expect(fold)
    for fold in (0, 1, 2):
        store.release(store.acquire(fold))
        assert len(store.resident()) <= 2
    assert store.resident() == [1, 2] and store.stats.evicted == 1  # the least recently used went
    store.release(store.acquire(0))  # fold 0 again: evicted too early
    assert store.stats.built == 4
    assert store.resident() == ([0, 1, 2] if ranks == 3 else [0, 2])
    for handle in [store, *others]:
        handle.close()


def test_a_fit_process_killed_holding_its_lease_leaves_no_fold_pinned():
    import os
    import signal

    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds, resident_folds=2)
    store.expect(0)
    pid = os.fork()
    if pid == 0:  # a fit process: leases fold 0 (building it), then is SIGKILLed in its fit
        store.acquire(0)
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    store.done(0)  # the rank reads the crash as the task's result
    assert store.resident() == [0]
    run_task(store, 1)
    run_task(store, 2)
    assert store.resident() == [1, 2]  # fold 2 needed room and fold 0 went: nobody held it any more
    held = store.acquire(1)  # a live lease, for contrast: never evicted
    run_task(store, 0)
    assert sorted(store.resident()) == [0, 1]
    store.release(held)
    store.close()


def test_the_files_of_a_killed_run_go_when_the_next_store_opens_on_the_node():
    import os
    import subprocess
    import sys

    X, y, w, folds = data("float64")
    name = f"{PREFIX}test-{uuid.uuid4().hex[:8]}"
    pid = os.fork()
    if pid == 0:  # a rank killed mid-run: its store and a fold stay in /dev/shm
        open_store(X, y, w, folds, name=name).acquire(0)
        os._exit(0)  # no close, no atexit: as SIGKILL leaves things
    os.waitpid(pid, 0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    x_file = SHM_DIR / f"{foldstore.stale.X_PREFIX}{int(dead.stdout)}-0"  # rank 0's X, its process gone
    x_file.write_bytes(b"x")
    # (another search starting on this machine meanwhile would sweep them just the same)
    live = open_store(X, y, w, folds)
    assert not glob.glob(str(SHM_DIR / f"{name}*")) and not x_file.exists()
    assert glob.glob(str(SHM_DIR / f"{live.name}*"))  # a live store's files stay
    live.close()


def test_a_process_holding_the_resident_folds_itself_does_not_wait_for_itself():
    """Every resident fold in use by this very process (views kept past a task): waiting
    would never end, so the fold is built over the cap at once (counted)."""
    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds, resident_folds=2)
    held = [store.acquire(0), store.acquire(1)]
    third = store.acquire(2)
    assert third is not None and store.resident() == [0, 1, 2]
    assert (store.stats.over_cap, store.stats.room_waits, store.stats.room_timeouts) == (1, 1, 0)
    np.testing.assert_array_equal(held[0].parts.X_train, X[folds[0][0]])  # still intact
    for lease in [*held, third]:
        store.release(lease)
    store.close()


def test_no_room_for_a_fold_falls_back_to_private_copies(monkeypatch):
    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds)

    def full(arr):
        raise MemoryError("/dev/shm has 0 GB free")

    monkeypatch.setattr("mpisearch.data.shared.prefault", full)
    assert store.acquire(1) is None and store.stats.failed == 1 and store.resident() == []
    ds = Dataset(X, y, folds, w, store=store)
    with ds.fold_parts(1) as parts:
        assert not parts.shared
        np.testing.assert_array_equal(parts.X_train, X[folds[1][0]])
    store.close()


@pytest.mark.parametrize("test_too", [False, True])
def test_a_subsample_indexes_into_the_shared_fold(test_too):
    """Halving's subsample of the stored fold: the rows X[Subsample.indices(train)], in that order."""
    X, y, w, folds = data("csr")
    pick = Subsample(0.3, random_state=5, test=test_too)
    store = open_store(X, y, w, folds)
    ds = Dataset(X, y, folds, w, store=store)
    train, test = folds[0]
    with ds.fold_parts(0, pick) as parts:
        assert parts.shared
        rows = pick.indices(train)
        np.testing.assert_array_equal(parts.X_train.toarray(), X[rows].toarray())
        np.testing.assert_array_equal(parts.w_train, w[rows])
        np.testing.assert_array_equal(parts.y_test, y[pick.indices(test) if test_too else test])
    store.close()


class WritesIntoX(BaseEstimator):
    """A third-party-style estimator that scales its input in place."""

    def __init__(self, factor=1.0):
        self.factor = factor

    def fit(self, X, y, sample_weight=None):
        X *= self.factor
        self.mean_ = float(np.asarray(X).mean())
        return self

    def score(self, X, y):
        return self.mean_


def test_a_fit_writing_into_its_input_is_refitted_on_a_private_copy_with_a_warning():
    X, y, w, folds = data("float64")
    store = open_store(X, y, None, folds)
    shared, private = Dataset(X, y, folds, store=store), Dataset(X, y, folds)
    scorers = make_scorers(None, WritesIntoX())
    got = evaluate(WritesIntoX(), {"factor": 2.0}, shared, 0, scorers)
    want = evaluate(WritesIntoX(), {"factor": 2.0}, private, 0, scorers)
    assert got.error is None and got.scores == want.scores and not want.warnings
    assert [(k.split(":")[0], n) for k, n in got.warnings.items()] == [("ReadOnlyInputWarning", 1)]
    np.testing.assert_array_equal(store.acquire(0).parts.X_train, X[folds[0][0]])  # the node's copy is intact
    store.close()


def test_a_fit_process_killed_while_building_its_fold_leaves_it_to_the_next_task():
    """A fit process killed mid-build (a crash, task_timeout) holds no lock any more: the next
    task that needs the fold builds it again, and nothing is left of the broken file."""
    import os

    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds)
    pid = os.fork()
    if pid == 0:  # the child: dies in the middle of cutting fold 0
        foldstore.write_fold = lambda *args: os._exit(0)
        store.acquire(0)
        os._exit(1)
    os.waitpid(pid, 0)
    assert store.resident() == [0]  # left half-built
    lease = store.acquire(0)
    assert lease is not None and (store.stats.built, store.stats.failed) == (1, 0)
    np.testing.assert_array_equal(lease.parts.X_train, X[folds[0][0]])
    assert len(glob.glob(str(SHM_DIR / f"{store.name}-f0-*"))) == 1  # the broken file went
    store.release(lease)
    store.close()


def hold(store, fold):
    """Another rank's fit process holding a lease on ``fold``: its pid, and a pipe where one
    byte makes it end its task (release, drop its views) and exit."""
    import os

    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            os.close(ready_r)
            lease = store.acquire(fold)
            os.write(ready_w, b"1")
            os.read(go_r, 1)
            store.release(lease)
            del lease
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    return pid, go_w


def waiting_acquire(store, fold):
    """Acquire ``fold`` in a thread (a fit process that waits); returns the thread and its
    result box once the store counts the task as waiting for room."""
    import threading
    import time

    box = {}
    thread = threading.Thread(target=lambda: box.update(lease=store.acquire(fold)))
    thread.start()
    while store.stats.room_waits == 0 and thread.is_alive():
        time.sleep(0.001)
    return thread, box


@pytest.mark.parametrize("how", ["released", "killed"])
def test_a_third_folds_task_waits_for_a_lease_to_drop_then_builds_in_its_place(how):
    """Every resident fold in use by other processes: the task waits (holding no fold),
    then, once the last lease of fold 0 drops (its task ended, or its fit process was
    SIGKILLed), evicts it and builds its own: never more than two folds."""
    import os
    import signal

    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds, resident_folds=2)
    (p0, go0), (p1, go1) = hold(store, 0), hold(store, 1)
    thread, box = waiting_acquire(store, 2)
    assert thread.is_alive() and store.resident() == [0, 1]  # waiting, nothing built over the cap
    if how == "released":
        os.write(go0, b"1")
    else:
        os.kill(p0, signal.SIGKILL)
    os.waitpid(p0, 0)
    thread.join(timeout=30)
    lease = box["lease"]
    assert lease is not None and store.resident() == [1, 2]
    assert (store.stats.room_waits, store.stats.over_cap, store.stats.room_timeouts, store.stats.built) == (1, 0, 0, 1)
    np.testing.assert_array_equal(lease.parts.X_train, X[folds[2][0]])
    store.release(lease)
    os.write(go1, b"1")
    os.waitpid(p1, 0)
    store.close()


def test_a_wait_for_room_is_bounded_then_the_fold_is_built_over_the_cap_counted_and_warned():
    import os

    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds, resident_folds=2, room_wait=0.05)
    holders = [hold(store, 0), hold(store, 1)]  # never let go while the task waits
    with pytest.warns(foldstore.FoldRoomWarning, match="fold 2 waited"):
        lease = store.acquire(2)
    assert lease is not None and store.resident() == [0, 1, 2]
    assert (store.stats.room_waits, store.stats.room_timeouts, store.stats.over_cap) == (1, 1, 1)
    np.testing.assert_array_equal(lease.parts.X_test, X[folds[2][1]])
    store.release(lease)
    for pid, go in holders:
        os.write(go, b"1")
        os.waitpid(pid, 0)
    store.close()


def test_one_resident_fold_the_next_folds_task_waits_for_the_last_lease_of_the_first():
    import os

    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds, resident_folds=1)
    pid, go = hold(store, 0)
    thread, box = waiting_acquire(store, 1)
    assert thread.is_alive() and store.resident() == [0]
    os.write(go, b"1")
    os.waitpid(pid, 0)
    thread.join(timeout=30)
    assert box["lease"] is not None and store.resident() == [1] and store.stats.over_cap == 0
    store.release(box["lease"])
    store.close()


def test_a_task_timeout_bounds_the_wait_for_room():
    X, y, w, folds = data("float64")
    store = open_store(X, y, w, folds)
    store.bound_wait(10.0)
    assert store.room_wait == 10.0 * foldstore.ROOM_WAIT_SHARE
    store.close()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_resident_folds_must_be_a_positive_integer(bad):
    from mpisearch import MPISearchCV
    from mpisearch.errors import InputError

    X, y, _, _ = data("float64")
    with pytest.raises(InputError, match=r"^resident_folds: expected a positive integer"):
        MPISearchCV(WritesIntoX(), {"factor": [1.0]}, resident_folds=bad).fit(X, y)


def test_a_pipeline_prefix_that_passes_the_shared_fold_through_is_cached_as_a_copy():
    """An identity prefix's output is the node's fold itself: the prefix cache keeps a copy,
    so a fit process between tasks maps no fold (else the fold could never be evicted and
    tasks of other folds would wait for it)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from mpisearch.reuse.bundles import Bundle, BundleKind, Member
    from mpisearch.reuse.prefix import PrefixCache
    from mpisearch.reuse.run import evaluate_bundle

    X, y, _, folds = data("float64")
    store = open_store(X, y, None, folds)
    shared, private = Dataset(X, y, folds, store=store), Dataset(X, y, folds)
    pipe = Pipeline([("same", FunctionTransformer()), ("lr", LogisticRegression())])
    bundle = Bundle(BundleKind.PREFIX, (Member(0, {"lr__C": 0.1}), Member(1, {"lr__C": 1.0})), prefix_key=())
    scorers = make_scorers(None, pipe)
    cache = PrefixCache(2**20)
    got = evaluate_bundle(pipe, bundle, shared, 0, scorers, cache)
    want = evaluate_bundle(pipe, bundle, private, 0, scorers, PrefixCache(2**20))
    assert [r.scores for r in got.results] == [r.scores for r in want.results] and len(cache) == 1
    assert not store._maps_a_fold()  # noqa: SLF001 - what the kernel sees of this process
    store.close()
