"""Runs that survive: signals, a killed rank, torn journals, resume (real processes, real signals)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runs import MPIEXEC
from runs import score_table as scores

from mpisearch.data.make import make_file

TESTS = Path(__file__).parent
N_TASKS = 24  # 8 points x 3 folds

CONFIG = """
[data]
path = "{data}"
[estimator]
class = "estimators.SleepyClassifier"
params = {{ delay = {delay} }}
[space]
C = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
[search]
strategy = "{strategy}"
n_iter = 8
random_state = 0
[cv]
folds = 3
"""

pytestmark = pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec next to the Python interpreter")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def command(n: int | None, config: Path, out: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "mpisearch", "run", str(config), "--out", str(out), *extra]
    return cmd if n is None else [str(MPIEXEC), "-n", str(n), *cmd]


def run(n: int | None, config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(n, config, out, *extra), capture_output=True, text=True, timeout=120, env=env())


def start(n: int | None, config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(command(n, config, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())



def journal_lines(out: Path) -> int:
    path = out / "journal.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for_journal(out: Path, lines: int, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while journal_lines(out) < lines:
        assert time.monotonic() < end, "the run made no progress"
        time.sleep(0.05)


def rank_pids(rank: int, ancestor: int) -> list[int]:
    """PIDs of mpisearch processes below ``ancestor`` started with PMI_RANK=rank."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mpisearch\0run" in cmdline and f"PMI_RANK={rank}".encode() in environ and _below(int(pid), ancestor):
            found.append(int(pid))
    return found


def _below(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
    return False


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    data = make_file("iris", tmp / "iris.h5")
    configs = {}
    for strategy in ("grid", "random"):
        configs[strategy] = tmp / f"{strategy}.toml"
        configs[strategy].write_text(CONFIG.format(data=data, delay=0.25, strategy=strategy))
    configs["fast"] = tmp / "fast.toml"
    configs["fast"].write_text(CONFIG.format(data=data, delay=0.0, strategy="grid"))
    reference = {}
    for strategy in ("grid", "random"):
        done = run(None, configs[strategy].with_name("fast.toml") if strategy == "grid" else configs[strategy],
                   tmp / f"ref-{strategy}")
        assert done.returncode == 0, done.stderr
        reference[strategy] = scores(tmp / f"ref-{strategy}")
    return configs, reference


@pytest.mark.parametrize("strategy", ["grid", "random"])
def test_sigterm_writes_partial_results_and_resume_with_other_n_is_identical(setup, tmp_path, strategy):
    configs, reference = setup
    out = tmp_path / "run"
    proc = start(3, configs[strategy], out)
    wait_for_journal(out, 4)
    proc.send_signal(signal.SIGTERM)  # mpiexec forwards it to every rank; rank 0 decides
    said, err = proc.communicate(timeout=60)
    assert proc.returncode == 99, err
    assert f"resume with `mpiexec -n 3 mpisearch run {configs[strategy]} --out {out} --resume`" in said
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted" and info["stopped"] == "signal"
    done_before = journal_lines(out)
    assert 4 <= done_before < N_TASKS
    assert len(scores(out)) <= done_before // 3  # only points with every fold are in cv_results.csv
    resumed = run(2, configs[strategy], out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["resumed_tasks"] == done_before and info["tasks"] == N_TASKS - done_before
    assert info["status"] == "complete"
    assert scores(out) == reference[strategy]


def test_killed_worker_ends_the_job_promptly_and_resume_completes(setup, tmp_path):
    configs, reference = setup
    out = tmp_path / "run"
    slow = tmp_path / "slow.toml"
    slow.write_text(configs["grid"].read_text().replace("delay = 0.25", "delay = 0.5"))
    proc = start(4, slow, out)
    wait_for_journal(out, 5)
    victims = rank_pids(2, proc.pid)
    assert victims, "could not find rank 2"
    killed_at = time.monotonic()
    os.kill(victims[0], signal.SIGKILL)
    proc.communicate(timeout=60)
    ended_after = time.monotonic() - killed_at
    assert proc.returncode != 0
    assert ended_after < 10, f"the job took {ended_after:.1f}s to end after a rank died"
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert all(json.loads(line)["fold"] in (0, 1, 2) for line in lines)  # no torn or lost line
    resumed = run(None, slow, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert scores(out) == reference["grid"]


def test_torn_last_line_is_ignored_on_resume(setup, tmp_path):
    configs, reference = setup
    out = tmp_path / "run"
    assert run(None, configs["fast"], out).returncode == 0
    lines = (out / "journal.jsonl").read_text().splitlines(keepends=True)
    (out / "journal.jsonl").write_text("".join(lines[:10]) + lines[10][: len(lines[10]) // 2])
    resumed = run(3, configs["fast"], out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["resumed_tasks"] == 10 and info["tasks"] == N_TASKS - 10
    assert scores(out) == reference["grid"]


def test_changed_config_is_refused_unless_forced(setup, tmp_path):
    configs, _ = setup
    out = tmp_path / "run"
    assert run(None, configs["fast"], out).returncode == 0
    changed = run(None, configs["fast"], out, "--resume", "--set", "cv.folds=4")
    assert changed.returncode == 2
    assert changed.stderr.startswith("mpisearch: error: --resume: the config or data differ")
    forced = run(None, configs["fast"], out, "--resume", "--force", "--set", "cv.folds=4")
    assert forced.returncode == 0, forced.stderr


def test_second_signal_exits_at_once(setup, tmp_path):
    configs, _ = setup
    slow = tmp_path / "slow.toml"
    slow.write_text(configs["grid"].read_text().replace("delay = 0.25", "delay = 5.0"))
    out = tmp_path / "run"
    proc = start(3, slow, out)
    end = time.monotonic() + 60
    while not (out / "journal.jsonl").exists() and time.monotonic() < end:
        time.sleep(0.1)  # the journal is opened just before rank 0 takes over the signals
    time.sleep(1.0)  # the fits are running
    (rank0,) = rank_pids(0, proc.pid)
    proc.send_signal(signal.SIGTERM)  # mpiexec forwards the first one to every rank
    time.sleep(0.3)
    # the second straight to rank 0: a second signal to mpiexec itself may make the
    # launcher kill the ranks (exit 9) before rank 0's own exit, a race of the launcher's
    os.kill(rank0, signal.SIGTERM)
    started = time.monotonic()
    proc.communicate(timeout=30)
    assert time.monotonic() - started < 4
    assert proc.returncode == 99


def test_a_crash_on_worker_ranks_ends_every_rank_promptly(setup, tmp_path):
    configs, _ = setup
    broken = tmp_path / "broken.toml"
    broken.write_text(configs["fast"].read_text().replace("estimators.SleepyClassifier", "estimators.BrokenOnWorkers")
                      .replace("params = { delay = 0.0 }", ""))
    start = time.monotonic()
    done = run(3, broken, tmp_path / "out")
    assert time.monotonic() - start < 30
    assert done.returncode != 0
    assert "cannot be rebuilt on a worker rank" in done.stderr


@pytest.mark.parametrize("n", [None, 3])
def test_a_failed_refit_keeps_the_search_results_and_is_one_line(setup, tmp_path, n):
    configs, _ = setup
    config = tmp_path / "refit.toml"
    config.write_text(configs["fast"].read_text().replace("estimators.SleepyClassifier", "estimators.FailsOnAllRows")
                      .replace("params = { delay = 0.0 }", "params = { max_rows = 120 }"))
    out = tmp_path / "out"
    done = run(n, config, out)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mpisearch: error: refit of the best point"), done.stderr
    assert "MemoryError" in lines[0] and "more than this estimator can take" in (out / "errors.txt").read_text()
    assert journal_lines(out) == N_TASKS and (out / "cv_results.csv").exists() and (out / "best.json").exists()
    assert not (out / "best_model.pkl").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "refit failed"


def test_sigterm_ends_a_search_of_a_billion_points_within_the_grace_time(setup, tmp_path):
    """Points are drawn as they are handed out: nothing is drawn up front, a signal is honoured."""
    configs, _ = setup
    huge = tmp_path / "huge.toml"
    huge.write_text(configs["random"].read_text().replace("n_iter = 8", "n_iter = 1000000000")
                    .replace("C = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]",
                             "C = { low = 0.001, high = 1000.0, log = true }")
                    .replace("delay = 0.25", "delay = 0.0").replace("[cv]", 'grace = "5s"\n[cv]'))
    out = tmp_path / "run"
    proc = start(None, huge, out)
    wait_for_journal(out, 6)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 99, err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
