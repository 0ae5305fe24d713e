#!/usr/bin/env python
"""Data shipping at scale: broadcast time, memory (PSS) per node, HDF5 read speed.

Usage (from the repository root, with the venv active):

    python benchmarks/bench_data.py            # 100 MB, 1 GB, 3 GB x N = 2, 4, 8 ranks (~10 min on 2 cores)
    python benchmarks/bench_data.py --quick    # 100 MB x N = 2, 4 (~1 min)

For each dataset size (float64 X with 128 columns, float64 y, 5-fold index arrays:
what ``bcast_dataset`` ships for a real search) and each N, the script launches
itself under ``mpiexec -n N`` (``--child``) once per mode:

* ``tiny``: the same code path with a 1,000-row dataset: the baseline memory of N
  Python processes with numpy, mpi4py and mpisearch loaded.
* ``shared`` / ``private``: ``bcast_dataset(shared=True/False)``, timed (slowest rank,
  after a barrier), against a raw ``comm.Bcast`` of one numpy buffer of the same number
  of bytes in the same run (fresh receive buffers, as shipping has). After the first
  shipment every rank reads one value per 4 KiB page of X (as a worker reading its data
  does; shared pages count in a process's PSS only once it maps them), and each rank reads
  its own ``Pss`` from /proc/self/smaps_rollup; rank 0 gathers the sum.

Memory accounting. ``total = sum(PSS after shipping) - sum(PSS of the tiny run)`` counts
everything the data costs on the node, including rank 0's own copy (the data as loaded
or passed to ``fit``; rank 0 keeps it for the refit). ``added = sum(PSS after) - sum(PSS
before shipping, rank 0 already holding the data)`` is what shipping adds. Shared: total
is about 2x (rank 0's copy + one window), added about 1x, whatever N; private: about N
and N-1. The 1.3x target is checked on ``added``: the copies the broadcast makes
(rank 0's input copy exists in any design, scikit-learn's too).

HDF5 (c): the parent writes X to a contiguous HDF5 dataset and to a .npy file, then times
``mpisearch.data.hdf5.read`` against ``np.load`` of the same bytes, cold (the file's pages
dropped from the page cache with posix_fadvise) and warm.

Runs whose memory (N copies for private shipping or the raw Bcast) would exceed
``--mem-limit-gb`` are skipped (private) or done with a smaller reused receive buffer
(raw: k broadcasts of size/k bytes), and say so in the JSON.

On a virtual machine, memory the guest touches for the first time can be many times
slower to fault in than memory it has used before (measured here: 6 s/GB cold, 0.7 s/GB
warm), which would make whichever run comes first look slow; so the parent first touches
``--warmup-gb`` of memory once (skip with ``--warmup-gb 0``).

Prints one JSON document; saves benchmarks/out/bench_data.json and bench_data.png.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import add_output_args, launch_ok, load_average, log, median, pyplot, quiet_barrier, save, tool

THIS = Path(__file__).resolve()

COLS = 128  # float64 columns of X
FOLDS = 5
TINY_ROWS = 1000
PAGE_FLOATS = 512  # float64 values per 4 KiB page
TARGET_TIME = 1.25  # shipping time / raw Bcast time
TARGET_MEMORY = 1.3  # memory added by shipping / dataset size, shared, N = 8


# --------------------------------------------------------------------------- child (under mpiexec)

def pss() -> dict[str, int]:
    """This process's Pss and its shared-memory part, in bytes."""
    out = {}
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("Pss", "Pss_Shmem", "Pss_Anon"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def make_dataset(rows: int) -> Any:
    import numpy as np

    from mpisearch.data.dataset import Dataset

    rng = np.random.default_rng(0)
    X = np.empty((rows, COLS))
    step = max(1, (64 << 20) // (COLS * 8))
    for start in range(0, rows, step):
        rng.random(out=X[start : start + step])
    y = rng.random(rows)
    edges = np.linspace(0, rows, FOLDS + 1).astype(np.int64)
    everything = np.arange(rows, dtype=np.int64)
    folds = [(np.concatenate([everything[: edges[k]], everything[edges[k + 1]:]]), everything[edges[k]: edges[k + 1]])
             for k in range(FOLDS)]
    return Dataset(X, y, folds)


def dataset_bytes(ds: Any) -> int:
    return ds.X.nbytes + ds.y.nbytes + sum(a.nbytes for fold in ds.folds for a in fold)


def timed(comm: Any, fn: Any, prepare: Any = None) -> tuple[float, Any]:
    """Seconds of the slowest rank for ``fn(prepare())``, started together after a barrier."""
    from mpi4py import MPI

    arg = prepare() if prepare else None
    comm.Barrier()
    start = time.perf_counter()
    value = fn(arg) if prepare else fn()
    return comm.allreduce(time.perf_counter() - start, op=MPI.MAX), value


def gathered_pss(comm: Any) -> dict[str, int]:
    gc.collect()
    quiet_barrier(comm)
    mine = pss()
    every = comm.gather(mine, root=0)
    return {k: sum(p[k] for p in every) for k in mine} if every else {}


def raw_buffer(comm: Any, nbytes: int, parts: int) -> Any:
    """The buffer of the raw Bcast: nbytes/parts bytes (parts > 1 when N copies would not fit)."""
    import numpy as np

    piece = -(-nbytes // parts)
    return np.ones(piece, np.uint8) if comm.Get_rank() == 0 else np.empty(piece, np.uint8)


def raw_bcast(comm: Any, buf: Any, nbytes: int) -> None:
    """nbytes through ``comm.Bcast`` of one numpy buffer (fresh on the receivers, as shipping's
    are), in len(buf)-sized steps."""
    from mpi4py import MPI

    for start in range(0, nbytes, buf.size):
        comm.Bcast([buf[: min(buf.size, nbytes - start)], MPI.BYTE], root=0)


def touch(ds: Any) -> float:
    return float(ds.X.reshape(-1)[::PAGE_FLOATS].sum())


def child(args: argparse.Namespace) -> None:
    from mpi4py import MPI

    from mpisearch.data.shared import release
    from mpisearch.data.shipping import bcast_dataset

    comm = MPI.COMM_WORLD
    root = comm.Get_rank() == 0
    shared = args.mode != "private"
    rows = TINY_ROWS if args.mode == "tiny" else args.rows
    ds = make_dataset(rows) if root else None
    nbytes = comm.bcast(dataset_bytes(ds) if root else None)
    result: dict[str, Any] = {"mode": args.mode, "ranks": comm.Get_size(), "dataset_bytes": nbytes, "reps": []}
    result["pss_before"] = gathered_pss(comm)
    for rep in range(args.reps):
        seconds, got = timed(comm, lambda: bcast_dataset(ds, comm, shared=shared))
        if rep == 0:
            touch(got)
            result["pss_after"] = gathered_pss(comm)
        del got
        release(comm)
        gc.collect()
        raw_s, _ = timed(comm, lambda buf: raw_bcast(comm, buf, nbytes),
                         lambda: raw_buffer(comm, nbytes, args.raw_parts))
        result["reps"].append({"ship_s": seconds, "raw_bcast_s": raw_s})
        gc.collect()
    if args.mode == "tiny":
        for flag in (True, False):  # baselines of both modes in one launch
            got = bcast_dataset(ds, comm, shared=flag)
            touch(got)
            result[f"pss_after_{'shared' if flag else 'private'}"] = gathered_pss(comm)
            del got
            release(comm)
    if root:
        print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent

def launch(n: int, mode: str, rows: int, reps: int, raw_parts: int, timeout: float) -> dict[str, Any]:
    cmd = [tool("mpiexec"), "-n", str(n), sys.executable, "-m", "mpi4py", str(THIS), "--child", "--mode", mode,
           "--rows", str(rows), "--reps", str(reps), "--raw-parts", str(raw_parts)]
    job = launch_ok(cmd, timeout)
    line = next(ln for ln in job.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    out["launch_wall_s"] = job.wall_s
    return out


def warm_up(gb: float) -> float:
    """Touch ``gb`` GB once so that later runs do not pay the VM's first-touch cost."""
    import numpy as np

    start = time.perf_counter()
    blocks = []
    for _ in range(int(gb)):
        blocks.append(np.ones(1 << 30, np.uint8))
    del blocks
    return time.perf_counter() - start


def mem_available_gb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_throughput(rows: int, work: Path) -> dict[str, Any]:
    """mpisearch.data.hdf5.read against np.load of the same bytes, cold and warm page cache."""
    import h5py
    import numpy as np

    from mpisearch.data import hdf5

    X = make_dataset(rows).X
    h5, npy = work / "X.h5", work / "X.npy"
    with h5py.File(h5, "w") as fh:
        fh.create_dataset("X", data=X)
    np.save(npy, X)
    nbytes = X.nbytes
    del X
    gc.collect()
    readers = {"hdf5_read": lambda: hdf5.read(h5, "X", None)[0], "numpy_load": lambda: np.load(npy)}
    out: dict[str, Any] = {"bytes": nbytes}
    for cache in ("cold", "warm"):
        for name, fn in readers.items():
            if cache == "cold":
                drop_cache(h5 if name == "hdf5_read" else npy)
            start = time.perf_counter()
            arr = fn()
            seconds = time.perf_counter() - start
            assert arr.nbytes == nbytes
            del arr
            gc.collect()
            out[f"{name}_{cache}_s"] = seconds
            out[f"{name}_{cache}_GBps"] = nbytes / seconds / 1e9
        out[f"hdf5_vs_numpy_{cache}"] = out[f"numpy_load_{cache}_s"] / out[f"hdf5_read_{cache}_s"]
    h5.unlink()
    npy.unlink()
    return out


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    size = run["dataset_bytes"]
    ship = median(r["ship_s"] for r in run["reps"])
    raw = median(r["raw_bcast_s"] for r in run["reps"])
    out = {"ship_s": ship, "raw_bcast_s": raw, "ship_vs_raw": ship / raw}
    if "pss_after" in run:
        out["memory_added_x"] = (run["pss_after"]["Pss"] - run["pss_before"]["Pss"]) / size
    return out


def memory_vs_tiny(run: dict[str, Any], tiny: dict[str, Any], mode: str) -> float | None:
    if "pss_after" not in run or tiny is None:
        return None
    return (run["pss_after"]["Pss"] - tiny[f"pss_after_{mode}"]["Pss"]) / run["dataset_bytes"]


def plan_runs(sizes_gb: list[float], ranks: list[int], limit_gb: float) -> list[dict[str, Any]]:
    runs = []
    for size in sizes_gb:
        gb = size * (1 + 1 / COLS + 2 * FOLDS / (2 * COLS))  # X + y + folds, about
        for n in ranks:
            for mode in ("tiny", "shared", "private"):
                skip = mode == "private" and n * gb > limit_gb
                # the raw Bcast needs N-1 receive buffers beside rank 0's data: split it if they do not fit
                parts = 1 if mode == "tiny" else max(1, int(-(-(n * gb) // max(limit_gb - gb, 1.0))))
                runs.append({"size_gb": size, "ranks": n, "mode": mode, "skip": skip, "raw_parts": parts})
    return runs


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [0.1] if args.quick else args.sizes
    ranks = [2, 4] if args.quick else args.ranks
    doc: dict[str, Any] = {"quick": args.quick, "sizes_gb": sizes, "ranks": ranks, "mem_limit_gb": args.mem_limit_gb,
                           "cpus": os.cpu_count(), "mem_available_gb_before": mem_available_gb(),
                           "load_average_before": load_average(), "runs": [], "skipped": [], "hdf5": {}}
    warm = min(args.warmup_gb, 0.8 * mem_available_gb())
    if warm >= 1:
        log(f"warming up {warm:.0f} GB of memory")
        doc["warmup"] = {"gb": int(warm), "seconds": warm_up(warm)}
    tiny: dict[int, dict[str, Any]] = {}
    for spec in plan_runs(sizes, ranks, args.mem_limit_gb):
        n, mode, size = spec["ranks"], spec["mode"], spec["size_gb"]
        if spec["skip"]:
            doc["skipped"].append({**spec, "why": f"{n} private copies of {size} GB exceed --mem-limit-gb "
                                                  f"{args.mem_limit_gb}"})
            continue
        if mode == "tiny" and n in tiny:
            continue
        rows = int(size * 1e9 / (COLS * 8))
        reps = 1 if mode == "tiny" else (3 if size <= 0.2 else 2 if size <= 1.5 else 1)
        log(f"N={n} {mode} {size} GB (reps {reps}, raw Bcast in {spec['raw_parts']} part(s))")
        run = launch(n, mode, rows, reps, spec["raw_parts"], args.timeout)
        run.update(size_gb=size, raw_parts=spec["raw_parts"])
        if mode == "tiny":
            tiny[n] = run
        else:
            run["summary"] = summarise(run)
            run["summary"]["memory_total_x"] = memory_vs_tiny(run, tiny.get(n), mode)
            log(f"   {json.dumps(run['summary'])}")
        doc["runs"].append(run)
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        for size in sizes:
            log(f"HDF5 read of {size} GB")
            doc["hdf5"][str(size)] = read_throughput(int(size * 1e9 / (COLS * 8)), Path(work))
    doc["load_average_after"] = load_average()
    doc["targets"] = targets(doc)
    doc["all_pass"] = all(t["pass"] for t in doc["targets"].values())
    return doc


def targets(doc: dict[str, Any]) -> dict[str, Any]:
    out = {}
    shared = [r for r in doc["runs"] if r["mode"] == "shared"]
    for r in shared:
        key = f"time_{r['size_gb']}GB_N{r['ranks']}"
        value = r["summary"]["ship_vs_raw"]
        out[key] = {"what": "bcast_dataset(shared=True) / raw Bcast", "value": value, "target": TARGET_TIME,
                    "pass": value <= TARGET_TIME}
    n_max = max(doc["ranks"])
    for r in shared:
        if r["ranks"] == n_max:
            value = r["summary"]["memory_added_x"]
            out[f"memory_{r['size_gb']}GB_N{n_max}"] = {
                "what": "sum of PSS added by shipping / dataset size (shared)", "value": value,
                "target": TARGET_MEMORY, "pass": value <= TARGET_MEMORY,
                "total_with_rank0_copy": r["summary"]["memory_total_x"]}
    return out


def plot(doc: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    runs = [r for r in doc["runs"] if r["mode"] != "tiny"]
    for mode, style in (("shared", "-o"), ("private", "--s")):
        for size in doc["sizes_gb"]:
            sel = sorted((r for r in runs if r["mode"] == mode and r["size_gb"] == size), key=lambda r: r["ranks"])
            if not sel:
                continue
            ns = [r["ranks"] for r in sel]
            axes[0].plot(ns, [r["summary"]["ship_vs_raw"] for r in sel], style, label=f"{mode} {size} GB")
            axes[1].plot(ns, [r["summary"]["memory_added_x"] for r in sel], style, label=f"{mode} {size} GB added")
            total = [r["summary"]["memory_total_x"] for r in sel]
            if None not in total:
                axes[1].plot(ns, total, style, alpha=0.35, label=f"{mode} {size} GB total")
    axes[0].axhline(TARGET_TIME, color="red", lw=0.8, ls=":", label="target")
    axes[0].set(title="(a) bcast_dataset time / raw Bcast time", xlabel="ranks N", ylabel="ratio", yscale="log")
    axes[1].axhline(TARGET_MEMORY, color="red", lw=0.8, ls=":", label="target (added, shared)")
    axes[1].set(title="(b) sum of PSS / dataset size", xlabel="ranks N", ylabel="copies of the dataset")
    sizes = list(doc["hdf5"])
    width = 0.2
    for k, (key, label) in enumerate([("hdf5_read_cold", "hdf5.read cold"), ("numpy_load_cold", "np.load cold"),
                                      ("hdf5_read_warm", "hdf5.read warm"), ("numpy_load_warm", "np.load warm")]):
        axes[2].bar([i + (k - 1.5) * width for i in range(len(sizes))],
                    [doc["hdf5"][s][f"{key}_GBps"] for s in sizes], width, label=label)
    axes[2].set_xticks(range(len(sizes)), [f"{s} GB" for s in sizes])
    axes[2].set(title="(c) read throughput", ylabel="GB/s")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 MB only, N = 2, 4")
    parser.add_argument("--sizes", type=lambda s: [float(x) for x in s.split(",")], default=[0.1, 1.0, 3.0],
                        help="dataset sizes in GB (X), comma-separated")
    parser.add_argument("--ranks", type=lambda s: [int(x) for x in s.split(",")], default=[2, 4, 8])
    parser.add_argument("--mem-limit-gb", type=float, default=16.0,
                        help="skip private runs (and split the raw Bcast) above this many GB of copies")
    parser.add_argument("--warmup-gb", type=float, default=14.0)
    add_output_args(parser)
    parser.add_argument("--work", type=Path, default=None, help="temp dir for the HDF5/.npy files")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mpiexec launch")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="shared", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--raw-parts", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    save(run_all(args), args.out_dir, "bench_data", plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
