"""Bad input on the command line: exit status 2 and one line ``mpisearch: error: ...`` (CONTRACT.md 1, 2, 5).

Every case runs the real CLI (``python -m mpisearch``) in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpisearch.data.make import make_file

PREFIX = "mpisearch: error: "
EXIT_INPUT = 2
TIMEOUT = 60
MPIEXEC = Path(sys.executable).parent / "mpiexec"
# Variables an MPI launcher sets: a plain run must not look as if it were launched by one.
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "HYDI_CONTROL_FD",
                      "MPI_LOCALNRANKS")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES and not k.startswith("PMI")}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def cli(*args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = TIMEOUT,
        launcher: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*(launcher or []), sys.executable, "-m", "mpisearch", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=_env())


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line; fails unless stderr is exactly one ``mpisearch: error:`` line."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith(PREFIX), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def assert_input_error(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert proc.returncode == EXIT_INPUT, (proc.returncode, proc.stdout, proc.stderr)
    line = error_line(proc)
    for text in expected:
        assert text in line, f"{text!r} not in {line!r}"
    return line


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_file("iris", tmp_path_factory.mktemp("data") / "iris.h5")


def config_text(data: Path, *, estimator: str = "", space: str = "", search: str = "", cv: str = "",
                scoring: str = "", extra: str = "", data_section: str | None = None) -> str:
    """A tiny valid config (iris, LogisticRegression, 2 folds), with pieces replaced."""
    data_section = data_section if data_section is not None else f"path = '{data}'"
    estimator = estimator or 'class = "sklearn.linear_model.LogisticRegression"\nparams = { max_iter = 200 }'
    space = space or "C = [0.1, 1.0]"
    search = search or 'strategy = "grid"'
    cv = cv or "folds = 2"
    scoring = scoring or 'metrics = ["accuracy"]'
    return (f"[data]\n{data_section}\n\n[estimator]\n{estimator}\n\n[space]\n{space}\n\n[search]\n{search}\n\n"
            f"[cv]\n{cv}\n\n[scoring]\n{scoring}\n\n{extra}")


SVC = 'class = "sklearn.svm.SVC"'

# (id, keyword arguments of config_text, extra CLI arguments, substrings the error line must hold)
CONFIG_CASES = [
    ("unknown-key", {"cv": "fold = 2"}, [], ["run.toml", "cv.fold", "unknown key", "did you mean 'folds'"]),
    ("unknown-section", {"extra": "[serach]\nn_iter = 3\n"}, [], ["[serach]", "did you mean 'search'"]),
    ("wrong-type-n-iter", {"search": 'strategy = "random"\nn_iter = "ten"'}, [],
     ["search.n_iter", "integer", "'ten'"]),
    ("unknown-class", {"estimator": 'class = "sklearn.svm.SVX"'}, [],
     ["estimator.class", "'sklearn.svm'", "'SVX'", "did you mean 'SV"]),
    ("unknown-module", {"estimator": 'class = "sklearn.nosuchmodule.Thing"'}, [],
     ["estimator.class", "sklearn.nosuchmodule"]),
    ("not-an-estimator", {"estimator": 'class = "collections.OrderedDict"'}, [],
     ["estimator.class", "collections.OrderedDict", "estimator"]),
    ("unknown-estimator-param", {"estimator": f'{SVC}\nparams = {{ kernal = "rbf" }}'}, [],
     ["estimator.params", "'kernal'", "SVC", "did you mean 'kernel'"]),
    ("unknown-space-param", {"space": "Cee = [0.1, 1.0]"}, [],
     ["space.Cee", "'Cee'", "not a parameter", "LogisticRegression"]),
    ("grid-over-interval", {"space": "C = { low = 1e-3, high = 1e3, log = true }"}, [],
     ["space.C", "grid", "give values", "strategy"]),
    ("interval-bad-key", {"space": "C = { low = 1e-3, hihg = 1.0 }", "search": 'strategy = "random"'}, [],
     ["space.C", "'hihg'", "did you mean 'high'"]),
    ("unknown-scorer", {"scoring": 'metrics = ["acuracy"]'}, [],
     ["scoring", "'acuracy'", "did you mean 'accuracy'"]),
    ("refit-not-a-metric", {"scoring": 'metrics = ["accuracy"]\nrefit = "f1_macro"'}, [], ["refit", "'f1_macro'"]),
    ("unknown-strategy", {"search": 'strategy = "randon"'}, [],
     ["search.strategy", "'randon'", "did you mean 'random'"]),
    ("bad-duration", {"search": 'strategy = "grid"\nmax_time = "2 hours"'}, [],
     ["search.max_time", "duration", "'2 hours'"]),
    ("bad-task-memory", {"search": 'strategy = "grid"\ntask_memory = "lots"'}, [],
     ["search.task_memory", "amount of memory", "'lots'"]),
    ("folds-more-than-rows", {"cv": "folds = 1000"}, [], ["cv", "1000"]),
    ("missing-space", {"extra": ""}, [], None),  # filled in below: a config with no [space]
    ("bad-set-syntax", {}, ["--set", "cv.folds"], ["--set", "KEY=VALUE", "cv.folds"]),
    ("set-unknown-key", {}, ["--set", "cv.fold=3"], ["cv.fold", "did you mean 'folds'"]),
    ("halving-unknown-option", {"search": 'strategy = "halving"\n[search.halving]\nfactr = 3'}, [],
     ["search.halving.factr", "did you mean 'factor'"]),
    ("halving-options-without-halving", {"search": 'strategy = "grid"\n[search.halving]\nfactor = 3'}, [],
     ["search.halving", "'grid'", "not \"halving\""]),
    ("halving-searched-resource", {"search": 'strategy = "halving"\n[search.halving]\nresource = "C"'}, [],
     ["search.halving.resource", "'C' is searched"]),
    ("batch-without-batches", {"search": 'strategy = "grid"\nbatch = 2'}, [],
     ["search.batch", "strategy 'grid' has no batches"]),
    ("batch-zero", {"search": 'strategy = "bayes"\nbatch = 0'}, [], ["search.batch", "positive integer, got 0"]),
    ("resident-folds-zero", {}, ["--set", "data.resident_folds=0"], ["data.resident_folds", "positive integer, got 0"]),
    ("open-strategy-not-importable", {"search": 'strategy = "no_such_package:Sampler"'}, [],
     ["search.strategy", "cannot import module 'no_such_package'"]),
    ("halving-min-above-max", {"search": 'strategy = "halving"\n[search.halving]\nmin_resources = 500'}, [],
     ["search.halving.min_resources", "500", "max_resources (150)"]),
    ("racing-not-bool", {"search": 'strategy = "grid"\nracing = "yes"'}, [], ["search.racing", "true or false"]),
    ("racing-confidence", {"search": 'strategy = "grid"\nracing = true\nracing_confidence = 1.5'}, [],
     ["search.racing_confidence", "between 0.5 and 1", "1.5"]),
]


@pytest.mark.parametrize("kwargs, args, expected", [pytest.param(*c[1:], id=c[0]) for c in CONFIG_CASES])
def test_bad_config(tmp_path: Path, iris: Path, kwargs: dict[str, str], args: list[str],
                    expected: list[str] | None) -> None:
    text = config_text(iris, **kwargs)
    if expected is None:  # the missing-[space] case
        text = text.replace("[space]\nC = [0.1, 1.0]\n", "")
        expected = ["[space]", "missing"]
    cfg = tmp_path / "run.toml"
    cfg.write_text(text)
    proc = cli("run", cfg, "--out", tmp_path / "out", *args)
    assert_input_error(proc, *expected)


def test_invalid_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[data\npath = 'x.h5'\n")
    assert_input_error(cli("run", cfg), "broken.toml", "TOML")


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    assert_input_error(cli("run", missing), "nowhere.toml", "not found")


def test_missing_data_file(tmp_path: Path, iris: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris, data_section="path = 'missing_data.h5'"))
    line = assert_input_error(cli("run", cfg, "--out", tmp_path / "out"), "data.path", "missing_data.h5",
                              "not found")
    # relative data paths are relative to the config file
    assert str(tmp_path / "missing_data.h5") in line
    assert not (tmp_path / "out" / "cv_results.csv").exists()


def test_data_file_not_hdf5(tmp_path: Path, iris: Path) -> None:
    bogus = tmp_path / "bogus.h5"
    bogus.write_text("this is not HDF5\n")
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris, data_section=f"path = '{bogus}'"))
    assert_input_error(cli("run", cfg, "--out", tmp_path / "out"), "bogus.h5", "HDF5")


def test_missing_dataset(tmp_path: Path, iris: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris, data_section=f"path = '{iris}'\nX = 'features'"))
    assert_input_error(cli("run", cfg, "--out", tmp_path / "out"), "iris.h5", "'features'", "data.X")


def _h5(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as fh:
        for name, data in datasets.items():
            fh.create_dataset(name, data=data)
    return path


def _run_with_data(tmp_path: Path, data: Path) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(data))
    return cli("run", cfg, "--out", tmp_path / "out")


def test_length_mismatch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = _h5(tmp_path / "mismatch.h5", X=rng.random((30, 3)), y=np.arange(29) % 2)
    line = assert_input_error(_run_with_data(tmp_path, data), "mismatch.h5", "'y'", "'X'")
    assert "29" in line and "30" in line


def test_x_not_2d(tmp_path: Path) -> None:
    data = _h5(tmp_path / "flat.h5", X=np.arange(30.0), y=np.arange(30) % 2)
    assert_input_error(_run_with_data(tmp_path, data), "flat.h5", "'X'", "2-D")


def test_bad_sparse_group(tmp_path: Path) -> None:
    path = tmp_path / "sparse.h5"
    with h5py.File(path, "w") as fh:
        g = fh.create_group("X")
        g.create_dataset("data", data=np.ones(3))
        g.create_dataset("indices", data=np.arange(3))
        # no indptr, no shape attribute
        fh.create_dataset("y", data=np.arange(3))
    assert_input_error(_run_with_data(tmp_path, path), "sparse.h5", "'X'", "indptr")


@pytest.mark.parametrize("args, expected", [
    pytest.param([], ["command"], id="no-subcommand"),
    pytest.param(["data", "make", "classification", "--out", "x.h5", "--rows", "many"], ["--rows", "'many'"],
                 id="make-rows-not-int"),
])
def test_bad_usage(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    assert_input_error(cli(*args, cwd=tmp_path), *expected)


def test_report_not_a_run_dir(tmp_path: Path) -> None:
    assert_input_error(cli("report", tmp_path), str(tmp_path), "cv_results.csv is missing")


# --- known bugs: bad input that does not give the one-line error the contract asks for ---------------------------

def test_invalid_fixed_param_value(tmp_path: Path, iris: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris, estimator=f'{SVC}\nparams = {{ kernel = "rbff" }}'))
    assert_input_error(cli("run", cfg, "--out", tmp_path / "out"), "kernel", "'rbff'")


def test_all_fits_fail_says_why(tmp_path: Path, iris: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris, estimator=SVC, space="C = [-1.0, -2.0]"))
    proc = cli("run", cfg, "--out", tmp_path / "out")
    assert proc.returncode != 0
    line = error_line(proc)
    assert "fits failed" in line and "'C'" in line, line


def test_class_is_a_module(tmp_path: Path, iris: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris, estimator='class = "sklearn.svm"'))
    assert_input_error(cli("run", cfg, "--out", tmp_path / "out"), "estimator.class", "sklearn.svm")


def test_run_out_is_a_file(tmp_path: Path, iris: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris))
    target = tmp_path / "taken"
    target.write_text("")
    assert_input_error(cli("run", cfg, "--out", target), "taken")


def test_data_make_out_is_a_directory(tmp_path: Path) -> None:
    assert_input_error(cli("data", "make", "iris", "--out", tmp_path), str(tmp_path))


def test_report_corrupt_best_json(tmp_path: Path) -> None:
    (tmp_path / "best.json").write_text("{not json\n")
    assert_input_error(cli("report", tmp_path), "best.json")


# --- under mpiexec: only rank 0 prints, nothing hangs ---------------------------------------------------------------

needs_mpiexec = pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
MPI_TIMEOUT = 20


def _mpi(*args: str | os.PathLike[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = cli(*args, launcher=[str(MPIEXEC), "-n", "3"], timeout=MPI_TIMEOUT)
    return proc, time.monotonic() - start


def _assert_mpi_error(proc: subprocess.CompletedProcess[str], elapsed: float, *expected: str) -> None:
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(PREFIX)]
    assert len(errors) == 1, f"expected one '{PREFIX}' line (rank 0 only), got:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    for text in expected:
        assert text in errors[0], f"{text!r} not in {errors[0]!r}"
    assert elapsed < MPI_TIMEOUT


@needs_mpiexec
@pytest.mark.parametrize("kwargs, expected", [
    pytest.param({"cv": "fold = 2"}, ["cv.fold", "did you mean 'folds'"], id="unknown-key"),
    # found later, by the engine on rank 0 after the workers are already waiting for the search
    pytest.param({"scoring": 'metrics = ["acuracy"]'}, ["'acuracy'"], id="unknown-scorer"),
])
def test_bad_config_under_mpiexec(tmp_path: Path, iris: Path, kwargs: dict[str, str], expected: list[str]) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris, **kwargs))
    proc, elapsed = _mpi("run", cfg, "--out", tmp_path / "out")
    _assert_mpi_error(proc, elapsed, *expected)


@needs_mpiexec
def test_missing_data_file_under_mpiexec(tmp_path: Path, iris: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config_text(iris, data_section="path = 'missing_data.h5'"))
    proc, elapsed = _mpi("run", cfg, "--out", tmp_path / "out")
    _assert_mpi_error(proc, elapsed, "data.path", "missing_data.h5")
