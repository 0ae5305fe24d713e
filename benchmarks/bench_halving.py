#!/usr/bin/env python
"""Compute and best score of grid, grid + fold racing, and successive halving (sync, async).

Usage (from the repository root, with the venv active):

    python benchmarks/bench_halving.py            # both problems, about 6-8 min on 2 cores
    python benchmarks/bench_halving.py --quick    # shrunk problems, about 1 min (targets mean nothing)

Every method is a fresh ``mpiexec -n 3 mpisearch run`` (rank 0 coordinates, 2
workers) on the same HDF5 file, grid and folds:

* ``grid``: every point on every fold;
* ``racing``: the same grid with ``search.racing = true``;
* ``halving_sync``: ``strategy = "halving"``, ``mode = "sync"`` (scikit-learn's
  HalvingGridSearchCV schedule: every rung waits for its slowest task);
* ``halving_async``: the same candidates with ASHA promotion.

Problems: (1) SVC on digits, C (6 values, log) x gamma (10 values, log) = 60
points, halving on ``n_samples``; (2) RandomForestClassifier (81 trees at full
resource) on 3,000 x 20 synthetic rows, max_depth x max_features x
min_samples_leaf = 60 points, halving on ``n_estimators`` (3, 9, 27, 81);
(3) ``simulated_n9``: halving only, at ``mpiexec -n 9`` (8 workers), with
:class:`mpisearch.testing.SimulatedClassifier` (fit sleeps 0.5-2 s per 1,000
training rows, so 9 ranks share 2 cores) on 10,000 rows, 81 candidates, 5 rungs
(123 .. 9,963 rows): the case where rung barriers cost a synchronous schedule
the most (the last rungs have fewer tasks than there are workers).

Reported per method: ``compute_s`` (the workers' busy seconds from run.json:
every fit and score they ran, also results dropped after racing stopped a
point), ``fit_s`` (sum of fit + score times in the journal), for grid and
racing ``compute_grid_equiv_s`` (the grid run's own seconds for each task the
method ran, plus its dropped late results: load changes between runs on a
shared machine cancel out of this ratio; the racing target uses it), tasks, worker
utilisation (busy / (workers x search time)), wall time, best point and score,
and the grid's score of the chosen point (what the shortcut cost in quality).
Targets: racing compute <= 0.6 x grid with the grid's best point; async halving
utilisation > 0.9 where sync halving's is below.

Prints one JSON document (progress on stderr), saved to
benchmarks/out/bench_halving.json, and draws benchmarks/out/bench_halving.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import (
    add_output_args,
    journal_entries,
    launch_ok,
    load_average,
    log,
    pyplot,
    save,
    toml_config,
    tool,
    work_dir,
)

RANKS = 3
METHODS = ("grid", "racing", "halving_sync", "halving_async")


def problems(quick: bool) -> dict[str, dict[str, Any]]:
    svc_c = [0.01, 0.1, 1, 10, 100, 1000]
    svc_gamma = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3]
    rf = {"max_depth": [2, 4, 8, 16, "None"], "max_features": [0.05, 0.2, 0.5, 1.0],
          "min_samples_leaf": [1, 10, 50]}
    if quick:
        svc_c, svc_gamma = svc_c[1:4], svc_gamma[2:7]
        rf = {"max_depth": [2, 8], "max_features": [0.2, 1.0], "min_samples_leaf": [1, 50]}
    return {
        "svc_digits": {"data": ("digits", []), "class": "sklearn.svm.SVC", "params": {},
                       "space": {"C": svc_c, "gamma": svc_gamma}, "halving": {"factor": 3}},
        "rf_synthetic": {"data": ("classification", ["--rows", "1000" if quick else "3000", "--features", "20",
                                                     "--seed", "0"]),
                         "class": "sklearn.ensemble.RandomForestClassifier",
                         "params": {"random_state": 0, "n_estimators": 27 if quick else 81},
                         "space": rf,
                         "halving": {"factor": 3, "resource": "n_estimators", "min_resources": "exhaust",
                                     "max_resources": 27 if quick else 81}},
        "simulated_n9": {"data": ("classification", ["--rows", "2000" if quick else "10000", "--features", "2",
                                                     "--seed", "0"]),
                         "class": "mpisearch.testing.SimulatedClassifier", "params": {},
                         "space": {"quality": [round(0.5 + 0.01 * i, 2) for i in range(9 if quick else 27)],
                                   "seconds": [0.5, 1.0, 2.0]},
                         "halving": {"factor": 3}, "ranks": 9, "methods": ("halving_sync", "halving_async")},
    }


def write_config(path: Path, prob: dict[str, Any], data: Path, method: str) -> None:
    search: dict[str, Any] = {"random_state": 0}
    tables = {"data": {"path": str(data)}, "estimator": {"class": prob["class"], "params": prob["params"]},
              "space": prob["space"], "search": search}
    if method == "racing":
        search["racing"] = True
    if method.startswith("halving"):
        search["strategy"] = "halving"
        tables["search.halving"] = {"mode": method.split("_")[1], **prob["halving"]}
    path.write_text(toml_config(tables), encoding="utf-8")


def run_method(work: Path, name: str, prob: dict[str, Any], data: Path, method: str, timeout: float) -> dict[str, Any]:
    config, out = work / f"{name}_{method}.toml", work / f"{name}_{method}"
    write_config(config, prob, data, method)
    ranks = prob.get("ranks", RANKS)
    cmd = [tool("mpiexec"), "-n", str(ranks), tool("mpisearch"), "run", str(config), "--out", str(out), "--quiet",
           "--force"]  # a reused --work holds the runs of an earlier invocation
    wall = launch_ok(cmd, timeout).wall_s
    run = json.loads((out / "run.json").read_text())
    best = json.loads((out / "best.json").read_text())
    journal = journal_entries(out)
    tasks = [(params_key(e["params"], None), e.get("n_resources"), e["fold"]) for e in journal if "fold" in e]
    return {"task_keys": tasks, "late_s": run.get("late_s", 0.0), "ranks": ranks, "wall_s": wall,
            "search_s": run["search_s"], "compute_s": run["busy_s"],
            "fit_s": sum(e["fit_time"] + e["score_time"] for e in journal if "fold" in e), "tasks": run["tasks"],
            "utilisation": run["utilisation"], "useful_utilisation": run["useful_utilisation"],
            "duplicate_s": run["duplicate_s"], "raced_points": run.get("raced_points", 0),
            "raced_tasks": run.get("raced_tasks", 0), "late_results": run.get("late_results", 0),
            "best_params": best["best_params"], "best_score": best["best_score"], "points": _points(out)}


def _points(out: Path) -> int:
    return len((out / "cv_results.csv").read_text().splitlines()) - 1


def grid_scores(out: Path) -> dict[str, float]:
    """Mean score of every grid point, by its params JSON (to score other methods' choices)."""
    import csv

    with (out / "cv_results.csv").open() as fh:
        return {row["params"]: float(row["mean_test_score"]) for row in csv.DictReader(fh)}


def task_costs(out: Path) -> dict[tuple[str, int], float]:
    """Fit + score seconds of every (point, fold) task of a grid run, from its journal."""
    entries = journal_entries(out)
    return {(params_key(e["params"], None), e["fold"]): e["fit_time"] + e["score_time"] for e in entries
            if "fold" in e}


def params_key(params: dict[str, Any], drop: str | None) -> str:
    return json.dumps({k: v for k, v in params.items() if k != drop}, sort_keys=True)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    work = work_dir(args.work, "bench_halving_")
    result: dict[str, Any] = {"ranks": RANKS, "load_before": load_average(), "problems": {}}
    for name, prob in problems(args.quick).items():
        if args.only and name not in args.only:
            continue
        kind, extra = prob["data"]
        data = work / f"{name}.h5"
        subprocess.run([tool("mpisearch"), "data", "make", kind, "--out", str(data), *extra], check=True,
                       capture_output=True)
        runs: dict[str, Any] = {}
        for method in prob.get("methods", METHODS):
            log(f"{name}: {method}")
            runs[method] = run_method(work, name, prob, data, method, args.timeout)
        if "grid" in runs:
            scores = grid_scores(work / f"{name}_grid")
            drop = prob["halving"].get("resource")
            costs = task_costs(work / f"{name}_grid")
            for r in runs.values():
                if r is runs["grid"] or r is runs.get("racing"):
                    # the grid's own time for each task run (+ dropped late results): run-to-run load
                    # changes on a shared machine cancel out of this ratio, unlike busy seconds
                    r["compute_grid_equiv_s"] = sum(costs[k[0], k[2]] for k in r["task_keys"]) + r["late_s"]
                    r["compute_equiv_vs_grid"] = r["compute_grid_equiv_s"] / sum(costs.values())
                r["grid_score_of_choice"] = scores.get(params_key(r["best_params"], drop))
                r["compute_vs_grid"] = r["compute_s"] / runs["grid"]["compute_s"]
                r["same_best_as_grid"] = params_key(r["best_params"], drop) == params_key(
                    runs["grid"]["best_params"], drop)
        result["problems"][name] = {"methods": runs}
    result["load_after"] = load_average()
    for prob in result["problems"].values():
        for r in prob["methods"].values():
            r.pop("task_keys")
    result["targets"] = targets(result)
    return result


def targets(result: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, prob in result["problems"].items():
        m = prob["methods"]
        if "racing" in m:
            r = m["racing"]
            out[f"{name}_racing"] = {"compute_vs_grid": r["compute_vs_grid"],
                                     "compute_equiv_vs_grid": r["compute_equiv_vs_grid"],
                                     "same_best": r["same_best_as_grid"],
                                     "met": r["compute_equiv_vs_grid"] <= 0.6 and r["same_best_as_grid"]}
        # useful: busy time less straggler copies that lost (the scheduler fills idle workers with them)
        sync, fast = m["halving_sync"]["useful_utilisation"], m["halving_async"]["useful_utilisation"]
        out[f"{name}_async_utilisation"] = {
            "ranks": m["halving_async"]["ranks"], "async": fast, "sync": sync,
            "met": (fast > 0.9 and sync < 0.9) if sync < 0.9 else "n/a: sync is not below 0.9 here"}
    return out


def draw(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    probs = list(result["problems"])
    fig, axes = plt.subplots(2, len(probs), figsize=(6 * len(probs), 7), squeeze=False)
    for col, name in enumerate(probs):
        methods = result["problems"][name]["methods"]
        labels = list(methods)
        compute = [methods[m]["compute_s"] for m in labels]
        colors = ["#777", "#2a7", "#c63", "#36c"][-len(labels):]
        ax = axes[0][col]
        bars = ax.bar(labels, compute, color=colors)
        for bar, m in zip(bars, labels, strict=True):
            ax.annotate(f"best {methods[m]['best_score']:.4f}\n{methods[m]['tasks']} tasks",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{name}: compute (workers' busy s), N={methods[labels[0]]['ranks']}")
        ax.set_ylabel("seconds")
        ax.set_ylim(0, max(compute) * 1.3)
        ax = axes[1][col]
        ax.bar(labels, [methods[m]["useful_utilisation"] for m in labels], color=colors)
        ax.axhline(0.9, color="k", linestyle="--", linewidth=1)
        ax.set_ylim(0, 1.05)
        ax.set_title("useful utilisation (busy less thrown-away copies / workers x search time)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shrunk problems, for a smoke run")
    add_output_args(parser, "data, configs and run outputs", keep=False)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per run")
    parser.add_argument("--only", nargs="+", help="run only these problems (svc_digits, rf_synthetic, simulated_n9)")
    args = parser.parse_args(argv)
    save(bench(args), args.out_dir, "bench_halving", draw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
