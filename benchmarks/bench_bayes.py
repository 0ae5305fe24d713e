#!/usr/bin/env python
"""Bayesian search (``bayes``) against Optuna's GPSampler and TPESampler, scikit-optimize's
gp_minimize and random search, on the same problems and seeds.

Usage (from the repository root; anchors need ``pip install -e ".[bench]"``):

    python benchmarks/bench_bayes.py                    # 10 seeds, every problem
    python benchmarks/bench_bayes.py --quick            # smoke run: 2 seeds, 4 problems, half budgets
    python benchmarks/bench_bayes.py --seeds 5 --jobs 2 --only bayes1,bayes4

Problems: 10 closed-form test functions of 2 to 8 dimensions (minimised; regret =
best value found - the known optimum) and 2 scikit-learn tuning problems scored by
3-fold cross-validation accuracy with integer, log-scaled and categorical parameters
(regret = the best mean accuracy any run of any method found - the run's best).
Budget: 10 evaluations per dimension (at least 25).

Methods: ``bayes1`` and ``bayes4`` (mpisearch bayes with 1 and 4 points in flight: the
oldest pending point finishes first), ``random`` (mpisearch random), ``optuna_gp``
(GPSampler), ``optuna_tpe`` (TPESampler), ``skopt_gp`` (gp_minimize, default settings)
-- all sequential, seeded with the seed. An anchor that cannot be imported is reported
under ``unavailable`` and skipped.

Every finished run is appended to ``OUT/bench_bayes_runs.jsonl`` (one line per problem,
method and seed); ``--resume`` keeps the lines there and runs only what is missing, so a
long run can be extended with more seeds. Anchor runs are also cached in
``--anchor-cache`` (default ``benchmarks/out/anchor_cache.jsonl``, outside git), keyed by
problem, seed, budget, anchor and the versions of the libraries it ran on: a later run of
any out dir takes them from there instead of running them again (``--no-anchor-cache``
runs them anyway; ``--cached-anchors`` runs none, taking only what the cache has), so
``bayes`` can be iterated on against 10 seeds of anchors.

Prints the JSON summary (median regret per problem and method, the issue's targets,
``ask()`` time at 500 observations) and a regret table on stderr; writes
``OUT/bench_bayes.json`` and ``OUT/bench_bayes.png`` (median regret curves). Every process
runs BLAS/OpenMP/torch on one thread.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out"
METHODS = ("bayes1", "bayes4", "random", "optuna_gp", "optuna_tpe", "skopt_gp")
ANCHORS = ("optuna_gp", "optuna_tpe", "skopt_gp")
TARGET_METHODS = ("bayes1", "bayes4", "optuna_gp")
ANCHOR_LIBRARIES = {"optuna_gp": ("optuna", "torch"), "optuna_tpe": ("optuna",), "skopt_gp": ("skopt",)}
DEFAULT_CACHE = DEFAULT_OUT / "anchor_cache.jsonl"
EVALS_PER_DIM = 10
MIN_BUDGET = 25
ASK_TARGET_S = 0.1


# --------------------------------------------------------------------------- problems

@dataclass(frozen=True)
class Problem:
    name: str
    space: dict[str, Any]  # mpisearch dimensions
    f: Callable[[dict[str, Any]], float]  # minimised
    optimum: float | None  # None: sklearn problems (regret against the best of all runs)

    @property
    def dims(self) -> int:
        return len(self.space)

    def budget(self, quick: bool) -> int:
        b = max(EVALS_PER_DIM * self.dims, MIN_BUDGET)
        return b // 2 if quick else b


def _vec(p: dict[str, Any], n: int) -> np.ndarray:
    return np.array([p[f"x{i}"] for i in range(n)], dtype=float)


def _box(n: int, low: float, high: float) -> dict[str, Any]:
    from mpisearch import Real

    return {f"x{i}": Real(low, high) for i in range(n)}


def branin(p: dict[str, Any]) -> float:
    x1, x2 = p["x0"], p["x1"]
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10)


def camel(p: dict[str, Any]) -> float:
    x, y = p["x0"], p["x1"]
    return float((4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2)


HART3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
HART3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
HART6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                    [17, 8, 0.05, 10, 0.1, 14]])
HART6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                           [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
HART_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann(A: np.ndarray, P: np.ndarray) -> Callable[[dict[str, Any]], float]:
    def f(p: dict[str, Any]) -> float:
        x = _vec(p, A.shape[1])
        return -float(HART_ALPHA @ np.exp(-(A * (x - P) ** 2).sum(axis=1)))

    return f


def rosenbrock(p: dict[str, Any]) -> float:
    x = _vec(p, len(p))
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def styblinski(p: dict[str, Any]) -> float:
    x = _vec(p, len(p))
    return float(np.sum(x**4 - 16 * x**2 + 5 * x) / 2)


def ackley(p: dict[str, Any]) -> float:
    x = _vec(p, len(p))
    n = len(x)
    return float(-20 * np.exp(-0.2 * np.sqrt(np.sum(x * x) / n)) - np.exp(np.sum(np.cos(2 * np.pi * x)) / n)
                 + 20 + np.e)


def michalewicz(p: dict[str, Any]) -> float:
    x = _vec(p, len(p))
    i = np.arange(1, len(x) + 1)
    return float(-np.sum(np.sin(x) * np.sin(i * x * x / np.pi) ** 20))


def griewank(p: dict[str, Any]) -> float:
    x = _vec(p, len(p))
    i = np.arange(1, len(x) + 1)
    return float(np.sum(x * x) / 4000 - np.prod(np.cos(x / np.sqrt(i))) + 1)


def closed_form() -> list[Problem]:
    from mpisearch import Real

    return [
        Problem("branin", {"x0": Real(-5, 10), "x1": Real(0, 15)}, branin, 0.397887),
        Problem("camel6", {"x0": Real(-3, 3), "x1": Real(-2, 2)}, camel, -1.0316285),
        Problem("hartmann3", _box(3, 0, 1), hartmann(HART3_A, HART3_P), -3.86278),
        Problem("rosenbrock4", _box(4, -5, 10), rosenbrock, 0.0),
        Problem("styblinski4", _box(4, -5, 5), styblinski, -39.16617 * 4),
        Problem("ackley5", _box(5, -32.768, 32.768), ackley, 0.0),
        Problem("michalewicz5", _box(5, 0, np.pi), michalewicz, -4.687658),
        Problem("hartmann6", _box(6, 0, 1), hartmann(HART6_A, HART6_P), -3.32237),
        Problem("griewank6", _box(6, -600, 600), griewank, 0.0),
        Problem("styblinski8", _box(8, -5, 5), styblinski, -39.16617 * 8),
    ]


class CVScore:
    """Minus the mean 3-fold CV accuracy (picklable, data loaded once per process)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._data: Any = None

    def __call__(self, p: dict[str, Any]) -> float:
        import warnings

        from sklearn.model_selection import StratifiedKFold, cross_val_score

        if self._data is None:
            self._data = _sklearn_data(self.kind)
        est, X, y = self._data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = cross_val_score(est.set_params(**p), X, y, cv=StratifiedKFold(3), error_score=0.0)
        return -float(np.mean(scores))


def _sklearn_data(kind: str) -> tuple[Any, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits, make_classification

    if kind == "svc_digits":
        from sklearn.svm import SVC

        X, y = load_digits(return_X_y=True)
        return SVC(), X[::3] / 16.0, y[::3]
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(n_samples=1500, n_features=20, n_informative=8, random_state=0)
    return HistGradientBoostingClassifier(max_iter=30, random_state=0), X, y


def sklearn_problems() -> list[Problem]:
    from mpisearch import Categorical, Integer, Real

    svc = {"C": Real(1e-3, 1e3, log=True), "gamma": Real(1e-5, 1e1, log=True),
           "kernel": Categorical(["rbf", "sigmoid"]), "shrinking": Categorical([True, False])}
    hgb = {"learning_rate": Real(1e-3, 1.0, log=True), "max_leaf_nodes": Integer(2, 128, log=True),
           "min_samples_leaf": Integer(1, 100, log=True), "l2_regularization": Real(1e-6, 10.0, log=True),
           "max_features": Real(0.1, 1.0)}
    return [Problem("svc_digits", svc, CVScore("svc_digits"), None),
            Problem("hgb_classification", hgb, CVScore("hgb"), None)]


def all_problems() -> list[Problem]:
    return closed_form() + sklearn_problems()


# --------------------------------------------------------------------------- methods

def run_mpisearch(problem: Problem, name: str, seed: int, budget: int, batch: int) -> list[float]:
    """Values at the proposed points; ``batch`` points in flight, the oldest finishes first."""
    from mpisearch.space import SearchSpace
    from mpisearch.strategies import PointResult, make_strategy
    from mpisearch.strategies._base import as_proposal

    kwargs = {"batch": batch} if name != "random" else {}
    strategy = make_strategy(name, SearchSpace(problem.space), n_iter=budget, random_state=seed, **kwargs)
    values: list[float] = []
    pending: list[Any] = []
    while not strategy.finished or pending:
        pending += [as_proposal(p) for p in strategy.ask(batch - len(pending))]
        p = pending.pop(0)
        values.append(problem.f(p.params))
        strategy.tell([PointResult(len(values) - 1, p.params, -values[-1], p.tag)])
    return values


def run_optuna(problem: Problem, sampler: str, seed: int, budget: int) -> list[float]:
    import optuna

    from mpisearch import Categorical, Integer, Real

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=getattr(optuna.samplers, sampler)(seed=seed), direction="minimize")
    values: list[float] = []

    def objective(trial: Any) -> float:
        p = {}
        for k, d in sorted(problem.space.items()):
            if isinstance(d, Real):
                p[k] = trial.suggest_float(k, d.low, d.high, log=d.log)
            elif isinstance(d, Integer):
                p[k] = trial.suggest_int(k, d.low, d.high, log=d.log)
            else:
                assert isinstance(d, Categorical)
                p[k] = trial.suggest_categorical(k, list(d.categories))
        values.append(problem.f(p))
        return values[-1]

    study.optimize(objective, n_trials=budget)
    return values


def run_skopt(problem: Problem, seed: int, budget: int) -> list[float]:
    import skopt
    from skopt import space as sk

    from mpisearch import Categorical, Integer, Real

    names = sorted(problem.space)
    dims = []
    for k in names:
        d = problem.space[k]
        prior = "log-uniform" if getattr(d, "log", False) else "uniform"
        if isinstance(d, Real):
            dims.append(sk.Real(d.low, d.high, prior=prior, name=k))
        elif isinstance(d, Integer):
            dims.append(sk.Integer(d.low, d.high, prior=prior, name=k))
        else:
            assert isinstance(d, Categorical)
            dims.append(sk.Categorical(list(d.categories), name=k))
    values: list[float] = []

    def objective(x: list[Any]) -> float:
        p = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in zip(names, x, strict=True)}
        values.append(problem.f(p))
        return values[-1]

    skopt.gp_minimize(objective, dims, n_calls=budget, random_state=seed)
    return values


def run_job(job: tuple[str, str, int, bool]) -> dict[str, Any]:
    pname, method, seed, quick = job
    _one_thread()
    problem = {p.name: p for p in all_problems()}[pname]
    budget = problem.budget(quick)
    t0 = time.perf_counter()
    if method in ("bayes1", "bayes4"):
        values = run_mpisearch(problem, "bayes", seed, budget, int(method[-1]))
    elif method == "random":
        values = run_mpisearch(problem, "random", seed, budget, 1)
    elif method == "optuna_gp":
        values = run_optuna(problem, "GPSampler", seed, budget)
    elif method == "optuna_tpe":
        values = run_optuna(problem, "TPESampler", seed, budget)
    else:
        values = run_skopt(problem, seed, budget)
    return {"problem": pname, "method": method, "seed": seed, "quick": quick, "budget": budget,
            "values": [float(v) for v in values], "wall_s": time.perf_counter() - t0}


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def available(methods: list[str]) -> tuple[list[str], dict[str, str]]:
    need = {"optuna_gp": ["optuna", "torch"], "optuna_tpe": ["optuna"], "skopt_gp": ["skopt"]}
    ok, missing = [], {}
    for m in methods:
        for module in need.get(m, []):
            try:
                __import__(module)
            except ImportError as exc:
                missing[m] = f"cannot import {module}: {exc}"
        if m not in missing:
            ok.append(m)
    return ok, missing


# --------------------------------------------------------------------------- anchor cache

def anchor_key(problem: Problem, method: str, seed: int, budget: int) -> str:
    """What an anchor run depends on: the problem, seed, budget, anchor and library versions
    (scikit-learn's too: it scores the tuning problems, and skopt's GP is one)."""
    from importlib.metadata import version

    libs = [*ANCHOR_LIBRARIES[method], "numpy", "scipy", "scikit-learn"]
    versions = ",".join(f"{lib}={version('scikit-optimize' if lib == 'skopt' else lib)}" for lib in libs)
    return f"{problem.name}|{method}|seed={seed}|budget={budget}|{versions}"


class AnchorCache:
    """Anchor runs on disk, one JSON line each (its ``key`` and the run's record); appended
    to by every process that runs an anchor, read whole at start."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.runs: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.runs[rec["key"]] = rec

    def get(self, key: str) -> dict[str, Any] | None:
        rec = self.runs.get(key)
        return None if rec is None else {k: v for k, v in rec.items() if k != "key"}

    def put(self, key: str, rec: dict[str, Any]) -> None:
        if self.path is None or key in self.runs:
            return
        self.runs[key] = {"key": key, **rec}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:  # one short write per line: concurrent appenders do not interleave
            fh.write(json.dumps(self.runs[key]) + "\n")


def _job_key(job: tuple[str, str, int, bool]) -> str | None:
    pname, method, seed, quick = job
    if method not in ANCHORS:
        return None
    problem = {p.name: p for p in all_problems()}[pname]
    return anchor_key(problem, method, seed, problem.budget(quick))


# --------------------------------------------------------------------------- ask() time

def ask_timing(n_obs: int = 500, n_asks: int = 10) -> dict[str, Any]:
    """ask() after n_obs scored points of a 4-D mixed space, batch 1 and 4: median and max of
    the wall time and of the process's CPU time (the one that means something on a loaded machine)."""
    from mpisearch import Categorical, Integer, Real
    from mpisearch.space import SearchSpace
    from mpisearch.strategies import PointResult, make_strategy

    _one_thread()
    space = {"a": Real(0.0, 1.0), "b": Real(1e-3, 1e3, log=True), "c": Integer(1, 200, log=True),
             "k": Categorical(["x", "y", "z"])}

    def score(p: dict[str, Any]) -> float:
        return float(-(p["a"] - 0.3) ** 2 - (np.log10(p["b"]) - 1) ** 2 / 9 - (np.log(p["c"]) - 3) ** 2 / 25
                     - 0.1 * (p["k"] == "y"))

    out: dict[str, Any] = {"observations": n_obs, "target_s": ASK_TARGET_S}
    for batch in (1, 4):
        s = make_strategy("bayes", SearchSpace(space), n_iter=n_obs + n_asks, random_state=0, batch=batch)
        s.n_initial = n_obs  # a large design: 500 points scored quickly, then timed model asks
        s._initial = s.cube.design(n_obs, 0)
        for p in s.ask(n_obs):
            s.tell([PointResult(0, p.params, score(p.params), p.tag)])
        wall, cpu = [], []
        for _ in range(n_asks):
            t0, c0 = time.perf_counter(), time.process_time()
            got = s.ask(1)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            s.tell([PointResult(0, got[0].params, score(got[0].params), got[0].tag)])
        out[f"batch{batch}"] = {"median_s": statistics.median(wall), "max_s": max(wall),
                                "cpu_median_s": statistics.median(cpu), "cpu_max_s": max(cpu)}
    return out


# --------------------------------------------------------------------------- summary

def best_so_far(values: list[float]) -> list[float]:
    return list(np.minimum.accumulate(values))


def summarise(runs: list[dict[str, Any]], problems: list[Problem], methods: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prob in problems:
        mine = [r for r in runs if r["problem"] == prob.name]
        if not mine:
            continue
        # bayes1, bayes4 and GPSampler (the targets' methods) on the seeds all three have; the
        # other anchors on every seed they have (the table says how many when fewer)
        common = set.intersection(*({r["seed"] for r in mine if r["method"] == m} for m in TARGET_METHODS
                                    if any(r["method"] == m for r in mine)), set(range(10**6)))
        mine = [r for r in mine if r["seed"] in common or r["method"] not in TARGET_METHODS]
        ref = prob.optimum if prob.optimum is not None else min(min(r["values"]) for r in mine)
        entry: dict[str, Any] = {"dims": prob.dims, "budget": mine[0]["budget"], "optimum": ref,
                                 "optimum_is": "known" if prob.optimum is not None else "best of all runs",
                                 "methods": {}}
        for m in methods:
            rs = sorted((r for r in mine if r["method"] == m), key=lambda r: r["seed"])
            if not rs:
                continue
            curves = np.array([np.array(best_so_far(r["values"])) - ref for r in rs])
            entry["methods"][m] = {
                "seeds": [r["seed"] for r in rs],
                "median_regret": float(np.median(curves[:, -1])),
                "regret_by_seed": [float(c) for c in curves[:, -1]],
                "median_curve": [float(v) for v in np.median(curves, axis=0)],
                "wall_s_median": statistics.median(r["wall_s"] for r in rs),
            }
        out[prob.name] = entry
    return out


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets on the closed-form functions."""
    names = [p.name for p in closed_form() if p.name in summary]
    rows = {}
    for n in names:
        m = summary[n]["methods"]
        if "bayes1" not in m:
            continue
        b1 = m["bayes1"]["median_regret"]
        gp = m.get("optuna_gp", {}).get("median_regret")
        b4 = m.get("bayes4", {}).get("median_regret")
        rows[n] = {"bayes1_over_gp": _ratio(b1, gp), "bayes4_over_bayes1": _ratio(b4, b1)}
    at_most_gp = sum(1 for r in rows.values() if r["bayes1_over_gp"] is not None and r["bayes1_over_gp"] <= 1)
    worst = max((r["bayes1_over_gp"] for r in rows.values() if r["bayes1_over_gp"] is not None), default=None)
    worst4 = max((r["bayes4_over_bayes1"] for r in rows.values() if r["bayes4_over_bayes1"] is not None),
                 default=None)
    return {"per_function": rows, "functions": len(rows), "bayes1_at_most_gp": at_most_gp,
            "target_at_most_gp": "at least 8 of 10", "worst_bayes1_over_gp": worst, "target_worst": 2.0,
            "worst_bayes4_over_bayes1": worst4, "target_bayes4": 1.5}


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, with regrets below 1e-9 counted as 1e-9 (both found the optimum)."""
    if a is None or b is None:
        return None
    return max(a, 1e-9) / max(b, 1e-9)


def table(summary: dict[str, Any], methods: list[str]) -> str:
    head = f"{'problem':20s} {'d':>2s} {'evals':>5s} " + " ".join(f"{m:>11s}" for m in methods)
    lines = [head, "-" * len(head)]
    for name, e in summary.items():
        n = max((len(v["seeds"]) for v in e["methods"].values()), default=0)
        cells = [_cell(e["methods"].get(m), n) for m in methods]
        lines.append(f"{name:20s} {e['dims']:2d} {e['budget']:5d} " + " ".join(cells))
    return "\n".join(lines)


def _cell(m: dict[str, Any] | None, n: int) -> str:
    if m is None:
        return f"{'-':>11s}"
    seeds = f" ({len(m['seeds'])})" if len(m["seeds"]) < n else ""
    return f"{m['median_regret']:.4g}{seeds}".rjust(11)


def draw(summary: dict[str, Any], methods: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(summary)
    cols = 4
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(4.2 * cols, 3.2 * math.ceil(n / cols)))
    for ax, (name, e) in zip(np.ravel(axes), summary.items(), strict=False):
        for m in methods:
            if m in e["methods"]:
                curve = np.maximum(e["methods"][m]["median_curve"], 1e-9)
                ax.plot(np.arange(1, len(curve) + 1), curve, label=m, lw=1.5)
        ax.set_yscale("log")
        ax.set_title(f"{name} (d={e['dims']})", fontsize=9)
        ax.set_xlabel("evaluations", fontsize=8)
        ax.set_ylabel("median regret", fontsize=8)
        ax.grid(alpha=0.3, which="both")
    for ax in np.ravel(axes)[n:]:
        ax.axis("off")
    np.ravel(axes)[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 4 problems, half budgets")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="processes running runs at once (default 1)")
    parser.add_argument("--only", default="", help="comma list of methods (default: all)")
    parser.add_argument("--problems", default="", help="comma list of problems (default: all)")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in the runs file")
    parser.add_argument("--no-ask", action="store_true", help="skip the ask() timing")
    parser.add_argument("--summary-only", action="store_true",
                        help="run nothing: summarise the runs file (implies --resume)")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    parser.add_argument("--anchor-cache", default=str(DEFAULT_CACHE), help="anchor runs cached here")
    parser.add_argument("--no-anchor-cache", action="store_true", help="run the anchors even if cached")
    parser.add_argument("--cached-anchors", action="store_true",
                        help="take the anchors' runs from the cache only: run none (their seeds may be fewer)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_path = out_dir / "bench_bayes_runs.jsonl"
    quick = args.quick
    seeds = list(range(2 if quick else args.seeds))
    problems = all_problems()
    if quick:
        problems = [p for p in problems if p.name in ("branin", "hartmann6", "styblinski4", "svc_digits")]
    if args.problems:
        problems = [p for p in problems if p.name in args.problems.split(",")]
    methods, unavailable = available([m for m in METHODS if not args.only or m in args.only.split(",")])
    done: list[dict[str, Any]] = []
    if (args.resume or args.summary_only) and runs_path.exists():
        done = [json.loads(line) for line in runs_path.read_text().splitlines() if line.strip()]
    elif runs_path.exists():
        runs_path.unlink()
    have = {(r["problem"], r["method"], r["seed"], r["quick"]) for r in done}
    jobs = [(p.name, m, s, quick) for s in seeds for p in problems for m in methods
            if (p.name, m, s, quick) not in have and not args.summary_only]
    cache = AnchorCache(None if args.no_anchor_cache else Path(args.anchor_cache))
    keys = {job: _job_key(job) for job in jobs}
    cached = [cache.get(k) for job in jobs if (k := keys[job]) is not None and cache.get(k) is not None]
    jobs = [job for job in jobs if keys[job] is None or (cache.get(keys[job]) is None and not args.cached_anchors)]
    print(f"[bench_bayes] {len(jobs)} runs to do, {len(cached)} anchor runs cached, {len(done)} kept; "
          f"unavailable: {unavailable}", file=sys.stderr)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, runs_path.open("a") as fh:
        for job, rec in itertools.chain([(None, r) for r in cached], zip(jobs, pool.map(run_job, jobs), strict=True)):
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            done.append(rec)
            if job is None:
                continue
            if keys[job] is not None:
                cache.put(keys[job], rec)
            print(f"[bench_bayes] {rec['problem']} {rec['method']} seed {rec['seed']}: "
                  f"best {min(rec['values']):.5g} in {rec['wall_s']:.1f}s", file=sys.stderr, flush=True)
    runs = [r for r in done if r["quick"] == quick and r["seed"] in seeds]
    all_methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    summary = summarise(runs, problems, all_methods)
    result = {"benchmark": "bench_bayes", "quick": quick, "seeds": seeds, "evals_per_dim": EVALS_PER_DIM,
              "unavailable": unavailable, "machine": machine_info(), "wall_s": time.perf_counter() - t0,
              "load_average": [round(v, 2) for v in os.getloadavg()], "problems": summary,
              "targets": targets(summary)}
    if not args.no_ask:
        result["ask_time"] = ask_timing()
    print(table(summary, all_methods), file=sys.stderr)
    (out_dir / "bench_bayes.json").write_text(json.dumps(result, indent=1) + "\n")
    draw(summary, all_methods, out_dir / "bench_bayes.png",
         f"median regret over up to {len(seeds)} seeds (bayes1, bayes4, optuna_gp: their common seeds)"
         + (" (QUICK)" if quick else ""))
    print(json.dumps(result, indent=1))
    return 0


def machine_info() -> dict[str, Any]:
    import scipy
    import sklearn

    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}


if __name__ == "__main__":
    sys.exit(main())
