"""Crash isolation and no-hang under a real mpiexec (3 ranks) and in one process, as users launch it.

Fits that segfault, SIGKILL themselves, call sys.exit or os._exit cost only their
task; a rank that stops answering, or ranks that never join a search, end the job
with one line instead of hanging it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runs import MPIEXEC, score_table

from mpisearch.data.make import make_file

CONFIG = """
[data]
path = "{data}"
[estimator]
class = "mpisearch.testing.CrashingClassifier"
[space]
crash = {crashes}
C = [0.1, 1.0]
[search]
{extra}
[cv]
folds = 3
"""
CRASHES = ["segfault", "sigkill", "exit", "os_exit"]
REASONS = ["killed by signal 11 (SIGSEGV)", "killed by SIGKILL: out of memory?", "SystemExit: 4",
           "exited with status 4"]
# A short silence and join limit for the no-hang tests (defaults: 60 s).
PATCHED = "import mpisearch.liveness as l; l.SILENT_SECONDS = 4.0; l.HEARTBEAT_SECONDS = 0.5; l.JOIN_SECONDS = 3.0"

pytestmark = pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec next to the Python interpreter")


def write_config(path: Path, data: Path, crashes: list[str], extra: str = "") -> Path:
    path.write_text(CONFIG.format(data=data, crashes=json.dumps(crashes), extra=extra))
    return path


def mpisearch(*args: str, n: int | None = 3, python: str | None = None,
              timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mpisearch", *args] if python is None else [sys.executable, "-c", python, *args]
    if n is not None:
        cmd = [str(MPIEXEC), "-n", str(n), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("isolation")
    iris = make_file("iris", tmp / "iris.h5")
    clean = write_config(tmp / "clean.toml", iris, ["none"])
    done = mpisearch("run", str(clean), "--out", str(tmp / "clean"), "-q", n=None)
    assert done.returncode == 0, done.stderr
    return iris, score_table(tmp / "clean")


@pytest.mark.parametrize(("n", "extra"), [(3, ""), (3, 'task_timeout = "2m"'), (None, "")],
                         ids=["3_ranks", "3_ranks_task_timeout", "one_process"])
def test_crashing_fits_cost_only_their_task_and_are_not_rerun(data, n, extra, tmp_path):
    iris, clean = data
    config = write_config(tmp_path / "crash.toml", iris, ["none", *CRASHES], extra)
    out = tmp_path / "out"
    done = mpisearch("run", str(config), "--out", str(out), "-q", n=n)
    assert done.returncode == 0, done.stderr
    rows = score_table(out)
    assert [r for r in rows if json.loads(r["params"])["crash"] == "none"] == clean  # ranks aside, bit for bit
    assert all(r["mean_test_score"] == "nan" for r in rows if json.loads(r["params"])["crash"] != "none")
    errors = (out / "errors.txt").read_text()
    report = mpisearch("report", str(out), n=None)
    for reason in REASONS:
        assert reason in errors and reason in report.stdout, reason
    resumed = mpisearch("run", str(config), "--out", str(out), "-q", "--resume", n=n)
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["tasks"] == 0 and info["resumed_tasks"] == len(rows) * 3  # no crashing point ran again


def test_a_rank_that_stops_answering_ends_the_job_with_one_line(data, tmp_path):
    iris, _ = data
    config = write_config(tmp_path / "stop.toml", iris, ["none", "stop_parent"])  # the fit SIGSTOPs its rank
    start = time.monotonic()
    done = mpisearch("run", str(config), "--out", str(tmp_path / "out"), "-q", timeout=120,
                     python=f"import sys; {PATCHED}; from mpisearch.cli import main; sys.exit(main(sys.argv[1:]))")
    assert done.returncode != 0
    assert time.monotonic() - start < 90
    errors = [line for line in done.stderr.splitlines() if line.startswith("mpisearch: error:")]
    assert len(errors) == 1, done.stderr
    # the task it ran (its last result may have waited in its batch, so the point is not asserted)
    assert "rank " in errors[0] and "has not answered for" in errors[0] and "it was running fold" in errors[0]


def test_fit_called_on_rank_0_only_ends_with_one_line(tmp_path):
    script = f"""{PATCHED}
from mpi4py import MPI
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from mpisearch import MPISearchCV
from mpisearch.errors import SearchFailedError
if MPI.COMM_WORLD.Get_rank() == 0:
    try:
        MPISearchCV(LogisticRegression(), {{"C": [1.0]}}, cv=2).fit(*load_iris(return_X_y=True))
    except SearchFailedError as exc:
        print(exc)
"""
    start = time.monotonic()
    done = mpisearch(n=3, python=script, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 60
    assert done.stdout.strip().splitlines() == [
        "ranks 1, 2 did not join the search within 3 s: under MPI every rank must call fit "
        "(ranks other than 0 may pass X=None, y=None)"]


PIPELINE = """
[data]
path = "{data}"
[estimator]
class = "sklearn.pipeline.Pipeline"
params.steps = [["scale", {{ class = "sklearn.preprocessing.StandardScaler" }}],
                ["clf", {{ class = "mpisearch.testing.CrashingClassifier" }}]]
[space]
clf__C = [0.1, 0.5, 1.0, 5.0]
clf__crash = {crashes}
[cv]
folds = 3
"""


@pytest.mark.parametrize("n", [3, None], ids=["3_ranks", "one_process"])
def test_a_crash_in_a_pipeline_prefix_group_costs_only_its_point(data, n, tmp_path):
    """Points sharing a fitted prefix run as bundles (mpisearch.reuse); a final step that crashes
    its fit process fails its point only, and the points after it in the bundle run again."""
    iris, _ = data
    runs = {}
    for name, crashes in (("clean", ["none"]), ("crash", ["none", "segfault", "os_exit"])):
        config = tmp_path / f"{name}.toml"
        config.write_text(PIPELINE.format(data=iris, crashes=json.dumps(crashes)))
        done = mpisearch("run", str(config), "--out", str(tmp_path / name), "-q", n=n)
        assert done.returncode == 0, done.stderr
        runs[name] = score_table(tmp_path / name)
    crash = runs["crash"]
    assert [r for r in crash if json.loads(r["params"])["clf__crash"] == "none"] == runs["clean"]
    assert all(r["mean_test_score"] == "nan" for r in crash if json.loads(r["params"])["clf__crash"] != "none")
    errors = (tmp_path / "crash" / "errors.txt").read_text()
    assert "killed by signal 11 (SIGSEGV)" in errors and "exited with status 4" in errors
    assert json.loads((tmp_path / "crash" / "run.json").read_text())["reused"]["bundles"] > 0
