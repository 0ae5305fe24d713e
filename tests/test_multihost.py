"""One search on several hosts, launched as the MPI Operator's launcher does: MPICH's
``mpiexec -launcher ssh -f HOSTFILE`` (``host:slots`` lines), over ssh to every host.

The hosts are network namespaces on this machine (tests/testhosts.py): own address,
own host name, own sshd, own local disk. Three of them (h1, h2, h3) run 2 ranks each;
a fourth one, ``launcher``, runs only mpiexec (the operator's default) or h1 runs it
and rank 0 (``runLauncherAsWorker``, as helm/mpisearch does).

Ranks on different test hosts share one kernel, and UCX (the MPICH wheel's network
layer) sees that and would pass their messages through shared memory. The tests set
``UCX_TLS=tcp,self`` so that every message between hosts crosses the virtual network,
as it would between machines, and a host whose link goes down is really cut off.

Run with ``make test-hosts`` (needs root; skipped, with the reason, where network
namespaces cannot be made, unless MPISEARCH_REQUIRE_HOSTS=1 makes that a failure).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from runs import MPIEXEC, score_table
from testhosts import TestHosts, unavailable_reason

from mpisearch.data.make import make_file

TESTS = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
WORKERS = ("h1", "h2", "h3")
MPIEXEC_TIMEOUT = 120  # every mpiexec runs under `timeout` on its host too

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(240),
              pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec next to the Python interpreter")]

SVC_CONFIG = """
[data]
path = "digits.h5"
[estimator]
class = "sklearn.svm.SVC"
[space]
C = [0.1, 1.0, 10.0, 100.0]
gamma = [0.0001, 0.001]
[search]
strategy = "grid"
[cv]
folds = 3
[scoring]
metrics = ["accuracy", "f1_macro"]
"""

# 12 points x 3 folds of about 1 s each (a sleep, then a logistic regression on iris)
SLOW_CONFIG = """
[data]
path = "iris.h5"
[estimator]
class = "estimators.SleepyClassifier"
params = {{ delay = {delay} }}
[space]
C = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0]
[search]
strategy = "grid"
[cv]
folds = 3
"""
SLOW_TASKS = 36
# More ranks than cores: BLAS threads would fight over the 2 cores (a 10 ms logistic
# regression on iris took 0.3-1.9 s with the default threads on a busy machine).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def launch_env() -> dict[str, str]:
    """A launcher's environment: the venv first on PATH, nothing else inherited from this
    process but PYTHONPATH (tests/, for estimators.py). mpiexec passes it to every rank
    (-genvall is MPICH's default); remote ranks find `mpisearch` through this PATH."""
    return {"PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LANG": "C.UTF-8", "PYTHONPATH": str(TESTS), "PYTHONUNBUFFERED": "1", **ONE_THREAD}


def mpiexec(hosts: TestHosts, hostfile: Path, n: int, *args: str) -> list[str]:
    return ["timeout", str(MPIEXEC_TIMEOUT), str(MPIEXEC), "-launcher", "ssh", "-launcher-exec", str(hosts.ssh),
            "-f", str(hostfile), "-n", str(n), "-bind-to", "none", "-genv", "UCX_TLS", "tcp,self",
            "mpisearch", "run", *args]


def start(hosts: TestHosts, launcher: str, argv: list[str]) -> subprocess.Popen:
    return hosts.popen(launcher, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env={**launch_env(), **hosts.launcher_env}, cwd=hosts.workdir)


def finish(hosts: TestHosts, launcher: str, proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """Wait for the launcher; past ``timeout`` kill every process of the launcher's host and fail."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hosts.power_off(launcher)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"mpiexec still running after {timeout:.0f}s\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}")


def journal_text(out: Path) -> str:
    """The complete lines of the journal (a line being written is left out)."""
    path = out / "journal.jsonl"
    text = path.read_text() if path.exists() else ""
    return text[: text.rfind("\n") + 1]


@pytest.fixture
def hosts():
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("MPISEARCH_REQUIRE_HOSTS") == "1":
            pytest.fail(f"MPISEARCH_REQUIRE_HOSTS=1 but {reason}")
        pytest.skip(reason)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` on pytest: still tear down
    test_hosts = TestHosts([*WORKERS, "launcher"], no_sshd=("launcher",))
    try:
        test_hosts.up()
        yield test_hosts
    finally:
        test_hosts.down()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One-process results (no mpiexec) of both searches; the slow one without its sleep."""
    tmp = tmp_path_factory.mktemp("multihost-reference")
    make_file("digits", tmp / "digits.h5")
    make_file("iris", tmp / "iris.h5")
    (tmp / "svc.toml").write_text(SVC_CONFIG)
    (tmp / "fast.toml").write_text(SLOW_CONFIG.format(delay=0.0))
    env = {**os.environ, "PYTHONPATH": str(TESTS), **ONE_THREAD}
    tables = {}
    for name in ("svc", "fast"):
        done = subprocess.run([sys.executable, "-m", "mpisearch", "run", str(tmp / f"{name}.toml"), "--out",
                               str(tmp / name), "--quiet"], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        tables[name] = score_table(tmp / name)
    return tables


def test_search_on_three_hosts_over_ssh_equals_one_process(hosts, reference):
    disk = hosts.local("h1")  # rank 0's host: the only one that has the data, config and results
    make_file("digits", disk / "digits.h5")
    (disk / "svc.toml").write_text(SVC_CONFIG)
    local = hosts.local_path
    hostfile = hosts.hostfile(hosts.workdir / "hostfile", {h: 2 for h in WORKERS})
    assert hostfile.read_text() == "h1:2\nh2:2\nh3:2\n"
    for other in ("h2", "h3", "launcher"):  # nobody else can read the data file
        assert hosts.run(other, ["ls", "-A", str(local)]).stdout == ""

    launched = time.time()
    proc = start(hosts, "launcher", mpiexec(hosts, hostfile, 6, str(local / "svc.toml"), "--out", str(local / "out")))
    out, err = finish(hosts, "launcher", proc, MPIEXEC_TIMEOUT + 10)
    wall = time.time() - launched
    assert proc.returncode == 0, err

    info = json.loads((disk / "out" / "run.json").read_text())
    assert info["ranks"] == 6 and info["status"] == "complete"
    assert info["hosts"] == ["h1", "h2", "h3"]  # not the launcher: every rank came over ssh
    assert info["coordinator_host"] == "h1"
    workers = {int(r): w for r, w in info["workers"].items()}
    assert Counter(w["host"] for w in workers.values()) == {"h1": 1, "h2": 2, "h3": 2}
    ranks_on = {h: sorted([0] * (h == "h1") + [r for r, w in workers.items() if w["host"] == h]) for h in WORKERS}
    # node-shared memory: the ranks of each host map one window, and only they do
    windows = {}
    for rank, w in workers.items():
        assert w["shared"]["ranks"] == ranks_on[w["host"]], f"rank {rank} on {w['host']}: {w['shared']}"
        windows[tuple(w["shared"]["ranks"])] = w["shared"]["bytes"]
    assert len(windows) == 3 and len(set(windows.values())) == 1
    assert next(iter(windows.values())) >= 1797 * 64 * 8  # digits' X, float64
    assert sum(w["tasks"] for w in workers.values()) >= info["tasks"] == 8 * 3
    # node fold store: every host cuts the folds it uses itself, each once (one copy per host,
    # which its ranks share: tasks go out fold by fold), and every task fitted on a fold of its
    # host's store
    for host in WORKERS:
        stores = [w["fold_store"] for w in workers.values() if w["host"] == host]
        built, reused = sum(s["built"] for s in stores), sum(s["reused"] for s in stores)
        assert 1 <= built <= 3 and sum(s["failed"] for s in stores) == 0, f"{host}: {stores}"
        assert built + reused == sum(w["tasks"] for w in workers.values() if w["host"] == host)
    assert score_table(disk / "out") == reference["svc"]
    assert not any(hosts.local("h2").iterdir()) and not any(hosts.local("h3").iterdir())  # no rank wrote there
    first_task = min(json.loads(line)["start"] for line in journal_text(disk / "out").splitlines())
    print(f"\n3 hosts x 2 ranks: wall {wall:.2f}s, launch to first task {first_task - launched:.2f}s, "
          f"bcast {info['bcast_s'] * 1e3:.1f} ms, search {info['search_s']:.2f}s")


@pytest.mark.parametrize("loss", ["link-down", "power-off"])
def test_a_lost_host_ends_the_job_and_resume_on_the_others_completes(hosts, reference, loss):
    """h1 launches and runs rank 0 (as helm/mpisearch does); h3 is lost mid-run: its link
    goes down (a silent host: no packet comes back) or all its processes, sshd included, die."""
    disk = hosts.local("h1")
    make_file("iris", disk / "iris.h5")
    (disk / "slow.toml").write_text(SLOW_CONFIG.format(delay=1.0))
    local = hosts.local_path
    run_args = [str(local / "slow.toml"), "--out", str(local / "out"), "--quiet"]
    three = hosts.hostfile(hosts.workdir / "hostfile-3", {h: 2 for h in WORKERS})
    proc = start(hosts, "h1", mpiexec(hosts, three, 6, *run_args))
    end = time.monotonic() + 90
    while journal_text(disk / "out").count("\n") < 6:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the search made no progress"
        time.sleep(0.05)
    before = journal_text(disk / "out")

    lost_at = time.monotonic()
    if loss == "link-down":
        hosts.link_down("h3")
    else:
        hosts.power_off("h3")
    _, err = finish(hosts, "h1", proc, 60)
    ended_after = time.monotonic() - lost_at
    bound = 15.0 if loss == "link-down" else 5.0  # link down: ssh needs 3 missed 1 s keepalives
    print(f"\n{loss} of h3: mpiexec ended {ended_after:.2f}s later with status {proc.returncode}")
    assert proc.returncode != 0, err
    if loss == "link-down":  # hydra alone would wait forever: examples/mpiexec-ssh killed it
        assert proc.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), (proc.returncode, err)
    assert ended_after < bound, f"the job took {ended_after:.1f}s to end after h3 was lost ({loss})"
    end = time.monotonic() + 10  # the proxies on h1 and h2 kill their ranks when mpiexec is gone
    while left := [p for h in ("h1", "h2") for p in hosts.processes(h) if b"mpisearch" in _cmdline(p)]:
        assert time.monotonic() < end, f"ranks left running on the hosts that stayed: {left}"
        time.sleep(0.1)

    text = (disk / "out" / "journal.jsonl").read_text()
    assert text.startswith(before)  # every task journaled before the loss is still there
    lines = text.splitlines()
    if not text.endswith("\n"):
        lines = lines[:-1]  # rank 0 may die in the middle of a line: resume skips it
    tasks = {(json.dumps(e["params"], sort_keys=True), e["fold"]) for e in map(json.loads, lines)}
    assert len(tasks) == len(lines) and before.count("\n") <= len(lines) < SLOW_TASKS

    two = hosts.hostfile(hosts.workdir / "hostfile-2", {"h1": 2, "h2": 2})
    resumed = start(hosts, "h1", mpiexec(hosts, two, 4, *run_args, "--resume"))
    _, err = finish(hosts, "h1", resumed, MPIEXEC_TIMEOUT + 10)
    assert resumed.returncode == 0, err
    info = json.loads((disk / "out" / "run.json").read_text())
    assert info["hosts"] == ["h1", "h2"] and info["status"] == "complete"
    assert info["resumed_tasks"] == len(tasks) and info["tasks"] == SLOW_TASKS - len(tasks)
    assert score_table(disk / "out") == reference["fast"]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
