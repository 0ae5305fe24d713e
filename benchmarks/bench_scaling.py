#!/usr/bin/env python
"""Scaling of mpisearch with the number of worker ranks, and rank 0's task throughput.

Usage (from the repository root, with the venv active):

    python benchmarks/bench_scaling.py            # full: 1..64 workers, about 8-10 min on 2 cores
    python benchmarks/bench_scaling.py --quick    # smoke run: 1..8 workers, about 1.5 min

Three parts, each a fresh ``mpiexec`` job running this file's ``_child`` mode, in
which every rank calls ``MPISearchCV(...).fit`` (rank 0 coordinates, N workers):

(a) simulated tasks, ``mpiexec -n N+1`` for N = 1, 2, 4, ..., 64 workers, with
    :class:`mpisearch.testing.SleepClassifier` (fit sleeps ``duration`` s, so 65 ranks
    can share 2 cores). Two searches per job: constant 20 ms tasks (overhead-bound)
    and heterogeneous tasks whose durations are drawn uniformly from 0.2-2 s with a
    seeded generator (one duration per point, the same for both folds). Tasks per
    worker are constant (weak scaling), so every N runs for about the same time.
    efficiency = lower bound of the makespan / search_s, with the lower bound
    max(total nominal work / N, longest task) and search_s from ``run_info_``.
(b) real fits: a RandomForestClassifier grid at 1 and 2 workers; speedup of search_s.
(c) throughput: :class:`mpisearch.testing.NoopClassifier` tasks through rank 0 with 4
    workers (``mpiexec -n 5``), journal on (``out=DIR``); tasks/s = tasks / search_s.
    Also the same with the journal off, a bare mpi4py send/recv ping-pong in the same
    job (what MPI alone does on this machine right now), and one more journal-on run
    with cProfile around rank 0's ``MPISearchCV.fit`` (set-up, the coordinator loop and
    cv_results; the loop takes most of it, see ``profile_rank0.profiled_search_s``): top 25
    functions by cumulative and by own time go into the JSON and ``bench_scaling_profile.txt``.

Prints one JSON document on stdout (progress on stderr), also saved to
benchmarks/out/bench_scaling.json, and draws benchmarks/out/bench_scaling.png.
"""

from __future__ import annotations

# Standard library only at the top: the _child mode starts on every rank.
import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common as common

THIS = Path(__file__).resolve()

FULL_WORKERS = [1, 2, 4, 8, 16, 32, 64]
QUICK_WORKERS = [1, 2, 4, 8]

TARGETS = {
    # name: (description, scenario, workers, op, threshold)
    "hetero_32": ("(a) efficiency, 0.2-2 s tasks, 32 workers", "hetero", 32, ">=", 0.95),
    "hetero_64": ("(a) efficiency, 0.2-2 s tasks, 64 workers", "hetero", 64, ">=", 0.90),
    "short_16": ("(a) efficiency, 20 ms tasks, 16 workers", "short", 16, ">=", 0.85),
    "throughput": ("(c) no-op tasks/s through rank 0, 4 workers, journal on", None, 4, ">=", 20000.0),
}
REFERENCE_TASKS_PER_S = {  # from the issue, measured on this machine earlier
    "mpi4py.futures": 3900, "joblib batch_size=1": 5200, "joblib auto-batching (warm)": 150000,
    "bare mpi4py send/recv loop": 200000,
}
PROFILE_TOP = 25


# --------------------------------------------------------------------------- plan

def settings(quick: bool) -> dict[str, Any]:
    return {
        "workers": QUICK_WORKERS if quick else FULL_WORKERS,
        "cv": 2,
        "hetero": {"low_s": 0.2, "high_s": 2.0, "tasks_per_worker": 8 if quick else 24},
        "short": {"duration_s": 0.02, "tasks_per_worker": 100 if quick else 300},
        "real": {"rows": 1500 if quick else 3000, "features": 20, "cv": 3,
                 "grid": {"n_estimators": [20, 60] if quick else [25, 50, 100, 150],
                          "max_depth": [4, 8] if quick else [4, 8, 12]}},
        "throughput": {"workers": 4, "tasks": 6000 if quick else 16000, "repeat": 1 if quick else 3,
                       "pingpong_rounds": 20000 if quick else 100000},
    }


def draw_durations(low: float, high: float, n: int, seed: int, workers: int) -> list[float]:
    import numpy as np

    rng = np.random.default_rng([seed, workers])
    return [float(v) for v in rng.uniform(low, high, size=n)]


def sim_scenarios(cfg: dict[str, Any], n: int, seed: int, work: Path) -> list[dict[str, Any]]:
    cv = cfg["cv"]
    short_points = max(1, round(cfg["short"]["tasks_per_worker"] * n / cv))
    het_points = max(1, round(cfg["hetero"]["tasks_per_worker"] * n / cv))
    h = cfg["hetero"]
    return [
        {"name": "short", "kind": "sleep", "cv": cv, "out": str(work / f"short_n{n}.out"),
         "grid": {"duration": [cfg["short"]["duration_s"]], "tag": list(range(short_points))}},
        {"name": "hetero", "kind": "sleep", "cv": cv, "out": str(work / f"hetero_n{n}.out"),
         "grid": {"duration": draw_durations(h["low_s"], h["high_s"], het_points, seed, n)}},
    ]


# --------------------------------------------------------------------------- child (every rank)

def child_mode(argv: list[str]) -> int:
    spec_path, result_path = argv
    spec = json.loads(Path(spec_path).read_text())
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    results = []
    for sc in spec["scenarios"]:
        t0 = time.perf_counter()
        res = pingpong(comm, sc) if sc["kind"] == "pingpong" else run_search(comm, sc)
        if comm.Get_rank() == 0:
            res["name"], res["fit_wall_s"] = sc["name"], time.perf_counter() - t0
            results.append(res)
            print(f"[child] {sc['name']}: {res.get('search_s', res.get('seconds', 0)):.3f}s", file=sys.stderr,
                  flush=True)
    if comm.Get_rank() == 0:
        Path(result_path).write_text(json.dumps({"ranks": comm.Get_size(), "results": results,
                                                 "child_started": STARTED, "child_ended": time.time()}))
    return 0


STARTED = time.time()


def pingpong(comm: Any, sc: dict[str, Any]) -> dict[str, Any]:
    """Rank 0 <-> rank 1 comm.send/comm.recv of a task-sized tuple; other ranks sleep."""
    rank, rounds = comm.Get_rank(), sc["rounds"]
    msg = (123456, 61728, 1, None)
    common.quiet_barrier(comm)
    start = time.perf_counter()
    if rank == 0:
        for _ in range(rounds):
            comm.send(msg, dest=1, tag=5)
            comm.recv(source=1, tag=5)
    elif rank == 1:
        for _ in range(rounds):
            comm.send(comm.recv(source=0, tag=5), dest=0, tag=5)
    seconds = time.perf_counter() - start
    common.quiet_barrier(comm)
    return {"rounds": rounds, "seconds": seconds, "round_trips_per_s": rounds / seconds}


def build(sc: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    import numpy as np

    if sc["kind"] == "rf":
        from sklearn.datasets import make_classification
        from sklearn.ensemble import RandomForestClassifier

        X, y = make_classification(n_samples=sc["rows"], n_features=sc["features"], n_informative=10,
                                   random_state=0)
        return RandomForestClassifier(random_state=0, max_features="sqrt"), sc["grid"], X, y
    from mpisearch.testing import NoopClassifier, SleepClassifier

    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.array([0, 1] * 10)
    est = SleepClassifier() if sc["kind"] == "sleep" else NoopClassifier()
    return est, sc["grid"], X, y


def run_search(comm: Any, sc: dict[str, Any]) -> dict[str, Any]:
    import cProfile

    from mpisearch import MPISearchCV

    rank = comm.Get_rank()
    est, grid, X, y = build(sc)
    profiler = cProfile.Profile() if sc.get("profile") and rank == 0 else None
    out = sc.get("out")
    if out and rank == 0 and Path(out).exists():
        shutil.rmtree(out)
    search = MPISearchCV(est, grid, cv=sc["cv"], refit=False, out=out, force=True)  # repeats share an out dir
    machine0, cpu0, wall0 = machine_jiffies() if rank == 0 else None, process_cpu(), time.perf_counter()
    if rank == 0:
        with profiler or contextlib.nullcontext():  # rank 0's whole fit, under cProfile if asked
            search.fit(X, y)
    else:
        search.fit(None, None)
    cpu, wall = process_cpu() - cpu0, time.perf_counter() - wall0
    machine1 = machine_jiffies() if rank == 0 else None
    common.quiet_barrier(comm)
    cpus = comm.gather(cpu, root=0)
    if rank != 0:
        return {}
    info = search.run_info_
    workers = info.get("workers", {})
    res = {
        "search_s": info["search_s"], "utilisation": info.get("utilisation"),
        "coordinator_cpu_s": info.get("coordinator_cpu_s"), "tasks": info.get("tasks"),
        "stolen_tasks": info.get("stolen_tasks"), "duplicate_results": info.get("duplicate_results"),
        "setup_s": info.get("setup_s"), "bcast_s": info.get("bcast_s"),
        "workers_busy_s": sum(w.get("busy_s", 0.0) for w in workers.values()),
        "worker_tasks_min_max": [min(w["tasks"] for w in workers.values()),
                                 max(w["tasks"] for w in workers.values())] if workers else None,
    }
    # CPU of every rank during fit (rank 0: whole fit, incl. setup and cv_results), and how
    # busy the whole machine was meanwhile (other users included), in cores.
    res["rank0_fit_cpu_s"], res["workers_cpu_s"] = cpus[0], sum(cpus[1:])
    res["our_cores"] = sum(cpus) / wall
    if machine0 and machine1:
        busy, total = machine1[0] - machine0[0], machine1[1] - machine0[1]
        res["machine_busy_cores"] = (os.cpu_count() or 1) * busy / total if total else None
    cvr = search.cv_results_
    folds = search.n_splits_
    fit = [float(v) for v in cvr["mean_fit_time"]]
    score = [float(v) for v in cvr["mean_score_time"]]
    res["measured_work_s"] = folds * (sum(fit) + sum(score))
    if sc["kind"] == "sleep":
        nominal = [float(p["duration"]) for p in cvr["params"]]
        res["mean_fit_overshoot_ms"] = 1e3 * statistics.fmean(f - d for f, d in zip(fit, nominal, strict=True))
    if out:  # per-task times from the journal
        entries = common.journal_entries(Path(out))
        times = [e["fit_time"] + e["score_time"] for e in entries]
        res["journal_lines"] = len(times)
        res["longest_task_s"] = max(times) if times else 0.0
        res["task_s_sum"] = sum(times)
        res["timeline"] = timeline(entries, res["search_s"])
    if profiler is not None:
        res["profile"] = profile_tables(profiler) | {"profiled_search_s": info["search_s"]}
    return res


def timeline(entries: list[dict[str, Any]], search_s: float) -> dict[str, float]:
    """Where the workers' time went, from the journal (task start and fit+score time per rank).

    In worker-seconds: ``ramp`` (first task of each worker starting after the first task of
    all), ``gaps`` (between a worker's consecutive tasks: rank 0's latency, the worker's own
    clone/split/messaging, CPU contention), ``tail`` (a worker done before the last task ends),
    and ``outside`` (search_s not spanned by any task: start-up and shutdown of the loop)."""
    by_rank: dict[Any, list[tuple[float, float]]] = {}
    for e in entries:
        by_rank.setdefault(e["rank"], []).append((e["start"], e["start"] + e["fit_time"] + e["score_time"]))
    if not by_rank:
        return {}
    first = min(s for v in by_rank.values() for s, _ in v)
    last = max(e for v in by_rank.values() for _, e in v)
    ramp = gaps = tail = 0.0
    for spans in by_rank.values():
        spans.sort()
        ramp += spans[0][0] - first
        tail += last - max(e for _, e in spans)
        gaps += sum(max(nxt[0] - prev[1], 0.0) for prev, nxt in zip(spans, spans[1:], strict=False))
    n = len(by_rank)
    return {"workers_seen": n, "span_s": last - first, "outside_s": n * max(search_s - (last - first), 0.0),
            "ramp_s": ramp, "gaps_s": gaps, "tail_s": tail,
            "gap_per_task_ms": 1e3 * gaps / max(len(entries) - n, 1)}


def process_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine, from /proc/stat (Linux)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def profile_tables(profiler: Any) -> dict[str, Any]:
    import io
    import pstats

    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        short = file if file.startswith("<") or file == "~" else "/".join(Path(file).parts[-2:])
        rows.append({"function": f"{short}:{line}({func})", "ncalls": nc, "primitive_calls": cc,
                     "tottime_s": round(tt, 4), "cumtime_s": round(ct, 4)})
    texts = {}
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats(key).print_stats(PROFILE_TOP)
        texts[key] = buf.getvalue()
    return {
        "profiled_seconds": round(total, 4),
        "top_cumulative": sorted(rows, key=lambda r: -r["cumtime_s"])[:PROFILE_TOP],
        "top_tottime": sorted(rows, key=lambda r: -r["tottime_s"])[:PROFILE_TOP],
        "text": texts,
    }


# --------------------------------------------------------------------------- driver

def mpi_job(ranks: int, scenarios: list[dict[str, Any]], work: Path, tag: str, timeout: float) -> dict[str, Any]:
    """Run the scenarios in one ``mpiexec -n ranks`` job; rank 0's results."""
    spec, result = work / f"{tag}.spec.json", work / f"{tag}.result.json"
    spec.write_text(json.dumps({"scenarios": scenarios}))
    result.unlink(missing_ok=True)
    cmd = [common.tool("mpiexec"), "-n", str(ranks), sys.executable, str(THIS), "_child", str(spec), str(result)]
    job = common.launch_ok(cmd, timeout, logs=work / tag, env={**os.environ, **common.ONE_THREAD_ENV})
    if not result.exists():
        sys.exit(f"bench_scaling: rank 0 wrote no {result.name}: {' '.join(cmd)}\n{job.stderr[-3000:]}")
    data = json.loads(result.read_text())
    data["job_wall_s"] = job.wall_s
    data["startup_s"] = data["child_started"] - job.launched  # launch -> rank 0 runs Python
    return data


def lower_bound(durations: list[float], folds: int, workers: int) -> tuple[float, float, float]:
    work = folds * sum(durations)
    longest = max(durations)
    return work, longest, max(work / workers, longest)


def lpt_makespan(durations: list[float], folds: int, workers: int) -> float:
    """Makespan of the offline longest-processing-time-first schedule (every duration known
    in advance): a schedule a clairvoyant scheduler reaches, tighter than the lower bound."""
    import heapq

    loads = [0.0] * workers
    for d in sorted((d for d in durations for _ in range(folds)), reverse=True):
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


def durations_of(grid: dict[str, list[Any]]) -> list[float]:
    """Nominal duration of every point of a SleepClassifier grid (duration x tag)."""
    return [d for d in grid["duration"] for _ in grid.get("tag", [0])]


def r(value: Any, nd: int = 4) -> Any:
    return None if value is None else round(value, nd)


def part_a(cfg: dict[str, Any], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "short": {"description": f"constant {cfg['short']['duration_s'] * 1e3:g} ms tasks "
                                 f"({cfg['short']['tasks_per_worker']} per worker)", "per_n": []},
        "hetero": {"description": f"durations uniform in {cfg['hetero']['low_s']}-{cfg['hetero']['high_s']} s, "
                                  f"seeded ({cfg['hetero']['tasks_per_worker']} tasks per worker)", "per_n": []},
    }
    for n in cfg["workers"]:
        scenarios = sim_scenarios(cfg, n, args.seed, work)
        budget = sum(lower_bound(durations_of(s["grid"]), s["cv"], n)[2] for s in scenarios)
        data = mpi_job(n + 1, scenarios, work, f"sim_n{n}", timeout=3 * budget + 180 + 2 * n)
        for sc, res in zip(scenarios, data["results"], strict=True):
            total, longest, bound = lower_bound(durations_of(sc["grid"]), sc["cv"], n)
            entry = {
                "workers": n, "ranks": n + 1, "tasks": res["tasks"], "tasks_per_worker": res["tasks"] / n,
                "work_s": r(total), "longest_task_s": r(longest), "lower_bound_s": r(bound),
                "lpt_makespan_s": r(lpt_makespan(durations_of(sc["grid"]), sc["cv"], n)),
                "search_s": r(res["search_s"]), "efficiency": r(bound / res["search_s"]),
                "efficiency_vs_lpt": r(lpt_makespan(durations_of(sc["grid"]), sc["cv"], n) / res["search_s"]),
                # the same with the fits' measured times (sleep overshoot under load is not mpisearch's)
                "efficiency_vs_measured_work": r(max(res["measured_work_s"] / n, longest) / res["search_s"]),
                "utilisation": r(res["utilisation"]),
                "overhead_per_task_ms": r(1e3 * (n * res["search_s"] - total) / res["tasks"], 3),
                "mean_fit_overshoot_ms": r(res.get("mean_fit_overshoot_ms"), 3),
                "coordinator_cpu_s": r(res["coordinator_cpu_s"]),
                "coordinator_cpu_per_task_us": r(1e6 * res["coordinator_cpu_s"] / res["tasks"], 1),
                "workers_cpu_per_task_us": r(1e6 * res["workers_cpu_s"] / res["tasks"], 1),
                "our_cores": r(res["our_cores"], 3), "machine_busy_cores": r(res.get("machine_busy_cores"), 3),
                "stolen_tasks": res["stolen_tasks"], "duplicate_results": res["duplicate_results"],
                "worker_tasks_min_max": res["worker_tasks_min_max"],
                "lost_worker_s": r(n * res["search_s"] - total),
                "lost_breakdown_worker_s": {k: r(v, 4 if k != "workers_seen" else 0)
                                            for k, v in res.get("timeline", {}).items()},
                "bcast_s": r(res["bcast_s"]), "job_startup_s": r(data["startup_s"], 2),
                "job_wall_s": r(data["job_wall_s"], 2),
            }
            out[sc["name"]]["per_n"].append(entry)
            common.log(f"(a) {sc['name']:6s} N={n:2d}: search {entry['search_s']:.2f}s, bound {bound:.2f}s, "
                f"efficiency {entry['efficiency']:.3f} ({entry['efficiency_vs_measured_work']:.3f} vs measured "
                f"fits, {entry['efficiency_vs_lpt']:.3f} vs offline LPT; tail "
                f"{entry['lost_breakdown_worker_s'].get('tail_s')} worker-s; job {data['job_wall_s']:.1f}s; "
                f"machine busy {entry['machine_busy_cores']} cores, ours {entry['our_cores']})")
    return out


def part_b(cfg: dict[str, Any], work: Path) -> dict[str, Any]:
    real = cfg["real"]
    sc = {"name": "rf", "kind": "rf", "cv": real["cv"], "rows": real["rows"], "features": real["features"],
          "grid": real["grid"]}
    runs = {}
    for n in (1, 2):
        data = mpi_job(n + 1, [{**sc, "out": str(work / f"rf_n{n}.out")}], work, f"rf_n{n}", timeout=900)
        res = data["results"][0]
        runs[n] = res
        common.log(f"(b) RandomForest N={n}: search {res['search_s']:.2f}s, {res['tasks']} tasks")
    one, two = runs[1], runs[2]
    work1 = one["task_s_sum"]  # the fits' own times with one worker (nothing else running on its core)
    bound2 = max(work1 / 2, one["longest_task_s"])
    return {
        "description": f"RandomForestClassifier(max_features='sqrt') on make_classification({real['rows']} x "
                       f"{real['features']}), grid {real['grid']}, cv={real['cv']}",
        "tasks": one["tasks"],
        "per_n": {str(n): {"search_s": r(v["search_s"]), "utilisation": r(v["utilisation"]),
                           "task_s_sum": r(v["task_s_sum"]), "longest_task_s": r(v["longest_task_s"]),
                           "coordinator_cpu_s": r(v["coordinator_cpu_s"])} for n, v in runs.items()},
        "speedup_1_to_2": r(one["search_s"] / two["search_s"]),
        "efficiency_2_workers_vs_1_worker_work": r(bound2 / two["search_s"]),
        "note": "efficiency at 2 workers uses the task times measured with 1 worker (the work when "
                "nothing shares the core); tasks slow down when two fits and other users share 2 cores",
    }


def part_c(cfg: dict[str, Any], work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    tp = cfg["throughput"]
    n, cv = tp["workers"], 2
    grid = {"tag": list(range(tp["tasks"] // cv))}
    journal = str(work / "noop.out")
    scenarios: list[dict[str, Any]] = [{"name": "pingpong", "kind": "pingpong", "rounds": tp["pingpong_rounds"]}]
    scenarios += [{"name": f"journal_on_{i}", "kind": "noop", "cv": cv, "grid": grid, "out": journal}
                  for i in range(tp["repeat"])]
    scenarios += [{"name": "journal_off", "kind": "noop", "cv": cv, "grid": grid},
                  {"name": "journal_on_profiled", "kind": "noop", "cv": cv, "grid": grid, "out": journal,
                   "profile": True}]
    data = mpi_job(n + 1, scenarios, work, "throughput", timeout=900)
    res = {s["name"]: s for s in data["results"]}
    on = [res[f"journal_on_{i}"] for i in range(tp["repeat"])]
    rate = [x["tasks"] / x["search_s"] for x in on]
    med = common.median(rate)
    best = max(on, key=lambda x: x["tasks"] / x["search_s"])
    off, prof, ping = res["journal_off"], res["journal_on_profiled"], res["pingpong"]
    out = {
        "workers": n, "ranks": n + 1, "tasks": on[0]["tasks"], "cv": cv,
        "tasks_per_s_journal_on": [r(v, 0) for v in rate],
        "tasks_per_s_journal_on_median": r(med, 0),
        "tasks_per_s_journal_off": r(off["tasks"] / off["search_s"], 0),
        "coordinator_cpu_s_journal_on": r(best["coordinator_cpu_s"]),
        "coordinator_cpu_per_task_us_journal_on": r(1e6 * best["coordinator_cpu_s"] / best["tasks"], 1),
        "coordinator_cpu_per_task_us_journal_off": r(1e6 * off["coordinator_cpu_s"] / off["tasks"], 1),
        "rank0_cpu_fraction_journal_on": r(best["coordinator_cpu_s"] / best["search_s"]),
        "rank0_bound_tasks_per_s": r(best["tasks"] / best["coordinator_cpu_s"], 0),
        "worker_busy_per_task_us": r(1e6 * best["workers_busy_s"] / best["tasks"], 1),
        "workers_cpu_per_task_us": r(1e6 * best["workers_cpu_s"] / best["tasks"], 1),
        "machine_busy_cores": r(best.get("machine_busy_cores"), 3), "our_cores": r(best["our_cores"], 3),
        "worker_tasks_min_max": best["worker_tasks_min_max"],
        "bare_pingpong_round_trips_per_s_now": r(ping["round_trips_per_s"], 0),
        "profiled_run_tasks_per_s": r(prof["tasks"] / prof["search_s"], 0),
        "reference_tasks_per_s": REFERENCE_TASKS_PER_S,
        "notes": ("tasks_per_s = tasks / search_s (run_info_); rank0_bound = tasks / coordinator CPU seconds "
                  "(what rank 0 could do with a core of its own and instant workers); worker_busy_per_task = "
                  "the workers' busy wall seconds per task (clone, split, fit, score; excludes messaging); "
                  "workers_cpu_per_task = their CPU seconds per task, messaging and waiting included; "
                  "machine_busy_cores = all CPU use on the machine meanwhile (other users included)"),
    }
    common.log(f"(c) throughput: {med:.0f} tasks/s journal on (median of {len(rate)}), "
        f"{out['tasks_per_s_journal_off']:.0f} off; rank 0 {out['coordinator_cpu_per_task_us_journal_on']} us CPU "
        f"per task; bare ping-pong {out['bare_pingpong_round_trips_per_s_now']:.0f}/s")
    return out, prof["profile"]


def targets(result: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, (desc, scenario, n, op, threshold) in TARGETS.items():
        if scenario is None:
            value = result.get("throughput", {}).get("tasks_per_s_journal_on_median")
        else:
            rows = [e for e in result.get("simulated", {}).get(scenario, {}).get("per_n", []) if e["workers"] == n]
            value = rows[0]["efficiency"] if rows else None
        out[name] = common.target_entry(desc, value, op, threshold)
    return out


def bench(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    cfg = settings(args.quick)
    if args.workers:
        cfg["workers"] = [int(v) for v in args.workers.split(",")]
    work = common.work_dir(args.work, "bench_scaling.")
    common.log(f"work directory: {work}")
    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "bench_scaling", "quick": args.quick, "seed": args.seed,
                              "machine": common.machine_info(), "child_env": common.ONE_THREAD_ENV,
                              "load_average_before": common.load_average(),
                              "settings": {k: v for k, v in cfg.items()}}
    if not args.skip_throughput:
        result["throughput"], profile = part_c(cfg, work)
        text_path = out_dir / "bench_scaling_profile.txt"
        text_path.write_text(
            f"cProfile of rank 0's MPISearchCV.fit ({profile['profiled_search_s']:.2f}s of it in the "
            "coordinator loop), no-op tasks, 4 workers, journal on\n\n"
            + "\n".join(f"===== sorted by {k} =====\n{v}" for k, v in profile.pop("text").items()))
        profile["text_file"] = str(text_path)
        result["profile_rank0"] = profile
    if not args.skip_real:
        result["real_fits"] = part_b(cfg, work)
    result["simulated"] = part_a(cfg, args, work)
    result["targets"] = targets(result)
    result["all_pass"] = all(t["pass"] for t in result["targets"].values() if t["pass"] is not None)
    if args.quick:
        result["note"] = "quick run: N <= 8 and fewer tasks; the targets (at 16, 32, 64 workers) are not measured"
    result["load_average_after"] = common.load_average()
    result["bench_wall_s"] = round(time.perf_counter() - started, 1)
    if not args.keep_work and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    else:
        result["work_dir"] = str(work)
    return result


# --------------------------------------------------------------------------- chart

COLORS = {"hetero": "#1f77b4", "short": "#d62728"}
LABELS = {"hetero": "0.2-2 s tasks", "short": "20 ms tasks"}


def draw(result: dict[str, Any], path: Path) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    (ax_norm, ax_eff), (ax_abs, ax_text) = axes
    sim = result["simulated"]
    all_n = sorted({e["workers"] for s in sim.values() for e in s["per_n"]})
    for key, s in sim.items():
        ns = [e["workers"] for e in s["per_n"]]
        # Seed-style view (strong scaling): time for a fixed amount of work, i.e. search_s per
        # second of simulated work; the optimum is 1/N (or the longest task, if larger).
        per_work = [e["search_s"] / e["work_s"] for e in s["per_n"]]
        best = [e["lower_bound_s"] / e["work_s"] for e in s["per_n"]]
        ax_norm.plot(ns, per_work, "o-", color=COLORS[key], label=f"{LABELS[key]}: measured")
        ax_norm.plot(ns, best, "--", color=COLORS[key], alpha=0.6, label=f"{LABELS[key]}: theoretical optimum")
        ax_eff.plot(ns, [e["efficiency"] for e in s["per_n"]], "o-", color=COLORS[key], label=LABELS[key])
        ax_abs.plot(ns, [e["search_s"] for e in s["per_n"]], "o-", color=COLORS[key],
                    label=f"{LABELS[key]}: search_s")
        ax_abs.plot(ns, [e["lower_bound_s"] for e in s["per_n"]], "--", color=COLORS[key], alpha=0.6,
                    label=f"{LABELS[key]}: lower bound")
    for ax in (ax_norm, ax_abs):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(all_n, [str(n) for n in all_n])
        ax.set_xlabel("worker ranks N (mpiexec -n N+1)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    ax_norm.set_ylabel("search seconds per second of task work")
    ax_norm.set_title("search duration for a fixed amount of work (log-log)", fontsize=10)
    ax_abs.set_ylabel("search_s (tasks per worker held constant)")
    ax_abs.set_title("measured search duration vs lower bound max(work/N, longest task)", fontsize=10)
    for _name, (_, scenario, n, _, threshold) in TARGETS.items():
        if scenario is not None and n in all_n:
            ax_eff.plot([n], [threshold], marker="v", color=COLORS[scenario], markersize=10, alpha=0.5,
                        linestyle="none", label=f"target {LABELS[scenario]} @ {n}")
    ax_eff.set_xscale("log", base=2)
    ax_eff.set_xticks(all_n, [str(n) for n in all_n])
    ax_eff.set_ylim(0, 1.05)
    ax_eff.axhline(1.0, color="grey", lw=0.8)
    ax_eff.set_xlabel("worker ranks N")
    ax_eff.set_ylabel("efficiency = lower bound / search_s")
    ax_eff.set_title("efficiency", fontsize=10)
    ax_eff.grid(alpha=0.3)
    ax_eff.legend(fontsize=8, loc="lower left")
    ax_text.axis("off")
    lines = []
    tp = result.get("throughput")
    if tp:
        lines += [f"(c) no-op tasks, {tp['workers']} workers, journal on: {tp['tasks_per_s_journal_on_median']:.0f}"
                  f" tasks/s (median), journal off {tp['tasks_per_s_journal_off']:.0f}/s",
                  f"    rank 0: {tp['coordinator_cpu_per_task_us_journal_on']} us CPU/task "
                  f"(-> at most {tp['rank0_bound_tasks_per_s']:.0f}/s); workers "
                  f"{tp['workers_cpu_per_task_us']} us CPU/task",
                  f"    bare send/recv ping-pong now: {tp['bare_pingpong_round_trips_per_s_now']:.0f}/s; "
                  "mpi4py.futures ~3,900/s (issue)"]
        prof = result.get("profile_rank0")
        if prof:
            lines.append("    rank 0 profile, top by own time:")
            for row in prof["top_tottime"][:6]:
                lines.append(f"      {row['tottime_s']:7.3f}s {row['ncalls']:>7} {row['function'][:62]}")
    rf = result.get("real_fits")
    if rf:
        lines += ["", f"(b) real fits: {rf['tasks']} RandomForest tasks: search "
                  f"{rf['per_n']['1']['search_s']:.2f}s (1 worker), {rf['per_n']['2']['search_s']:.2f}s (2 workers)",
                  f"    speedup {rf['speedup_1_to_2']:.2f}, efficiency at 2 workers "
                  f"{rf['efficiency_2_workers_vs_1_worker_work']:.2f}"]
    lines += ["", "targets:"]
    for t in result["targets"].values():
        state = "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "MISS")
        lines.append(f"  {t['description']}: {t['value']} ({t['target']}) {state}")
    ax_text.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=7.5,
                 transform=ax_text.transAxes)
    m = result["machine"]
    fig.suptitle(f"mpisearch scaling on {m['cpus']} cores ({m['host']}), load before "
                 f"{result['load_average_before'][0]}" + (" (QUICK)" if result["quick"] else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100)


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] == "_child":
        return child_mode(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N up to 8 and fewer tasks, for a smoke run")
    parser.add_argument("--workers", help="comma-separated worker counts for (a), e.g. 1,4,16")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task durations (0)")
    parser.add_argument("--skip-real", action="store_true", help="leave out (b), the real fits")
    parser.add_argument("--skip-throughput", action="store_true", help="leave out (c), the throughput run")
    common.add_output_args(parser, "specs, logs, journals")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if a measured target is missed")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = bench(args, out_dir)
    common.save(result, out_dir, "bench_scaling", draw)
    return 1 if args.strict and not result["all_pass"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
