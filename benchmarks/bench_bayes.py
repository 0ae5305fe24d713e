#!/usr/bin/env python
"""Bayesian strategy (GP + EI) against random search, Optuna's samplers and the issue's anchors.

Usage (from the repository root, with the venv active):

    python benchmarks/bench_bayes.py            # full: 5 seeds, about 10-12 min on 2 loaded cores
    python benchmarks/bench_bayes.py --quick    # smoke run: 2 seeds, smaller budgets, about 2 min

Parts:

(a) closed form, Branin (2-D) and Hartmann-6 (the functions of tests/test_bayes.py):
    regret (best value found minus the optimum) against the number of evaluations,
    median over seeds, for ``bayes`` and ``random`` (mpisearch strategies driven
    sequentially, one point at a time as in the test harness ``minimise``), and for
    Optuna's TPESampler and GPSampler when ``optuna`` (and, for GPSampler, ``torch``)
    import; the regret at budget b is the best of the first b evaluations of one run
    of the largest budget (for bayes this equals a run with n_iter=b whenever b >=
    n_initial: Branin 5, Hartmann-6 13; checked at b=30, seed 0). Also the time of one
    ``ask()`` at 500 observations in a 4-D mixed space (target < 0.2 s).
(b) two real searches, in one process (MPISearchCV without MPI), cv=3, ~30 evaluations:
    SVC C/gamma (log Real) on digits, and HistGradientBoostingClassifier (learning_rate
    log Real, max_leaf_nodes log Integer, l2_regularization log Real, max_iter=50) on
    ``mpisearch.data.make.make("classification", rows=3000, features=20)``; best mean
    CV accuracy against evaluations for bayes and random. BLAS/OpenMP are limited to one
    thread here, as mpisearch worker ranks do (two OpenMP threads for HGB on a loaded
    2-core machine were 10-15x slower).
(c) worker utilisation of MPI searches on the SVC problem at N = 3 and oversubscribed
    N = 8 ranks (``mpiexec -n N python benchmarks/bench_bayes.py --child ...``), for
    bayes and, as the no-surrogate reference, random.

Prints one JSON document on stdout, also saved to benchmarks/out/bench_bayes.json, and
draws benchmarks/out/bench_bayes.png. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    add_output_args,
    launch,
    load_average,
    log,
    machine_info,
    median,
    pyplot,
    repo_module,
    save,
    tool,
)

THIS = Path(__file__).resolve()

# Median regret on Branin at 30 evaluations, 5 seeds, measured on this machine (issue 10, item 7).
ANCHORS_BRANIN_30 = {"random": 1.31, "optuna_tpe": 0.071, "optuna_gp": 0.0024, "skopt_gp_minimize": 0.0059}
ASK_TARGET_S = 0.2


# --------------------------------------------------------------------------- (a) closed form

def closed_form_problems() -> dict[str, tuple[Any, dict[str, Any], float]]:
    """Branin and Hartmann-6 from the test suite: name -> (f, space, optimum)."""
    return dict(repo_module("tests/test_bayes.py").PROBLEMS)


def trace_mpisearch(name: str, f: Any, space: dict[str, Any], seed: int, budget: int) -> dict[str, Any]:
    """Values of f at the points a strategy proposes, one at a time (lag 1), score = -f."""
    from mpisearch.space import SearchSpace
    from mpisearch.strategies import PointResult, make_strategy

    strategy = make_strategy(name, SearchSpace(space), n_iter=budget, random_state=seed)
    strategy.bind(1)
    values: list[float] = []
    points: list[dict[str, Any]] = []
    ask_s: list[float] = []
    stalled = False
    while not strategy.finished:
        t0 = time.perf_counter()
        got = strategy.ask(1)
        ask_s.append(time.perf_counter() - t0)
        if not got:  # nothing pending, not finished, nothing to propose: the strategy is stuck
            stalled = True
            break
        point = got[0]
        value = float(f(point))
        points.append(point)
        values.append(value)
        strategy.tell([PointResult(0, point, -value)])
    return {"values": values, "points": points, "ask_s": ask_s, "stalled": stalled}


def trace_optuna(sampler_name: str, f: Any, space: dict[str, Any], seed: int, budget: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = getattr(optuna.samplers, sampler_name)(seed=seed)
    study = optuna.create_study(sampler=sampler, direction="minimize")
    values: list[float] = []

    def objective(trial: Any) -> float:
        p = {k: trial.suggest_float(k, d.low, d.high, log=d.log) for k, d in sorted(space.items())}
        v = float(f(p))
        values.append(v)
        return v

    study.optimize(objective, n_trials=budget)
    return {"values": values, "stalled": False}


def optuna_methods(gp_budget: int) -> dict[str, dict[str, Any]]:
    """Which Optuna samplers can run here, and why not otherwise."""
    out: dict[str, dict[str, Any]] = {}
    try:
        import optuna

        version = optuna.__version__
        out["optuna_tpe"] = {"sampler": "TPESampler", "available": True, "version": version}
        try:
            import torch

            torch.set_num_threads(1)
            out["optuna_gp"] = {"sampler": "GPSampler", "available": True, "version": version,
                                "torch": torch.__version__, "torch_threads": 1, "max_budget": gp_budget}
        except Exception as exc:  # noqa: BLE001
            out["optuna_gp"] = {"available": False, "why": f"GPSampler needs torch: {exc}"}
    except Exception as exc:  # noqa: BLE001
        out["optuna_tpe"] = {"available": False, "why": f"optuna not importable: {exc}"}
        out["optuna_gp"] = {"available": False, "why": f"optuna not importable: {exc}"}
    return out


def regrets_at(values: list[float], optimum: float, budgets: list[int]) -> list[float | None]:
    out: list[float | None] = []
    for b in budgets:
        out.append(float(min(values[:b]) - optimum) if len(values) >= b else None)
    return out


def part_closed_form(seeds: list[int], budgets: list[int], gp_budget: int) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    problems = closed_form_problems()
    extra = optuna_methods(gp_budget)
    top = max(budgets)
    result: dict[str, Any] = {"budgets": budgets, "seeds": seeds, "optuna": extra, "blas_threads": 1,
                              "problems": {}}
    for pname, (f, space, optimum) in problems.items():
        entry: dict[str, Any] = {"dims": len(space), "optimum": optimum, "methods": {}}
        methods = ["bayes", "random"] + [m for m in ("optuna_tpe", "optuna_gp") if extra[m]["available"]]
        for method in methods:
            budget = min(top, gp_budget) if method == "optuna_gp" else top
            runs, walls = [], []
            for seed in seeds:
                t0 = time.perf_counter()
                if method in ("bayes", "random"):
                    with threadpool_limits(limits=1):
                        tr = trace_mpisearch(method, f, space, seed, budget)
                else:
                    tr = trace_optuna(extra[method]["sampler"], f, space, seed, budget)
                walls.append(time.perf_counter() - t0)
                runs.append(tr)
                log(f"(a) {pname} {method} seed {seed}: regret@{budget} "
                    f"{min(tr['values']) - optimum:.3g} in {walls[-1]:.1f}s"
                    + (" STALLED" if tr["stalled"] else ""))
            per_seed = [regrets_at(r["values"], optimum, budgets) for r in runs]
            med = [median([ps[k] for ps in per_seed]) for k in range(len(budgets))]
            m: dict[str, Any] = {
                "median_regret": med,
                "min_regret": [min((ps[k] for ps in per_seed if ps[k] is not None), default=None)
                               for k in range(len(budgets))],
                "max_regret": [max((ps[k] for ps in per_seed if ps[k] is not None), default=None)
                               for k in range(len(budgets))],
                "regret_by_seed": per_seed,
                "evaluations_run": budget,
                "wall_s_per_seed_median": median(walls),
                "stalled_seeds": [s for s, r in zip(seeds, runs, strict=True) if r["stalled"]],
            }
            if method == "bayes":
                asks = [a for r in runs for a in r["ask_s"]]
                m["ask_s_median_max_over_run"] = [median(asks), max(asks)] if asks else None
                # Prefix check: a run with n_iter=30 proposes the first 30 points of the n_iter=top run.
                b = 30 if 30 <= top else top
                if seeds and b >= 1:
                    with threadpool_limits(limits=1):
                        short = trace_mpisearch("bayes", f, space, seeds[0], b)
                    m["prefix_check"] = {"budget": b, "seed": seeds[0],
                                         "same_points": short["points"] == runs[0]["points"][:b]}
            entry["methods"][method] = m
        r60 = entry["methods"]["bayes"]["median_regret"][-1], entry["methods"]["random"]["median_regret"][-1]
        entry["random_over_bayes_at_max_budget"] = (r60[1] / r60[0]) if r60[0] else None
        result["problems"][pname] = entry
    if 30 in budgets:
        k = budgets.index(30)
        br = result["problems"]["branin"]["methods"]
        result["branin_at_30_vs_anchors"] = {
            "measured_median_regret": {m: br[m]["median_regret"][k] for m in br},
            "anchors_issue_10": ANCHORS_BRANIN_30,
        }
    return result


# --------------------------------------------------------------------------- ask() time

def ask_timing(n_obs: int = 500, n_asks: int = 20, lags: tuple[int, ...] = (1, 8)) -> dict[str, Any]:
    """ask() at 500 observations with the default BLAS threads (as rank 0 runs) and with one."""
    from threadpoolctl import threadpool_info, threadpool_limits

    out: dict[str, Any] = {"default_blas_threads": [p.get("num_threads") for p in threadpool_info()
                                                    if p.get("user_api") == "blas"]}
    out["default_threads"] = _ask_timing(n_obs, n_asks, lags)
    with threadpool_limits(limits=1):
        out["blas_1_thread"] = _ask_timing(n_obs, n_asks, lags)
    return out


def _ask_timing(n_obs: int, n_asks: int, lags: tuple[int, ...]) -> dict[str, Any]:
    """ask(1) at n_obs scored observations in a 4-D mixed space, median and max over n_asks.

    The n_obs observations are put into the strategy's own state (points, index, scores)
    rather than proposed one by one (which would take minutes); every timed ask then goes
    through the public ask()/tell(). lag 1: sequential; lag 8: 8 workers, so each proposal
    also carries 7 pending kriging-believer fantasies.
    """
    import numpy as np

    from mpisearch import Integer, Real
    from mpisearch.space import SearchSpace, point_key
    from mpisearch.strategies import PointResult, make_strategy

    space = {"a": Real(0.0, 1.0), "b": Real(1e-3, 1e3, log=True), "c": Integer(1, 200, log=True), "d": Real(-5, 5)}

    def f(p: dict[str, Any]) -> float:
        return float(-(p["a"] - 0.3) ** 2 - (np.log10(p["b"]) - 1) ** 2 / 9 - (np.log(p["c"]) - 3) ** 2 / 25
                     + 0.3 * np.sin(3 * p["d"]))

    out: dict[str, Any] = {"space": "a: Real(0,1), b: Real(1e-3,1e3,log), c: Integer(1,200,log), d: Real(-5,5)",
                           "observations": n_obs, "asks": n_asks, "target_s": ASK_TARGET_S}
    for lag in lags:
        strategy = make_strategy("bayes", SearchSpace(space), n_iter=n_obs + n_asks + lag, random_state=0)
        strategy.bind(lag)
        rng = np.random.default_rng(1)
        for i in range(n_obs):
            p = {n: space[n].sample(rng) for n in sorted(space)}
            strategy.points.append(p)
            strategy._index.setdefault(point_key(p), i)
            strategy.scores[i] = f(p)
        pending = strategy.ask(lag - 1) if lag > 1 else []  # fill the pipeline (not timed)
        times = []
        for _ in range(n_asks):
            t0 = time.perf_counter()
            got = strategy.ask(1)
            times.append(time.perf_counter() - t0)
            pending += got
            done = pending.pop(0)
            strategy.tell([PointResult(0, done, f(done))])
        out[f"lag{lag}"] = {"median_s": median(times), "max_s": max(times), "times_s": times,
                            "pass": max(times) < ASK_TARGET_S}
        log(f"ask() at {n_obs} observations, lag {lag}, BLAS threads {_blas_threads()}: "
            f"median {median(times):.3f}s, max {max(times):.3f}s")
    return out


def _blas_threads() -> Any:
    from threadpoolctl import threadpool_info

    return [p.get("num_threads") for p in threadpool_info() if p.get("user_api") == "blas"]


# --------------------------------------------------------------------------- (b) real searches

def real_problems(quick: bool) -> dict[str, dict[str, Any]]:
    from sklearn.datasets import load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.svm import SVC

    from mpisearch import Integer, Real
    from mpisearch.data.make import make

    X, y = load_digits(return_X_y=True)
    rows = 1500 if quick else 3000
    Xc, yc = make("classification", rows=rows, features=20)
    return {
        "svc_digits": {
            "description": "SVC(rbf) C, gamma (log Real) on digits (1797 x 64)",
            "estimator": SVC(), "X": X, "y": y,
            "space": {"C": Real(1e-2, 1e3, log=True), "gamma": Real(1e-5, 1e-1, log=True)},
            "space_text": "C: Real(1e-2, 1e3, log), gamma: Real(1e-5, 1e-1, log)",
        },
        "hgb_classification": {
            "description": f"HistGradientBoostingClassifier(max_iter=50) on classification {rows} x 20",
            "estimator": HistGradientBoostingClassifier(max_iter=50, random_state=0), "X": Xc, "y": yc,
            "space": {"learning_rate": Real(1e-2, 1.0, log=True), "max_leaf_nodes": Integer(4, 64, log=True),
                      "l2_regularization": Real(1e-4, 10.0, log=True)},
            "space_text": "learning_rate: Real(1e-2, 1, log), max_leaf_nodes: Integer(4, 64, log), "
                          "l2_regularization: Real(1e-4, 10, log)",
        },
    }


class AskClock:
    """Adds up the time spent in BayesStrategy.ask (measurement only; behaviour unchanged)."""

    def __init__(self) -> None:
        from mpisearch.strategies.bayes import BayesStrategy

        self.total = 0.0
        self.calls = 0
        self.max = 0.0
        original = BayesStrategy.ask
        clock = self

        def ask(strategy: Any, n: int) -> Any:
            t0 = time.perf_counter()
            try:
                return original(strategy, n)
            finally:
                dt = time.perf_counter() - t0
                clock.total += dt
                clock.calls += 1
                clock.max = max(clock.max, dt)

        BayesStrategy.ask = ask  # type: ignore[method-assign]

    def reset(self) -> None:
        self.total, self.calls, self.max = 0.0, 0, 0.0


def part_real(seeds: list[int], budget: int, quick: bool, max_time: float) -> dict[str, Any]:
    import warnings

    from threadpoolctl import threadpool_limits

    from mpisearch import MPISearchCV

    clock = AskClock()
    out: dict[str, Any] = {"budget": budget, "cv": 3, "seeds": seeds, "threads": 1,
                           "max_time_s_safety_net": max_time, "problems": {}}
    for pname, prob in real_problems(quick).items():
        entry: dict[str, Any] = {"description": prob["description"], "space": prob["space_text"], "methods": {}}
        for method in ("bayes", "random"):
            curves, runs = [], []
            for seed in seeds:
                clock.reset()
                search = MPISearchCV(prob["estimator"], prob["space"], strategy=method, n_iter=budget, cv=3,
                                     random_state=seed, refit=False, max_time=max_time)
                t0 = time.perf_counter()
                with threadpool_limits(limits=1), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    search.fit(prob["X"], prob["y"])
                wall = time.perf_counter() - t0
                scores = [float(s) for s in search.cv_results_["mean_test_score"]]
                best, curve = -1.0, []
                for s in scores:
                    best = max(best, s if s == s else -1.0)  # NaN (failed) never improves
                    curve.append(best)
                curves.append(curve)
                info = search.run_info_
                runs.append({"seed": seed, "evaluations": len(scores), "best_score": curve[-1] if curve else None,
                             "best_params": search.best_params_ if hasattr(search, "best_params_") else None,
                             "wall_s": wall, "search_s": info.get("search_s"),
                             "stopped": info.get("stopped"),
                             "ask_s_total": clock.total if method == "bayes" else None,
                             "ask_s_max": clock.max if method == "bayes" else None})
                log(f"(b) {pname} {method} seed {seed}: best {runs[-1]['best_score']:.4f} after {len(scores)} "
                    f"evaluations, {wall:.1f}s" + (f" STOPPED ({info.get('stopped')})" if info.get("stopped") else ""))
            n = min(len(c) for c in curves)
            entry["methods"][method] = {
                "median_best": [median([c[k] for c in curves]) for k in range(n)],
                "min_best": [min(c[k] for c in curves) for k in range(n)],
                "max_best": [max(c[k] for c in curves) for k in range(n)],
                "best_by_seed": [c[-1] for c in curves],
                "median_final_best": median([c[-1] for c in curves]),
                "runs": runs,
            }
        out["problems"][pname] = entry
    return out


# --------------------------------------------------------------------------- (c) utilisation under MPI

def child_mode(argv: list[str]) -> int:
    """Under mpiexec: one MPI search on the SVC problem; rank 0 prints run_info_ as JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--strategy", default="bayes")
    p.add_argument("--n-iter", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cv", type=int, default=3)
    p.add_argument("--n-initial", type=int, default=None,
                   help="workaround: BayesStrategy(n_initial=K) (the API has no way to set it)")
    a = p.parse_args(argv)
    if a.n_initial:
        from mpisearch.strategies.bayes import BayesStrategy

        init = BayesStrategy.__init__

        def patched(self: Any, space: Any, n_iter: int, random_state: Any = None, n_initial: Any = None) -> None:
            init(self, space, n_iter, random_state, n_initial=a.n_initial)

        BayesStrategy.__init__ = patched  # type: ignore[method-assign]
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    root = comm.Get_rank() == 0
    clock = AskClock()
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    from mpisearch import MPISearchCV, Real

    X, y = load_digits(return_X_y=True) if root else (None, None)
    space = {"C": Real(1e-2, 1e3, log=True), "gamma": Real(1e-5, 1e-1, log=True)}
    search = MPISearchCV(SVC(), space, strategy=a.strategy, n_iter=a.n_iter, cv=a.cv, random_state=a.seed,
                         refit=False, comm=comm)
    search.fit(X, y)
    if root:
        info = search.run_info_
        workers = info.get("workers", {})
        print(json.dumps({
            "ranks": comm.Get_size(), "workers": comm.Get_size() - 1, "strategy": a.strategy,
            "n_initial_override": a.n_initial, "rank0_blas_threads": _blas_threads(),
            "n_iter": a.n_iter, "cv": a.cv, "seed": a.seed,
            "utilisation": info.get("utilisation"), "search_s": info.get("search_s"),
            "coordinator_cpu_s": info.get("coordinator_cpu_s"), "tasks": info.get("tasks"),
            "busy_s_by_worker": {r: round(w.get("busy_s", 0.0), 3) for r, w in workers.items()},
            "best_score": float(search.best_score_),
            "ask_calls": clock.calls, "ask_s_total": clock.total, "ask_s_max": clock.max,
        }), flush=True)
    return 0


def part_utilisation(ns: list[int], n_iter: int, timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {"problem": "SVC C/gamma on digits, cv=3", "n_iter": n_iter, "runs": {}}
    plan = [("bayes", n, None) for n in ns] + [("bayes", n, n + 4) for n in ns if n - 1 >= 5]
    plan += [("random", n, None) for n in ns]
    for strategy, n, n_initial in plan:
        extra = ["--n-initial", str(n_initial)] if n_initial else []
        cmd = [tool("mpiexec"), "-n", str(n), sys.executable, str(THIS), "--child", "--strategy", strategy,
               "--n-iter", str(n_iter), "--seed", "0", "--cv", "3", *extra]
        job = launch(cmd, timeout, cwd=ROOT)
        wall = job.wall_s
        lines = [ln for ln in job.stdout.splitlines() if ln.startswith("{")]
        rec: dict[str, Any] = json.loads(lines[-1]) if lines else {
            "error": f"timed out after {timeout}s" if job.returncode is None
            else f"exit {job.returncode}: {job.stderr.strip()[-800:]}"}
        rec["command"] = " ".join(["mpiexec", "-n", str(n), "python", "benchmarks/bench_bayes.py", "--child",
                                   "--strategy", strategy, "--n-iter", str(n_iter), "--seed", "0", "--cv", "3",
                                   *extra])
        rec["wall_s"] = wall
        rec["oversubscribed"] = n - 1 > (os.cpu_count() or 1)
        key = f"{strategy}_n{n}" + (f"_n_initial{n_initial}" if n_initial else "")
        out["runs"][key] = rec
        u = rec.get("utilisation")
        log(f"(c) {key}: utilisation {u if u is None else round(u, 3)}, "
            f"search_s {rec.get('search_s')}, {rec.get('error', '')}")
    return out


# --------------------------------------------------------------------------- checks

def drive(strategy: Any, f: Any, lag: int, limit: int = 1000) -> dict[str, Any]:
    """Run a strategy with ``lag`` workers (oldest pending point finishes first), score = -f."""
    from mpisearch.strategies import PointResult

    strategy.bind(lag)
    pending: list[Any] = []
    n = 0
    try:
        while (not strategy.finished or pending) and n < limit:
            new = strategy.ask(lag - len(pending)) if not strategy.finished else []
            pending += new
            if not pending:
                return {"evaluated": n, "stalled": True, "error": None}
            point = pending.pop(0)
            n += 1
            strategy.tell([PointResult(0, point, -float(f(point)))])
    except Exception as exc:  # noqa: BLE001
        return {"evaluated": n, "stalled": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"evaluated": n, "stalled": False, "error": None}


def part_checks() -> dict[str, Any]:
    """Small reproductions of problems found in the bayes strategy (each a few seconds)."""
    import math

    from threadpoolctl import threadpool_limits

    from mpisearch import Integer, Real
    from mpisearch.space import SearchSpace
    from mpisearch.strategies import make_strategy

    branin = closed_form_problems()["branin"]
    out: dict[str, Any] = {}
    with threadpool_limits(limits=1):
        # 1. workers >= n_initial: the first GP proposal has no observation at all.
        runs = {}
        for lag in (4, 5, 8):
            s = make_strategy("bayes", SearchSpace(branin[1]), n_iter=20, random_state=0)
            runs[f"lag{lag}"] = drive(s, branin[0], lag) | {"n_initial": s.n_initial}
        out["workers_ge_n_initial"] = {
            "what": "Branin (n_initial 5), n_iter 20, bind(lag): lag >= n_initial raises in the first GP fit",
            "runs": runs}
        # 2. A duplicate proposal is never scored (tell maps it to the first copy): ask() stalls for good.
        cases = {
            "integer_1_30": ({"n": Integer(1, 30)}, 25, lambda p: (math.log(p["n"]) - 1.5) ** 2),
            "corner_optimum": ({"a": Real(0.0, 1.0), "b": Real(1e-3, 1.0, log=True)}, 30,
                               lambda p: -(p["a"] + p["b"])),
        }
        dup: dict[str, Any] = {}
        for name, (space, n_iter, f) in cases.items():
            dup[name] = {"n_iter": n_iter, "seeds": {}}
            for seed in range(3):
                s = make_strategy("bayes", SearchSpace(space), n_iter=n_iter, random_state=seed)
                dup[name]["seeds"][seed] = drive(s, f, 1)
        out["duplicate_proposal_stalls"] = {
            "what": "sequential bayes (lag 1); 'stalled': ask() returns nothing, nothing pending, not finished "
                    "(MPISearchCV then loops until max_time, or for ever)",
            "cases": dup}
    return out


# --------------------------------------------------------------------------- chart

COLORS = {"bayes": "#1f77b4", "random": "#7f7f7f", "optuna_tpe": "#2ca02c", "optuna_gp": "#d62728"}
LABELS = {"bayes": "mpisearch bayes", "random": "mpisearch random", "optuna_tpe": "Optuna TPESampler",
          "optuna_gp": "Optuna GPSampler"}
ANCHOR_MARKERS = {"random": "s", "optuna_tpe": "^", "optuna_gp": "v", "skopt_gp_minimize": "D"}


def draw(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 10))
    a = result["closed_form"]
    budgets = a["budgets"]
    for ax, (pname, entry) in zip(axes[0], a["problems"].items(), strict=True):
        for method, m in entry["methods"].items():
            xs = [b for b, v in zip(budgets, m["median_regret"], strict=True) if v is not None]
            med = [max(v, 1e-9) for v in m["median_regret"] if v is not None]
            lo = [max(v, 1e-9) for v in m["min_regret"] if v is not None]
            hi = [max(v, 1e-9) for v in m["max_regret"] if v is not None]
            ax.plot(xs, med, "-o", color=COLORS[method], label=LABELS[method], ms=4)
            ax.fill_between(xs, lo, hi, color=COLORS[method], alpha=0.12)
        if pname == "branin":
            for name, v in ANCHORS_BRANIN_30.items():
                ax.plot([30], [v], ANCHOR_MARKERS[name], mfc="none", mec=COLORS.get(name, "black"), ms=10,
                        mew=1.5, label=f"anchor @30: {name} {v}")
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("regret (best f - optimum)")
        ax.set_title(f"{pname} ({entry['dims']}-D): median over {len(a['seeds'])} seeds (band: min..max)",
                     fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7.5)
    b = result["real"]
    for ax, entry in zip(axes[1], b["problems"].values(), strict=True):
        for method, m in entry["methods"].items():
            xs = list(range(1, len(m["median_best"]) + 1))
            ax.plot(xs, m["median_best"], "-", color=COLORS[method], label=LABELS[method], lw=2)
            ax.fill_between(xs, m["min_best"], m["max_best"], color=COLORS[method], alpha=0.15)
        ax.set_xlabel("evaluations (points, cv=3 each)")
        ax.set_ylabel("best mean CV accuracy so far")
        finals = {k: m["median_final_best"] for k, m in entry["methods"].items()}
        ax.set_title(f"{entry['description']}\nmedian over {len(b['seeds'])} seeds (band: min..max); final: "
                     + ", ".join(f"{k} {v:.4f}" for k, v in finals.items()), fontsize=9)
        # Zoom on the part that matters: from the worst seed's best score after 5 evaluations up.
        k = 4
        lows = [m["min_best"][min(k, len(m["min_best"]) - 1)] for m in entry["methods"].values() if m["min_best"]]
        if lows:
            top = max(v for m in entry["methods"].values() for v in m["max_best"])
            ax.set_ylim(max(min(lows) - 0.01, 0), top + 0.004)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    notes = []
    at = result.get("ask_time")
    if at:
        for setting in ("default_threads", "blas_1_thread"):
            notes.append(f"ask() at 500 obs (4-D), {setting.replace('_', ' ')}: " + ", ".join(
                f"lag {k[3:]}: median {v['median_s']:.3f}s max {v['max_s']:.3f}s"
                for k, v in at[setting].items() if k.startswith("lag")))
    u = result.get("utilisation")
    if u:
        notes.append("worker utilisation (SVC, MPI): " + ", ".join(
            f"{k}: {v['utilisation']:.2f}" if v.get("utilisation") is not None else f"{k}: n/a"
            for k, v in u["runs"].items()))
    title = "mpisearch bayes (GP + EI)" + (" (QUICK: smaller budgets, 2 seeds)" if result["quick"] else "")
    fig.suptitle(title + "\n" + "\n".join(notes), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=100)


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--child" in argv:
        return child_mode(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, smaller budgets: a smoke run")
    add_output_args(parser)
    parser.add_argument("--gp-budget", type=int, default=None,
                        help="largest budget run with Optuna's GPSampler (slow: ~0.4-1 s a trial here); "
                             "default 30 (full) or 20 (quick)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: closed,ask,real,checks,mpi")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mpiexec run (300)")
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    quick = args.quick
    seeds = [0, 1] if quick else [0, 1, 2, 3, 4]
    budgets = [10, 20, 30] if quick else [10, 20, 30, 40, 50, 60]
    gp_budget = args.gp_budget or (20 if quick else 30)
    real_budget = 12 if quick else 30
    t_start = time.perf_counter()
    machine = machine_info()
    machine.update({k: machine["versions"][k] for k in ("numpy", "scipy", "sklearn")})  # where they always were
    result: dict[str, Any] = {"benchmark": "bench_bayes", "quick": quick, "machine": machine,
                              "load_average_before": load_average()}
    if "closed" not in skip:
        result["closed_form"] = part_closed_form(seeds, budgets, gp_budget)
    if "ask" not in skip:
        result["ask_time"] = ask_timing()
    if "real" not in skip:
        result["real"] = part_real(seeds, real_budget, quick, max_time=60.0 if quick else 120.0)
    if "checks" not in skip:
        result["checks"] = part_checks()
    if "mpi" not in skip:
        result["utilisation"] = part_utilisation([3, 8], 12 if quick else 30, args.timeout)
    result["load_average_after"] = load_average()
    result["wall_s"] = time.perf_counter() - t_start
    save(result, args.out_dir, "bench_bayes", draw if {"closed_form", "real"} <= result.keys() else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
