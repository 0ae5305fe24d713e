"""``mpisearch data make | data import``, a full ``mpisearch run`` and ``mpisearch report`` (CONTRACT.md 1, 3, 5).

Every case runs the real CLI (``python -m mpisearch``) in a subprocess.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import joblib
import numpy as np
import pytest

from mpisearch.data import hdf5
from mpisearch.data.make import make_file

PREFIX = "mpisearch: error: "
TIMEOUT = 60
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "HYDI_CONTROL_FD",
                      "MPI_LOCALNRANKS")


def cli(*args: str | os.PathLike[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES and not k.startswith("PMI")}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return subprocess.run([sys.executable, "-m", "mpisearch", *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=cwd, env=env)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def input_error(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(PREFIX), proc.stderr
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


def h5_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as fh:
        return fh["X"][()], fh["y"][()]


# --- data make -------------------------------------------------------------------------------------------------------

BUNDLED_SHAPES = {"digits": (1797, 64), "breast_cancer": (569, 30), "wine": (178, 13), "iris": (150, 4)}


@pytest.mark.parametrize("name", list(BUNDLED_SHAPES))
def test_make_bundled(tmp_path: Path, name: str) -> None:
    out = tmp_path / f"{name}.h5"
    ok(cli("data", "make", name, "--out", out))
    X, y = h5_arrays(out)
    assert X.shape == BUNDLED_SHAPES[name]
    assert y.shape == (X.shape[0],)
    assert np.isfinite(X).all()
    # what `data make` wrote reads back through the loader `run` uses
    X2, y2 = hdf5.read(out)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_make_classification_sized_and_seeded(tmp_path: Path) -> None:
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    ok(cli("data", "make", "classification", "--out", a, "--rows", "57", "--features", "7", "--seed", "3"))
    ok(cli("data", "make", "classification", "--out", b, "--rows", "57", "--features", "7", "--seed", "3"))
    Xa, ya = h5_arrays(a)
    Xb, yb = h5_arrays(b)
    assert Xa.shape == (57, 7) and ya.shape == (57,)
    assert set(np.unique(ya)) <= {0, 1} and len(np.unique(ya)) == 2
    np.testing.assert_array_equal(Xa, Xb)  # same seed, same data
    np.testing.assert_array_equal(ya, yb)
    other = make_file("classification", tmp_path / "c.h5", 57, 7, seed=4)
    assert not np.array_equal(h5_arrays(other)[0], Xa)  # the seed is honoured


def test_make_regression_sized_and_seeded(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    ok(cli("data", "make", "regression", "--out", out, "--rows", "41", "--features", "5", "--seed", "11"))
    X, y = h5_arrays(out)
    assert X.shape == (41, 5) and y.shape == (41,)
    assert y.dtype.kind == "f" and len(np.unique(y)) > 10  # a continuous target
    same = h5_arrays(make_file("regression", tmp_path / "same.h5", 41, 5, seed=11))
    np.testing.assert_array_equal(same[0], X)
    np.testing.assert_array_equal(same[1], y)
    other = h5_arrays(make_file("regression", tmp_path / "other.h5", 41, 5, seed=12))
    assert not np.array_equal(other[0], X)


def test_make_zero_rows_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "zero.h5"
    input_error(cli("data", "make", "classification", "--out", out, "--rows", "0"), "--rows")
    assert not out.exists()


@pytest.mark.parametrize("rows", ["100000000000", "1e11"])
def test_make_more_rows_than_memory_is_one_line(tmp_path: Path, rows: str) -> None:
    out = tmp_path / "huge.h5"
    input_error(cli("data", "make", "classification", "--out", out, "--rows", rows), "--rows 100000000000",
                "GiB of memory")
    assert not out.exists()


def test_import_empty_target_cell_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "gap.csv"
    src.write_text("a,label\n1,x\n2,\n3,y\n")
    input_error(cli("data", "import", src, "--target", "label", "--out", tmp_path / "gap.h5"),
                "line 3", "target column 'label' is empty")


def test_make_unknown_name(tmp_path: Path) -> None:
    out = tmp_path / "x.h5"
    input_error(cli("data", "make", "irs", "--out", out), "'irs'", "did you mean 'iris'")
    assert not out.exists()


# --- data import -----------------------------------------------------------------------------------------------------

def test_import_numeric_target(tmp_path: Path) -> None:
    src = tmp_path / "num.csv"
    src.write_text("a,label,b\n1.5,0,2\n-3,1,4e1\n0,1,\n7,0,8\n")
    out = tmp_path / "num.h5"
    done = ok(cli("data", "import", src, "--target", "label", "--out", out))
    assert "1 empty (or NaN) feature cells are NaN" in done.stdout
    X, y = hdf5.read(out)
    assert X.shape == (4, 2)
    np.testing.assert_array_equal(X[:2], [[1.5, 2.0], [-3.0, 40.0]])
    assert np.isnan(X[2, 1])  # an empty cell is a missing value
    assert y.dtype.kind in "iuf"
    np.testing.assert_array_equal(y, [0, 1, 1, 0])


def test_import_string_target(tmp_path: Path) -> None:
    src = tmp_path / "str.csv"
    src.write_text("x1,x2,species\n1,2,setosa\n3,4,virginica\n5,6,setosa\n")
    out = tmp_path / "str.h5"
    ok(cli("data", "import", src, "--target", "species", "--out", out))
    X, y = hdf5.read(out)
    assert X.shape == (3, 2)
    assert y.dtype.kind == "U"
    assert all(isinstance(v, str) for v in y.tolist())
    assert y.tolist() == ["setosa", "virginica", "setosa"]


def test_import_missing_target_column(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("x1,x2,label\n1,2,0\n3,4,1\n")
    out = tmp_path / "t.h5"
    input_error(cli("data", "import", src, "--target", "lable", "--out", out), "t.csv", "'lable'",
                "did you mean 'label'")
    assert not out.exists()


def test_import_non_numeric_feature(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("x1,colour,label\n1,2,0\n3,red,1\n")
    out = tmp_path / "bad.h5"
    input_error(cli("data", "import", src, "--target", "label", "--out", out), "bad.csv", "line 3", "'colour'",
                "'red'")
    assert not out.exists()


# --- run and report --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One small run; the config says grid/2 folds, --set says random/3 folds/4 points."""
    root = tmp_path_factory.mktemp("run")
    make_file("iris", root / "iris.h5")
    cfg = root / "run.toml"
    cfg.write_text(
        '[data]\npath = "iris.h5"\n\n'
        '[estimator]\nclass = "sklearn.svm.SVC"\nparams = { kernel = "rbf" }\n\n'
        "[space]\nC = { low = 0.1, high = 10.0, log = true }\n\n"
        '[search]\nstrategy = "grid"\nn_iter = 10\nrandom_state = 0\n\n'
        "[cv]\nfolds = 2\n\n"
        '[scoring]\nmetrics = "accuracy"\nrefit = true\n\n'
        '[output]\ndir = "not_used"\n'
    )
    out = root / "out"
    proc = cli("run", cfg, "--out", out, "--set", "cv.folds=3", "--set", "search.strategy=random",
               "--set", "search.n_iter=4", cwd=root)
    ok(proc)
    assert not (root / "not_used").exists()  # --out wins over output.dir
    return out, proc


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_run_writes_cv_results(finished_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = finished_run
    columns, rows = read_csv(out / "cv_results.csv")
    assert len(rows) == 4  # search.n_iter=4
    assert [c for c in columns if c.startswith("split")] == [f"split{k}_test_score" for k in range(3)]  # cv.folds=3
    for col in ("params", "param_C", "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time",
                "std_fit_time", "mean_score_time", "std_score_time"):
        assert col in columns
    for row in rows:
        params = json.loads(row["params"])
        assert set(params) == {"C"} and 0.1 <= params["C"] <= 10.0  # sampled from the interval
        splits = [float(row[f"split{k}_test_score"]) for k in range(3)]
        assert float(row["mean_test_score"]) == pytest.approx(np.mean(splits))
        assert 0.0 <= float(row["mean_test_score"]) <= 1.0
    assert sorted(int(r["rank_test_score"]) for r in rows)[0] == 1


def test_run_writes_best_json(finished_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = finished_run
    best = json.loads((out / "best.json").read_text())
    assert {"best_params", "best_score", "best_index", "metric"} <= set(best)
    _, rows = read_csv(out / "cv_results.csv")
    row = rows[best["best_index"]]
    assert int(row["rank_test_score"]) == 1
    assert best["best_score"] == pytest.approx(float(row["mean_test_score"]))
    assert best["best_score"] == pytest.approx(max(float(r["mean_test_score"]) for r in rows))
    assert best["best_params"] == json.loads(row["params"])


def test_run_writes_best_model(finished_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = finished_run
    model = joblib.load(out / "best_model.pkl")
    best = json.loads((out / "best.json").read_text())
    assert type(model).__name__ == "SVC"
    assert model.get_params()["C"] == pytest.approx(best["best_params"]["C"])
    X, y = hdf5.read(out.parent / "iris.h5")
    pred = model.predict(X)
    assert pred.shape == y.shape
    assert np.mean(pred == y) > 0.8


def test_run_writes_run_json(finished_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = finished_run
    info = json.loads((out / "run.json").read_text())
    assert info["ranks"] == 1
    assert "versions" in info
    assert any("search" in key for key in info)


def test_run_writes_journal(finished_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = finished_run
    lines = (out / "journal.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 4 * 3  # one line per (point, fold)
    pairs = {(e["point"], e["fold"]) for e in entries}
    assert len(pairs) == 12
    assert {fold for _, fold in pairs} == {0, 1, 2}
    assert len({point for point, _ in pairs}) == 4


def test_report(finished_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = finished_run
    best = json.loads((out / "best.json").read_text())
    proc = ok(cli("report", out))
    score = best["best_score"]
    assert any(text in proc.stdout for text in (f"{score:.6g}", f"{score:.4f}", f"{score:.3f}", repr(score))), (
        proc.stdout)
    assert "best" in proc.stdout.lower()


@pytest.mark.parametrize("part, value, expected", [
    ("indices", [0, 5, 1], "'indices' must lie in [0, 3)"),
    ("indptr", [0, 2, 1, 3], "'indptr' must start at 0, never decrease"),
    ("indices", [0.0, 1.0, 2.0], "'indices' and 'indptr' must be integers"),
])
def test_bad_csr_group_names_the_file_and_the_part(tmp_path: Path, part: str, value: list, expected: str) -> None:
    import h5py

    from mpisearch.data import hdf5
    from mpisearch.errors import InputError

    parts = {"data": [1.0, 2.0, 3.0], "indices": [0, 2, 1], "indptr": [0, 2, 2, 3]}
    parts[part] = value
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as fh:
        group = fh.create_group("X")
        for key, arr in parts.items():
            group.create_dataset(key, data=arr)
        group.attrs["shape"] = (3, 3)
        fh.create_dataset("y", data=[0, 1, 0])
    with pytest.raises(InputError, match=f"bad.h5: group 'X' is not a valid CSR matrix: {re.escape(expected)}"):
        hdf5.read(path)


@pytest.mark.parametrize("kind, expected", [
    ("empty", ("empty.h5", "dataset 'X' has no rows")),
    ("nan_weight", ("empty.h5", "dataset 'w' (sample weights) has 2 NaN or infinite values (first at row 3)")),
])
def test_data_that_no_fit_can_use_is_a_one_line_error(tmp_path: Path, kind: str, expected: tuple[str, ...]) -> None:
    rows = 0 if kind == "empty" else 12
    weights = np.ones(rows)
    if kind == "nan_weight":
        weights[[3, 7]] = [np.nan, np.inf]
    with h5py.File(tmp_path / "empty.h5", "w") as fh:
        fh["X"], fh["y"], fh["w"] = np.zeros((rows, 3)), np.arange(rows) % 2, weights
    cfg = tmp_path / "run.toml"
    cfg.write_text('[data]\npath = "empty.h5"\nsample_weight = "w"\n\n'
                   '[estimator]\nclass = "sklearn.linear_model.LogisticRegression"\n\n[space]\nC = [1.0, 2.0]\n')
    input_error(cli("run", cfg, "--out", tmp_path / "out", cwd=tmp_path), *expected)
    assert not (tmp_path / "out" / "journal.jsonl").exists()  # stopped before any fit


def test_api_rejects_non_finite_sample_weights() -> None:
    from sklearn.linear_model import LogisticRegression

    from mpisearch import MPISearchCV
    from mpisearch.errors import InputError

    X, y, w = np.random.default_rng(0).random((20, 3)), np.arange(20) % 2, np.ones(20)
    w[5] = np.nan
    with pytest.raises(InputError, match=r"sample_weight has 1 NaN or infinite value \(first at row 5\)"):
        MPISearchCV(LogisticRegression(), {"C": [1.0]}).fit(X, y, sample_weight=w)
