#!/usr/bin/env python
"""mpisearch (MPI, rank 0 coordinating) against scikit-learn's GridSearchCV, whole process.

Usage (from the repository root, with the venv active):

    python benchmarks/bench_vs_sklearn.py                  # full: a few minutes per repeat
    python benchmarks/bench_vs_sklearn.py --quick --repeat 1   # smoke run, ~1-2 minutes

Every contestant is a fresh subprocess, timed wall-clock from launch to exit
(interpreter start, imports, data load, search, refit, writing results):

* ``mpiexec -n 3 mpisearch run`` (2 worker ranks + the rank-0 coordinator), and on
  problem (b) also ``mpiexec -n 2`` (1 worker), for the 1 -> 2 workers speedup;
* ``GridSearchCV(n_jobs=2)`` and ``GridSearchCV(n_jobs=1)`` in a helper process that
  loads the same HDF5 file and runs the same grid, folds, scorer, ``refit=True``.

Problems: (a) many small tasks (SVC on digits, 40 points x 5 folds, 10-50 ms per task);
(b) heterogeneous medium tasks (RandomForestClassifier, 20..300 trees x depth, on a
synthetic 10k x 40 set). Medians over ``--repeat`` runs; contestants are interleaved
and their order rotates per repeat, so slow drift of the machine's load hits all alike.

mpisearch ranks run through this file's ``_rank-cpu`` mode, a thin wrapper around
``mpisearch.cli.main`` that records each rank's CPU seconds and peak RSS (getrusage)
at exit; it changes nothing else: same CLI, same arguments. Rank 0's CPU and wall
seconds inside the coordinator loop come from run.json (``coordinator_cpu_s``,
``search_s``).

Prints one JSON document on stdout, also saved to benchmarks/out/bench_vs_sklearn.json,
and draws benchmarks/out/bench_vs_sklearn.png. Progress goes to stderr.

Threads are left as each tool sets them (recorded in the JSON): mpisearch worker ranks
limit BLAS/OpenMP to one thread themselves; joblib's loky workers (n_jobs=2) limit
themselves to cpu_count // n_jobs; n_jobs=1 runs with the library defaults.
"""

from __future__ import annotations

# Keep the top-level imports to the standard library: the _rank-cpu and _sklearn
# modes start with this file, and must not pay for imports the plain tools don't.
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as common

THIS = Path(__file__).resolve()

TARGETS = {
    # name: (description, op, threshold)
    "a_ratio_vs_sklearn_njobs2": ("(a) mpisearch -n 3 wall / GridSearchCV(n_jobs=2) wall", "<=", 0.7),
    "b_ratio_vs_sklearn_njobs2": ("(b) mpisearch -n 3 wall / GridSearchCV(n_jobs=2) wall", "<=", 0.95),
    "b_speedup_1_to_2_workers": ("(b) search_s of mpisearch -n 2 / search_s of -n 3 (run.json)", ">=", 1.85),
}


# --------------------------------------------------------------------------- problems

def problems(quick: bool) -> dict[str, dict[str, Any]]:
    """The two problems: data to make, estimator, grid, folds, scoring."""
    if quick:
        a_grid = {"C": [1.0, 10.0, 100.0, 1000.0], "gamma": [0.0001, 0.0005, 0.001]}
        a_folds = 3
        b_data = {"name": "classification", "rows": 2000, "features": 20, "seed": 0}
        b_grid = {"n_estimators": [10, 30, 60], "max_depth": [4, 8]}
        b_folds = 3
    else:
        a_grid = {"C": [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0],
                  "gamma": [0.0001, 0.0002, 0.0005, 0.001, 0.002]}
        a_folds = 5
        b_data = {"name": "classification", "rows": 10000, "features": 40, "seed": 0}
        b_grid = {"n_estimators": [20, 50, 100, 200, 300], "max_depth": [4, 8]}
        b_folds = 5
    return {
        "a_small_tasks": {
            "description": "many small tasks: SVC(rbf) on digits",
            "data": {"name": "digits", "rows": None, "features": None, "seed": 0},
            "estimator": "sklearn.svm.SVC",
            "params": {"kernel": "rbf"},
            "grid": a_grid,
            "folds": a_folds,
            "metric": "accuracy",
            "mpisearch_ranks": [3],
        },
        "b_medium_tasks": {
            "description": "heterogeneous medium tasks: RandomForestClassifier, 20..300 trees x depth",
            "data": b_data,
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "params": {"max_features": "log2", "max_samples": 0.5, "random_state": 0},
            "grid": b_grid,
            "folds": b_folds,
            "metric": "accuracy",
            "mpisearch_ranks": [3, 2],
        },
    }


def n_points(grid: dict[str, list[Any]]) -> int:
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


# --------------------------------------------------------------------------- helper modes

def rank_cpu_mode(argv: list[str]) -> int:
    """``_rank-cpu CPU_DIR -- ARGS...``: run ``mpisearch ARGS`` and record this rank's CPU use."""
    started = time.time()  # wall clock: the parent compares it with its launch time
    cpu_dir, sep, *args = argv
    assert sep == "--", "usage: _rank-cpu CPU_DIR -- MPISEARCH_ARGS..."
    from mpisearch import cli

    status: Any = 1
    try:
        status = cli.main(args)
    except SystemExit as exc:
        status = exc.code
    finally:
        rank = _rank()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        record = {"rank": rank, "started": started, "ended": time.time(),
                  "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "maxrss_mib": ru.ru_maxrss / 1024, "status": status if isinstance(status, int) else 1}
        Path(cpu_dir).mkdir(parents=True, exist_ok=True)
        (Path(cpu_dir) / f"rank{rank}.json").write_text(json.dumps(record))
    return status if isinstance(status, int) else 1


def _rank() -> int:
    if "mpi4py.MPI" in sys.modules:
        MPI = sys.modules["mpi4py.MPI"]
        if MPI.Is_initialized() and not MPI.Is_finalized():
            return MPI.COMM_WORLD.Get_rank()
    for var in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def sklearn_mode(argv: list[str]) -> int:
    """``_sklearn SPEC.json N_JOBS RESULT.json``: GridSearchCV on the same file, same grid."""
    spec_path, n_jobs, result_path = argv
    spec = json.loads(Path(spec_path).read_text())
    import importlib

    import h5py
    from sklearn.model_selection import GridSearchCV

    t0 = time.perf_counter()
    with h5py.File(spec["data_path"], "r") as fh:
        X, y = fh["X"][...], fh["y"][...]
    load_s = time.perf_counter() - t0
    module, _, name = spec["estimator"].rpartition(".")
    estimator = getattr(importlib.import_module(module), name)(**spec["params"])
    search = GridSearchCV(estimator, spec["grid"], cv=spec["folds"], scoring=spec["metric"],
                          n_jobs=int(n_jobs), refit=True)
    t1 = time.perf_counter()
    search.fit(X, y)
    fit_s = time.perf_counter() - t1
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "load_s": load_s, "fit_s": fit_s, "refit_s": float(search.refit_time_),
        "best_score": float(search.best_score_), "best_params": search.best_params_,
        "params": [dict(p) for p in search.cv_results_["params"]],
        "mean_test_score": [float(v) for v in search.cv_results_["mean_test_score"]],
        "main_cpu_s": ru.ru_utime + ru.ru_stime, "main_maxrss_mib": ru.ru_maxrss / 1024,
    }
    Path(result_path).write_text(json.dumps(out, default=_jsonable))
    return 0


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return repr(obj)


# --------------------------------------------------------------------------- driver

def write_config(path: Path, prob: dict[str, Any], data_path: Path) -> None:
    path.write_text(common.toml_config({
        "data": {"path": str(data_path), "X": "X", "y": "y"},
        "estimator": {"class": prob["estimator"], "params": prob["params"]},
        "space": prob["grid"],
        "search": {"strategy": "grid"},
        "cv": {"folds": prob["folds"]},
        "scoring": {"metrics": [prob["metric"]], "refit": True},
    }, comment=f"written by benchmarks/bench_vs_sklearn.py: {prob['description']}"))


def run_mpisearch(ranks: int, config: Path, out: Path, timeout: float) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    cpu_dir = out.parent / f"{out.name}.cpu"
    if cpu_dir.exists():
        shutil.rmtree(cpu_dir)
    cmd = [common.tool("mpiexec"), "-n", str(ranks), sys.executable, str(THIS), "_rank-cpu", str(cpu_dir), "--",
           "run", str(config), "--out", str(out)]
    job = common.launch_ok(cmd, timeout, logs=out.parent / out.name)
    info = json.loads((out / "run.json").read_text())
    rank_files = sorted(cpu_dir.glob("rank*.json"))
    rank_cpu = {int(p.stem[4:]): json.loads(p.read_text()) for p in rank_files}
    r0 = rank_cpu.get(0, {})
    task_s = [t["fit_time"] + t["score_time"] for t in common.journal_entries(out)]
    return {
        "wall_s": job.wall_s, "search_s": info.get("search_s"), "refit_s": info.get("refit_s"),
        "load_s": info.get("load_s"), "bcast_s": info.get("bcast_s"), "setup_s": info.get("setup_s"),
        "utilisation": info.get("utilisation"), "tasks": info.get("tasks"),
        # the coordinator loop's CPU and wall seconds, as rank 0 measures them for run.json
        "rank0_cpu_s": r0.get("cpu_s"), "rank0_coordinator_loop_cpu_s": info.get("coordinator_cpu_s"),
        "rank0_coordinator_loop_wall_s": info.get("search_s"),
        "worker_ranks_cpu_s": sum(v["cpu_s"] for k, v in rank_cpu.items() if k != 0),
        "all_processes_cpu_s": job.cpu_s,
        "maxrss_mib_by_rank": {str(k): round(v["maxrss_mib"], 1) for k, v in sorted(rank_cpu.items())},
        # launch -> rank 0 runs this file's code (mpiexec, interpreter start); rank 0's
        # mpisearch.cli.main; rank 0 done -> mpiexec exits (MPI finalisation, teardown).
        "startup_s": r0["started"] - job.launched if "started" in r0 else None,
        "rank0_main_s": r0["ended"] - r0["started"] if "started" in r0 else None,
        "shutdown_s": job.exited - r0["ended"] if "ended" in r0 else None,
        "task_s": task_s, "cv_results": out / "cv_results.csv",
    }


def run_sklearn(n_jobs: int, spec_path: Path, work: Path, tag: str, timeout: float) -> dict[str, Any]:
    result = work / f"{tag}.result.json"
    cmd = [sys.executable, str(THIS), "_sklearn", str(spec_path), str(n_jobs), str(result)]
    job = common.launch_ok(cmd, timeout, logs=work / tag)
    res = json.loads(result.read_text())
    return {"wall_s": job.wall_s, "fit_s": res["fit_s"], "search_s": res["fit_s"] - res["refit_s"],
            "refit_s": res["refit_s"], "load_s": res["load_s"],
            "main_process_cpu_s": res["main_cpu_s"], "all_processes_cpu_s": job.cpu_s, "result": res}


def summarise(samples: list[dict[str, Any]], keys: list[str], cmd: str) -> dict[str, Any]:
    out: dict[str, Any] = {"command": cmd}
    for key in keys:
        vals = [s.get(key) for s in samples]
        out[key] = [None if v is None else round(v, 4) for v in vals]
        med = common.median(vals)
        out[f"{key}_median"] = None if med is None else round(med, 4)
    return out


def score_check(mpi_csv: Path, sk: dict[str, Any]) -> dict[str, Any]:
    """mpisearch's mean_test_score against GridSearchCV's, matched by parameters."""
    import csv

    with mpi_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    mine = {json.dumps(json.loads(r["params"]), sort_keys=True): float(r["mean_test_score"]) for r in rows}
    theirs = {json.dumps(p, sort_keys=True, default=_jsonable): s
              for p, s in zip(sk["params"], sk["mean_test_score"], strict=True)}
    matched = set(mine) & set(theirs)
    diff = max((abs(mine[k] - theirs[k]) for k in matched), default=float("nan"))
    return {"points_mpisearch": len(mine), "points_sklearn": len(theirs), "points_matched": len(matched),
            "max_abs_mean_test_score_diff": diff,
            "match": len(matched) == len(mine) == len(theirs) and diff <= 1e-12}


def thread_info() -> dict[str, Any]:
    env_vars = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MPISEARCH_THREADS")
    info: dict[str, Any] = {"env": {v: os.environ.get(v) for v in env_vars}}
    try:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info

        info["default_pools"] = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads")}
                                 for p in threadpool_info()]
    except Exception:  # noqa: BLE001
        info["default_pools"] = None
    info["notes"] = ("left as each tool sets them: mpisearch worker ranks limit BLAS/OpenMP to 1 thread "
                     "(threadpoolctl) unless a thread variable is set; GridSearchCV(n_jobs=2)'s loky workers "
                     "limit to cpu_count // n_jobs; GridSearchCV(n_jobs=1) uses the defaults above; "
                     "RandomForestClassifier runs with n_jobs=None (1 thread) everywhere")
    return info


def target(name: str, value: float | None) -> dict[str, Any]:
    description, op, threshold = TARGETS[name]
    return common.target_entry(description, value, op, threshold)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    probs = problems(args.quick)
    work = common.work_dir(args.work, "bench_vs_sklearn.")
    common.log(f"work directory: {work}")
    machine = common.machine_info()
    threads = thread_info()
    load_before = common.load_average()
    mpisearch_bin = [sys.executable, "-m", "mpisearch"]

    # Data, configs and GridSearchCV specs.
    jobs: list[tuple[str, str, Any]] = []  # (problem, contestant, thunk args)
    for key, prob in probs.items():
        d = prob["data"]
        data_path = work / f"{key}.h5"
        cmd = [*mpisearch_bin, "data", "make", d["name"], "--out", str(data_path), "--seed", str(d["seed"])]
        if d["rows"]:
            cmd += ["--rows", str(d["rows"]), "--features", str(d["features"])]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        prob["data_path"] = data_path
        prob["config"] = work / f"{key}.toml"
        write_config(prob["config"], prob, data_path)
        prob["spec"] = work / f"{key}.sklearn.json"
        prob["spec"].write_text(json.dumps({"data_path": str(data_path), "estimator": prob["estimator"],
                                            "params": prob["params"], "grid": prob["grid"], "folds": prob["folds"],
                                            "metric": prob["metric"]}))
        for n in prob["mpisearch_ranks"]:
            jobs.append((key, f"mpisearch_n{n}", n))
        jobs += [(key, "sklearn_njobs2", 2), (key, "sklearn_njobs1", 1)]

    samples: dict[tuple[str, str], list[dict[str, Any]]] = {(p, c): [] for p, c, _ in jobs}
    for rep in range(args.repeat):
        for key in probs:
            # Interleave the contestants and rotate their order each repeat.
            mine = [j for j in jobs if j[0] == key]
            shift = rep % len(mine)
            for _, contestant, n in mine[shift:] + mine[:shift]:
                tag = f"{key}.{contestant}.r{rep}"
                if contestant.startswith("mpisearch"):
                    s = run_mpisearch(n, probs[key]["config"], work / tag, args.timeout)
                else:
                    s = run_sklearn(n, probs[key]["spec"], work, tag, args.timeout)
                samples[(key, contestant)].append(s)
                common.log(f"repeat {rep + 1}/{args.repeat} {key} {contestant}: {s['wall_s']:.2f}s wall")

    mpi_keys = ["wall_s", "startup_s", "rank0_main_s", "shutdown_s", "search_s", "refit_s", "load_s", "bcast_s",
                "utilisation", "rank0_cpu_s",
                "rank0_coordinator_loop_cpu_s", "rank0_coordinator_loop_wall_s", "worker_ranks_cpu_s",
                "all_processes_cpu_s"]
    sk_keys = ["wall_s", "fit_s", "search_s", "refit_s", "load_s", "main_process_cpu_s", "all_processes_cpu_s"]
    result: dict[str, Any] = {"benchmark": "bench_vs_sklearn", "quick": args.quick, "repeat": args.repeat,
                              "statistic": "median over repeats", "machine": machine, "threads": threads,
                              "load_average_before": load_before, "problems": {}}
    for key, prob in probs.items():
        grid = prob["grid"]
        entry: dict[str, Any] = {
            "description": prob["description"], "data": prob["data"], "estimator": prob["estimator"],
            "fixed_params": prob["params"], "grid": grid, "points": n_points(grid), "folds": prob["folds"],
            "tasks": n_points(grid) * prob["folds"], "metric": prob["metric"], "contestants": {},
        }
        for (p, contestant), ss in samples.items():
            if p != key:
                continue
            if contestant.startswith("mpisearch"):
                n = int(contestant.rsplit("n", 1)[1])
                cmd = f"mpiexec -n {n} mpisearch run {key}.toml --out DIR  (via _rank-cpu wrapper)"
                summary = summarise(ss, mpi_keys, cmd)
                summary["workers"] = n - 1
                all_tasks = sorted(t for s in ss for t in s["task_s"])
                summary["task_s_min_median_max"] = [round(all_tasks[0], 4), round(common.median(all_tasks), 4),
                                                    round(all_tasks[-1], 4)] if all_tasks else None
                summary["maxrss_mib_by_rank_last"] = ss[-1]["maxrss_mib_by_rank"]
                lp = summary["rank0_coordinator_loop_cpu_s_median"]
                lw = summary["rank0_coordinator_loop_wall_s_median"]
                summary["rank0_coordinator_loop_cpu_fraction"] = common.ratio(lp, lw)
            else:
                n = int(contestant[-1])
                summary = summarise(ss, sk_keys, f"python -c 'GridSearchCV(..., n_jobs={n}, refit=True).fit'")
                summary["best_score"] = ss[-1]["result"]["best_score"]
                summary["best_params"] = ss[-1]["result"]["best_params"]
            entry["contestants"][contestant] = summary
        c = entry["contestants"]
        mpi3 = c["mpisearch_n3"]["wall_s_median"]
        entry["ratios"] = {
            "mpisearch_n3_vs_sklearn_njobs2": common.ratio(mpi3, c["sklearn_njobs2"]["wall_s_median"]),
            "mpisearch_n3_vs_sklearn_njobs1": common.ratio(mpi3, c["sklearn_njobs1"]["wall_s_median"]),
            "sklearn_njobs2_vs_njobs1": common.ratio(c["sklearn_njobs2"]["wall_s_median"],
                                              c["sklearn_njobs1"]["wall_s_median"]),
        }
        if "mpisearch_n2" in c:
            entry["ratios"]["speedup_1_to_2_workers_search"] = common.ratio(c["mpisearch_n2"]["search_s_median"],
                                                                     c["mpisearch_n3"]["search_s_median"])
            entry["ratios"]["speedup_1_to_2_workers_wall"] = common.ratio(c["mpisearch_n2"]["wall_s_median"], mpi3)
        entry["scores_vs_sklearn"] = score_check(samples[(key, "mpisearch_n3")][-1]["cv_results"],
                                                 samples[(key, "sklearn_njobs1")][-1]["result"])
        result["problems"][key] = entry

    a, b = result["problems"]["a_small_tasks"]["ratios"], result["problems"]["b_medium_tasks"]["ratios"]
    targets = {
        "a_ratio_vs_sklearn_njobs2": target("a_ratio_vs_sklearn_njobs2", a["mpisearch_n3_vs_sklearn_njobs2"]),
        "b_ratio_vs_sklearn_njobs2": target("b_ratio_vs_sklearn_njobs2", b["mpisearch_n3_vs_sklearn_njobs2"]),
        "b_speedup_1_to_2_workers": target("b_speedup_1_to_2_workers", b["speedup_1_to_2_workers_search"]),
    }
    result["targets"] = targets
    result["all_pass"] = all(t["pass"] for t in targets.values())
    if args.quick:
        result["note"] = "quick run: problem sizes are shrunk; targets are computed but not meaningful"
    result["load_average_after"] = common.load_average()
    result["work_dir"] = None if not args.keep_work else str(work)
    if not args.keep_work and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- chart

LABELS = {"mpisearch_n3": "mpisearch\n-n 3 (2 workers)", "mpisearch_n2": "mpisearch\n-n 2 (1 worker)",
          "sklearn_njobs2": "GridSearchCV\nn_jobs=2", "sklearn_njobs1": "GridSearchCV\nn_jobs=1"}
COLORS = {"mpisearch_n3": "#1f77b4", "mpisearch_n2": "#9ecae1", "sklearn_njobs2": "#ff7f0e",
          "sklearn_njobs1": "#fdd0a2"}


def draw(result: dict[str, Any], path: Path) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    targets = result["targets"]
    for ax, (key, prob) in zip(axes, result["problems"].items(), strict=True):
        order = [c for c in LABELS if c in prob["contestants"]]
        xs = range(len(order))
        for x, name in zip(xs, order, strict=True):
            c = prob["contestants"][name]
            med, walls = c["wall_s_median"], [w for w in c["wall_s"] if w is not None]
            err = [[med - min(walls)], [max(walls) - med]]
            ax.bar(x, med, color=COLORS[name], edgecolor="black", yerr=err, capsize=4)
            ax.text(x, med, f"{med:.2f}s", ha="center", va="bottom", fontsize=9,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8})
            inner = c.get("search_s_median")  # GridSearchCV: fit_s - refit_s, comparable to search_s
            if inner:
                ax.bar(x, inner, width=0.4, color="none", edgecolor="black", hatch="//")
            if name.startswith("mpisearch") and c.get("rank0_cpu_s_median") is not None:
                ax.text(x, med * 0.55, f"rank 0 CPU\n{c['rank0_cpu_s_median']:.2f}s\n"
                        f"(coordinator loop\n{c['rank0_coordinator_loop_cpu_s_median']:.2f}s)",
                        ha="center", va="center", fontsize=7.5,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5, "alpha": 0.85})
        ax.set_xticks(list(xs), [LABELS[n] for n in order], fontsize=9)
        ax.set_ylabel("wall-clock seconds, whole process (median)")
        r = prob["ratios"]
        lines = [f"{key}: {prob['points']} points x {prob['folds']} folds = {prob['tasks']} tasks",
                 f"mpisearch/n_jobs=2 = {r['mpisearch_n3_vs_sklearn_njobs2']}, "
                 f"mpisearch/n_jobs=1 = {r['mpisearch_n3_vs_sklearn_njobs1']}"]
        tkey = "a_ratio_vs_sklearn_njobs2" if key.startswith("a_") else "b_ratio_vs_sklearn_njobs2"
        t = targets[tkey]
        lines[-1] += f"  [{t['target']}: {'PASS' if t['pass'] else 'FAIL'}]"
        if "speedup_1_to_2_workers_search" in r:
            t = targets["b_speedup_1_to_2_workers"]
            lines.append(f"speedup 1->2 workers: search {r['speedup_1_to_2_workers_search']}, "
                         f"wall {r['speedup_1_to_2_workers_wall']}  [{t['target']}: {'PASS' if t['pass'] else 'FAIL'}]")
        ax.set_title("\n".join(lines), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    title = (f"mpisearch vs scikit-learn GridSearchCV on {result['machine']['cpus']} cores, "
             f"median of {result['repeat']}" + (" (QUICK: shrunk sizes)" if result["quick"] else ""))
    fig.suptitle(title, fontsize=11)
    fig.text(0.5, 0.01, "bars: whole-process wall time (error bars: min..max over repeats); hatched: "
             "search phase without refit (mpisearch: search_s from run.json; GridSearchCV: fit minus refit_time_)",
             ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] == "_rank-cpu":
        return rank_cpu_mode(argv[1:])
    if argv and argv[0] == "_sklearn":
        return sklearn_mode(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shrunk problem sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contestant; medians are reported (3)")
    common.add_output_args(parser, "data, configs and run outputs")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per contestant run")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    result = bench(args)
    common.save(result, args.out_dir, "bench_vs_sklearn", draw)
    return 1 if args.strict and not result["all_pass"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
