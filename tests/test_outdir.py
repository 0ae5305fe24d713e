"""The output directory: a lock, earlier runs never overwritten or mixed in, atomic files,
torn and bad journal lines, read-only and full disks, run.json's status, the data fingerprint."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mpisearch import MPISearchCV
from mpisearch.data.make import make_file
from mpisearch.errors import InputError, OutputError, SearchFailedError

GRID = {"C": [0.1, 1.0, 10.0]}
N_TASKS = 9  # 3 points x 3 folds
CONFIG = """
[data]
path = "{data}"
[estimator]
class = "sklearn.linear_model.LogisticRegression"
params = {{ max_iter = 300 }}
[space]
C = [0.1, 1.0, 10.0]
[cv]
folds = 3
"""


def search(out: Path, **kwargs) -> MPISearchCV:
    return MPISearchCV(LogisticRegression(max_iter=300), GRID, out=out, **{"cv": 3, **kwargs})


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpisearch", *args], capture_output=True, text=True, timeout=120)


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mpisearch: error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data = make_file("iris", tmp_path / "iris.h5")
    path = tmp_path / "search.toml"
    path.write_text(CONFIG.format(data=data))
    return path


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` made read-only: a read-only bind mount as root (root ignores permissions), else chmod."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("root, but cannot bind-mount to make a read-only directory")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


# -- earlier runs ----------------------------------------------------------------------------
def test_an_earlier_run_is_refused_without_resume_or_force(tmp_path, iris):
    out = tmp_path / "out"
    search(out).fit(*iris)
    journal = (out / "journal.jsonl").read_bytes()
    with pytest.raises(InputError, match=f"{out} holds an earlier run \\(status complete\\); add --resume"):
        search(out).fit(*iris)
    assert (out / "journal.jsonl").read_bytes() == journal  # nothing touched
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_force_moves_the_earlier_run_aside_and_leaves_no_stale_file(tmp_path, iris):
    out = tmp_path / "out"
    search(out).fit(*iris)
    (out / "errors.txt").write_text("from the earlier run\n")
    earlier = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    search(out, force=True, refit=False).fit(*iris)
    (moved,) = out.glob("earlier-*")
    assert {p.name: p.read_bytes() for p in moved.iterdir()} == earlier
    assert not (out / "errors.txt").exists() and not (out / "best_model.pkl").exists()  # not this run's
    assert len((out / "journal.jsonl").read_text().splitlines()) == N_TASKS


def test_a_dir_without_finished_work_is_cleared_for_a_new_run(tmp_path, iris):
    out = tmp_path / "out"
    out.mkdir()
    (out / "journal.jsonl").write_text("")
    (out / "run.json").write_text('{"status": "failed", "error": "InputError: bad"}')
    (out / "errors.txt").write_text("stale\n")
    search(out).fit(*iris)
    assert not (out / "errors.txt").exists() and not list(out.glob("earlier-*"))
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_cli_second_run_is_one_line_naming_the_dir(config, tmp_path):
    out = tmp_path / "out"
    assert cli("run", str(config), "--out", str(out), "-q").returncode == 0
    again = cli("run", str(config), "--out", str(out), "-q")
    assert again.returncode == 2
    assert f"{out} holds an earlier run" in one_line(again) and "--force" in one_line(again)
    forced = cli("run", str(config), "--out", str(out), "-q", "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(list(out.glob("earlier-*"))) == 1


def test_a_locked_dir_is_refused_with_one_line(config, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with (out / ".mpisearch.lock").open("w") as held:  # another run holds the directory
        held.write("pid 12345 on somehost\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        done = cli("run", str(config), "--out", str(out), "-q")
    assert done.returncode == 2
    assert f"{out} is in use by another run (pid 12345 on somehost)" in one_line(done)
    assert not (out / "run.json").exists()
    assert cli("run", str(config), "--out", str(out), "-q").returncode == 0  # released: usable again


# -- the journal -------------------------------------------------------------------------------
def test_a_torn_last_line_is_cut_before_appending(tmp_path, iris):
    out = tmp_path / "out"
    full = search(tmp_path / "full").fit(*iris)
    lines = (tmp_path / "full" / "journal.jsonl").read_text().splitlines(keepends=True)
    out.mkdir()
    (out / "journal.jsonl").write_text("".join(lines[:4]) + lines[4][:30])  # killed while writing line 5
    (out / "run.json").write_text((tmp_path / "full" / "run.json").read_text())
    resumed = search(out, resume=True).fit(*iris)
    written = (out / "journal.jsonl").read_text().splitlines()
    assert len(written) == N_TASKS and all(json.loads(line)["fold"] in (0, 1, 2) for line in written)
    assert resumed.run_info_["resumed_tasks"] == 4
    np.testing.assert_array_equal(resumed.cv_results_["mean_test_score"], full.cv_results_["mean_test_score"])


@pytest.mark.parametrize(("bad", "problem"), [(b"\xff\xfe not text\n", "not UTF-8"),
                                              (b'{"point": 1, "params": [1, 2]}\n', "params is not an object"),
                                              (b"[1, 2, 3]\n", "not a JSON object")])
def test_a_bad_journal_line_is_one_error_naming_its_line(config, tmp_path, bad, problem):
    out = tmp_path / "out"
    assert cli("run", str(config), "--out", str(out), "-q").returncode == 0
    lines = (out / "journal.jsonl").read_bytes().splitlines(keepends=True)
    (out / "journal.jsonl").write_bytes(b"".join(lines[:2]) + bad + b"".join(lines[2:]))
    for args in (("run", str(config), "--out", str(out), "--resume", "-q"), ("report", str(out))):
        done = cli(*args)
        assert done.returncode == 2
        assert f"{out / 'journal.jsonl'} line 3: not a journal entry" in one_line(done) and problem in done.stderr


# -- read-only and full disks ------------------------------------------------------------------
def test_read_only_dir_resume_and_report_plot_are_one_line(config, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    assert cli("run", str(config), "--out", str(out), "-q").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with read_only(out):
        resumed = cli("run", str(config), "--out", str(out), "-q", "--resume")
        plotted = cli("report", str(out), "--plot")
    assert resumed.returncode == 2 and f"cannot write to {out}" in one_line(resumed)
    assert plotted.returncode == 2 and "report --plot: cannot write to" in one_line(plotted)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_full_disk_at_the_end_leaves_nothing_half_written(tmp_path, iris, monkeypatch):
    import joblib

    def full_disk(obj, fh, *args, **kwargs):
        fh.write(b"half a pickle")
        raise OSError(errno.ENOSPC, "No space left on device", fh.name)

    monkeypatch.setattr(joblib, "dump", full_disk)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="No space left on device.*run again with --resume"):
        search(out).fit(*iris)
    assert not (out / "best_model.pkl").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and "No space left on device" in info["error"]
    assert len((out / "journal.jsonl").read_text().splitlines()) == N_TASKS


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_during_the_search_is_one_line_and_resumable(config, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = disk / "out"
        done = cli("run", str(config), "--out", str(out), "-q", "--set", "space.C=[" + ", ".join(
            str(c) for c in np.logspace(-3, 3, 60)) + "]")
        assert done.returncode == 1
        assert "No space left on device" in one_line(done)
        for name in ("run.json", "best.json"):  # whole or absent
            if (out / name).exists():
                json.loads((out / name).read_text())
        assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_run_json_says_a_failed_search_failed(tmp_path, iris):
    from estimators import FailingClassifier

    out = tmp_path / "out"
    with pytest.raises(SearchFailedError):
        MPISearchCV(FailingClassifier(fail=True), {"C": [1.0]}, cv=2, out=out).fit(*iris)
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and "fits failed" in info["error"]


# -- the data fingerprint -----------------------------------------------------------------------
def test_rows_changed_in_the_middle_of_X_are_refused_on_resume(tmp_path):
    data = tmp_path / "data.h5"
    make_file("classification", data, 20_000, 20, 0)  # 3.2 MB of X: the middle is far from either end
    config = tmp_path / "search.toml"
    config.write_text(CONFIG.format(data=data).replace("C = [0.1, 1.0, 10.0]", "C = [1.0]"))
    out = tmp_path / "out"
    assert cli("run", str(config), "--out", str(out), "-q").returncode == 0
    with h5py.File(data, "r+") as f:
        f["X"][10_000:10_010] = f["X"][10_000:10_010] + 1.0
    done = cli("run", str(config), "--out", str(out), "-q", "--resume")
    assert done.returncode == 2
    assert "--resume: the config or data differ" in one_line(done)


@pytest.mark.parametrize("changed", ["sample_weight", "groups"])
def test_changed_weights_or_groups_are_refused_on_resume(tmp_path, iris, changed):
    from sklearn.model_selection import GroupKFold

    X, y = iris
    data = {"sample_weight": np.ones(len(y)), "groups": np.arange(len(y)) % 5}
    search(tmp_path / "out", cv=GroupKFold(3)).fit(X, y, **data)
    data[changed] = data[changed].copy()
    data[changed][75] += 1
    with pytest.raises(InputError, match="config or data differ"):
        search(tmp_path / "out", cv=GroupKFold(3), resume=True).fit(X, y, **data)
