"""`mpisearch run` under a real mpiexec, as users launch it, compared with one process."""

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
class = "sklearn.linear_model.LogisticRegression"
params = {{ max_iter = 2000 }}
[space]
C = [0.01, 0.1, 1.0, 10.0]
fit_intercept = [true, false]
[search]
strategy = "{strategy}"
n_iter = 6
random_state = 3
[cv]
folds = 4
shuffle = true
random_state = 1
[scoring]
metrics = ["accuracy", "f1_macro"]
"""

pytestmark = pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec next to the Python interpreter")


def run(n: int | None, config: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mpisearch", "run", str(config), "--out", str(out)]
    if n is not None:
        cmd = [str(MPIEXEC), "-n", str(n), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240)



@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    data = make_file("iris", tmp / "iris.h5")
    out = {}
    for strategy in ("grid", "random"):
        out[strategy] = tmp / f"{strategy}.toml"
        out[strategy].write_text(CONFIG.format(data=data, strategy=strategy))
    return out


@pytest.mark.parametrize("strategy", ["grid", "random"])
def test_cli_results_do_not_depend_on_the_number_of_ranks(configs, strategy, tmp_path):
    reference = run(None, configs[strategy], tmp_path / "one")
    assert reference.returncode == 0, reference.stderr
    expected = score_table(tmp_path / "one")
    assert len(expected) == (8 if strategy == "grid" else 6)
    for n in (3, 5):  # 2 workers, and 4 workers oversubscribing 2 cores
        done = run(n, configs[strategy], tmp_path / f"n{n}")
        assert done.returncode == 0, done.stderr
        assert score_table(tmp_path / f"n{n}") == expected, f"{n} ranks differ from one process"
        info = json.loads((tmp_path / f"n{n}" / "run.json").read_text())
        assert info["ranks"] == n and len(info["workers"]) == n - 1
        assert sum(w["tasks"] for w in info["workers"].values()) >= info["tasks"] == len(expected) * 4
        journal = (tmp_path / f"n{n}" / "journal.jsonl").read_text().splitlines()
        assert len(journal) == len(expected) * 4


def test_bad_config_under_mpiexec_exits_quickly_with_one_line(configs, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(configs["grid"].read_text().replace("folds = 4", "fold = 4"))
    start = time.monotonic()
    done = run(3, bad, tmp_path / "out")
    assert time.monotonic() - start < 30
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("mpisearch: error:")]
    assert len(lines) == 1 and "cv.fold: unknown key (did you mean 'folds'?)" in lines[0], done.stderr
