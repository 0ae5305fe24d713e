#!/usr/bin/env python
"""Data-attributable memory against the number of workers, mpisearch and GridSearchCV.

Usage (from the repository root, with the venv active):

    python benchmarks/bench_memory.py                  # 600 MB, workers 1, 2, 5, 8, 15 (~1 h on 2 loaded cores)
    python benchmarks/bench_memory.py --systems mpisearch   # ~10 min: GridSearchCV copies 600 MB per task
    python benchmarks/bench_memory.py --quick          # 60 MB, workers 1, 2, 5 (~1 min)
    python benchmarks/bench_memory.py --no-shared-folds   # mpisearch with data.shared_folds = false

Method. The parent writes X (float64, 100 columns, ``--mb`` MB) and y to an HDF5
file, plus a tiny file of 1,000 rows. Each contestant runs as a whole process tree:

* ``mpisearch``: ``mpiexec -n W+1 mpisearch run`` (rank 0 reads the file; W workers)
  with this file's :class:`TouchNothing` (the fit touches nothing of X or y and sleeps
  ``--sleep`` seconds, so many oversubscribed workers fit at once), a grid of
  ``--points`` points x 5 folds (36: more tasks per fold than 15 workers hold, one
  running and one queued each, so that at most two folds are in use at once);
* ``sklearn``: this file's ``_sklearn`` mode: h5py-load the same file, then
  ``GridSearchCV(TouchNothing(), same grid, cv=5, n_jobs=W)``. (mpisearch.testing's
  SleepClassifier would do, but its fit finds y's classes, a sorted copy of y_train in
  every fit process: 0.01x of the data per worker that is the fit's, not the search's.)

While a run goes, the parent samples every ``--period`` seconds the memory of the
whole tree (mpiexec and every descendant): the sum of ``Pss`` over all processes
(from /proc/PID/smaps), where the ``Pss`` of mappings of mpisearch's node fold store
(files ``/dev/shm/mpisearch-*``) is replaced by the sizes of those files (a resident
fold between two tasks is mapped by no process but still holds memory). The peak
over the run, minus the peak of the same run on the tiny file, divided by the bytes
of X and y, is the data-attributable memory in copies of the data.

Per-task overhead: ``mpiexec -n 3`` (2 workers) with :class:`TouchNothing` (a fit
and a score that read nothing), ``--noop-points`` points x 5 folds, on the big and on
the tiny file; from run.json, the workers' busy seconds per task (big) minus
the same (tiny): what a task costs because the data is big, with the one-off fold
builds (each fold once per node in fold-major order, and the other rank's wait for
it) and without them. Figures from a shared, loaded machine are noisy: compare the
two systems from the same run.

Prints one JSON document; saves benchmarks/out/bench_memory.json and bench_memory.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin

HERE = Path(__file__).resolve().parent
THIS = Path(__file__).resolve()
DEFAULT_OUT = HERE / "out"

COLS = 100  # float64 columns of X
FOLDS = 5
TINY_ROWS = 1000
FOLD_FILES = "mpisearch-"  # prefix of the node fold store's files in /dev/shm
SHM = Path("/dev/shm")
TARGET_MEMORY = 3.0  # data-attributable memory / data size, every worker count
TARGET_OVERHEAD_MS = 5.0  # per-task overhead, 600 MB, trivial fit


def log(msg: str) -> None:
    print(f"[bench_memory] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- memory of a process tree

def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                todo += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
            except OSError:
                pass
    return out


def role(pid: int, root: int) -> str:
    """What a process of the tree is: the launcher (mpiexec and its proxy), rank 0, a worker
    rank, or a worker's fit process (a child of a rank)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        parent_env = Path(f"/proc/{parent}/environ").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return "gone"
    rank = next((e[9:].decode() for e in env if e.startswith(b"PMI_RANK=")), None)
    if rank is None or pid == root:
        return "other processes"  # mpiexec and its proxy; GridSearchCV's processes
    if any(e.startswith(b"PMI_RANK=") for e in parent_env):
        return "fit processes"
    return "rank 0" if rank == "0" else "worker ranks"


def kind(header: str) -> str:
    """What a mapping is, from its smaps header line."""
    path = header.split(None, 5)[5] if len(header.split(None, 5)) > 5 else ""
    if f"{SHM}/{FOLD_FILES}" in path:
        return "store"  # counted by file size below
    if path.startswith(f"{SHM}/"):
        return "mpi shared memory"
    if path.startswith("/") and not path.endswith("(deleted)"):
        return "files (code, libraries)"
    return "anonymous (heap, stacks, buffers)"


def tree_memory(pid: int, detail: dict[str, int] | None = None) -> int:
    """Sum of PSS over the tree (bytes), fold-store mappings replaced by their files' sizes
    (the files of this tree's processes only: ``mpisearch-[x-]PID-...``). ``detail``: filled
    with the bytes of each "role: kind of memory" (:func:`role`, :func:`kind`) and the number
    of processes of each role ("processes: role")."""
    total = 0
    pids = descendants(pid)
    for p in pids:
        try:
            text = Path(f"/proc/{p}/smaps").read_text()
        except OSError:
            continue
        who = role(p, pid) if detail is not None else ""
        if detail is not None:
            detail[f"processes: {who}"] = detail.get(f"processes: {who}", 0) + 1
        what = ""
        for line in text.splitlines():
            if line.startswith("Pss:"):
                if what != "store":
                    total += int(line.split()[1]) * 1024
                    if detail is not None:
                        key = f"{who}: {what}"
                        detail[key] = detail.get(key, 0) + int(line.split()[1]) * 1024
            elif not line[:1].isupper() or "-" in line.split(" ", 1)[0]:
                what = kind(line)  # a mapping's header line
    for f in SHM.glob(f"{FOLD_FILES}*"):
        owner = f.name[len(FOLD_FILES):].removeprefix("x-").split("-")[0]
        if owner.isdigit() and int(owner) in pids:
            try:
                size = f.stat().st_blocks * 512
            except OSError:
                continue
            total += size
            if detail is not None:
                key = "store: X" if f.name.startswith(f"{FOLD_FILES}x-") else "store: folds and control"
                detail[key] = detail.get(key, 0) + size
    return total


def watch(cmd: list[str], period: float, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``, sampling its tree's memory; the peak, the wall time and the output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak, samples, at_peak, by_forks = 0, 0, {}, {}
    while proc.poll() is None:
        if time.perf_counter() - start > timeout:
            proc.kill()
            raise RuntimeError(f"{' '.join(cmd)}: timed out after {timeout} s")
        detail: dict[str, int] = {}
        now = tree_memory(proc.pid, detail)
        if now > peak:
            peak, at_peak = now, detail
        forks = detail.get("processes: fit processes", 0)
        by_forks[forks] = max(by_forks.get(forks, 0), now)
        samples += 1
        time.sleep(period)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}")
    return {"peak_bytes": peak, "samples": samples, "wall_s": time.perf_counter() - start, "stdout": out,
            "at_peak": dict(sorted(at_peak.items())), "peak_by_fit_processes": by_forks}


# --------------------------------------------------------------------------- contestants

def mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else "mpiexec"


def write_data(path: Path, rows: int) -> int:
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as fh:
        X = fh.create_dataset("X", (rows, COLS), dtype=np.float64)
        step = 50_000
        for i in range(0, rows, step):
            X[i : i + step] = rng.random((min(step, rows - i), COLS))
        fh["y"] = rng.integers(0, 2, rows)
    return rows * COLS * 8 + rows * 8


def config(work: Path, data: Path, estimator: str, space: str, shared_folds: bool, name: str,
           resident: int | None = None) -> Path:
    path = work / f"{name}.toml"
    folds_line = "" if shared_folds else "shared_folds = false\n"
    folds_line += f"resident_folds = {resident}\n" if resident else ""
    path.write_text(f'[data]\npath = "{data}"\n{folds_line}\n[estimator]\nclass = "{estimator}"\n\n'
                    f"[space]\n{space}\n\n[search]\nstrategy = \"grid\"\n\n[cv]\nfolds = {FOLDS}\n\n"
                    f"[scoring]\nrefit = false\n")
    return path


def run_mpisearch(args: argparse.Namespace, work: Path, data: Path, workers: int, tag: str) -> dict[str, Any]:
    space = f"duration = [{args.sleep}]\ntag = {list(range(args.points))}"
    cfg = config(work, data, "bench_memory.TouchNothing", space, not args.no_shared_folds, f"mem-{tag}",
                 args.resident_folds)
    out = work / f"out-mem-{tag}-{workers}"
    cmd = [mpiexec(), "-n", str(workers + 1), sys.executable, "-m", "mpisearch", "run", str(cfg), "--out", str(out),
           "--quiet"]
    got = watch(cmd, args.period, args.timeout, env=bench_env())
    got.pop("stdout")
    info = json.loads((out / "run.json").read_text())
    got["fold_store"] = summed([w.get("fold_store") or {} for w in info["workers"].values()])
    return got


def summed(stores: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' fold store counts, added up (built, over_cap, room_waits, ...)."""
    out: dict[str, Any] = {}
    for store in stores:
        for key, value in store.items():
            out[key] = out.get(key, 0) + value
    return out


def run_sklearn(args: argparse.Namespace, data: Path, workers: int) -> dict[str, Any]:
    cmd = [sys.executable, str(THIS), "_sklearn", str(data), str(workers), str(args.points), str(args.sleep)]
    got = watch(cmd, args.period, args.timeout)
    got.pop("stdout")
    return got


def sklearn_child(data: str, workers: int, points: int, sleep: float) -> None:
    import h5py
    from sklearn.model_selection import GridSearchCV

    with h5py.File(data, "r") as fh:
        X, y = fh["X"][()], fh["y"][()]
    grid = {"duration": [sleep], "tag": list(range(points))}
    GridSearchCV(TouchNothing(), grid, cv=FOLDS, n_jobs=workers, refit=False).fit(X, y)


class TouchNothing(ClassifierMixin, BaseEstimator):
    """A classifier whose fit and score read nothing of their input (NoopClassifier's fit
    sorts y, 30 ms for 750,000 labels: the fit's cost, not the framework's)."""

    def __init__(self, tag: int = 0, duration: float = 0.0) -> None:
        self.tag = tag
        self.duration = duration

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> TouchNothing:
        time.sleep(self.duration)
        return self

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        return 0.0


def bench_env() -> dict[str, str]:
    """This directory on the ranks' path (for TouchNothing)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}


def overhead(args: argparse.Namespace, work: Path, data: Path, tag: str) -> dict[str, Any]:
    """Workers' busy seconds per task with a fit that touches nothing (2 workers)."""
    space = f"tag = {list(range(args.noop_points))}"
    cfg = config(work, data, "bench_memory.TouchNothing", space, not args.no_shared_folds, f"noop-{tag}")
    out = work / f"out-noop-{tag}"
    cmd = [mpiexec(), "-n", "3", sys.executable, "-m", "mpisearch", "run", str(cfg), "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=bench_env())
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    info = json.loads((out / "run.json").read_text())
    stores = [w.get("fold_store") or {} for w in info["workers"].values()]
    build_s = sum(s.get("build_s", 0.0) + s.get("wait_s", 0.0) for s in stores)  # builds, and waits for them
    return {"tasks": info["tasks"], "busy_s": info["busy_s"], "search_s": info["search_s"],
            "busy_ms_per_task": 1e3 * info["busy_s"] / info["tasks"], "fold_store": stores,
            "builds": sum(s.get("built", 0) for s in stores), "build_s": build_s,
            "busy_ms_per_task_without_builds": 1e3 * (info["busy_s"] - build_s) / info["tasks"]}


# --------------------------------------------------------------------------- driver

def run_all(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    big, tiny = work / "big.h5", work / "tiny.h5"
    rows = int(args.mb * 1e6 / (COLS * 8))
    nbytes = write_data(big, rows)
    write_data(tiny, TINY_ROWS)
    doc: dict[str, Any] = {"data_bytes": nbytes, "rows": rows, "cols": COLS, "folds": FOLDS,
                           "points": args.points, "sleep_s": args.sleep, "shared_folds": not args.no_shared_folds,
                           "resident_folds": args.resident_folds,
                           "load_average_before": os.getloadavg(), "runs": []}
    for workers in args.workers:
        for system in args.systems:
            row: dict[str, Any] = {"system": system, "workers": workers}
            for size, path in (("tiny", tiny), ("big", big)):
                log(f"{system} W={workers} {size}")
                if system == "mpisearch":
                    row[size] = run_mpisearch(args, work, path, workers, size)
                else:
                    row[size] = run_sklearn(args, path, workers)
            row["copies"] = (row["big"]["peak_bytes"] - row["tiny"]["peak_bytes"]) / nbytes
            row["copies_same_processes"] = matched(row, nbytes)
            row["excess_mb_at_peak"] = excess(row, nbytes)
            row["store_copies"] = sum(v for k, v in row["excess_mb_at_peak"].items() if k.startswith("store: ")) \
                * 1e6 / nbytes  # X and the resident folds: what the data holds, without the processes' own memory
            log(f"{system} W={workers}: {row['copies']:.2f}x the data")
            doc["runs"].append(row)
    if "mpisearch" in args.systems:
        log("per-task overhead (no-op fit, 2 workers)")
        doc["overhead"] = overheads(args, work, tiny, big)
    doc["load_average_after"] = os.getloadavg()
    doc["targets"] = targets(doc)
    return doc


def matched(row: dict[str, Any], nbytes: int) -> float | None:
    """``copies`` against the tiny run's peak among its samples with as many fit processes
    alive as the big run's peak sample had (a fit process is forked at its worker's first
    task and then holds memory of its own, whatever the data): None if it had none such."""
    forks = row["big"]["at_peak"].get("processes: fit processes", 0)
    base = row["tiny"]["peak_by_fit_processes"].get(forks)
    return None if base is None else (row["big"]["peak_bytes"] - base) / nbytes


def excess(row: dict[str, Any], nbytes: int) -> dict[str, float]:
    """Where the peak's data-attributable memory is: MB of each role and kind of memory at
    the peak sample, big run less tiny run (nonzero ones; "processes: ...": how many more
    processes of that role were alive), and the data's MB for scale."""
    big, tiny = row["big"]["at_peak"], row["tiny"]["at_peak"]
    out = {key: (big.get(key, 0) - tiny.get(key, 0)) / (1 if key.startswith("processes") else 1e6)
           for key in sorted({*big, *tiny})}
    out["(data)"] = nbytes / 1e6
    return {k: round(v, 2) for k, v in out.items() if abs(v) >= 0.01}


def overheads(args: argparse.Namespace, work: Path, tiny: Path, big: Path) -> dict[str, Any]:
    """Per-task cost of big data: all of it, and without the one-off fold builds."""
    tiny_o, big_o = overhead(args, work, tiny, "tiny"), overhead(args, work, big, "big")
    return {"tiny": tiny_o, "big": big_o, "ms_per_task": big_o["busy_ms_per_task"] - tiny_o["busy_ms_per_task"],
            "ms_per_task_without_builds": big_o["busy_ms_per_task_without_builds"]
            - tiny_o["busy_ms_per_task_without_builds"]}


def targets(doc: dict[str, Any]) -> dict[str, Any]:
    mine = [r["copies"] for r in doc["runs"] if r["system"] == "mpisearch"]
    out: dict[str, Any] = {"memory_target": TARGET_MEMORY, "overhead_target_ms": TARGET_OVERHEAD_MS}
    if mine:
        out.update(memory_max_copies=max(mine), memory_met=max(mine) <= TARGET_MEMORY)
    if "overhead" in doc:
        out.update(overhead_ms=doc["overhead"]["ms_per_task"],
                   overhead_met=doc["overhead"]["ms_per_task"] <= TARGET_OVERHEAD_MS)
    return out


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    labels = {"mpisearch": "mpisearch", "sklearn": "GridSearchCV(n_jobs=W)"}
    for system, style in (("mpisearch", "-o"), ("sklearn", "--s")):
        sel = [r for r in doc["runs"] if r["system"] == system]
        if not sel:
            continue
        label = labels[system]
        ax.plot([r["workers"] for r in sel], [r["copies"] for r in sel], style, label=label)
        if system == "mpisearch" and all("store_copies" in r for r in sel):
            ax.plot([r["workers"] for r in sel], [r["store_copies"] for r in sel], ":^",
                    label="mpisearch: the store's files alone (X and resident folds)")
    ax.axhline(TARGET_MEMORY, color="red", lw=0.8, ls=":", label="target (3x)")
    ax.axhline(2.0, color="grey", lw=0.8, ls=":", label="floor (X + one fold)")
    ax.set(title=f"Data-attributable memory, {doc['data_bytes'] / 1e6:.0f} MB data, {FOLDS} folds",
           xlabel="workers W", ylabel="copies of the data (sum of PSS)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_sklearn"]:
        sklearn_child(argv[1], int(argv[2]), int(argv[3]), float(argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 MB, workers 1, 2, 5")
    parser.add_argument("--mb", type=float, default=600.0, help="size of X in MB")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",") if x], default=[1, 2, 5, 8, 15],
                        help="worker counts of the memory runs (\"\": none, only the overhead)")
    parser.add_argument("--systems", type=lambda s: s.split(","), default=["mpisearch", "sklearn"],
                        help="contestants: mpisearch, sklearn")
    parser.add_argument("--points", type=int, default=36, help="grid points (x 5 folds)")
    parser.add_argument("--sleep", type=float, default=0.2, help="seconds each fit sleeps")
    parser.add_argument("--noop-points", type=int, default=200, help="points of the overhead run (x 5 folds)")
    parser.add_argument("--period", type=float, default=0.1, help="seconds between memory samples")
    parser.add_argument("--no-shared-folds", action="store_true", help="mpisearch with data.shared_folds = false")
    parser.add_argument("--resident-folds", type=int, default=None, help="mpisearch's data.resident_folds")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    args = parser.parse_args(argv)
    if args.quick:
        args.mb, args.workers, args.noop_points = 60.0, [1, 2, 5], 60
    with tempfile.TemporaryDirectory(prefix="bench_memory-") as tmp:
        doc = run_all(args, Path(tmp))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = "bench_memory" if not args.no_shared_folds else "bench_memory_private_folds"
    text = json.dumps(doc, indent=2)
    (args.out_dir / f"{name}.json").write_text(text + "\n")
    if doc["runs"]:
        plot(doc, args.out_dir / f"{name}.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
