"""HDF5 tables of named columns of mixed types: written and read back with their dtypes,
`mpisearch data import --table` from CSV and Parquet, and `mpisearch run` on a table whose
ColumnTransformer selects columns by name (one process and 3 ranks, equal to GridSearchCV)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dropin_cases import _frame
from runs import MPIEXEC, score_table
from test_cli_data import cli, input_error, ok

from mpisearch.data import hdf5
from mpisearch.errors import InputError

pd = pytest.importorskip("pandas")

PIPELINE = """
[data]
path = "{data}"
[estimator]
class = "sklearn.pipeline.Pipeline"
params.steps = [["columns", {{ class = "sklearn.compose.ColumnTransformer", params = {{ transformers = [
    ["num", {{ class = "sklearn.preprocessing.StandardScaler" }}, ["a", "b", "n"]],
    ["cat", {{ class = "sklearn.preprocessing.OneHotEncoder", params = {{ handle_unknown = "ignore" }} }},
     ["colour", "size"]]] }} }}],
  ["clf", {{ class = "sklearn.linear_model.LogisticRegression", params = {{ max_iter = 500 }} }}]]
[space]
clf__C = [0.01, 1.0]
[cv]
folds = 3
"""


def mixed_frame():
    """Numbers (float64, float32, int64, bool), a categorical, strings with missing cells."""
    X, y = _frame()
    X["flag"] = X["n"] > 0
    X["label"] = pd.Series(np.where(X["a"] > 0, "pos", "neg"), dtype="str")
    return X, y


def test_a_table_reads_back_with_its_names_and_dtypes(tmp_path):
    X, y = mixed_frame()
    back, y_back = hdf5.read(hdf5.write(tmp_path / "t.h5", X, y.to_numpy()))
    pd.testing.assert_frame_equal(back, X)
    np.testing.assert_array_equal(y_back, y.to_numpy())


@pytest.mark.parametrize("column, dtype", [("when", "datetime64[ns]"), ("count", "Int64"), ("obj", "object")])
def test_a_column_a_table_cannot_hold_is_named_and_nothing_is_written(tmp_path, column, dtype):
    X, _ = mixed_frame()
    X[column] = pd.Series([{"x": 1}] * len(X)) if dtype == "object" else pd.Series(range(len(X))).astype(dtype)
    with pytest.raises(InputError, match=re.escape(f"X column '{column}' has dtype {dtype}")):
        hdf5.write(tmp_path / "t.h5", X)
    assert not (tmp_path / "t.h5").exists()


def write_csv(X, y, path: Path) -> Path:
    X.assign(target=y).to_csv(path, index=False)
    return path


def test_import_table_from_csv_keeps_names_and_types(tmp_path):
    X, y = mixed_frame()
    out = tmp_path / "t.h5"
    done = ok(cli("data", "import", write_csv(X, y, tmp_path / "t.csv"), "--target", "target", "--out", out,
                  "--table"))
    assert "X 160 x 7 table" in done.stdout
    back, y_back = hdf5.read(out)
    expected = pd.read_csv(tmp_path / "t.csv").drop(columns="target")
    pd.testing.assert_frame_equal(back, expected)
    assert list(back.columns) == list(X.columns) and back["size"].isna().sum() == X["size"].isna().sum()
    np.testing.assert_array_equal(y_back, y.to_numpy())


def test_import_table_from_parquet_keeps_categoricals(tmp_path):
    pytest.importorskip("pyarrow")
    X, y = mixed_frame()
    X.assign(target=y).to_parquet(tmp_path / "t.parquet")
    ok(cli("data", "import", tmp_path / "t.parquet", "--target", "target", "--out", tmp_path / "t.h5", "--table"))
    back, _ = hdf5.read(tmp_path / "t.h5")
    pd.testing.assert_frame_equal(back, pd.read_parquet(tmp_path / "t.parquet").drop(columns="target"))
    assert isinstance(back["colour"].dtype, pd.CategoricalDtype)


def test_import_table_refuses_an_empty_target_cell(tmp_path):
    X, y = mixed_frame()
    path = write_csv(X, y.astype(float).where(np.arange(len(y)) != 4), tmp_path / "t.csv")
    input_error(cli("data", "import", path, "--target", "target", "--out", tmp_path / "t.h5", "--table"),
                "row 5", "'target' is empty")
    assert not (tmp_path / "t.h5").exists()


def run(n: int | None, config: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mpisearch", "run", str(config), "--out", str(out), "-q"]
    cmd = cmd if n is None else [str(MPIEXEC), "-n", str(n), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240)


def test_run_on_a_table_selects_columns_by_name_as_scikit_learn_on_one_and_three_ranks(tmp_path):
    from sklearn.model_selection import GridSearchCV

    from mpisearch.config import load

    X, y = mixed_frame()
    data = hdf5.write(tmp_path / "t.h5", X, y.to_numpy())
    config = tmp_path / "run.toml"
    config.write_text(PIPELINE.format(data=data))
    ok(run(None, config, tmp_path / "one"))
    theirs = GridSearchCV(load(config).spec.estimator, {"clf__C": [0.01, 1.0]}, cv=3).fit(X, y.to_numpy())
    with (tmp_path / "one" / "cv_results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for key in ("mean_test_score", "split2_test_score"):
        assert [float(r[key]) for r in rows] == theirs.cv_results_[key].tolist(), key
    if not MPIEXEC.exists():
        pytest.skip("no mpiexec next to the Python interpreter")
    ok(run(3, config, tmp_path / "three"))
    assert score_table(tmp_path / "three") == score_table(tmp_path / "one")
