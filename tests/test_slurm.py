"""Slurm: step-size check and job time left (fake environments), and the sbatch scripts
in slurm/ on a real one-node Slurm started for this session (tests/slurm/start_slurm.sh)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mpisearch.errors import InputError
from mpisearch.slurm import auto_max_time, check_step_size, job_time_left, parse_time_left, step_tasks

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SCRIPTS = ROOT / "slurm"
START = TESTS / "slurm" / "start_slurm.sh"
VENV = Path(sys.prefix)
SCORE_PREFIXES = ("split", "mean_test", "std_test", "rank_test", "params", "param_")
INSTANCE_PREFIX = "mpisearch-slurm-"

# ---------------------------------------------------------------- unit tests (no Slurm)


def step_env(**extra: str) -> dict[str, str]:
    return {"SLURM_JOB_ID": "42", "SLURM_STEP_ID": "0", **extra}


def test_step_size_matching_or_outside_a_step_passes():
    check_step_size(3, step_env(SLURM_NTASKS="3", SLURM_STEP_NUM_TASKS="3"))
    check_step_size(1, step_env(SLURM_NTASKS="1"))
    check_step_size(1, {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "8"})  # batch script: not a step
    check_step_size(1, {})
    # mpiexec inside an allocation: one Slurm task per node (the proxy), several ranks under it
    check_step_size(8, step_env(SLURM_NTASKS="1", SLURM_STEP_NUM_TASKS="1"))


@pytest.mark.parametrize("variables", [{"SLURM_NTASKS": "3"}, {"SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "3"}])
def test_step_size_wrong_plugin_fails_with_a_clear_error(variables):
    with pytest.raises(InputError) as err:
        check_step_size(1, step_env(**variables))
    message = str(err.value)
    assert "started 3 separate one-rank runs" in message
    assert "srun --mpi=pmi2 (MPICH) or --mpi=pmix (Open MPI)" in message
    with pytest.raises(InputError, match="separate 2-rank runs"):
        check_step_size(2, step_env(SLURM_STEP_NUM_TASKS="4"))


def test_step_tasks_prefers_the_step_count_and_ignores_junk():
    assert step_tasks(step_env(SLURM_NTASKS="8", SLURM_STEP_NUM_TASKS="2")) == 2
    assert step_tasks(step_env(SLURM_NTASKS="x")) is None
    assert step_tasks({"SLURM_NTASKS": "8"}) is None


@pytest.mark.parametrize("text, seconds", [("0:05", 5), ("12:34", 754), ("1:02:03", 3723), ("2-03:04:05", 183845),
                                           ("1-00:00:00", 86400), ("UNLIMITED", None), ("NOT_SET", None),
                                           ("INVALID", None), ("", None)])
def test_parse_time_left(text, seconds):
    assert parse_time_left(text) == seconds


def test_job_time_left_from_job_end_time():
    environ = {"SLURM_JOB_ID": "42", "SLURM_JOB_END_TIME": "1000"}
    assert job_time_left(environ, now=lambda: 400.0) == 600.0
    assert job_time_left({}, now=lambda: 400.0) is None  # not in a job


def fake_squeue(tmp_path: Path, left: str, end: str = "N/A", rc: int = 0) -> dict[str, str]:
    """A PATH whose `squeue` prints LEFT for -o %L and END for -o %e, and logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "squeue"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {tmp_path}/squeue.log
case "$*" in *%L*) echo "{left}" ;; *%e*) echo "{end}" ;; esac
exit {rc}
""")
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "42"}


def test_job_time_left_from_squeue(tmp_path):
    environ = fake_squeue(tmp_path, "1:00:00")
    assert job_time_left(environ, now=lambda: 0.0) == 3600.0
    assert (tmp_path / "squeue.log").read_text().split() == ["-h", "-j", "42", "-o", "%L"]


def test_job_time_left_from_squeue_end_time(tmp_path):
    end = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(1_800_000_000))
    environ = fake_squeue(tmp_path, "INVALID", end)
    assert job_time_left(environ, now=lambda: 1_800_000_000 - 900.0) == 900.0


def test_job_time_left_unlimited_or_squeue_failing(tmp_path):
    assert job_time_left(fake_squeue(tmp_path, "UNLIMITED", "Unknown")) is None
    assert job_time_left(fake_squeue(tmp_path, "", rc=1)) is None
    assert job_time_left({"SLURM_JOB_ID": "42", "PATH": str(tmp_path / "nowhere")}) is None  # no squeue


def test_auto_max_time_leaves_a_margin():
    def environ(left: float) -> dict[str, str]:
        return {"SLURM_JOB_ID": "42", "SLURM_JOB_END_TIME": str(int(1000 + left))}

    now = lambda: 1000.0  # noqa: E731
    assert auto_max_time(environ=environ(36000), now=now) == 36000 - 1800  # 5 %
    assert auto_max_time(environ=environ(1000), now=now) == 1000 - 120  # at least 2 minutes
    assert auto_max_time(0.1, 30, environ=environ(1000), now=now) == 900
    assert auto_max_time(environ=environ(60), now=now) == 1.0  # nearly over: stop at once
    assert auto_max_time(environ={}, now=now) is None  # outside Slurm: no budget


# ---------------------------------------------------------------- a real Slurm


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_stale_instances() -> None:
    """Instances left by a test session that was killed (e.g. by a timeout) before its teardown."""
    for owner in Path(tempfile.gettempdir()).glob(f"{INSTANCE_PREFIX}*/owner.pid"):
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            subprocess.run(["bash", str(START), "stop", str(owner.parent)], capture_output=True, timeout=60)
            shutil.rmtree(owner.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm():
    """A private one-node Slurm (4 CPUs) for this session: the environment for its client commands."""
    if os.geteuid() != 0:
        pytest.skip("the test Slurm runs munged, slurmctld and slurmd as root; not root here")
    install = subprocess.run(["bash", str(START), "install"], capture_output=True, text=True, timeout=900)
    if install.returncode != 0:
        pytest.skip(f"could not install slurm-wlm and munge with apt-get: {install.stderr.strip()[-500:]}")
    _stop_stale_instances()
    instance = Path(tempfile.mkdtemp(prefix=INSTANCE_PREFIX))
    (instance / "owner.pid").write_text(str(os.getpid()))
    try:
        started = subprocess.run(["bash", str(START), "start", str(instance)], capture_output=True, text=True,
                                 timeout=120)
        assert started.returncode == 0, f"the test Slurm did not start:\n{started.stdout}\n{started.stderr}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
        env.update(SLURM_CONF=str(instance / "slurm.conf"), MPISEARCH_VENV=str(VENV),
                   PATH=f"{VENV / 'bin'}{os.pathsep}{env['PATH']}",
                   PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        yield env
    finally:
        subprocess.run(["bash", str(START), "stop", str(instance)], capture_output=True, timeout=120)
        shutil.rmtree(instance, ignore_errors=True)


CONFIG = """
[data]
path = "{data}"
[estimator]
class = "estimators.SleepyClassifier"
params = {{ delay = {delay} }}
[space]
C = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
[search]
strategy = "grid"
[cv]
folds = 3
"""
N_TASKS = 24  # 8 points x 3 folds


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """Configs (fast, slow) on iris, and the scores of an uninterrupted run without Slurm."""
    from mpisearch.data.make import make_file

    tmp = tmp_path_factory.mktemp("slurm-search")
    data = make_file("iris", tmp / "iris.h5")
    configs = {}
    for name, delay in (("fast", 0.0), ("slow", 0.5)):
        configs[name] = tmp / f"{name}.toml"
        configs[name].write_text(CONFIG.format(data=data, delay=delay))
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "mpisearch", "run", str(configs["fast"]), "--out", str(tmp / "ref"),
                           "--quiet"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return configs, scores(tmp / "ref")


def scores(out: Path) -> list[dict[str, str]]:
    with (out / "cv_results.csv").open() as fh:
        return [{k: v for k, v in row.items() if k.startswith(SCORE_PREFIXES)} for row in csv.DictReader(fh)]


def journal_lines(out: Path) -> int:
    path = out / "journal.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def sbatch(env: dict[str, str], script: str, workdir: Path, *options: str, **variables: str) -> subprocess.Popen:
    """`sbatch --wait` one of the repository's scripts; its first output line is the job id."""
    cmd = ["sbatch", "--wait", "--parsable", f"--chdir={workdir}", f"--output={workdir}/job.out", *options,
           str(SCRIPTS / script)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**env, **variables})


def finish(proc: subprocess.Popen, workdir: Path, timeout: float = 120) -> int:
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        raise AssertionError(f"the job did not end within {timeout} s:\n{job_log(workdir)}") from None
    return proc.returncode


def job_log(workdir: Path) -> str:
    path = workdir / "job.out"
    return path.read_text() if path.exists() else "(no job output)"


def scontrol(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30, env=env)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("script, options, variables, ranks", [
    ("mpisearch-single-node.sbatch", ["--ntasks=3"], {}, 3),
    ("mpisearch-multi-node.sbatch", ["--nodes=1", "--ntasks-per-node=4"], {}, 4),
    ("mpisearch-single-node.sbatch", ["--ntasks=3"], {"MPISEARCH_LAUNCHER": "mpiexec"}, 3),
], ids=["single-node", "multi-node", "single-node-mpiexec"])
def test_script_runs_a_search_on_several_ranks(slurm, search, tmp_path, script, options, variables, ranks):
    configs, reference = search
    out = tmp_path / "out"
    proc = sbatch(slurm, script, tmp_path, *options, MPISEARCH_CONFIG=str(configs["fast"]), MPISEARCH_OUT=str(out),
                  MPISEARCH_ARGS="--set cv.folds=3", **variables)
    assert finish(proc, tmp_path) == 0, job_log(tmp_path)
    info = json.loads((out / "run.json").read_text())
    assert info["ranks"] == ranks and info["status"] == "complete", job_log(tmp_path)
    assert scores(out) == reference
    assert f"{ranks} ranks x 1 threads" in job_log(tmp_path)


FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED")


def job_fields(env: dict[str, str], job: str) -> dict[str, str]:
    shown = scontrol(env, "show", "job", "-o", job).stdout
    return dict(item.split("=", 1) for item in shown.split() if "=" in item)


def until(what: str, check, timeout: float, log: Path, state=lambda: "") -> None:
    """Poll ``check`` until it holds; past ``timeout``, fail with the job's output and ``state()``."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"{what} did not happen within {timeout} s:\n{job_log(log)}{state()}"
        time.sleep(0.3)


@pytest.mark.timeout(420)
def test_preemptible_script_checkpoints_requeues_and_resumes(slurm, search, tmp_path):
    """One preemption cycle. Polls scontrol instead of `sbatch --wait`: during a requeue the job
    is briefly CANCELLED+COMPLETING, and a `sbatch --wait` that polls then returns 1."""
    configs, reference = search
    out = tmp_path / "out"
    submitted = subprocess.run(["sbatch", "--parsable", f"--chdir={tmp_path}", f"--output={tmp_path}/job.out",
                                "--ntasks=3", str(SCRIPTS / "mpisearch-preemptible.sbatch")],
                               capture_output=True, text=True, timeout=30,
                               env={**slurm, "MPISEARCH_CONFIG": str(configs["slow"]), "MPISEARCH_OUT": str(out)})
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    until("4 finished tasks in the journal", lambda: journal_lines(out) >= 4, 90, tmp_path)
    warned = subprocess.run(["scancel", "--batch", "--signal=USR1", job], capture_output=True, text=True,
                            timeout=30, env=slurm)
    assert warned.returncode == 0, warned.stderr

    seen: list[str] = []  # the job's states while waiting, for the failure message

    def restarted() -> bool:
        """The job, requeued by its script, is held (Reason=BeginTime) for the test Slurm's
        cred_expire (30 s, tests/slurm/slurm.conf.in), then starts again by itself."""
        fields = job_fields(slurm, job)
        state = " ".join(f"{k}={fields.get(k)}" for k in ("JobState", "Reason", "Restarts", "StartTime"))
        if not seen or seen[-1] != state:
            seen.append(state)
        return "start 2 (SLURM_RESTART_COUNT=1)" in job_log(tmp_path)

    until("the requeue and second start", restarted, 150, tmp_path,
          lambda: "\njob states seen:\n" + "\n".join(seen))
    until("the end of the job", lambda: job_fields(slurm, job).get("JobState") in FINAL_STATES, 120, tmp_path)
    fields = job_fields(slurm, job)
    log = job_log(tmp_path)
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0" and fields["Restarts"] == "1", log
    assert "got SIGUSR1" in log and "stopped with status 99; requeueing" in log, log
    second = log[log.index("start 2 (SLURM_RESTART_COUNT=1)"):].splitlines()[0]
    assert "--resume" in second, log
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["ranks"] == 3
    assert 4 <= info["resumed_tasks"] < N_TASKS and info["resumed_tasks"] + info["tasks"] == N_TASKS, info
    assert journal_lines(out) == N_TASKS
    assert scores(out) == reference


@pytest.mark.timeout(120)
def test_job_time_left_inside_a_real_job(slurm):
    code = "from mpisearch.slurm import auto_max_time, job_time_left; print(job_time_left(), auto_max_time())"
    done = subprocess.run(["srun", "--ntasks=1", "--time=5", sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60, env=slurm)
    assert done.returncode == 0, done.stderr
    left, budget = map(float, done.stdout.split())
    assert 240 < left <= 300 and budget == pytest.approx(left - 120, abs=2)


@pytest.mark.timeout(120)
def test_wrong_mpi_plugin_fails_with_a_clear_error(slurm, search, tmp_path):
    configs, _ = search
    done = subprocess.run(["srun", "--mpi=none", "--ntasks=3", sys.executable, "-m", "mpisearch", "run",
                           str(configs["fast"]), "--out", str(tmp_path / "out"), "--quiet", "--set", "space.C=[1.0]"],
                          capture_output=True, text=True, timeout=90, env={**slurm, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    assert "mpisearch: error: this Slurm step has 3 tasks but MPI sees 1 rank(s): srun started 3 separate " \
           "one-rank runs" in done.stderr, done.stderr
    assert "srun --mpi=pmi2 (MPICH) or --mpi=pmix (Open MPI)" in done.stderr
    assert not (tmp_path / "out" / "cv_results.csv").exists()


@pytest.mark.timeout(120)
def test_max_time_auto_ends_the_search_before_the_job_limit(search, tmp_path):
    """No Slurm needed: Slurm >= 23.02 sets SLURM_JOB_END_TIME, which auto_max_time reads first."""
    configs, _ = search
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PYTHONPATH"] = f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    cmd = [sys.executable, "-m", "mpisearch", "run", str(configs["slow"]), "--quiet", "--set", "search.max_time=auto"]
    # the job ends in 124 s; the margin is 120 s: 4 s of search (of 12 s), then partial results
    limited = subprocess.run([*cmd, "--out", str(tmp_path / "limited")], capture_output=True, text=True, timeout=100,
                             env={**env, "SLURM_JOB_ID": "1", "SLURM_JOB_END_TIME": str(int(time.time()) + 124)})
    assert limited.returncode == 0, limited.stderr
    info = json.loads((tmp_path / "limited" / "run.json").read_text())
    assert info["stopped"] == "max_time" and 0 < journal_lines(tmp_path / "limited") < N_TASKS, info
    unlimited = subprocess.run([*cmd, "--out", str(tmp_path / "unlimited"), "--set", "space.C=[1.0, 10.0]"],
                               capture_output=True, text=True, timeout=100, env=env)  # outside Slurm: no budget
    assert unlimited.returncode == 0, unlimited.stderr
    info = json.loads((tmp_path / "unlimited" / "run.json").read_text())
    assert info["status"] == "complete" and journal_lines(tmp_path / "unlimited") == 6, info
