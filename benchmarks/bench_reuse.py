#!/usr/bin/env python
"""Reuse (warm-start chains, pipeline prefix groups) against GridSearchCV, whole processes.

Usage (from the repository root, with the venv active):

    python benchmarks/bench_reuse.py                 # the issue's sizes: long (see README)
    python benchmarks/bench_reuse.py --quick         # shrunk sizes, a few minutes

Problems: (a) RandomForestClassifier, n_estimators [25, 50, 100, 200] x 3 max_features,
5 folds, 10k x 40 synthetic (warm-start chains); (b) Pipeline(StandardScaler,
PCA(3 n_components), SVC over 4 C x 3 gamma) on 20k rows (prefix groups); (c) SVC on
digits, where nothing can be reused (no slowdown). Contestants, each a fresh process
timed from launch to exit, interleaved, their order rotating per repeat:
``mpiexec -n 3 mpisearch run`` with reuse on (the default) and off (the anchor of the
same code without reuse), ``GridSearchCV(n_jobs=2)`` and ``GridSearchCV(n_jobs=1)`` on
the same HDF5 file, grid, folds and scorer, refit included. Every split's test score of
each mpisearch run must equal GridSearchCV's to 1e-12. Medians over ``--repeat`` runs.

Prints JSON on stdout (also benchmarks/out/bench_reuse.json) and draws bench_reuse.png.
"""

from __future__ import annotations

# Only the standard library at the top: the _sklearn mode starts with this file.
import argparse
import csv
import importlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as common

THIS = Path(__file__).resolve()
TARGETS = {"a": ("<=", 0.6), "b": ("<=", 0.5), "c": ("<=", 1.02)}  # mpisearch / GridSearchCV(n_jobs=2)
SCORE_ATOL = 1e-12
CONTESTANTS = ("mpisearch", "mpisearch_off", "sklearn_njobs2", "sklearn_njobs1")


def _step(name: str, cls: str, **params: Any) -> list[Any]:
    return [name, {"class": cls, "params": params}]


def problems(quick: bool) -> dict[str, dict[str, Any]]:
    """Data, estimator (an mpisearch [estimator] table), grid and folds of each problem."""
    rows_a, rows_b = (2000, 3000) if quick else (10000, 20000)
    return {
        "a": {"description": "RandomForest, n_estimators x max_features (warm-start chains)",
              "data": ["classification", rows_a, 20 if quick else 40],
              "estimator": {"class": "sklearn.ensemble.RandomForestClassifier", "params": {"random_state": 0}},
              "grid": {"n_estimators": [10, 20, 40, 80] if quick else [25, 50, 100, 200],
                       "max_features": [2, 4, 8] if quick else [3, 6, 12]},
              "folds": 3 if quick else 5},
        "b": {"description": "Pipeline(StandardScaler, PCA, SVC) (prefix groups)",
              "data": ["classification", rows_b, 40],
              "estimator": {"class": "sklearn.pipeline.Pipeline", "params": {"steps": [
                  _step("scale", "sklearn.preprocessing.StandardScaler"),
                  _step("pca", "sklearn.decomposition.PCA", random_state=0),
                  _step("svc", "sklearn.svm.SVC")]}},
              "grid": {"pca__n_components": [3, 6, 10], "svc__C": [0.1, 1.0, 10.0, 100.0],
                       "svc__gamma": [0.01, 0.1, 1.0]},
              "folds": 3 if quick else 5},
        "c": {"description": "SVC on digits: nothing to reuse",
              "data": ["digits", None, None],
              "estimator": {"class": "sklearn.svm.SVC", "params": {}},
              "grid": {"C": [1.0, 10.0, 100.0, 1000.0] if quick else [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0],
                       "gamma": [0.0001, 0.0005, 0.001] if quick else [0.0001, 0.0002, 0.0005, 0.001, 0.002]},
              "folds": 3 if quick else 5},
    }


# --------------------------------------------------------------------------- the GridSearchCV process

def build(table: dict[str, Any]) -> Any:
    """An estimator from an [estimator] table (nested step tables included), as the config builds it."""
    module, _, name = table["class"].rpartition(".")
    params = dict(table.get("params", {}))
    if "steps" in params:
        params["steps"] = [(step_name, build(step)) for step_name, step in params["steps"]]
    return getattr(importlib.import_module(module), name)(**params)


def sklearn_mode(argv: list[str]) -> int:
    """``_sklearn SPEC.json N_JOBS RESULT.json``: GridSearchCV on the same file and grid."""
    spec_path, n_jobs, result_path = argv
    spec = json.loads(Path(spec_path).read_text())
    import h5py
    from sklearn.model_selection import GridSearchCV

    with h5py.File(spec["data_path"], "r") as fh:
        X, y = fh["X"][...], fh["y"][...]
    search = GridSearchCV(build(spec["estimator"]), spec["grid"], cv=spec["folds"], scoring="accuracy",
                          n_jobs=int(n_jobs), refit=True).fit(X, y)
    res = search.cv_results_
    splits = [k for k in res if k.startswith("split") and k.endswith("_test_score")]
    out = {"params": [json.dumps(p, sort_keys=True) for p in res["params"]],
           "scores": {k: [float(v) for v in res[k]] for k in [*splits, "mean_test_score"]}}
    Path(result_path).write_text(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- driver

def prepare(key: str, prob: dict[str, Any], work: Path) -> None:
    name, rows, features = prob["data"]
    data = work / f"{key}.h5"
    cmd = [sys.executable, "-m", "mpisearch", "data", "make", name, "--out", str(data), "--seed", "0"]
    if rows:
        cmd += ["--rows", str(rows), "--features", str(features)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    for reuse in (True, False):
        (work / f"{key}.{'on' if reuse else 'off'}.toml").write_text(common.toml_config({
            "data": {"path": str(data), "X": "X", "y": "y"},
            "estimator": prob["estimator"], "space": prob["grid"],
            "search": {"strategy": "grid", "warm_start_chains": reuse, "prefix_cache": reuse},
            "cv": {"folds": prob["folds"]}, "scoring": {"metrics": "accuracy", "refit": True},
        }, comment=f"written by benchmarks/bench_reuse.py: {prob['description']}"))
    (work / f"{key}.sklearn.json").write_text(json.dumps({
        "data_path": str(data), "estimator": prob["estimator"], "grid": prob["grid"], "folds": prob["folds"]}))


def run_mpisearch(config: Path, out: Path, timeout: float) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [common.tool("mpiexec"), "-n", "3", sys.executable, "-m", "mpisearch", "run", str(config), "--out", str(out)]
    job = common.launch_ok(cmd, timeout, logs=out.parent / out.name)
    info = json.loads((out / "run.json").read_text())
    with (out / "cv_results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    scores = {k: [float(r[k]) for r in rows] for k in rows[0] if k.endswith("_test_score")}
    params = [json.dumps(json.loads(r["params"]), sort_keys=True) for r in rows]
    return {"wall_s": job.wall_s, "search_s": info.get("search_s"), "busy_s": info.get("busy_s"),
            "reused": info.get("reused"), "params": params, "scores": scores}


def run_sklearn(spec: Path, n_jobs: int, work: Path, tag: str, timeout: float) -> dict[str, Any]:
    result = work / f"{tag}.result.json"
    job = common.launch_ok([sys.executable, str(THIS), "_sklearn", str(spec), str(n_jobs), str(result)], timeout,
                           logs=work / tag)
    return {"wall_s": job.wall_s, **json.loads(result.read_text())}


def score_diff(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    """The largest difference of any split's (and the mean) test score, points matched by parameters."""
    order = {p: i for i, p in enumerate(ours["params"])}
    if sorted(order) != sorted(theirs["params"]):
        return float("inf")
    diff = 0.0
    for key, values in theirs["scores"].items():
        mine = ours["scores"][key]
        diff = max(diff, *(abs(mine[order[p]] - v) for p, v in zip(theirs["params"], values, strict=True)))
    return diff


def bench(args: argparse.Namespace) -> dict[str, Any]:
    probs = {k: v for k, v in problems(args.quick).items() if k in args.problems}
    work = common.work_dir(args.work, "bench_reuse.")
    load_before = common.load_average()
    for key, prob in probs.items():
        prepare(key, prob, work)
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {k: {c: [] for c in CONTESTANTS} for k in probs}
    for rep in range(args.repeat):
        for key in probs:
            order = CONTESTANTS[rep % 4:] + CONTESTANTS[:rep % 4]
            for c in order:
                tag = f"{key}.{c}.r{rep}"
                if c.startswith("mpisearch"):
                    config = work / f"{key}.{'off' if c.endswith('off') else 'on'}.toml"
                    s = run_mpisearch(config, work / tag, args.timeout)
                else:
                    s = run_sklearn(work / f"{key}.sklearn.json", int(c[-1]), work, tag, args.timeout)
                samples[key][c].append(s)
                common.log(f"repeat {rep + 1}/{args.repeat} {key} {c}: {s['wall_s']:.2f} s")
    result: dict[str, Any] = {"benchmark": "bench_reuse", "quick": args.quick, "repeat": args.repeat,
                              "statistic": "median over repeats", "machine": common.machine_info(),
                              "load_average_before": load_before, "problems": {}, "targets": {}}
    for key, prob in probs.items():
        result["problems"][key] = entry = summary(prob, samples[key])
        op, threshold = TARGETS[key]
        result["targets"][key] = common.target_entry(
            f"({key}) mpisearch -n 3 wall / GridSearchCV(n_jobs=2) wall, scores within {SCORE_ATOL:g}",
            entry["ratios"]["mpisearch_vs_sklearn_njobs2"] if entry["scores_identical"] else None, op, threshold)
    result["all_pass"] = all(t["pass"] for t in result["targets"].values())
    if args.quick:
        result["note"] = "quick run: shrunk sizes; the targets are computed but are not the issue's"
    result["load_average_after"] = common.load_average()
    if not args.keep_work and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return result


def summary(prob: dict[str, Any], samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    walls = {c: [round(s["wall_s"], 3) for s in ss] for c, ss in samples.items()}
    med = {c: common.median(w) for c, w in walls.items()}
    reference = samples["sklearn_njobs1"][-1]
    diffs = [score_diff(s, reference) for c in ("mpisearch", "mpisearch_off") for s in samples[c]]
    return {"description": prob["description"], "data": prob["data"], "estimator": prob["estimator"],
            "grid": prob["grid"], "folds": prob["folds"], "wall_s": walls, "wall_s_median": med,
            "busy_s_median": {c: common.median(s["busy_s"] for s in samples[c]) for c in CONTESTANTS[:2]},
            "reused": samples["mpisearch"][-1]["reused"],
            "max_score_diff_vs_sklearn": max(diffs), "scores_identical": max(diffs) <= SCORE_ATOL,
            "ratios": {"mpisearch_vs_sklearn_njobs2": common.ratio(med["mpisearch"], med["sklearn_njobs2"]),
                       "mpisearch_vs_sklearn_njobs1": common.ratio(med["mpisearch"], med["sklearn_njobs1"]),
                       "mpisearch_vs_mpisearch_off": common.ratio(med["mpisearch"], med["mpisearch_off"])}}


def draw(result: dict[str, Any], path: Path) -> None:
    plt = common.pyplot()
    probs = result["problems"]
    fig, axes = plt.subplots(1, len(probs), figsize=(4.5 * len(probs), 4.6), squeeze=False)
    colors = ("#1f77b4", "#9ecae1", "#ff7f0e", "#fdd0a2")
    labels = ("mpisearch\n-n 3", "mpisearch -n 3\nreuse off", "GridSearchCV\nn_jobs=2", "GridSearchCV\nn_jobs=1")
    for ax, (key, prob) in zip(axes[0], probs.items(), strict=True):
        anchor = prob["wall_s_median"]["sklearn_njobs2"]
        for x, c in enumerate(CONTESTANTS):
            value = prob["wall_s_median"][c] / anchor
            ax.bar(x, value, color=colors[x], edgecolor="black")
            ax.text(x, value, f"{value:.2f}", ha="center", va="bottom", fontsize=9)
        t = result["targets"][key]
        ax.axhline(TARGETS[key][1], color="red", linestyle="--", linewidth=1)
        ax.set_xticks(range(4), labels, fontsize=8)
        ax.set_ylabel("wall time / GridSearchCV(n_jobs=2)")
        ax.set_title(f"({key}) {prob['description']}\ntarget {t['target']}: "
                     f"{'PASS' if t['pass'] else 'FAIL'}", fontsize=9)
    fig.suptitle(f"bench_reuse: whole processes, median of {result['repeat']}, load "
                 f"{result['load_average_before'][0]}" + (" (QUICK sizes)" if result["quick"] else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_sklearn":
        return sklearn_mode(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shrunk sizes, for a fast check")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contestant; medians are reported (3)")
    parser.add_argument("--problems", default="abc", help="which problems to run (default: abc)")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds allowed per run")
    common.add_output_args(parser, "data, configs and run outputs")
    args = parser.parse_args(argv)
    started = time.time()
    result = bench(args)
    result["bench_s"] = round(time.time() - started, 1)
    common.save(result, args.out_dir, "bench_reuse", draw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
