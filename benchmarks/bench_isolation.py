#!/usr/bin/env python
"""Per-task cost of running fits in a separate process (crash isolation).

Usage (from the repository root, with the venv active):

    python benchmarks/bench_isolation.py            # about 1 min on 2 cores
    python benchmarks/bench_isolation.py --quick    # smoke run, about 20 s

Two parts:

(a) mechanism, one process, no MPI: no-op tasks (:class:`mpisearch.testing.NoopClassifier`
    on 20 rows, 2 folds) run N times each way, in interleaved rounds, medians of the
    rounds: ``in_process`` (``evaluate`` called directly: the anchor), ``fit_process``
    (a long-lived forked fit process, one task at a time, the task and its result through
    a socket pair), ``fit_process_ahead`` (the same with 32 tasks submitted ahead: what
    worker ranks do with tiny tasks) and ``fork_per_task`` (a forked child per task, the
    result through a pipe).
    overhead_us = per-task time minus the anchor's.
(b) end to end: ``mpiexec -n 3`` (2 workers) ``MPISearchCV(NoopClassifier())`` with the
    journal off; tasks/s = tasks / search_s, median of the repeats. Compare it with the
    same part run on a checkout without isolation (the README quotes both).

Prints one JSON document on stdout (progress on stderr), also saved to
benchmarks/out/bench_isolation.json, and draws benchmarks/out/bench_isolation.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THIS = Path(__file__).resolve()


def log(msg: str) -> None:
    print(f"[bench_isolation] {msg}", file=sys.stderr, flush=True)


def noop_setup() -> tuple[Any, Any, Any]:
    import numpy as np

    from mpisearch.cv import make_folds
    from mpisearch.data.dataset import Dataset
    from mpisearch.scoring import make_scorers
    from mpisearch.testing import NoopClassifier

    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.array([0, 1] * 10)
    est = NoopClassifier()
    return est, Dataset(X, y, make_folds(2, est, X, y)), make_scorers(None, est)


def fork_per_task(fn: Any) -> Any:
    """``fn()`` in a forked child, its pickled result through a pipe (the old task_timeout path)."""
    import pickle

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        with os.fdopen(write_fd, "wb") as out:
            out.write(pickle.dumps(fn()))
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


def ahead(fit_process: Any, request: Any, depth: int = 32) -> Any:
    """What worker ranks do with tiny tasks: keep ``depth`` tasks submitted, read the oldest result."""
    while fit_process.pending < depth:
        fit_process.submit(request)
    return fit_process.result()


def part_a(n: int, rounds: int) -> dict[str, Any]:
    from mpisearch.evaluate import evaluate
    from mpisearch.hotpath import search_loop

    est, dataset, scorers = noop_setup()
    ways: dict[str, Any] = {
        "in_process": lambda p, k: evaluate(est, p, dataset, k, scorers),
        "fork_per_task": lambda p, k: fork_per_task(lambda: evaluate(est, p, dataset, k, scorers)),
    }
    fit_process = None
    try:
        from mpisearch.isolation import FitProcess, FitRequest

        fit_process = FitProcess(est, dataset, scorers)
        ways["fit_process"] = lambda p, k: fit_process.run(FitRequest(p, k))
        ways["fit_process_ahead"] = lambda p, k: ahead(fit_process, FitRequest(p, k))
    except ImportError:
        log("(a) mpisearch.isolation not found: fit_process left out")
    per_task: dict[str, list[float]] = {w: [] for w in ways}
    with search_loop(est):
        for _ in range(rounds):
            for way, run in ways.items():
                count = n if way != "fork_per_task" else max(n // 10, 20)
                start = time.perf_counter()
                for i in range(count):
                    result = run({"tag": i}, i % 2)
                    assert result.error is None, result.error
                per_task[way].append((time.perf_counter() - start) / count)
    if fit_process is not None:
        fit_process.close()  # drops the results of the last round's extra submissions
    med = {w: statistics.median(v) for w, v in per_task.items()}
    out = {"tasks_per_round": n, "rounds": rounds,
           "per_task_us": {w: round(1e6 * v, 1) for w, v in med.items()},
           "overhead_us": {w: round(1e6 * (v - med["in_process"]), 1) for w, v in med.items()},
           "per_task_us_rounds": {w: [round(1e6 * x, 1) for x in v] for w, v in per_task.items()}}
    log(f"(a) per task: {out['per_task_us']} us")
    return out


def child(argv: list[str]) -> int:
    """Every rank of part (b): one no-op search per repeat."""
    tasks, repeat, result_path = int(argv[0]), int(argv[1]), argv[2]
    import numpy as np
    from mpi4py import MPI

    from mpisearch import MPISearchCV
    from mpisearch.testing import NoopClassifier

    comm = MPI.COMM_WORLD
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.array([0, 1] * 10)
    rates = []
    for _ in range(repeat):
        search = MPISearchCV(NoopClassifier(), {"tag": list(range(tasks // 2))}, cv=2, refit=False)
        search.fit(X, y) if comm.Get_rank() == 0 else search.fit(None, None)
        rates.append(search.run_info_["tasks"] / search.run_info_["search_s"])
    if comm.Get_rank() == 0:
        Path(result_path).write_text(json.dumps(rates))
    return 0


def part_b(tasks: int, repeat: int) -> dict[str, Any]:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "rates.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        subprocess.run([str(mpiexec), "-n", "3", sys.executable, str(THIS), "_child", str(tasks), str(repeat),
                        str(result)], check=True, timeout=600, env=env)
        rates = json.loads(result.read_text())
    out = {"ranks": 3, "workers": 2, "tasks": tasks, "tasks_per_s": [round(r) for r in rates],
           "tasks_per_s_median": round(statistics.median(rates))}
    log(f"(b) {out['tasks_per_s_median']} no-op tasks/s at 2 workers (runs: {out['tasks_per_s']})")
    return out


def draw(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_task = result["mechanism"]["per_task_us"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(per_task), list(per_task.values()), color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][: len(per_task)])
    ax.axhline(per_task["in_process"] + 1000, color="red", ls="--", lw=1, label="in_process + 1 ms (limit)")
    ax.set_yscale("log")
    ax.set_ylabel("us per no-op task (median)")
    ax.set_title(f"fit isolation; end to end {result['end_to_end']['tasks_per_s_median']} tasks/s at 2 workers",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        return child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks and rounds")
    parser.add_argument("--out-dir", default=str(HERE / "out"))
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"load_average_before": os.getloadavg(),
              "mechanism": part_a(500 if args.quick else 2000, 3 if args.quick else 5),
              "end_to_end": part_b(2000 if args.quick else 8000, 1 if args.quick else 3),
              "load_average_after": os.getloadavg()}
    text = json.dumps(result, indent=2)
    (out_dir / "bench_isolation.json").write_text(text + "\n")
    draw(result, out_dir / "bench_isolation.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
