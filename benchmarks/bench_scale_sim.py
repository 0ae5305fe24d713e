#!/usr/bin/env python
"""Rank 0 at thousands of workers: the real coordinator on a simulated cluster.

Usage (from the repository root, with the venv active):

    python benchmarks/bench_scale_sim.py            # full: W = 64..16384 (a few minutes here)
    python benchmarks/bench_scale_sim.py --quick    # W = 64..1024, about a minute
    python benchmarks/bench_scale_sim.py --only short:1024 --no-batch   # one run, without batches

Two parts, in one process, no MPI:

(a) ``scheduler``: :class:`mpisearch.scheduler.Scheduler` driven alone with a fake
    clock and W workers (tasks of 0.2-2 s, 20 per worker, one result per event, prefetch
    2); rank 0's CPU per task = CPU time spent inside ``dispatch`` and ``complete`` /
    tasks. This is the issue's measurement (14, 45, 421, 5,800 us at 16..1,024 before),
    now inside ``search_loop`` with ``freeze_kept`` after each event, as rank 0 runs it
    (without: about a third more at 16,384 workers, the collector's full passes).
(b) ``cluster``: the real :class:`mpisearch.coordinator.Coordinator` (with its Scheduler,
    ResultTable, grid strategy and a Journal writing to a temp directory) against W
    simulated workers, over :class:`SimTransport`. The clock is simulated: rank 0's CPU
    time (``time.process_time`` between transport calls, plus the real pickling that
    MPITransport does, plus MPI_MESSAGE_CPU per message) advances it, so rank 0's cost
    shows in the efficiency (``--free-messages``: pickling and MPI not charged, the bound of
    perfect message batching); when rank 0 waits, the clock jumps to the next message,
    noticed as late as MPITransport's back-off would notice it. Workers run a task in
    its nominal duration plus WORKER overhead measured here (``Worker.run_next`` of a
    0 s SleepClassifier), report at once (tasks >= 20 ms never batch results), and
    honour a cancel that comes before the task starts. Messages take LATENCY_S.
    A RunTask with a bundle (rank 0's batches of short tasks, mpisearch.batching) runs its
    points one after the other, for the sum of their durations (plus the overhead per
    point), and is answered with one BundleResult; ``--no-batch`` turns batches off.
    Scenarios as in bench_scaling.py: 0.2-2 s tasks (one duration per point, 2 folds)
    and constant 20 ms tasks. efficiency = max(total work / W, longest task) / search_s.
    Start-up and shutdown at W: ``last_first_task_s`` is when the last worker started its
    first task (rank 0's first dispatch: W x prefetch tasks), ``shutdown_s`` how long the
    Stop to every worker and the gathering of every Bye (the workers' stats) took after
    the search.

Prints one JSON document on stdout, also saved to benchmarks/out/bench_scale_sim.json,
and draws benchmarks/out/bench_scale_sim.png (efficiency and rank 0's us per task
against W).
"""

from __future__ import annotations

import argparse
import heapq
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mpisearch.batching import BatchPolicy
from mpisearch.control import RunControl
from mpisearch.coordinator import Coordinator
from mpisearch.hotpath import freeze_kept, search_loop
from mpisearch.journal import Journal
from mpisearch.messages import BundleResult, Bye, CancelTask, MemberResult, Result, RunTask, Stop
from mpisearch.plan import make_plan
from mpisearch.reuse.bundles import ReuseCounts
from mpisearch.scheduler import Cancel, Scheduler, Task
from mpisearch.scoring import make_scorers
from mpisearch.space import SearchSpace
from mpisearch.spec import SearchSpec
from mpisearch.testing import SleepClassifier
from mpisearch.transport import wire
from mpisearch.types import TaskResult
from mpisearch.waiting import MAX_SLEEP, MIN_SLEEP, SPIN_SECONDS
from mpisearch.worker import Worker

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out"

# One-way latency of a small message between ranks on one node (half of the ~100 us
# round trip rank 0 sees; see mpisearch.scheduler.PREFETCH).
LATENCY_S = 50e-6
# MPI's own CPU per message on rank 0 (Isend or Improbe + Recv): the bare mpi4py
# send/recv loop in bench_scaling.py makes ~200k round trips/s, i.e. ~5 us for one
# send and one receive on each side.
MPI_MESSAGE_CPU = 2.5e-6
# A sleep overshoots by about Linux's default timer slack for a normal thread.
TIMER_SLACK_S = 50e-6



def _process_time_cost(n: int = 2000) -> float:
    """Seconds one time.process_time() call takes (a system call on some machines)."""
    start = time.process_time()
    for _ in range(n):
        time.process_time()
    return (time.process_time() - start) / (n + 1)


PROCESS_TIME_COST = _process_time_cost()

TARGETS = {  # name: (scenario, workers, threshold on efficiency)
    "hetero_4096": ("hetero", 4096, 0.97),
    "hetero_16384": ("hetero", 16384, 0.95),
    "short_1024": ("short", 1024, 0.90),
}
MAX_US_PER_TASK = 30.0


def settings(quick: bool) -> dict[str, Any]:
    return {
        "scheduler_workers": [16, 64, 256, 1024] if quick else [16, 64, 256, 1024, 4096, 16384],
        "scheduler_tasks_per_worker": 20,
        "cv": 2,
        "hetero": {"workers": [64, 256, 1024] if quick else [64, 256, 1024, 4096, 16384],
                   "low_s": 0.2, "high_s": 2.0, "tasks_per_worker": 8 if quick else 16},
        "short": {"workers": [64, 256, 1024] if quick else [64, 256, 1024, 4096],
                  "duration_s": 0.02, "tasks_per_worker": 30 if quick else 50},
    }


# --------------------------------------------------------------------------- (a) scheduler alone

def scheduler_alone(n_workers: int, tasks_per_worker: int, seed: int = 0) -> dict[str, Any]:
    """The issue's measurement: CPU inside the Scheduler per task, with a fake clock."""
    rng = np.random.default_rng([seed, n_workers])
    n_tasks = n_workers * tasks_per_worker
    durations = rng.uniform(0.2, 2.0, size=n_tasks)
    s = Scheduler(list(range(1, n_workers + 1)))
    s.add(Task(i, i, 0) for i in range(n_tasks))
    queues: dict[int, list[Task]] = {w: [] for w in s.workers}
    running: list[tuple[float, int, int]] = []  # (end, worker, task_id) of each head task
    with search_loop(coordinator=True):  # as rank 0 runs it: what the scheduler keeps is frozen after each event
        cpu = _drive(s, queues, running, durations)
    return {"workers": n_workers, "tasks": n_tasks, "cpu_s": cpu, "us_per_task": 1e6 * cpu / n_tasks}


def _drive(s: Scheduler, queues: dict[int, list[Task]], running: list[tuple[float, int, int]],
           durations: np.ndarray) -> float:
    """Run the fake cluster until every task is done; the CPU seconds spent in the Scheduler."""
    now, cpu = 0.0, 0.0
    while s.n_open:
        t0 = time.process_time()
        actions = s.dispatch(now)
        cpu += time.process_time() - t0
        for a in actions:
            q = queues[a.worker]
            if isinstance(a, Cancel):
                q.remove(a.task)  # always a queued one (a straggler copy is never cancelled)
                continue
            q.append(a.task)
            if len(q) == 1:
                heapq.heappush(running, (now + durations[a.task.task_id], a.worker, a.task.task_id))
        while True:
            now, w, task_id = heapq.heappop(running)
            if queues[w] and queues[w][0].task_id == task_id:
                break
        queues[w].pop(0)
        if queues[w]:
            heapq.heappush(running, (now + durations[queues[w][0].task_id], w, queues[w][0].task_id))
        t0 = time.process_time()
        s.complete(w, task_id, float(durations[task_id]), now)
        freeze_kept()  # rank 0 does this once per pass of its loop (mpisearch.hotpath)
        cpu += time.process_time() - t0
    return cpu


# --------------------------------------------------------------------------- (b) simulated cluster

class SimWorker:
    def __init__(self) -> None:
        self.queue: list[tuple[float, RunTask]] = []  # (arrival, task), not started
        self.current: RunTask | None = None
        self.free_at = 0.0  # when the current task ends (or the worker went idle)
        self.busy_s = 0.0
        self.n_tasks = 0
        self.first_start: float | None = None  # when its first task started


class SimTransport:
    """Rank 0's side of a simulated cluster (see the module docstring)."""

    rank = 0

    def __init__(self, n_workers: int, durations: dict[int, float], overhead_s: float,
                 free_messages: bool = False) -> None:
        self.size = n_workers + 1
        self.free_messages = free_messages  # pickling and MPI not charged: what perfect batching could reach
        self.now = 0.0
        self.durations = durations  # point -> seconds
        self.overhead_s = overhead_s
        self.workers = {w: SimWorker() for w in range(1, n_workers + 1)}
        self.params: dict[int, Any] = {}
        self._ends: list[tuple[float, int]] = []  # (end of current task, worker)
        self._inbox: list[tuple[float, int, int, bytes]] = []  # (arrival, seq, source, pickled message)
        self._seq = 0
        self._mark = time.process_time()
        self._backoff: tuple[float, float] | None = None  # (start, next sleep) of the current wait
        self.rank0_cpu = 0.0
        self.n_messages = 0

    # -- rank 0's clock: charged CPU ------------------------------------------------------
    def clock(self) -> float:
        """Rank 0's clock: as of its last transport call (reading the CPU time costs
        ~1-5 us here, far more than rank 0's real clock, so it is not read here)."""
        return self.now

    def cpu(self) -> float:
        """Rank 0's charged CPU so far (what its batching measures: not the simulated workers' work)."""
        return self.rank0_cpu + max(time.process_time() - self._mark - PROCESS_TIME_COST, 0.0)

    def _charge(self) -> None:
        t = time.process_time()
        spent = max(t - self._mark - PROCESS_TIME_COST, 0.0)  # less the reading of the CPU time itself
        self.rank0_cpu += spent
        self.now += spent

    def _resume(self, extra_cpu: float = 0.0) -> None:
        self.now += extra_cpu
        self.rank0_cpu += extra_cpu
        self._mark = time.process_time()

    # -- transport ----------------------------------------------------------------------
    def send(self, msg: Any, dest: int) -> None:
        if self.free_messages:
            self._charge()
        data = pickle.dumps(wire.encode(msg), protocol=pickle.HIGHEST_PROTOCOL)  # rank 0's real work
        if not self.free_messages:
            self._charge()
        self._advance(self.now)
        self._deliver(wire.decode(pickle.loads(data)), dest, self.now + LATENCY_S)
        self._resume(0.0 if self.free_messages else MPI_MESSAGE_CPU)

    def poll(self, timeout: float, max_sleep: float = MAX_SLEEP) -> tuple[int, Any] | None:
        self._charge()
        limit = self.now + timeout
        self._advance(self.now)
        got = None
        if self._inbox and self._inbox[0][0] <= self.now:
            got = heapq.heappop(self._inbox)
        else:
            wake = self._wait(limit, max(max_sleep, MIN_SLEEP))
            self.now = wake
            if self._inbox and self._inbox[0][0] <= wake:
                got = heapq.heappop(self._inbox)
        if got is None:
            self._resume()
            return None
        self._backoff = None
        t0 = time.process_time()
        msg = wire.decode(pickle.loads(got[3]))  # rank 0's real work
        if self.free_messages:
            self._resume()
        else:
            self._resume(max(time.process_time() - t0 - PROCESS_TIME_COST, 0.0) + MPI_MESSAGE_CPU)
        return got[2], msg

    def _wait(self, limit: float, max_sleep: float) -> float:
        """When MPITransport's back-off would notice the next message (or give up)."""
        if limit <= self.now:  # a poll that does not wait starts no back-off (as MPITransport)
            self._advance(self.now)
            return self.now
        start, delay = self._backoff or (self.now, MIN_SLEEP)
        t = self.now
        while True:
            self._advance(t)
            if (self._inbox and self._inbox[0][0] <= t) or t >= limit:
                self._backoff = (start, delay)
                return t
            if t < start + SPIN_SECONDS:
                t = min(start + SPIN_SECONDS, limit)
                continue
            t = min(t + min(delay, max_sleep) + TIMER_SLACK_S, max(limit, t))
            delay = min(delay * 2, max_sleep)

    # -- workers ------------------------------------------------------------------------
    def _deliver(self, msg: Any, dest: int, at: float) -> None:
        if isinstance(msg, list):
            for m in msg:
                self._deliver(m, dest, at)
            return
        w = self.workers[dest]
        if isinstance(msg, RunTask):
            w.queue.append((at, msg))
            if w.current is None:
                self._start_next(dest, max(at, w.free_at))
        elif isinstance(msg, CancelTask):
            w.queue = [(a, t) for a, t in w.queue if t.task_id != msg.task_id]
        elif isinstance(msg, Stop):
            w.queue.clear()
            stats = {"host": "sim", "pid": dest, "tasks": w.n_tasks, "busy_s": w.busy_s}
            self._post(dest, Bye(stats), max(at, w.free_at) + LATENCY_S)

    def _start_next(self, dest: int, at: float) -> None:
        w = self.workers[dest]
        if not w.queue:
            w.current, w.free_at = None, at
            return
        arrival, task = w.queue.pop(0)
        start = max(at, arrival)
        w.current = task
        if w.first_start is None:
            w.first_start = start
        w.free_at = start + self._duration(task) + len(_points(task)) * self.overhead_s
        heapq.heappush(self._ends, (w.free_at, dest))

    def _advance(self, t: float) -> None:
        """Run every worker's tasks that end by ``t`` (rank 0 sent nothing meanwhile)."""
        while self._ends and self._ends[0][0] <= t:
            end, dest = heapq.heappop(self._ends)
            w = self.workers[dest]
            task = w.current
            assert task is not None
            d = self._duration(task)
            w.busy_s += d
            w.n_tasks += 1
            self._post(dest, self._result(task, end), end + LATENCY_S)
            self._start_next(dest, end)

    def _duration(self, task: RunTask) -> float:
        return sum(self.durations[p] for p in _points(task))

    def _result(self, task: RunTask, end: float) -> Result | BundleResult:
        """What the worker sends when ``task`` (a single task or a bundle, run member after member) ends."""
        results, t = [], end - self._duration(task)
        for p in _points(task):
            d = self.durations[p]
            results.append(TaskResult(scores={"score": 1.0}, fit_time=d, score_time=0.0, started=t))
            t += d
        if task.bundle is None:
            return Result(task.task_id, task.point_id, task.fold, results[0])
        members = tuple(MemberResult(p, r) for p, r in zip(_points(task), results, strict=True))
        return BundleResult(task.task_id, task.fold, members, ReuseCounts())

    def _post(self, source: int, msg: Any, at: float) -> None:
        self._seq += 1
        heapq.heappush(self._inbox, (at, self._seq, source,
                                     pickle.dumps(wire.encode(msg), protocol=pickle.HIGHEST_PROTOCOL)))


def _points(task: RunTask) -> list[int]:
    """The points a RunTask runs: its own, or its bundle's members."""
    return [task.point_id] if task.bundle is None else [m.point_id for m in task.bundle.members]


def worker_overhead(repeat: int = 300) -> float:
    """Seconds a worker spends per task apart from the fit's own duration (measured)."""
    X, y = np.zeros((40, 2)), np.arange(40) % 2
    spec = SearchSpec(estimator=SleepClassifier(), space=SearchSpace({"duration": [0.0]}), cv=2)
    worker = Worker(spec.estimator, make_plan(spec, X, y).dataset, make_scorers(None, spec.estimator))
    worker.receive(RunTask(0, 0, 0, {"duration": 0.0}))
    with search_loop(spec.estimator):
        start = time.perf_counter()
        for i in range(repeat):
            worker.receive(RunTask(i, 0, i % 2))
            worker.run_next()
        return (time.perf_counter() - start) / repeat


def durations_for(scenario: str, cfg: dict[str, Any], n_workers: int, seed: int) -> list[float]:
    sc = cfg[scenario]
    n_points = max(1, round(sc["tasks_per_worker"] * n_workers / cfg["cv"]))
    if scenario == "short":
        return [sc["duration_s"]] * n_points
    rng = np.random.default_rng([seed, n_workers])
    return [float(v) for v in rng.uniform(sc["low_s"], sc["high_s"], size=n_points)]


def cluster(scenario: str, cfg: dict[str, Any], n_workers: int, overhead_s: float, seed: int = 0,
            free_messages: bool = False, batching: bool = True) -> dict[str, Any]:
    """One search of the real Coordinator on W simulated workers."""
    durations = durations_for(scenario, cfg, n_workers, seed)
    X, y = np.zeros((40, 2)), np.arange(40) % 2
    grid = {"tag": list(range(len(durations)))}
    spec = SearchSpec(estimator=SleepClassifier(), space=SearchSpace(grid), cv=cfg["cv"], refit=False)
    planned = make_plan(spec, X, y)
    transport = SimTransport(n_workers, dict(enumerate(durations)), overhead_s, free_messages)
    with tempfile.TemporaryDirectory() as tmp, search_loop(coordinator=True):
        journal = Journal.open(tmp)
        coordinator = Coordinator(planned.strategy, planned.table, planned.rank_metric, transport,
                                  list(range(1, n_workers + 1)), control=RunControl(journal=journal),
                                  clock=transport.clock, batching=BatchPolicy() if batching else None,
                                  cpu=transport.cpu)
        transport._resume()
        stats = coordinator.run()
        end_s = transport.now  # after the shutdown: Stop to every worker, every Bye gathered
        journal.close()
    total = cfg["cv"] * sum(durations)
    bound = max(total / n_workers, max(durations))
    return {"scenario": scenario, "workers": n_workers, "tasks": stats.n_tasks, "search_s": stats.search_s,
            "bound_s": bound, "efficiency": bound / stats.search_s, "rank0_cpu_s": transport.rank0_cpu,
            "us_per_task": 1e6 * transport.rank0_cpu / max(stats.n_tasks, 1), "stolen": stats.n_stolen,
            "duplicates": stats.n_duplicates, "batches": stats.batches, "batched_tasks": stats.batched_points,
            "last_first_task_s": max(w.first_start or 0.0 for w in transport.workers.values()),
            "shutdown_s": end_s - stats.search_s}


def check_against(measured_path: Path, overhead_s: float) -> list[dict[str, Any]]:
    """(c) The simulation against a real run: bench_scaling.py's JSON (its part (a), real
    oversubscribed ranks with sleeping fits) is simulated with the same durations."""
    measured = json.loads(measured_path.read_text())
    rows = []
    for scenario in ("hetero", "short"):
        for entry in measured["simulated"][scenario]["per_n"]:
            n = entry["workers"]
            cfg = {"cv": 2, scenario: {**settings(False)[scenario], "tasks_per_worker": entry["tasks"] / n}}
            sim = cluster(scenario, cfg, n, overhead_s)
            rows.append({"scenario": scenario, "workers": n, "measured_efficiency": entry["efficiency"],
                         "measured_efficiency_vs_measured_work": entry.get("efficiency_vs_measured_work"),
                         "simulated_efficiency": sim["efficiency"],
                         "difference_points": 100 * (sim["efficiency"] - entry["efficiency"])})
            print(f"[check] {scenario} W={n}: measured {entry['efficiency']:.4f}, simulated {sim['efficiency']:.4f}",
                  file=sys.stderr, flush=True)
    return rows


# --------------------------------------------------------------------------- report

def verdicts(runs: list[dict[str, Any]], alone: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (scenario, workers, threshold) in TARGETS.items():
        got = [r["efficiency"] for r in runs if r["scenario"] == scenario and r["workers"] == workers]
        out[name] = {"target": f"efficiency >= {threshold}", "value": got[0] if got else None,
                     "met": bool(got and got[0] >= threshold)}
    worst = max([r["us_per_task"] for r in runs] + [r["us_per_task"] for r in alone])
    out["us_per_task"] = {"target": f"<= {MAX_US_PER_TASK} us at every W", "value": worst,
                          "met": worst <= MAX_US_PER_TASK}
    return out


def draw(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for scenario, label in (("hetero", "0.2-2 s tasks"), ("short", "20 ms tasks")):
        rs = [r for r in doc["cluster"] if r["scenario"] == scenario]
        if not rs:
            continue
        ax1.plot([r["workers"] for r in rs], [r["efficiency"] for r in rs], "o-", label=label)
        ax2.plot([r["workers"] for r in rs], [r["us_per_task"] for r in rs], "o-", label=f"coordinator, {label}")
    for scenario, marker in (("hetero", "^"), ("short", "v")):
        rs = [r for r in doc["check"] or () if r["scenario"] == scenario]
        if rs:
            ax1.plot([r["workers"] for r in rs], [r["measured_efficiency"] for r in rs], marker, color="black",
                     label=f"measured (bench_scaling), {scenario}")
            ax1.plot([r["workers"] for r in rs], [r["simulated_efficiency"] for r in rs], marker, color="red",
                     mfc="none", label=f"simulated, {scenario}")
    al = doc["scheduler_alone"]
    ax2.plot([r["workers"] for r in al], [r["us_per_task"] for r in al], "s--", label="scheduler alone")
    ax1.axhline(0.95, color="grey", lw=0.8, ls=":")
    ax2.axhline(MAX_US_PER_TASK, color="grey", lw=0.8, ls=":")
    for ax in (ax1, ax2):
        if ax.has_data():
            ax.set_xscale("log", base=2)
        ax.set_xlabel("workers W (simulated)")
        ax.legend(fontsize=8)
    ax1.set_ylabel("efficiency (bound / makespan), rank 0's CPU charged")
    ax2.set_ylabel("rank 0's CPU per task (us)")
    fig.suptitle("bench_scale_sim: real coordinator, simulated cluster and clock")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="W up to 1024 only, fewer tasks per worker")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", type=Path, metavar="BENCH_SCALING_JSON",
                    help="also simulate the runs of this bench_scaling.py JSON and compare efficiencies")
    ap.add_argument("--skip-cluster", action="store_true", help="leave out (b) (with --check: only the check)")
    ap.add_argument("--no-batch", action="store_true",
                    help="(b) without batches of short tasks (mpisearch.batching): the code's behaviour before them")
    ap.add_argument("--only", metavar="SCENARIO:W", action="append",
                    help="(b) only these runs (e.g. short:1024), skipping (a); repeatable")
    ap.add_argument("--free-messages", action="store_true",
                    help="(b) without charging pickling and MPI per message: the most batching could give")
    args = ap.parse_args(argv)
    cfg = settings(args.quick)
    alone = []
    for w in cfg["scheduler_workers"] if not args.only else ():
        alone.append(scheduler_alone(w, cfg["scheduler_tasks_per_worker"]))
        print(f"[scheduler] W={w}: {alone[-1]['us_per_task']:.1f} us/task", file=sys.stderr, flush=True)
    overhead = worker_overhead()
    runs = []
    for scenario in ("hetero", "short") if not args.skip_cluster else ():
        for w in cfg[scenario]["workers"]:
            if args.only and f"{scenario}:{w}" not in args.only:
                continue
            runs.append(cluster(scenario, cfg, w, overhead, free_messages=args.free_messages,
                                batching=not args.no_batch))
            r = runs[-1]
            print(f"[cluster] {scenario} W={w}: efficiency {r['efficiency']:.4f}, {r['us_per_task']:.1f} us/task, "
                  f"last first task at {r['last_first_task_s']:.3f} s, shutdown {r['shutdown_s']:.3f} s, "
                  f"{r['batches']} batches of {r['batched_tasks']} tasks",
                  file=sys.stderr, flush=True)
    doc = {"benchmark": "bench_scale_sim", "quick": args.quick, "free_messages": args.free_messages,
           "batching": not args.no_batch, "settings": cfg,
           "model": {"process_time_call_s": PROCESS_TIME_COST,
                     "latency_s": LATENCY_S, "mpi_message_cpu_s": MPI_MESSAGE_CPU, "timer_slack_s": TIMER_SLACK_S,
                     "worker_overhead_s": overhead},
           "scheduler_alone": alone, "cluster": runs, "targets": verdicts(runs, alone),
           "check": check_against(args.check, overhead) if args.check else None}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "bench_scale_sim.json").write_text(json.dumps(doc, indent=2))
    draw(doc, args.out_dir / "bench_scale_sim.png")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
