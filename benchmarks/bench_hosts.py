"""Across hosts: start-up, broadcast and failure times on network-namespace test hosts.

Needs root (tests/testhosts.py makes the hosts: h1, h2, h3 on a bridge, sshd on each).
Every job is launched from h1 with ``mpiexec -launcher ssh -f HOSTFILE -bind-to none``
and ``UCX_TLS=tcp,self`` (messages between hosts cross the virtual network), 6 ranks:

* layouts: ``1 host`` (hostfile ``h1:6``: every rank forked on h1, no ssh) against
  ``3 hosts`` (``h1:2 h2:2 h3:2``: two proxies started over ssh);
* ``startup``: a bare ``mpi4py`` program (MPI_Init and one barrier), launch to exit;
* ``search``: ``mpisearch run`` of a 4-task search of ``mpisearch.testing.NoopClassifier``
  on datasets of several sizes: launch to first task (from journal.jsonl), and from
  run.json the HDF5 load, the broadcast (``bcast_s``: rank 0 to one node-shared window per
  host) and the whole wall time;
* ``loss``: 2 s tasks on 3 hosts, h3 lost after 6 finished tasks (its link down, or all
  its processes killed), through examples/mpiexec-ssh (a lost host kills mpiexec) and
  through plain ssh (with the same 1 s keepalives); time from the loss until mpiexec exits (capped).

    python benchmarks/bench_hosts.py [--repeat 3] [--sizes 0,80,400] [--skip-loss] [--loss-cap 60]

Prints a JSON document (also benchmarks/out/bench_hosts.json), draws
benchmarks/out/bench_hosts.png, and writes Markdown tables of the same figures to stderr.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    ONE_THREAD_ENV,
    add_output_args,
    journal_entries,
    load_average,
    log,
    median,
    pyplot,
    repo_module,
    save,
)

TestHosts = repo_module("tests/testhosts.py").TestHosts  # the test hosts of the multi-host tests

BIN = Path(sys.executable).parent
LAYOUTS = {"1 host": {"h1": 6}, "3 hosts": {"h1": 2, "h2": 2, "h3": 2}}

NOOP = """
[data]
path = "{data}"
[estimator]
class = "mpisearch.testing.NoopClassifier"
[space]
tag = [0, 1]
[search]
strategy = "grid"
[cv]
folds = 2
[scoring]
refit = false
"""

SLEEP = """
[data]
path = "{data}"
[estimator]
class = "mpisearch.testing.SleepClassifier"
params = {{ duration = 2.0 }}
[space]
tag = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
[search]
strategy = "grid"
[cv]
folds = 3
[scoring]
refit = false
"""


def env() -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8", **ONE_THREAD_ENV}


def mpiexec(hosts: TestHosts, hostfile: Path, n: int, argv: list[str], limit: int = 600) -> list[str]:
    return ["timeout", str(limit), str(BIN / "mpiexec"), "-launcher", "ssh", "-launcher-exec", str(hosts.ssh),
            "-f", str(hostfile), "-n", str(n), "-bind-to", "none", "-genv", "UCX_TLS", "tcp,self", *argv]


def timed(hosts: TestHosts, argv: list[str]) -> float:
    start = time.perf_counter()
    done = hosts.run("h1", argv, timeout=900, env={**env(), **hosts.launcher_env}, cwd=hosts.workdir)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr[-2000:]}")
    return wall


def make_data(path: Path, megabytes: int) -> dict[str, Any]:
    from mpisearch.data.make import make_file

    if megabytes == 0:
        make_file("digits", path)
        return {"name": "digits", "rows": 1797, "features": 64}
    features = 100
    rows = megabytes * 1_000_000 // (8 * features)
    make_file("classification", path, rows=rows, features=features, seed=0)
    return {"name": "classification", "rows": rows, "features": features}


def bench_startup_and_search(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"startup": {}, "search": {}}
    with TestHosts(["h1", "h2", "h3"]) as hosts:
        disk, local = hosts.local("h1"), hosts.local_path
        bare = [str(BIN / "python"), "-c", "from mpi4py import MPI; MPI.COMM_WORLD.Barrier()"]
        for layout, slots in LAYOUTS.items():
            hostfile = hosts.hostfile(hosts.workdir / f"hostfile-{len(slots)}", slots)
            walls = [timed(hosts, mpiexec(hosts, hostfile, 6, bare)) for _ in range(args.repeat)]
            out["startup"][layout] = {"wall_s": walls, "wall_s_median": median(walls)}
            log(f"startup {layout}: {median(walls):.2f}s")
        for mb in args.sizes:
            data = disk / f"data{mb}.h5"
            meta = make_data(data, mb)
            meta["bytes"] = data.stat().st_size
            (disk / f"noop{mb}.toml").write_text(NOOP.format(data=local / data.name))
            entry: dict[str, Any] = {"data": meta}
            for layout, slots in LAYOUTS.items():
                hostfile = hosts.hostfile(hosts.workdir / f"hostfile-{len(slots)}", slots)
                runs = []
                for i in range(args.repeat):
                    name = f"out-{mb}-{len(slots)}-{i}"
                    launched = time.time()
                    wall = timed(hosts, mpiexec(hosts, hostfile, 6, ["mpisearch", "run", str(local / f"noop{mb}.toml"),
                                                                     "--out", str(local / name), "--quiet"]))
                    info = json.loads((disk / name / "run.json").read_text())
                    starts = [e["start"] for e in journal_entries(disk / name)]
                    hosts_seen = sorted({w["host"] for w in info["workers"].values()} | {info["coordinator_host"]})
                    windows = {tuple(w["shared"]["ranks"]) for w in info["workers"].values() if "shared" in w}
                    runs.append({"wall_s": wall, "to_first_task_s": min(starts) - launched, "load_s": info["load_s"],
                                 "bcast_s": info["bcast_s"], "setup_s": info["setup_s"], "hosts": hosts_seen,
                                 "windows": len(windows)})
                    (disk / name / "journal.jsonl").unlink()
                row = {k: median([r[k] for r in runs]) for k in ("wall_s", "to_first_task_s", "load_s", "bcast_s")}
                row["runs"] = runs
                entry[layout] = row
                log(f"search {mb} MB {layout}: " + ", ".join(f"{k} {row[k]:.3f}" for k in row if k != "runs"))
            out["search"][str(mb)] = entry
            data.unlink()
    return out


def lose_h3(how: str, wrapper: bool, cap: float) -> dict[str, Any]:
    with TestHosts(["h1", "h2", "h3"], lost_host_ends_job=wrapper) as hosts:
        from mpisearch.data.make import make_file

        disk, local = hosts.local("h1"), hosts.local_path
        make_file("iris", disk / "iris.h5")
        (disk / "sleep.toml").write_text(SLEEP.format(data=local / "iris.h5"))
        hostfile = hosts.hostfile(hosts.workdir / "hostfile", LAYOUTS["3 hosts"])
        argv = mpiexec(hosts, hostfile, 6, ["mpisearch", "run", str(local / "sleep.toml"), "--out", str(local / "out"),
                                            "--quiet"], limit=int(cap) + 120)
        proc = hosts.popen("h1", argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           env={**env(), **hosts.launcher_env}, cwd=hosts.workdir)
        journal = disk / "out" / "journal.jsonl"
        end = time.monotonic() + 120
        while not journal.exists() or journal.read_text().count("\n") < 6:
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"no progress: {proc.communicate()[1][-2000:]}")
            time.sleep(0.05)
        lost = time.monotonic()
        hosts.link_down("h3") if how == "link-down" else hosts.power_off("h3")
        try:
            _, err = proc.communicate(timeout=cap)
            result = {"ended_after_s": time.monotonic() - lost, "status": proc.returncode}
        except subprocess.TimeoutExpired:
            result = {"ended_after_s": None, "still_running_after_s": cap}
            hosts.power_off("h1")
            hosts.power_off("h2")
            _, err = proc.communicate(timeout=30)
        result["journal_lines"] = journal.read_text().count("\n")
        result["stderr_tail"] = err[-400:]
        return result


def bench_loss(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for wrapper in (True, False):
        for how in ("power-off", "link-down"):
            key = f"{how}, {'mpiexec-ssh' if wrapper else 'plain ssh'}"
            repeat = args.repeat if (wrapper or how == "power-off") else 1  # the hang is not worth repeating
            runs = [lose_h3(how, wrapper, args.loss_cap) for _ in range(repeat)]
            ended = [r["ended_after_s"] for r in runs if r["ended_after_s"] is not None]
            out[key] = {"runs": runs, "ended": f"{len(ended)}/{len(runs)}", "ended_after_s_median": median(ended),
                        "ended_after_s_max": max(ended, default=None)}
            log(f"loss {key}: {out[key]['ended']} ended, median {out[key]['ended_after_s_median']}")
    return out


def tables(doc: dict[str, Any]) -> str:
    lines = ["| | 1 host (h1:6) | 3 hosts (h1:2 h2:2 h3:2) |", "| --- | --- | --- |"]
    s = doc["startup"]
    lines.append(f"| bare MPI start-up (mpi4py, 6 ranks, launch to exit) | {s['1 host']['wall_s_median']:.2f} s | "
                 f"{s['3 hosts']['wall_s_median']:.2f} s |")
    for e in doc["search"].values():
        d = e["data"]
        label = f"{d['name']} {d['rows']}x{d['features']} ({d['bytes'] / 1e6:.1f} MB file)"
        for key, name in (("to_first_task_s", "launch to first task"), ("bcast_s", "broadcast"),
                          ("wall_s", "whole run")):
            lines.append(f"| {label}: {name} | {e['1 host'][key]:.3f} s | {e['3 hosts'][key]:.3f} s |")
    if "loss" in doc:
        lines += ["", "| loss of h3 | runs ended | median | max |", "| --- | --- | --- | --- |"]
        for key, e in doc["loss"].items():
            med = "-" if e["ended_after_s_median"] is None else f"{e['ended_after_s_median']:.2f} s"
            top = "-" if e["ended_after_s_max"] is None else f"{e['ended_after_s_max']:.2f} s"
            lines.append(f"| {key} | {e['ended']} | {med} | {top} |")
    return "\n".join(lines)


def draw(doc: dict[str, Any], path: Path) -> None:
    """Medians per layout: start-up and search phases, broadcast per dataset, time to end after a loss."""
    plt = pyplot()
    loss = doc.get("loss")
    fig, axes = plt.subplots(1, 3 if loss else 2, figsize=(17 if loss else 12, 5))
    phases = [("bare MPI start-up", doc["startup"], "wall_s_median")]
    for e in doc["search"].values():
        label = f"{e['data']['name']} {e['data']['bytes'] / 1e6:.0f} MB"
        phases += [(f"{label}: to first task", e, "to_first_task_s"), (f"{label}: whole run", e, "wall_s")]
    sizes = [f"{e['data']['name']} {e['data']['bytes'] / 1e6:.0f} MB" for e in doc["search"].values()]
    for k, layout in enumerate(LAYOUTS):
        ys = [i + 0.4 * k for i in range(len(phases))]
        axes[0].barh(ys, [entry[layout][key] for _, entry, key in phases], 0.4, label=layout)
        axes[1].bar([i + 0.4 * k for i in range(len(sizes))], [e[layout]["bcast_s"] for e in doc["search"].values()],
                    0.4, label=layout)
    axes[0].set_yticks([i + 0.2 for i in range(len(phases))], [name for name, _, _ in phases], fontsize=8)
    axes[0].set(title="6 ranks: start-up and search (median s)", xlabel="seconds")
    axes[1].set_xticks([i + 0.2 for i in range(len(sizes))], sizes, fontsize=8)
    axes[1].set(title="broadcast of the data (bcast_s, median)", ylabel="seconds")
    if loss:
        cap = max(r.get("still_running_after_s", 0.0) for e in loss.values() for r in e["runs"]) or None
        for i, e in enumerate(loss.values()):
            ended = e["ended_after_s_median"]
            axes[2].bar(i, cap if ended is None else ended, hatch="//" if ended is None else None,
                        color="#d62728" if ended is None else "#1f77b4")
            axes[2].text(i, cap if ended is None else ended, f"{e['ended']} ended", ha="center", va="bottom",
                         fontsize=8)
        axes[2].set_xticks(range(len(loss)), [k.replace(", ", "\n") for k in loss], fontsize=8)
        axes[2].set(title="loss of h3: seconds until mpiexec exits\n(hatched: still running at the cap)",
                    ylabel="seconds", yscale="log")
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    fig.suptitle(f"mpisearch across network-namespace hosts, medians of {doc['repeat']}; load average before "
                 f"{doc['load_average_before'][0]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="0,80,400", help="dataset sizes in MB (0: digits)")
    parser.add_argument("--skip-loss", action="store_true")
    parser.add_argument("--loss-cap", type=float, default=60.0, help="seconds to wait for a job to end after a loss")
    add_output_args(parser)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    doc: dict[str, Any] = {"load_average_before": load_average(), "repeat": args.repeat}
    doc.update(bench_startup_and_search(args))
    if not args.skip_loss:
        doc["loss"] = bench_loss(args)
    doc["load_average_after"] = load_average()
    doc["tables"] = tables(doc)
    save(doc, args.out_dir, "bench_hosts", draw)
    print(doc["tables"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
